package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"outpost/appliance/identity"
	"outpost/content/pack"
	"outpost/content/samplecourse"
	"outpost/sync/hub"
	"outpost/sync/synctest"
	"outpost/sync/wire"
)

// startCLIHub runs a real hub for the admin verbs and returns it with its
// data dir. The admin token comes from --data unless a test says otherwise.
func startCLIHub(t *testing.T) (*synctest.Hub, string) {
	t.Helper()
	t.Setenv(adminTokenEnv, "")
	dir := t.TempDir()
	h, err := synctest.StartHub(context.Background(), dir, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(); err != nil {
			t.Error(err)
		}
	})
	return h, dir
}

func hubSamplePack(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "water-cycle")
	if _, err := samplecourse.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hubRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}

// hubRunFails runs a verb that must fail and returns its error text.
func hubRunFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err == nil {
		t.Fatalf("%v succeeded, want an error:\n%s", args, out)
	}
	return err.Error()
}

// withHubTransport wraps the admin client's transport for one test.
func withHubTransport(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) {
	old := hubTransportHook
	hubTransportHook = wrap
	t.Cleanup(func() { hubTransportHook = old })
}

// hubSmallParts makes uploads go in 64 KiB parts with short backoff, so the
// sample course takes many parts and retries are quick.
func hubSmallParts(t *testing.T) {
	oldPart, oldBackoff := publishPartSize, publishFirstBackoff
	publishPartSize, publishFirstBackoff = 64<<10, 20*time.Millisecond
	t.Cleanup(func() { publishPartSize, publishFirstBackoff = oldPart, oldBackoff })
}

// hubRTFunc adapts a function to http.RoundTripper.
type hubRTFunc func(*http.Request) (*http.Response, error)

func (f hubRTFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hubPutLog counts the body bytes sent in upload PUTs and the offsets they
// started at.
type hubPutLog struct {
	bytes   atomic.Int64
	offsets []int64
}

func (l *hubPutLog) wrap(next http.RoundTripper) http.RoundTripper {
	return hubRTFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut {
			off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
			l.offsets = append(l.offsets, off)
			r.Body = &hubCountingBody{ReadCloser: r.Body, n: &l.bytes}
		}
		return next.RoundTrip(r)
	})
}

type hubCountingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *hubCountingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestHubPublishFolderThenAgain(t *testing.T) {
	h, hubDir := startCLIHub(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // to see the temporary archive is removed
	packDir := hubSamplePack(t)
	args := []string{"content", "publish", "--data", hubDir, "--hub", h.URL(), "--channel", "science", packDir}

	out := hubRun(t, args...)
	if !strings.Contains(out, "published "+samplecourse.ID+" version 1") || !strings.Contains(out, "channel science") {
		t.Fatalf("first publish:\n%s", out)
	}
	if out := hubRun(t, args...); !strings.Contains(out, "already published") {
		t.Fatalf("second publish should say already published:\n%s", out)
	}
	// A plain tar is another upload name, but the same course version.
	out = hubRun(t, append(args, "--compress=false", "--json")...)
	var res hub.PublishResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if res.Course != samplecourse.ID || res.Channel != "science" || !res.AlreadyImported || res.Files == 0 || res.Bytes == 0 {
		t.Fatalf("--json result %+v", res)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("publish left %d files in TMPDIR, e.g. %s", len(left), left[0].Name())
	}
	// The hub keeps no upload once it is published.
	if parts, _ := filepath.Glob(filepath.Join(hubDir, "hub", "uploads", "*.part")); len(parts) != 0 {
		t.Fatalf("hub still holds uploads %v", parts)
	}
	if msg := hubRunFails(t, "content", "publish", "--data", hubDir, "--hub", h.URL(), packDir); !strings.Contains(msg, "--channel") {
		t.Fatalf("publish without a channel: %s", msg)
	}
}

func TestHubTokenCreate(t *testing.T) {
	h, hubDir := startCLIHub(t)
	out := hubRun(t, "hub", "token", "create", "--site", "s", "--channels", "science", "--data", hubDir, "--hub", h.URL())
	tok := ""
	for _, line := range strings.Split(out, "\n") {
		if _, _, err := wire.ParseToken(line); err == nil && strings.Contains(line, ".") {
			tok = strings.TrimSpace(line)
			break
		}
	}
	if tok == "" {
		t.Fatalf("no token line in:\n%s", out)
	}
	_, hubID, err := wire.ParseToken(tok)
	if err != nil || hubID.String() != h.Hub.DeviceID() {
		t.Fatalf("token %q names hub %v (%v), want %s", tok, hubID, err, h.Hub.DeviceID())
	}
	for _, want := range []string{"site:      s", "channels:  science", "expires:", "printf '%s\\n' " + tok + " | outpost serve --upstream " + h.URL() + " --enrol -"} {
		if !strings.Contains(out, want) {
			t.Fatalf("token output lacks %q:\n%s", want, out)
		}
	}

	out = hubRun(t, "hub", "token", "create", "--site", "clinic", "--channels", "b, a,b", "--expires", "2d", "--json", "--data", hubDir, "--hub", h.URL())
	var res hubTokenOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if res.HubID != h.Hub.DeviceID() || strings.Join(res.Channels, ",") != "a,b" || res.Site != "clinic" {
		t.Fatalf("--json: %+v", res)
	}
	if d := time.Until(res.Expires); d < 47*time.Hour || d > 49*time.Hour {
		t.Fatalf("--expires 2d gave a token expiring in %v", d)
	}

	if msg := hubRunFails(t, "hub", "token", "create", "--channels", "science", "--data", hubDir, "--hub", h.URL()); !strings.Contains(msg, "--site") {
		t.Fatalf("token without a site: %s", msg)
	}
	if msg := hubRunFails(t, "hub", "token", "create", "--site", "s", "--channels", "x", "--expires", "soon", "--data", hubDir, "--hub", h.URL()); !strings.Contains(msg, "--expires") {
		t.Fatalf("bad --expires: %s", msg)
	}
}

func TestHubBoxesEnrolAndRevoke(t *testing.T) {
	h, hubDir := startCLIHub(t)
	hubArgs := []string{"--data", hubDir, "--hub", h.URL()}
	if out := hubRun(t, append([]string{"hub", "boxes"}, hubArgs...)...); !strings.Contains(out, "No boxes enrolled yet") || !strings.Contains(out, "hub token create") {
		t.Fatalf("boxes on a new hub:\n%s", out)
	}

	out := hubRun(t, append([]string{"hub", "token", "create", "--site", "Kisumu", "--channels", "science", "--json"}, hubArgs...)...)
	var tok hubTokenOutput
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatal(err)
	}
	box, err := synctest.StartBox(context.Background(), t.TempDir(), h.URL(), tok.Token, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	id := box.Node.Identity.DeviceID.String()

	out = hubRun(t, append([]string{"hub", "boxes"}, hubArgs...)...)
	row := hubBoxRow(t, out, id[:7])
	for _, want := range []string{"Kisumu", "test", "ok"} {
		if !strings.Contains(row, want) {
			t.Fatalf("box row lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "DEVICE") || !strings.Contains(out, "LAST SEEN") {
		t.Fatalf("boxes table has no header:\n%s", out)
	}

	// The short form is enough to revoke, when it is unique.
	if out := hubRun(t, append([]string{"hub", "revoke", id[:7]}, hubArgs...)...); !strings.Contains(out, "revoked "+id) {
		t.Fatalf("revoke:\n%s", out)
	}
	out = hubRun(t, append([]string{"hub", "boxes"}, hubArgs...)...)
	if row := hubBoxRow(t, out, id[:7]); !strings.HasSuffix(strings.TrimSpace(row), "revoked") {
		t.Fatalf("revoked box not shown revoked:\n%s", out)
	}
	out = hubRun(t, append([]string{"hub", "boxes", "--json"}, hubArgs...)...)
	var boxes []hub.Box
	if err := json.Unmarshal([]byte(out), &boxes); err != nil || len(boxes) != 1 || boxes[0].DeviceID != id || boxes[0].Revoked == nil {
		t.Fatalf("boxes --json: %v\n%s", err, out)
	}
	// Revoking again, or an unknown box, is the hub's error.
	if msg := hubRunFails(t, append([]string{"hub", "revoke", id}, hubArgs...)...); !strings.Contains(msg, "no enrolled, unrevoked box") {
		t.Fatalf("revoke twice: %s", msg)
	}
	if msg := hubRunFails(t, append([]string{"hub", "revoke", "ZZZZZZZ"}, hubArgs...)...); !strings.Contains(msg, "hub boxes") {
		t.Fatalf("revoke of an unknown short ID: %s", msg)
	}
}

func hubBoxRow(t *testing.T, table, short string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, short) {
			return line
		}
	}
	t.Fatalf("no row for %s in:\n%s", short, table)
	return ""
}

func TestHubAdminErrorsSayWhatToPass(t *testing.T) {
	h, hubDir := startCLIHub(t)
	hubID := h.Hub.DeviceID()
	if msg := hubRunFails(t, "hub", "boxes", "--data", hubDir, "--hub", h.URL(), "--admin-token", "wrong"); !strings.Contains(msg, "admin token") || !strings.Contains(msg, "--admin-token") {
		t.Fatalf("wrong admin token: %s", msg)
	}
	t.Setenv(adminTokenEnv, "wrong-too")
	if msg := hubRunFails(t, "hub", "boxes", "--data", hubDir, "--hub", h.URL()); !strings.Contains(msg, "$"+adminTokenEnv) {
		t.Fatalf("wrong admin token from the environment should say so: %s", msg)
	}
	t.Setenv(adminTokenEnv, "")

	other, _, err := identity.LoadOrCreate(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	msg := hubRunFails(t, "hub", "boxes", "--data", hubDir, "--hub", h.URL(), "--hub-id", other.DeviceID.String())
	if !strings.Contains(msg, "pinned") || !errors.Is(errors.Unwrap(hubRunErr(t, "hub", "boxes", "--data", hubDir, "--hub", h.URL(), "--hub-id", other.DeviceID.String())), wire.ErrWrongPeer) {
		t.Fatalf("another hub's ID: %s", msg)
	}

	// Remotely, without the hub's data dir: each missing piece is named.
	empty := t.TempDir()
	if msg := hubRunFails(t, "hub", "boxes", "--data", empty, "--hub", h.URL()); !strings.Contains(msg, "--admin-token") {
		t.Fatalf("no admin token: %s", msg)
	}
	token, err := os.ReadFile(filepath.Join(hubDir, "hub", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))
	if msg := hubRunFails(t, "hub", "boxes", "--data", empty, "--hub", h.URL(), "--admin-token", tok); !strings.Contains(msg, "--hub-id") {
		t.Fatalf("no hub ID: %s", msg)
	}
	if out := hubRun(t, "hub", "boxes", "--data", empty, "--hub", strings.TrimPrefix(h.URL(), "https://"), "--admin-token", tok, "--hub-id", hubID); !strings.Contains(out, "No boxes") {
		t.Fatalf("remote flags:\n%s", out)
	}
	if msg := hubRunFails(t, "hub", "boxes", "--data", hubDir, "--hub", "http://"+h.Addr); !strings.Contains(msg, "https") {
		t.Fatalf("http:// hub: %s", msg)
	}
	if _, err := os.Stat(filepath.Join(empty, "hub")); !os.IsNotExist(err) {
		t.Fatalf("a client created %s/hub: %v", empty, err)
	}
}

// hubRunErr returns the error a verb fails with, unwrapped once from the
// CLI's context.
func hubRunErr(t *testing.T, args ...string) error {
	t.Helper()
	cmd := newRootCmd(io.Discard, io.Discard)
	cmd.SetArgs(args)
	return fmt.Errorf("wrapped: %w", cmd.ExecuteContext(context.Background()))
}

// hubPutByHand uploads data[from:to] as the hub's admin API documents it.
func hubPutByHand(t *testing.T, h *synctest.Hub, hubDir, sum string, data []byte, from, to int) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(hubDir, "hub", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: wire.AdminTLS(h.Node.Identity.DeviceID)}}
	req, err := http.NewRequest(http.MethodPut, h.URL()+"/admin/v1/uploads/"+sum, bytes.NewReader(data[from:to]))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Upload-Offset", strconv.Itoa(from))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT by hand: %s %s", resp.Status, body)
	}
}

