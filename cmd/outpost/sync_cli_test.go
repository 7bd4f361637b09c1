package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	token := villageToken(t, ctx, h)

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
	publishCourse(t, ctx, h, "second", synctest.Course(4, 1, 300<<10, 0, 0, 2))
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
