package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/sync/synctest"
	"outpost/sync/upstream"
)

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
	publishCourse(t, ctx, h, "moved", synctest.Course(8, 1, 300<<10, 0, 0, 2))
	box := enrolledBox(t, ctx, h)
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
	publishCourse(t, ctx, h, "later", synctest.Course(9, 0, 0, 0, 0, 2))
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
	h := startTestHub(t, ctx)
	publishCourse(t, ctx, h, "secret", synctest.Course(14, 0, 0, 0, 0, 2))
	token := func() string { return villageToken(t, ctx, h) }

	// From a file.
	box := t.TempDir()
	tokFile := filepath.Join(t.TempDir(), "enrol-token")
	if err := os.WriteFile(tokFile, []byte(token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--data", box, "--listen", "127.0.0.1:0", "--upstream", h.URL(), "--enrol-file", tokFile)
	d.waitLog(`msg="course synced"`)
	d.shutdown()

	// From standard input: one line is enough, as when a technician pastes
	// the token and presses Enter; the input is never closed.
	box = t.TempDir()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go pw.Write([]byte(token() + "\n"))
	d = startDaemonIn(t, pr, "--data", box, "--listen", "127.0.0.1:0", "--upstream", h.URL(), "--enrol", "-")
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