// The folder's archive is the same every time, so a publish that was cut
// off resumes where the hub's copy ends instead of starting over.
func TestHubPublishResumesWhereTheHubsCopyEnds(t *testing.T) {
	h, hubDir := startCLIHub(t)
	hubSmallParts(t)
	packDir := hubSamplePack(t)
	var archive bytes.Buffer
	if err := archivePackDir(context.Background(), packDir, &archive, true, newBar(io.Discard, "")); err != nil {
		t.Fatal(err)
	}
	data := archive.Bytes()
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:])
	half := len(data) / 2
	if len(data) < 4*int(publishPartSize) {
		t.Fatalf("the sample archive is %d bytes; the test needs several parts", len(data))
	}
	hubPutByHand(t, h, hubDir, name, data, 0, half) // what a killed first run left

	var puts hubPutLog
	withHubTransport(t, puts.wrap)
	out := hubRun(t, "content", "publish", "--data", hubDir, "--hub", h.URL(), "--channel", "science", packDir)
	if !strings.Contains(out, fmt.Sprintf("resuming at %d bytes of %d", half, len(data))) || !strings.Contains(out, "published "+samplecourse.ID) {
		t.Fatalf("publish after a cut:\n%s", out)
	}
	if got, want := puts.bytes.Load(), int64(len(data)-half); got != want {
		t.Fatalf("publish sent %d bytes, want only the %d the hub lacked", got, want)
	}
	if puts.offsets[0] != int64(half) {
		t.Fatalf("first PUT at offset %d, want %d", puts.offsets[0], half)
	}
}

