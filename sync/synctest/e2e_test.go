package synctest

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"outpost/content/samplecourse"
	"outpost/sync/hub"
	"outpost/sync/upstream"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startHub(t *testing.T) *Hub {
	t.Helper()
	h, err := StartHub(testCtx(t), t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	return h
}

func startHubHooked(t *testing.T, served func(file string, idx int)) *Hub {
	t.Helper()
	h, err := StartHub(testCtx(t), t.TempDir(), "127.0.0.1:0", &hub.Hooks{BlockServed: served}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	return h
}

func publish(t *testing.T, h *Hub, id string, version int64, files []samplecourse.File, channel string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pack")
	if _, err := samplecourse.WriteFiles(dir, id, version, files); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(testCtx(t), dir, channel); err != nil {
		t.Fatal(err)
	}
}

func enrolBox(t *testing.T, hubURL string, h *Hub, channels ...string) *Box {
	t.Helper()
	tok, _, err := h.Hub.CreateToken(testCtx(t), "school-a", channels, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartBox(testCtx(t), t.TempDir(), hubURL, tok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// assertHolds checks the box shows version v of course id with exactly
// these bytes.
func assertHolds(t *testing.T, b *Box, id string, v int64, files []samplecourse.File) {
	t.Helper()
	ctx := testCtx(t)
	cur, err := b.Node.Catalog.CurrentVersion(ctx, id)
	if err != nil || cur != v {
		t.Fatalf("course %s: visible version %d (%v), want %d", id, cur, err, v)
	}
	raw, err := b.Node.Catalog.Manifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !bytes.Contains(raw, []byte(f.Path)) {
			t.Fatalf("manifest lacks %s", f.Path)
		}
	}
	for _, f := range files {
		sha := sha256hex(f.Data)
		obj, err := b.Node.Store.OpenObject(sha)
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		got, _ := io.ReadAll(obj)
		obj.Close()
		if !bytes.Equal(got, f.Data) {
			t.Fatalf("%s: stored bytes differ", f.Path)
		}
	}
}

func TestSyncPublishUpdateRemove(t *testing.T) {
	h := startHub(t)
	v1 := Course(1, 1, 3<<20, 1, 1<<20, 20)
	publish(t, h, "water", 1, v1, "science")
	publish(t, h, "history", 1, Course(2, 0, 0, 1, 300<<10, 3), "humanities")
	b := enrolBox(t, h.URL(), h, "science")
	ctx := testCtx(t)

	if err := b.Client.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, b, "water", 1, v1)
	if v, _ := b.Node.Catalog.CurrentVersion(ctx, "history"); v != 0 {
		t.Fatal("a course outside the box's channels arrived")
	}
	st := b.Client.Status()
	if st.State != "idle" || st.Totals.BlocksFetched == 0 || st.Cursor == 0 {
		t.Fatalf("status after first pass: %+v", st)
	}
	first := st.Totals.BytesFetched

	// Version 2: scattered edits in the video, an insertion in the PDF,
	// one sentence in one page.
	v2 := Clone(v1)
	rng := rand.New(rand.NewPCG(9, 9))
	for range 10 {
		off := rng.IntN(len(v2[0].Data) - 1000)
		copy(v2[0].Data[off:], Random(rng, 500))
	}
	mid := len(v2[1].Data) / 2
	v2[1].Data = append(v2[1].Data[:mid:mid], append(Random(rng, 100<<10), v2[1].Data[mid:]...)...)
	v2[2].Data = bytes.Replace(v2[2].Data, []byte("<h2>Section 1</h2>"), []byte("<h2>Section one, revised</h2>"), 1)
	publish(t, h, "water", 2, v2, "science")
	if err := b.Client.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, b, "water", 2, v2)
	st = b.Client.Status()
	delta := st.Totals.BytesFetched - first
	t.Logf("update: %d bytes on the wire (first sync %d); local %d shifted %d patched %d fetched %d",
		delta, first, st.Totals.BlocksLocal, st.Totals.BlocksShifted, st.Totals.BlocksPatched, st.Totals.BlocksFetched)
	if delta > 300<<10 {
		t.Fatalf("the update took %d bytes; the changes were ~105 KB", delta)
	}
	// The old version's files are reclaimed once v2 is visible.
	if _, err := b.Node.Store.OpenObject(sha256hex(v1[0].Data)); err == nil {
		t.Fatal("the replaced video is still stored")
	}

	if err := h.Hub.Remove(ctx, "water"); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Node.Catalog.CurrentVersion(ctx, "water"); v != 0 {
		t.Fatal("the removed course is still visible")
	}
	if _, err := b.Node.Store.OpenObject(sha256hex(v2[0].Data)); err == nil {
		t.Fatal("the removed course's video is still stored")
	}
	if ents, _ := os.ReadDir(filepath.Join(b.Node.Config.DataDir, "sync", "partial")); len(ents) != 0 {
		t.Fatalf("partials left: %v", ents)
	}
}

// fetchCounter counts, per block hash, the blocks a box fetched, verified
// and stored, through the client's hook; chained to next if given.
type fetchCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *fetchCounter) hooks(next func(hash []byte, source string)) *upstream.Hooks {
	return &upstream.Hooks{BlockStored: func(hash []byte, source string) {
		if source == "fetched" {
			f.mu.Lock()
			if f.n == nil {
				f.n = map[string]int{}
			}
			f.n[hex.EncodeToString(hash)]++
			f.mu.Unlock()
		}
		if next != nil {
			next(hash, source)
		}
	}}
}

func (f *fetchCounter) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.n)
}
