package hub

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPatchCachePrunesLeastRecentlyServedButNeverInUse: the cache deletes
// the patches served longest ago first, skips any being served even when
// that leaves it over its bound for a while, and deletes those once
// served; patches left half-built by a crash go at start.
func TestPatchCachePrunesLeastRecentlyServedButNeverInUse(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int, age time.Duration) string {
		p := filepath.Join(dir, "ab", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		os.Chtimes(p, when, when)
		return p
	}
	a := write("a.zst", 100, 3*time.Hour) // served longest ago
	b := write("b.zst", 100, 2*time.Hour)
	c := write("c.zst", 100, time.Hour)
	torn := write(".building-123", 50, 0)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	pc, err := newPatchCache(patchCacheConfig{dir: dir, builds: 1, limit: 1000, log: slog.New(slog.DiscardHandler), metrics: newMetrics()})
	if err != nil {
		t.Fatal(err)
	}
	if exists(torn) || pc.total != 300 {
		t.Fatalf("after load: torn build kept %v, total %d", exists(torn), pc.total)
	}
	pc.mu.Lock()
	held, err := pc.openCached(a) // a is being served: now the most recent
	pc.mu.Unlock()
	if err != nil || held == nil {
		t.Fatalf("open a: %v", err)
	}
	prune := func(limit int64) {
		pc.mu.Lock()
		pc.limit = limit
		pc.prune()
		pc.mu.Unlock()
	}
	prune(250)
	if exists(b) || !exists(a) || !exists(c) || pc.total != 200 {
		t.Fatalf("bound 250: a %v b %v c %v, total %d; want b (least recently served) gone", exists(a), exists(b), exists(c), pc.total)
	}
	prune(50)
	if exists(c) || !exists(a) || pc.total != 100 {
		t.Fatalf("bound 50: a %v c %v, total %d; want only a, being served", exists(a), exists(c), pc.total)
	}
	held.Close()
	if exists(a) || pc.total != 0 {
		t.Fatalf("a served and over the bound: still there %v, total %d", exists(a), pc.total)
	}
	// A new patch is counted, and kept while within the bound.
	d := write("d.zst", 40, 0)
	pc.mu.Lock()
	pc.add(d, 40)
	pc.prune()
	pc.mu.Unlock()
	if !exists(d) || pc.total != 40 {
		t.Fatalf("d: kept %v, total %d", exists(d), pc.total)
	}
}
