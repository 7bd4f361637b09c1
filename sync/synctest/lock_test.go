package synctest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"outpost/sync/upstream"
)

// TestOnePassPerDataDirAcrossProcesses starts a second process syncing the
// same data directory while a pass is under way (held just after its first
// verified block): the second must say another pass runs and fetch
// nothing, and the hub must serve every block once.
func TestOnePassPerDataDirAcrossProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	served := map[string]int{}
	h := startHubHooked(t, func(file string, idx int) {
		mu.Lock()
		served[blockKey(file, idx)]++
		mu.Unlock()
	})
	files := Course(21, 1, 1<<20, 1, 300<<10, 4)
	publish(t, h, "once", 1, files, "science")
	b := enrolBox(t, h.URL(), h, "science")
	dir := b.Node.Config.DataDir
	ctx := testCtx(t)

	var childOut string
	var childErr error
	var once sync.Once
	o := b.Node.SyncOptions()
	o.Hooks = &upstream.Hooks{BlockStored: func([]byte, string) {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "OUTPOST_SYNC_CHILD="+dir, "OUTPOST_SYNC_CHILD_PASSES=1")
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			childOut, childErr = string(out), err
		})
	}}
	link, err := upstream.LoadLink(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := upstream.New(o, link).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if childErr == nil || !strings.Contains(childOut, "another sync pass is running") {
		t.Fatalf("a second process synced the same data directory during a pass (exit %v):\n%s", childErr, childOut)
	}
	if strings.Contains(childOut, "stored ") {
		t.Fatalf("the second process fetched blocks:\n%s", childOut)
	}
	assertHolds(t, b, "once", 1, files)
	mu.Lock()
	defer mu.Unlock()
	for k, n := range served {
		if n != 1 {
			t.Fatalf("the hub served block %s %d times", k, n)
		}
	}
	t.Logf("second process: %s", strings.TrimSpace(childOut))
}

// TestStatusAfterCrashSaysInterrupted kills a syncing box process mid-pass:
// the status it saved says "syncing", but no pass runs any more, so the
// status must say the last pass was interrupted (not "syncing … 0 s
// left"). While a pass does run, the same check says syncing, and does not
// disturb it.
func TestStatusAfterCrashSaysInterrupted(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := startHub(t)
	files := Course(22, 2, 1<<20, 0, 0, 2)
	publish(t, h, "crash", 1, files, "science")
	b := enrolBox(t, h.URL(), h, "science")
	dir := b.Node.Config.DataDir
	ctx := testCtx(t)

	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "OUTPOST_SYNC_CHILD="+dir, "OUTPOST_SYNC_CHILD_PASSES=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "stored ") && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the child finished before it could be killed")
	}
	st, err := upstream.ReadStatus(ctx, b.Node.DB, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != upstream.StateInterrupted || !strings.Contains(st.Message, "interrupted") || st.QueueBytes != 0 || st.ETASeconds != 0 {
		t.Fatalf("status after the syncing process was killed: state %q, message %q, queue %d, eta %v",
			st.State, st.Message, st.QueueBytes, st.ETASeconds)
	}

	var during *upstream.Status
	var once sync.Once
	o := b.Node.SyncOptions()
	o.Hooks = &upstream.Hooks{BlockStored: func([]byte, string) {
		once.Do(func() { during, err = upstream.ReadStatus(ctx, b.Node.DB, dir) })
	}}
	link, _ := upstream.LoadLink(dir)
	if err := upstream.New(o, link).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if during == nil || during.State != upstream.StateSyncing {
		t.Fatalf("status during a pass: %+v (%v)", during, err)
	}
	if st, _ := upstream.ReadStatus(ctx, b.Node.DB, dir); st.State != upstream.StateIdle {
		t.Fatalf("status after the pass: %q", st.State)
	}
	assertHolds(t, b, "crash", 1, files)
}
