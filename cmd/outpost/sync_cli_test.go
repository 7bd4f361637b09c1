package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/appliance"
	"outpost/content/samplecourse"
	"outpost/sync/synctest"
	"outpost/sync/upstream"
)

// TestServeEnrolsSyncsAndSyncNowKicksIt runs the daemon as a technician
// would on a new box: serve --upstream --enrol. The sample course must
// reach the portal through sync; a second course published later arrives
// when `sync now` kicks the daemon; `sync status --json` reports both.
func TestServeEnrolsSyncsAndSyncNowKicksIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	pack := t.TempDir()
	if _, err := samplecourse.Write(pack); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, pack, "science"); err != nil {
		t.Fatal(err)
	}
	token, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// The daemon's portal address lives in the config, where `sync now`
	// finds it.
	box := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(box, "outpost.json"), []byte(fmt.Sprintf(`{"listen": %q}`, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd := newRootCmd(io.Discard, pw)
	cmd.SetArgs([]string{"serve", "--data", box, "--upstream", h.URL(), "--enrol", token, "--sync-interval", "1h"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case logs <- sc.Text():
			default: // nobody is waiting for this line
			}
		}
		close(logs)
	}()
	waitLog := func(what string) {
		t.Helper()
		for line := range logs {
			if strings.Contains(line, what) {
				return
			}
		}
		t.Fatalf("the daemon stopped before logging %q: %v", what, <-done)
	}
	waitLog(`msg="course synced" course=sample-water-cycle`)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "The Water Cycle") {
		t.Fatal("the synced course is not on the portal")
	}

	// A new course on the hub; `sync now` asks the running daemon.
	more := t.TempDir()
	if _, err := samplecourse.WriteFiles(more, "second", 1, synctest.Course(4, 1, 300<<10, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, more, "science"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "sync", "now", "--data", box)
	if err != nil || !strings.Contains(out, "The daemon ran a pass") || !strings.Contains(out, "1 course synced") {
		t.Fatalf("sync now: %v\n%s", err, out)
	}
	waitLog(`msg="course synced" course=second`)

	out, err = run(t, "sync", "status", "--data", box, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st upstream.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("sync status --json: %v\n%s", err, out)
	}
	if st.Site != "village" || st.Totals.CoursesSynced != 2 || st.LastSuccess.IsZero() || st.Cursor == 0 {
		t.Fatalf("sync status: %+v", st)
	}
	out, err = run(t, "sync", "status", "--data", box)
	if err != nil || !strings.Contains(out, "Last success:") || !strings.Contains(out, "village") {
		t.Fatalf("sync status: %v\n%s", err, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestSyncVerbsOnABoxThatIsNotEnrolled(t *testing.T) {
	box := newNodeDir(t)
	out, err := run(t, "sync", "status", "--data", box)
	if err != nil || !strings.Contains(out, "not_enrolled") || !strings.Contains(out, "--enrol") {
		t.Fatalf("sync status: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(box, "outpost.json"), []byte(`{"listen": "127.0.0.1:1"}`), 0o644)
	if out, err := run(t, "sync", "now", "--data", box); err == nil || !strings.Contains(err.Error(), "--enrol") {
		t.Fatalf("sync now on a box that is not enrolled: %v\n%s", err, out)
	}
	if out, err := run(t, "serve", "--data", box, "--enrol", "x"); err == nil || !strings.Contains(err.Error(), "--upstream") {
		t.Fatalf("serve --enrol without --upstream: %v\n%s", err, out)
	}
}

// daemon is `outpost serve` running in this process, its log readable.
type daemon struct {
	t    *testing.T
	done chan error
	logs chan string
	stop context.CancelFunc
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	return startDaemonIn(t, strings.NewReader(""), args...)
}

// startDaemonIn is startDaemon with stdin given.
func startDaemonIn(t *testing.T, stdin io.Reader, args ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	pr, pw := io.Pipe()
	cmd := newRootCmd(io.Discard, pw)
	cmd.SetIn(stdin)
	cmd.SetArgs(append([]string{"serve"}, args...))
	d := &daemon{t: t, done: make(chan error, 1), logs: make(chan string, 1000), stop: cancel}
	go func() { d.done <- cmd.ExecuteContext(ctx); pw.Close() }()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case d.logs <- sc.Text():
			default: // nobody is waiting for this line
			}
		}
		close(d.logs)
	}()
	t.Cleanup(func() { d.shutdown() })
	return d
}

// waitLog returns the first log line containing what.
func (d *daemon) waitLog(what string) string {
	d.t.Helper()
	for line := range d.logs {
		if strings.Contains(line, what) {
			return line
		}
	}
	d.t.Fatalf("the daemon stopped before logging %q", what)
	return ""
}

func (d *daemon) shutdown() {
	d.stop()
	for range d.logs {
	}
	if err := <-d.done; err != nil {
		d.t.Errorf("serve: %v", err)
	}
	d.done <- nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSyncNowReachesItsOwnDaemon runs two boxes' daemons on one machine.
// Box B's config names box A's portal address (a copied image, say) and
// its daemon was started with --listen elsewhere: `sync now --data B` must
// make B's daemon sync, not A's, wait for that pass and print what it did.
// On an up-to-date box it must print that nothing was fetched, whether the
// daemon runs the pass or the command does. The portal no longer answers
// the old POST /api/sync/now.
func TestSyncNowReachesItsOwnDaemon(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	first := t.TempDir()
	if _, err := samplecourse.WriteFiles(first, "first", 1, synctest.Course(5, 1, 400<<10, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, first, "science"); err != nil {
		t.Fatal(err)
	}
	token := func() string {
		tok, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	addrA := freeAddr(t)
	boxA, boxB := t.TempDir(), t.TempDir()
	for _, dir := range []string{boxA, boxB} {
		if err := os.WriteFile(filepath.Join(dir, "outpost.json"), []byte(fmt.Sprintf(`{"listen": %q}`, addrA)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := startDaemon(t, "--data", boxA, "--upstream", h.URL(), "--enrol", token(), "--sync-interval", "1h")
	a.waitLog(`msg="sync pass finished" state=idle`)
	addrB := freeAddr(t)
	b := startDaemon(t, "--data", boxB, "--listen", addrB, "--upstream", h.URL(), "--enrol", token(), "--sync-interval", "1h")
	b.waitLog(`msg="sync pass finished" state=idle`)

	second := t.TempDir()
	if _, err := samplecourse.WriteFiles(second, "second", 1, synctest.Course(6, 1, 300<<10, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, second, "science"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "sync", "now", "--data", boxB)
	if err != nil || !strings.Contains(out, "The daemon ran a pass") || !strings.Contains(out, "1 course synced") {
		t.Fatalf("sync now --data B: %v\n%s", err, out)
	}
	// The command returned after the pass: B holds the course now, and A
	// (whose portal is at the address B's config names) was not kicked.
	if out, _ := run(t, "content", "ls", "--data", boxB); !strings.Contains(out, "second") {
		t.Fatalf("box B lacks the new course after sync now:\n%s", out)
	}
	if out, _ := run(t, "content", "ls", "--data", boxA); strings.Contains(out, "second") {
		t.Fatalf("sync now --data B made box A sync:\n%s", out)
	}

	// Up to date: this pass fetched nothing, whatever the box's totals.
	out, err = run(t, "sync", "now", "--data", boxB)
	if err != nil || !strings.Contains(out, "0 blocks fetched (0 B)") || !strings.Contains(out, "0 courses synced") {
		t.Fatalf("sync now on an up-to-date box, through the daemon: %v\n%s", err, out)
	}

	// The portal is open to the LAN (and to any web page a browser on the
	// box opens): it must not start a pass.
	resp, err := http.Post("http://"+addrB+"/api/sync/now", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		t.Fatalf("the portal still answers POST /api/sync/now: %s", resp.Status)
	}

	a.shutdown()
	b.shutdown()
	out, err = run(t, "sync", "now", "--data", boxB)
	if err != nil || !strings.Contains(out, "syncing in this process") || !strings.Contains(out, "0 blocks fetched (0 B)") {
		t.Fatalf("sync now on an up-to-date box without a daemon: %v\n%s", err, out)
	}
}

// TestSyncNowInProcessReportsThisPass runs `sync now` twice on a box with
// no daemon: the second pass has nothing to fetch and must say so, not
// print the box's lifetime totals.
func TestSyncNowInProcessReportsThisPass(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	pack := t.TempDir()
	if _, err := samplecourse.WriteFiles(pack, "only", 1, synctest.Course(7, 1, 300<<10, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, pack, "science"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	box := t.TempDir()
	b, err := synctest.StartBox(ctx, box, h.URL(), tok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	out, err := run(t, "sync", "now", "--data", box)
	if err != nil || !strings.Contains(out, "blocks fetched") || strings.Contains(out, " 0 blocks fetched") {
		t.Fatalf("first sync now: %v\n%s", err, out)
	}
	out, err = run(t, "sync", "now", "--data", box)
	if err != nil || !strings.Contains(out, "0 blocks fetched (0 B), 0 reused from the box, 0 patched; 0 courses synced") {
		t.Fatalf("second sync now, nothing new on the hub: %v\n%s", err, out)
	}
}

// TestControlSocket checks the daemon's control socket: mode 0600, found in
// a data directory whose path is too long for a unix socket address, and a
// second daemon on the same data directory refused instead of stealing it.
func TestControlSocket(t *testing.T) {
	box := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 6))
	if len(filepath.Join(box, "control.sock")) < 108 {
		t.Fatal("the test needs a path longer than a socket address allows")
	}
	d := startDaemon(t, "--data", box, "--listen", "127.0.0.1:0")
	d.waitLog("serving")
	info, err := os.Stat(filepath.Join(box, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, want a socket of mode 0600", info.Mode())
	}
	// The daemon answers (this box is not enrolled: it says so).
	out, err := run(t, "sync", "now", "--data", box)
	if err == nil || !strings.Contains(err.Error(), "not enrolled") || strings.Contains(out, "syncing in this process") {
		t.Fatalf("sync now did not reach the daemon: %v\n%s", err, out)
	}
	if _, err := run(t, "serve", "--data", box, "--listen", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "another outpost daemon") {
		t.Fatalf("a second daemon on the same data directory: %v", err)
	}
	d.shutdown()
	if _, err := os.Stat(filepath.Join(box, "control.sock")); !os.IsNotExist(err) {
		t.Fatalf("the control socket outlived the daemon: %v", err)
	}

	// A daemon killed with SIGKILL leaves its socket file: nothing
	// answers on it, so sync now runs the pass itself and the next daemon
	// replaces it.
	short := t.TempDir()
	n, err := appliance.Open(context.Background(), appliance.DefaultConfig(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	ln, err := net.Listen("unix", filepath.Join(short, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := appliance.RequestSyncPass(context.Background(), short); !errors.Is(err, appliance.ErrNoDaemon) {
		t.Fatalf("a stale control socket: %v, want ErrNoDaemon", err)
	}
	d = startDaemon(t, "--data", short, "--listen", "127.0.0.1:0")
	d.waitLog("serving")
	if _, err := appliance.RequestSyncPass(context.Background(), short); err == nil || errors.Is(err, appliance.ErrNoDaemon) {
		t.Fatalf("the new daemon does not answer on its control socket: %v", err)
	}
}

// TestSetUpstream moves an enrolled box to its hub's new address: another
// hub at an address is refused, an unreachable one too unless --no-check,
// the hub itself at its new address is accepted with the pin and cursor
// kept, and a running daemon syncs from the new address at its next pass.
// serve --upstream with another address says it is ignored.
func TestSetUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hubDir := t.TempDir()
	h, err := synctest.StartHub(ctx, hubDir, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pack := t.TempDir()
	if _, err := samplecourse.WriteFiles(pack, "moved", 1, synctest.Course(8, 1, 300<<10, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, pack, "science"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	box := t.TempDir()
	b, err := synctest.StartBox(ctx, box, h.URL(), tok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	before, err := upstream.LoadLink(box)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--data", box, "--listen", "127.0.0.1:0", "--upstream", "https://elsewhere.example:8443")
	if line := d.waitLog("--upstream is ignored"); !strings.Contains(line, "set-upstream") {
		t.Fatalf("the warning does not say what to do: %s", line)
	}
	d.waitLog(`msg="sync pass finished" state=idle`)

	// The hub moves: same identity, new address.
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	h, err = synctest.StartHub(ctx, hubDir, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	// Another hub is refused, whatever its address.
	other, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	if out, err := run(t, "sync", "set-upstream", other.URL(), "--data", box); err == nil || !strings.Contains(err.Error(), "not the hub this box enrolled with") {
		t.Fatalf("set-upstream to another hub: %v\n%s", err, out)
	}
	dead := "https://" + freeAddr(t)
	if out, err := run(t, "sync", "set-upstream", dead, "--data", box); err == nil || !strings.Contains(err.Error(), "--no-check") {
		t.Fatalf("set-upstream to an address where nothing answers: %v\n%s", err, out)
	}
	if l, _ := upstream.LoadLink(box); l.URL != before.URL {
		t.Fatalf("a refused address was saved: %s", l.URL)
	}
	if out, err := run(t, "sync", "set-upstream", dead, "--no-check", "--data", box); err != nil || !strings.Contains(out, dead) {
		t.Fatalf("set-upstream --no-check: %v\n%s", err, out)
	}
	out, err := run(t, "sync", "set-upstream", h.URL(), "--data", box)
	if err != nil || !strings.Contains(out, "checked") {
		t.Fatalf("set-upstream to the hub's new address: %v\n%s", err, out)
	}
	after, err := upstream.LoadLink(box)
	if err != nil {
		t.Fatal(err)
	}
	if after.URL != h.URL() || after.HubID != before.HubID || !after.Enrolled.Equal(before.Enrolled) || after.Site != before.Site {
		t.Fatalf("link after the move: %+v, before %+v", after, before)
	}

	// The running daemon follows; its cursor is kept, so nothing is new.
	more := t.TempDir()
	if _, err := samplecourse.WriteFiles(more, "later", 1, synctest.Course(9, 0, 0, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, more, "science"); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "sync", "now", "--data", box)
	if err != nil || !strings.Contains(out, "1 course synced") {
		t.Fatalf("sync now after the move: %v\n%s", err, out)
	}
	d.waitLog(`msg="hub address changed"`)
}

// TestEnrolTokenOutOfSightAndForgotten: the token can come from a file or
// standard input instead of the command line (where ps shows it for the
// daemon's life), and once the box is enrolled it is no longer in
// DATA/outpost.json, where an image may have put it.
func TestEnrolTokenOutOfSightAndForgotten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	pack := t.TempDir()
	if _, err := samplecourse.WriteFiles(pack, "secret", 1, synctest.Course(14, 0, 0, 0, 0, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, pack, "science"); err != nil {
		t.Fatal(err)
	}
	token := func() string {
		tok, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// From a file.
	box := t.TempDir()
	tokFile := filepath.Join(t.TempDir(), "enrol-token")
	if err := os.WriteFile(tokFile, []byte(token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--data", box, "--listen", "127.0.0.1:0", "--upstream", h.URL(), "--enrol-file", tokFile)
	d.waitLog(`msg="course synced"`)
	d.shutdown()

	// From standard input.
	box = t.TempDir()
	d = startDaemonIn(t, strings.NewReader(token()+"\n"), "--data", box, "--listen", "127.0.0.1:0", "--upstream", h.URL(), "--enrol", "-")
	d.waitLog(`msg="course synced"`)
	d.shutdown()

	// From the image's config file: spent, then removed from it; the
	// other settings stay.
	box = t.TempDir()
	tok := token()
	cfg := fmt.Sprintf(`{"listen": "127.0.0.1:0", "upstream": %q, "enrol_token": %q, "sync_interval": "1h"}`, h.URL(), tok)
	if err := os.WriteFile(filepath.Join(box, "outpost.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, "--data", box)
	d.waitLog(`msg="course synced"`)
	d.shutdown()
	b, err := os.ReadFile(filepath.Join(box, "outpost.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), tok) || strings.Contains(string(b), "enrol_token") {
		t.Fatalf("the spent token is still in outpost.json:\n%s", b)
	}
	if !strings.Contains(string(b), `"sync_interval": "1h"`) || !strings.Contains(string(b), h.URL()) {
		t.Fatalf("forgetting the token lost other settings:\n%s", b)
	}

	// Bad inputs say what to do.
	if _, err := run(t, "serve", "--data", t.TempDir(), "--upstream", h.URL(), "--enrol", "x", "--enrol-file", tokFile); err == nil || !strings.Contains(err.Error(), "once") {
		t.Fatalf("--enrol with --enrol-file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := run(t, "serve", "--data", t.TempDir(), "--upstream", h.URL(), "--enrol-file", empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("--enrol-file of an empty file: %v", err)
	}
}

// TestSyncNowWaitIsBounded: when the daemon's pass cannot finish (its hub
// accepts connections and never answers), sync now returns after --wait,
// saying the pass still runs, instead of hanging.
func TestSyncNowWaitIsBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	tok, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	box := t.TempDir()
	b, err := synctest.StartBox(ctx, box, h.URL(), tok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	// A hub that takes connections and never says a word: every pass
	// waits for its TLS handshake (30 s) at least.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	if out, err := run(t, "sync", "set-upstream", "https://"+mute.Addr().String(), "--no-check", "--data", box); err != nil {
		t.Fatalf("set-upstream: %v\n%s", err, out)
	}
	d := startDaemon(t, "--data", box, "--listen", "127.0.0.1:0")
	d.waitLog("serving")
	out, err := run(t, "sync", "now", "--wait", "300ms", "--data", box)
	if err != nil || !strings.Contains(out, "still running after 300ms") {
		t.Fatalf("sync now with a pass that cannot finish: %v\n%s", err, out)
	}
	if _, err := run(t, "sync", "now", "--wait", "0s", "--data", box); err == nil || !strings.Contains(err.Error(), "--wait") {
		t.Fatalf("sync now --wait 0s: %v", err)
	}
}
