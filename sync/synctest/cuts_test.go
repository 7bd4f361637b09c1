package synctest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"outpost/sync/linkemu"
	"outpost/sync/upstream"
)

// passUntilDone runs passes until one succeeds; each failed pass must have
// been caused by the link, and progress must be made overall.
func passUntilDone(t *testing.T, ctx context.Context, c *upstream.Client, maxPasses int) int {
	t.Helper()
	for i := 1; i <= maxPasses; i++ {
		err := c.Pass(ctx)
		if err == nil {
			return i
		}
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
		t.Logf("pass %d failed (expected on a cut link): %v", i, err)
	}
	t.Fatalf("no pass succeeded in %d attempts", maxPasses)
	return 0
}

func TestSyncThroughCutLink(t *testing.T) {
	// Counted at the hub: a block it is about to send again after the box
	// stored it would be a verified block fetched twice. (The hub's hook
	// runs before the write, the box's after its fdatasync.)
	var mu sync.Mutex
	stored := map[string]bool{}
	hashOf := map[string]string{}
	var again []string
	h := startHubHooked(t, func(file string, idx int) {
		mu.Lock()
		defer mu.Unlock()
		if stored[hashOf[blockKey(file, idx)]] {
			again = append(again, blockKey(file, idx))
		}
	})
	files := Course(3, 3, 2<<20, 2, 600<<10, 30)
	publish(t, h, "cuts", 1, files, "science")
	for _, f := range files {
		blocks, err := h.Node.Store.Blocks(testCtx(t), sha256hex(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			hashOf[blockKey(sha256hex(f.Data), i)] = string(b.Hash)
		}
	}
	var courseBytes int64
	for _, f := range files {
		courseBytes += int64(len(f.Data))
	}
	b := enrolBox(t, h.URL(), h, "science")

	proxy, err := linkemu.Start(linkemu.Config{Target: h.Addr, RateBytesPerSec: 6 << 20, Latency: 2 * time.Millisecond,
		Seed: 42, CutMeanBytes: courseBytes / 30, CutDownOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var fetched fetchCounter
	c, err := b.Through("https://"+proxy.Addr(), fetched.hooks(func(hash []byte, source string) {
		if source == "fetched" {
			mu.Lock()
			stored[string(hash)] = true
			mu.Unlock()
		}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	passes := passUntilDone(t, ctx, c, 40)
	assertHolds(t, b, "cuts", 1, files)

	st := proxy.Stats()
	if st.Cuts < 20 {
		t.Fatalf("only %d cuts; the test needs at least 20", st.Cuts)
	}
	counts := fetched.counts()
	for hash, n := range counts {
		if n != 1 {
			t.Fatalf("block %s was fetched and verified %d times", hash, n)
		}
	}
	// The box's own metric agrees: as many blocks fetched as distinct
	// hashes, none counted twice.
	if got := c.Status().Totals.BlocksFetched; got != int64(len(counts)) {
		t.Fatalf("the box's metrics count %d fetched blocks for %d distinct hashes", got, len(counts))
	}
	mu.Lock()
	if len(again) > 0 {
		t.Fatalf("the hub sent blocks the box had already stored: %v", again)
	}
	mu.Unlock()
	status := c.Status()
	// At the proxy: what crossed the link is the course (less what zstd
	// saved), plus per cut at most what was in flight when it fell: the
	// block being read and what the kernel buffered ahead of it.
	t.Logf("%d cuts, %d connections, %d passes; down %d bytes, up %d bytes for a %d-byte course (%d payload); %d blocks fetched",
		st.Cuts, st.Conns, passes, st.BytesDown, st.BytesUp, courseBytes, status.Totals.BytesFetched, status.Totals.BlocksFetched)
	if limit := courseBytes + int64(st.Cuts)*(512<<10); st.BytesDown > limit {
		t.Fatalf("%d bytes crossed the link for a %d-byte course with %d cuts (limit %d)", st.BytesDown, courseBytes, st.Cuts, limit)
	}
	if status.Totals.BadStreams == 0 {
		t.Fatal("no truncated stream was counted despite the cuts")
	}
}

func blockKey(file string, idx int) string { return fmt.Sprintf("%s/%d", file, idx) }
