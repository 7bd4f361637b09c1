package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/content/samplecourse"
	"outpost/sync/synctest"
	"outpost/sync/wire"
)

// TestMain lets the test binary double as the outpost command, for tests
// that must run it as separate processes (each with the umask it was
// started with, as a technician's shell or a unit file starts it).
func TestMain(m *testing.M) {
	if os.Getenv("OUTPOST_CLI_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		cmd := newRootCmd(os.Stdout, os.Stderr)
		cmd.SetArgs(os.Args[1:])
		err := cmd.ExecuteContext(ctx)
		stop()
		if err != nil {
			os.Stderr.WriteString("outpost: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliProcs runs the outpost command as child processes.
type cliProcs struct {
	t   *testing.T
	ctx context.Context
	exe string
}

func newCLIProcs(t *testing.T, ctx context.Context) *cliProcs {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &cliProcs{t: t, ctx: ctx, exe: exe}
}

func (p *cliProcs) command(args ...string) *exec.Cmd {
	c := exec.CommandContext(p.ctx, p.exe, args...)
	c.Env = append(os.Environ(), "OUTPOST_CLI_CHILD=1")
	return c
}

// run runs one verb to completion and returns its standard output.
func (p *cliProcs) run(args ...string) string {
	p.t.Helper()
	c := p.command(args...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		p.t.Fatalf("outpost %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return string(out)
}

// start starts a daemon and returns once its log has a line containing
// ready; stop ends it with SIGTERM, as systemd would.
func (p *cliProcs) start(ready string, args ...string) (stop func()) {
	p.t.Helper()
	c := p.command(args...)
	stderr, err := c.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		p.t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), ready) {
			break
		}
	}
	if !strings.Contains(strings.Join(seen, "\n"), ready) {
		c.Process.Kill()
		c.Wait()
		p.t.Fatalf("outpost %v exited before logging %q:\n%s", args, ready, strings.Join(seen, "\n"))
	}
	go io.Copy(io.Discard, stderr)
	return func() {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
}

// assertPrivate walks a data directory: every directory must be 0700 and
// every file (sockets included) 0600.
func assertPrivate(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEverythingTheNodeWritesIsPrivate starts every process with umask 000
// (the loosest a technician's shell or a unit file could give) and runs a
// hub, a publish, an interrupted upload, a box's init, import, enrolment,
// sync and sync now: every directory the nodes made is 0700 and every file
// 0600. A data directory left loose by an older release is tightened when
// a node opens it.
func TestEverythingTheNodeWritesIsPrivate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	p := newCLIProcs(t, ctx)
	root := t.TempDir()
	hubDir, boxDir := filepath.Join(root, "hub"), filepath.Join(root, "box")

	hubAddr := freeAddr(t)
	hubURL := "https://" + hubAddr
	stopHub := p.start("hub serving", "hub", "--data", hubDir, "--listen", hubAddr)
	defer stopHub()
	pack := filepath.Join(root, "pack")
	if _, err := samplecourse.WriteFiles(pack, "private", 1, synctest.Course(12, 1, 400<<10, 1, 100<<10, 3)); err != nil {
		t.Fatal(err)
	}
	p.run("content", "publish", pack, "--data", hubDir, "--hub", hubURL, "--channel", "science")
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(p.run("hub", "token", "create", "--data", hubDir, "--hub", hubURL, "--site", "s", "--channels", "science", "--json")), &tok); err != nil {
		t.Fatal(err)
	}
	// An upload cut short stays on the hub until it is resumed.
	putPartialUpload(t, p, hubDir, hubURL)

	p.run("init", "--data", boxDir)
	usb := filepath.Join(root, "usb")
	if _, err := samplecourse.WriteFiles(usb, "from-usb", 1, synctest.Course(13, 0, 0, 1, 200<<10, 2)); err != nil {
		t.Fatal(err)
	}
	p.run("content", "import", usb, "--data", boxDir)
	stopBox := p.start(`msg="course synced"`, "serve", "--data", boxDir, "--listen", "127.0.0.1:0",
		"--upstream", hubURL, "--enrol", tok.Token, "--sync-interval", "1h")
	p.run("sync", "now", "--data", boxDir)
	// While both run: their databases' WAL files and the control socket.
	n := assertPrivate(t, hubDir) + assertPrivate(t, boxDir)
	stopBox()
	stopHub()
	n += assertPrivate(t, hubDir) + assertPrivate(t, boxDir)
	t.Logf("%d paths checked", n)

	// A node made loose (by an older release, or by hand) is tightened
	// by the next verb that opens it.
	err := filepath.WalkDir(boxDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(path, 0o755)
		}
		return os.Chmod(path, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	p.run("status", "--data", boxDir)
	assertPrivate(t, boxDir)
}

// putPartialUpload sends the first part of an upload to the hub's admin API
// and stops, as a cut publish does.
func putPartialUpload(t *testing.T, p *cliProcs, hubDir, hubURL string) {
	t.Helper()
	var st struct {
		DeviceID string `json:"device_id"`
	}
	if err := json.Unmarshal([]byte(p.run("status", "--data", hubDir, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	pin, err := protocol.DeviceIDFromString(st.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(hubDir, "hub", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: wire.AdminTLS(pin)}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPut, hubURL+"/admin/v1/uploads/"+strings.Repeat("ab", 32), strings.NewReader("the first part of a pack"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Upload-Offset", "0")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload part: %s", resp.Status)
	}
	if _, err := os.Stat(filepath.Join(hubDir, "hub", "uploads", strings.Repeat("ab", 32)+".part")); err != nil {
		t.Fatalf("the partial upload is not where the test looks: %v", err)
	}
}
