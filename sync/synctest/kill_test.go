package synctest

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"outpost/appliance"
	"outpost/sync/hub"
	"outpost/sync/upstream"
)

// TestMain lets the test binary double as the box the kill test kills:
// with OUTPOST_SYNC_CHILD set it syncs its data directory and prints one
// line per fetched block once that block is verified and durable, so the
// parent can kill it at a chosen point without guessing with sleeps.
func TestMain(m *testing.M) {
	if dir := os.Getenv("OUTPOST_SYNC_CHILD"); dir != "" {
		os.Exit(syncChild(dir))
	}
	os.Exit(m.Run())
}

func syncChild(dir string) int {
	ctx := context.Background()
	node, err := appliance.Open(ctx, appliance.DefaultConfig(dir), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer node.Close()
	link, err := upstream.LoadLink(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	o := node.SyncOptions()
	o.Hooks = &upstream.Hooks{BlockStored: func(hash []byte, source string) {
		if source != "fetched" {
			return
		}
		mu.Lock()
		fmt.Fprintf(out, "stored %x\n", hash)
		out.Flush()
		mu.Unlock()
	}}
	c := upstream.New(o, link)
	passes := 5
	if os.Getenv("OUTPOST_SYNC_CHILD_PASSES") == "1" {
		passes = 1
	}
	for range passes {
		err := c.Pass(ctx)
		mu.Lock()
		if err == nil {
			fmt.Fprintln(out, "done")
		} else {
			fmt.Fprintln(out, "error", err)
		}
		out.Flush()
		mu.Unlock()
		if err == nil {
			return 0
		}
	}
	return 1
}

// TestBoxKilledMidSync kills the box process (SIGKILL, no chance to clean
// up) after a random number of verified blocks, again and again, and
// restarts it. The hub watches every block it serves: none the box had
// reported verified may be served again, and the course must arrive whole.
func TestBoxKilledMidSync(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	stored := map[string]bool{}
	hashOf := map[string]string{}
	var again []string
	h, err := StartHub(testCtx(t), t.TempDir(), "127.0.0.1:0", &hub.Hooks{BlockServed: func(file string, idx int) {
		mu.Lock()
		defer mu.Unlock()
		if hash := hashOf[blockKey(file, idx)]; stored[hash] {
			again = append(again, blockKey(file, idx))
		}
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	files := Course(11, 3, 1536<<10, 1, 400<<10, 6)
	publish(t, h, "killed", 1, files, "science")
	for _, f := range files {
		sha := sha256hex(f.Data)
		blocks, err := h.Node.Store.Blocks(testCtx(t), sha)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			hashOf[blockKey(sha, i)] = hex.EncodeToString(b.Hash)
		}
	}
	b := enrolBox(t, h.URL(), h, "science")
	dir := b.Node.Config.DataDir
	b.Close()

	rng := rand.New(rand.NewPCG(2026, 11))
	kills, done := 0, false
	for run := 0; run < 30 && !done; run++ {
		killAfter := 1 + rng.IntN(6)
		if run >= 12 {
			killAfter = 1 << 30 // enough killing: let it finish
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "OUTPOST_SYNC_CHILD="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if line == "done" {
				done = true
				continue
			}
			if hash, ok := strings.CutPrefix(line, "stored "); ok {
				mu.Lock()
				stored[hash] = true
				mu.Unlock()
				n++
				if n == killAfter {
					cmd.Process.Signal(syscall.SIGKILL)
					kills++
				}
			}
		}
		cmd.Wait()
		cancel()
	}
	if !done {
		t.Fatal("the box never finished syncing")
	}
	if kills < 5 {
		t.Fatalf("only %d kills landed mid-sync", kills)
	}
	mu.Lock()
	if len(again) > 0 {
		t.Fatalf("blocks the box had verified were served again after a restart: %v", again)
	}
	t.Logf("%d kills; %d distinct blocks verified", kills, len(stored))
	mu.Unlock()

	node, err := appliance.Open(testCtx(t), appliance.DefaultConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	assertHolds(t, &Box{Node: node}, "killed", 1, files)
	rep, err := node.Library.Verify(testCtx(t), nil, nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify after kills: %+v %v", rep, err)
	}
}
