package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance"
	"outpost/content/pack"
	"outpost/content/samplecourse"
)

// run executes the CLI in-process, as a user would type it.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

func TestServeFirstStartHealthMetricsAndGracefulStop(t *testing.T) {
	data := filepath.Join(t.TempDir(), "box") // does not exist yet
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCmd(io.Discard, pw)
	cmd.SetArgs([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()

	// The daemon logs its URL once the portal answers.
	url := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if _, u, ok := strings.Cut(sc.Text(), "url="); ok {
			url = strings.Fields(u)[0]
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		t.Fatalf("serve did not report its URL: %v", <-done)
	}
	for _, f := range []string{"identity/cert.pem", "identity/key.pem", "outpost.db"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("first start did not create %s: %v", f, err)
		}
	}
	if info, err := os.Stat(filepath.Join(data, "identity/key.pem")); err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", info.Mode().Perm())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	code, metrics := get("metrics")
	if code != 200 || !strings.Contains(metrics, "# TYPE outpost_courses gauge") || !strings.Contains(metrics, "outpost_http_requests_total{code=\"2xx\"}") {
		t.Fatalf("/metrics = %d:\n%.800s", code, metrics)
	}
	cancel() // what SIGTERM does in main
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v on shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of cancellation")
	}

	out, err := run(t, "status", "--data", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		DeviceID string `json:"device_id"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if _, err := protocol.DeviceIDFromString(st.DeviceID); err != nil {
		t.Fatalf("status printed an invalid device ID %q: %v", st.DeviceID, err)
	}
}

// newNodeDir makes a node's data directory, as the first `serve` does.
func newNodeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	n, err := appliance.Open(context.Background(), appliance.DefaultConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerbsRefuseADirectoryThatIsNotANode: a mistyped --data must not
// create a node and report on it (or import into it). Every verb but
// serve, hub and demo refuses, names the directory, says what to do, and
// leaves the directory as it was.
func TestVerbsRefuseADirectoryThatIsNotANode(t *testing.T) {
	pack := t.TempDir()
	if _, err := samplecourse.Write(pack); err != nil {
		t.Fatal(err)
	}
	verbs := [][]string{
		{"status"}, {"content", "ls"}, {"content", "show", "x"}, {"content", "import", pack},
		{"content", "export", "x", filepath.Join(t.TempDir(), "x.tar")}, {"content", "rm", "x"},
		{"content", "verify"}, {"content", "gc"}, {"content", "du"},
		{"sync", "status"}, {"sync", "now"}, {"sync", "set-upstream", "https://127.0.0.1:1"},
	}
	typo, empty := filepath.Join(t.TempDir(), "typo"), t.TempDir()
	for _, dir := range []string{typo, empty} {
		for _, v := range verbs {
			out, err := run(t, append(v, "--data", dir)...)
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "outpost serve --data") {
				t.Errorf("%v --data %s: %v\n%s", v, dir, err, out)
			}
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Error("a verb created the mistyped directory")
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("verbs wrote into a directory that is not a node: %v", ents)
	}
	// What the message says to do works.
	if out, err := run(t, "init", "--data", typo); err != nil || !strings.Contains(out, "created a node") {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if out, err := run(t, "init", "--data", typo); err != nil || !strings.Contains(out, "already a node") {
		t.Fatalf("init again: %v\n%s", err, out)
	}
	if out, err := run(t, "content", "import", pack, "--data", typo); err != nil {
		t.Fatalf("import into the new node: %v\n%s", err, out)
	}
}

func TestContentVerbs(t *testing.T) {
	data := newNodeDir(t)
	packDir := t.TempDir()
	m, err := samplecourse.Write(packDir)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"content", "ls"}, "No courses yet"},
		{[]string{"content", "import", packDir}, "imported " + m.ID},
		{[]string{"content", "import", packDir}, "already imported"},
		{[]string{"content", "ls"}, m.Title},
		{[]string{"content", "show", m.ID}, m.Lessons[0].Title},
		{[]string{"content", "du"}, m.ID},
		{[]string{"content", "verify"}, "all files are intact"},
	}
	for _, s := range steps {
		out, err := run(t, append(s.args, "--data", data)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		if !strings.Contains(out, s.want) {
			t.Fatalf("%v: output lacks %q:\n%s", s.args, s.want, out)
		}
	}
	// Each export is a pack another box can import: read it back with the
	// importer's own reader, then import it into a new node and verify it.
	raw, err := os.ReadFile(filepath.Join(packDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".tar.zst", ".tar", ".zip"} {
		out := filepath.Join(t.TempDir(), "course"+ext)
		if o, err := run(t, "content", "export", m.ID, out, "--data", data); err != nil || !strings.Contains(o, "exported") {
			t.Fatalf("export %s: %v\n%s", ext, err, o)
		}
		checkExportedPack(t, out, raw, m)
		other := newNodeDir(t)
		for _, s := range [][]string{{"content", "import", out}, {"content", "verify"}} {
			if o, err := run(t, append(s, "--data", other)...); err != nil {
				t.Fatalf("%s: %v: %v\n%s", ext, s, err, o)
			}
		}
		if o, err := run(t, "content", "show", m.ID, "--data", other); err != nil || !strings.Contains(o, m.Lessons[0].Title) {
			t.Fatalf("%s: the re-imported course shows: %v\n%s", ext, err, o)
		}
	}
	steps = []struct {
		args []string
		want string
	}{
		{[]string{"content", "rm", m.ID}, "removed " + m.ID},
		{[]string{"content", "gc"}, "removed " + strconv.Itoa(len(m.Files)) + " unreferenced files"},
	}
	for _, s := range steps {
		out, err := run(t, append(s.args, "--data", data)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		if !strings.Contains(out, s.want) {
			t.Fatalf("%v: output lacks %q:\n%s", s.args, s.want, out)
		}
	}
	out, err := run(t, "content", "ls", "--json", "--data", data)
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("ls --json after rm: %q %v", out, err)
	}
	if _, err := run(t, "content", "show", "nope", "--data", data); err == nil || !strings.Contains(err.Error(), "content ls") {
		t.Fatalf("show of an unknown course should point at `content ls`, got %v", err)
	}
}

// checkExportedPack opens an exported pack with the untrusting reader the
// importer uses and checks it holds the manifest as imported, byte for byte,
// and every listed file, whole and matching its hash, and nothing else.
func checkExportedPack(t *testing.T, path string, manifest []byte, m *pack.Manifest) {
	t.Helper()
	ctx := context.Background()
	r, err := pack.Open(path)
	if err != nil {
		t.Fatalf("open exported %s: %v", path, err)
	}
	defer r.Close()
	got, err := r.Manifest(ctx)
	if err != nil {
		t.Fatalf("%s: manifest: %v", path, err)
	}
	if !bytes.Equal(got, manifest) {
		t.Fatalf("%s: the manifest differs from the one imported", path)
	}
	seen := map[string]bool{}
	err = r.Walk(ctx, func(name string, size int64, rd io.Reader) error {
		want, ok := m.Files[name]
		if !ok {
			return fmt.Errorf("%s is not in the manifest", name)
		}
		h := sha256.New()
		n, err := io.Copy(h, rd)
		if err != nil {
			return err
		}
		if n != want.Size || hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
			return fmt.Errorf("%s: %d bytes with SHA-256 %x, want %d bytes with %s", name, n, h.Sum(nil), want.Size, want.SHA256)
		}
		seen[name] = true
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(seen) != len(m.Files) {
		t.Fatalf("%s holds %d of the %d files", path, len(seen), len(m.Files))
	}
}
