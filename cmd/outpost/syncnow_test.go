package main

import (
	"bufio"
	"context"
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
	"outpost/sync/synctest"
)

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
	h := startTestHub(t, ctx)
	publishCourse(t, ctx, h, "first", synctest.Course(5, 1, 400<<10, 0, 0, 2))
	token := func() string { return villageToken(t, ctx, h) }
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

	publishCourse(t, ctx, h, "second", synctest.Course(6, 1, 300<<10, 0, 0, 2))
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
	h := startTestHub(t, ctx)
	publishCourse(t, ctx, h, "only", synctest.Course(7, 1, 300<<10, 0, 0, 2))
	box := enrolledBox(t, ctx, h)
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

// TestSyncNowWaitIsBounded: when the daemon's pass cannot finish (its hub
// accepts connections and never answers), sync now returns after --wait,
// saying the pass still runs, instead of hanging.
func TestSyncNowWaitIsBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := startTestHub(t, ctx)
	box := enrolledBox(t, ctx, h)
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
