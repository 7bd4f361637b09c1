package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

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

func TestContentVerbs(t *testing.T) {
	data := t.TempDir()
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
		{[]string{"content", "export", m.ID, filepath.Join(t.TempDir(), "c.tar.zst")}, "exported"},
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