// A part that fails (409 for a stale offset, a link cut mid-part) is
// retried from the offset the hub reports.
func TestHubPublishRetriesFailedParts(t *testing.T) {
	h, hubDir := startCLIHub(t)
	hubSmallParts(t)
	packDir := hubSamplePack(t)
	var n atomic.Int32
	withHubTransport(t, func(next http.RoundTripper) http.RoundTripper {
		return hubRTFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodPut {
				return next.RoundTrip(r)
			}
			switch n.Add(1) {
			case 2: // the client's idea of the offset is stale: 409
				off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
				r.Header.Set("Upload-Offset", strconv.FormatInt(off+1000, 10))
			case 4: // the link drops 10 KiB into the part
				r.Body = &hubCutBody{ReadCloser: r.Body, left: 10 << 10}
			}
			return next.RoundTrip(r)
		})
	})
	out := hubRun(t, "content", "publish", "--data", hubDir, "--hub", h.URL(), "--channel", "science", packDir)
	if !strings.Contains(out, "published "+samplecourse.ID) || strings.Count(out, "retrying in") < 2 {
		t.Fatalf("publish with failed parts:\n%s", out)
	}
	if !strings.Contains(out, "the hub holds") {
		t.Fatalf("the 409 did not show the hub's message:\n%s", out)
	}
}

type hubCutBody struct {
	io.ReadCloser
	left int
}

func (c *hubCutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("link cut")
	}
	p = p[:min(len(p), c.left)]
	n, err := c.ReadCloser.Read(p)
	c.left -= n
	return n, err
}

func TestPublishArchiveIsDeterministicAndRefusesSymlinks(t *testing.T) {
	packDir := hubSamplePack(t)
	for _, compress := range []bool{false, true} {
		var a, b bytes.Buffer
		if err := archivePackDir(context.Background(), packDir, &a, compress, newBar(io.Discard, "")); err != nil {
			t.Fatal(err)
		}
		// Touching files changes nothing: times are not archived.
		later := time.Now().Add(time.Hour)
		os.Chtimes(filepath.Join(packDir, pack.ManifestName), later, later)
		if err := archivePackDir(context.Background(), packDir, &b, compress, newBar(io.Discard, "")); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("compress=%v: two archives of the same folder differ", compress)
		}
		// The pack reader accepts it, and finds the manifest first.
		f := filepath.Join(t.TempDir(), "p")
		if err := os.WriteFile(f, a.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkPackManifest(context.Background(), f); err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
	}

	if err := os.Symlink("/etc/passwd", filepath.Join(packDir, "docs", "leak.txt")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	err := archivePackDir(context.Background(), packDir, io.Discard, true, newBar(io.Discard, ""))
	if err == nil || !strings.Contains(err.Error(), "docs/leak.txt") || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("archiving a pack with a symlink: %v", err)
	}
}
