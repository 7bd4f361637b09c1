package synctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/content/samplecourse"
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

// logBuffer collects a client's log lines, for tests that check what it
// retried.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestChangesCutIsRetried cuts the link once, inside the answer to
// GET /v1/changes: the pass must ask again and finish, as it does for every
// other request, instead of ending with "malformed sync message".
func TestChangesCutIsRetried(t *testing.T) {
	h := startHub(t)
	// Many small files make a large changes answer (~100 KB compressed:
	// the manifest's hashes do not compress) and cost little to sync.
	rng := rand.New(rand.NewPCG(11, 11))
	var files []samplecourse.File
	for i := range 1500 {
		files = append(files, samplecourse.File{Path: fmt.Sprintf("html/p%04d.html", i), Data: Random(rng, 64)})
	}
	dir := filepath.Join(t.TempDir(), "pack")
	if _, err := samplecourse.WriteFiles(dir, "many", 1, files); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(testCtx(t), dir, "science"); err != nil {
		t.Fatal(err)
	}
	b := enrolBox(t, h.URL(), h, "science")
	// The box already holds the course (imported from a USB stick), so the
	// pass is about the changes answer alone: nothing else to fetch.
	if _, err := b.Node.Library.Import(testCtx(t), dir, nil); err != nil {
		t.Fatal(err)
	}

	// One cut, placed between 20 and 60 KB into the download: after the
	// TLS handshake (~2 KB), inside the changes answer. The proxy counts
	// only downloaded bytes, so the request itself cannot move it.
	const mean = 40 << 10
	proxy, err := linkemu.Start(linkemu.Config{Target: h.Addr, Seed: 3, CutMeanBytes: mean, MaxCuts: 1, CutDownOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c, err := b.Through("https://"+proxy.Addr(), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pass(testCtx(t)); err != nil {
		t.Fatalf("a cut during changes ended the pass: %v", err)
	}
	assertHolds(t, b, "many", 1, files)
	if st := proxy.Stats(); st.Cuts != 1 {
		t.Fatalf("%d cuts, want 1", st.Cuts)
	}
	if !strings.Contains(logs.String(), "what=changes") {
		t.Fatalf("the cut did not fall in the changes answer; log:\n%s", logs.String())
	}
}
