package synctest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"outpost/sync/upstream"
)

// TestGCKeepsInterruptedSyncWork interrupts a pass that is bringing in a
// new version, after some of its files were stored whole and one was half
// assembled, then runs gc as a technician would: the next pass must fetch
// only what is still missing, never a block it had already verified.
func TestGCKeepsInterruptedSyncWork(t *testing.T) {
	h := startHub(t)
	v1 := Course(31, 0, 0, 0, 0, 2)
	publish(t, h, "grow", 1, v1, "science")
	b := enrolBox(t, h.URL(), h, "science")
	ctx := testCtx(t)
	if err := b.Client.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	// Version 2 adds six 1 MiB videos (8 blocks each). The first block
	// batch (2 MiB) completes two of them, which are stored before the
	// next batch; the pass is cut 4 blocks into the third.
	v2 := append(Clone(v1), Course(32, 6, 1<<20, 0, 0, 0)...)
	publish(t, h, "grow", 2, v2, "science")

	var fetched fetchCounter
	var mu sync.Mutex
	n := 0
	passCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := b.Through(h.URL(), fetched.hooks(func(_ []byte, source string) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 20 {
			cancel()
		}
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The partials are private by their own modes, not only by the
	// umask the node's process sets (undone here, as loose as it gets).
	oldMask := syscall.Umask(0)
	err = c.Pass(passCtx)
	syscall.Umask(oldMask)
	if err == nil {
		t.Fatal("the pass finished despite the interruption")
	}
	syncDir := filepath.Join(b.Node.Config.DataDir, "sync")
	err = filepath.WalkDir(syncDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if want := map[bool]fs.FileMode{true: 0o700, false: 0o600}[d.IsDir()]; info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, partials := 0, 0
	for _, f := range v2[len(v1):] {
		if ok, _ := b.Node.Store.Has(ctx, sha256hex(f.Data)); ok {
			stored++
		}
		if _, err := os.Stat(filepath.Join(upstream.PartialDir(b.Node.Config.DataDir), sha256hex(f.Data)+".part")); err == nil {
			partials++
		}
	}
	if stored == 0 || partials == 0 {
		t.Fatalf("the interrupted pass left %d stored files and %d partials; the test needs both", stored, partials)
	}

	res, err := b.Node.Library.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gc after the interruption: %+v (%d files stored, %d partial)", res, stored, partials)
	if res.Pending != stored+partials {
		t.Fatalf("gc reports %d pending files kept, want %d", res.Pending, stored+partials)
	}

	if err := c.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, b, "grow", 2, v2)
	for hash, k := range fetched.counts() {
		if k != 1 {
			t.Fatalf("block %s was fetched %d times: gc threw away sync work", hash, k)
		}
	}
	// Installed: nothing is pending any more, so the next gc keeps nothing
	// back, and no partial is left.
	res, err = b.Node.Library.GC(ctx)
	if err != nil || res.Pending != 0 {
		t.Fatalf("gc after the version was installed: %+v %v", res, err)
	}
	ents, _ := os.ReadDir(upstream.PartialDir(b.Node.Config.DataDir))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Fatalf("partial left after install: %s", e.Name())
		}
	}
}
