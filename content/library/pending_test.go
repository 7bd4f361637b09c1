package library_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"outpost/content/blockstore"
	"outpost/content/library"
)

// TestGCKeepsPendingWorkForABoundedTime: files stored for a version not
// yet installed, and partials being assembled for it, survive gc while
// their owner renews them, and go once it has not for PendingTTL. Partials
// no pending work needs go at once; other files in the directory stay.
func TestGCKeepsPendingWorkForABoundedTime(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lib.Clock = func() time.Time { return now }
	lib.PartialDir = filepath.Join(t.TempDir(), "partial")
	if err := os.MkdirAll(lib.PartialDir, 0o700); err != nil {
		t.Fatal(err)
	}
	hexOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

	stored := bytes.Repeat([]byte("stored for the next version "), 1000)
	if _, err := lib.Store.Put(ctx, bytes.NewReader(stored), blockstore.Expect{SHA256: hexOf(stored), Size: int64(len(stored))}, nil); err != nil {
		t.Fatal(err)
	}
	halfDone := hexOf([]byte("arriving"))
	abandoned := hexOf([]byte("no longer wanted"))
	for _, name := range []string{halfDone + ".part", abandoned + ".part", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(lib.PartialDir, name), []byte("some blocks"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(lib.PartialDir, name))
		return err == nil
	}
	if err := lib.KeepPending(ctx, "sync", []string{hexOf(stored), halfDone}); err != nil {
		t.Fatal(err)
	}

	res, err := lib.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := lib.Store.Has(ctx, hexOf(stored)); !has || res.Objects != 0 || res.Pending != 2 {
		t.Fatalf("gc removed pending work: stored file kept %v, result %+v", has, res)
	}
	if !exists(halfDone+".part") || exists(abandoned+".part") || !exists("notes.txt") {
		t.Fatalf("partials after gc: pending kept %v, unwanted removed %v, other file kept %v",
			exists(halfDone+".part"), !exists(abandoned+".part"), exists("notes.txt"))
	}

	// Renewed just inside the bound: still kept.
	now = now.Add(library.PendingTTL - time.Hour)
	if err := lib.KeepPending(ctx, "sync", []string{hexOf(stored), halfDone}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(library.PendingTTL - time.Minute)
	if res, err := lib.GC(ctx); err != nil || res.Pending != 2 {
		t.Fatalf("gc within the bound after renewal: %+v %v", res, err)
	}
	// Not renewed for longer than the bound: abandoned, reclaimed.
	now = now.Add(2 * time.Minute)
	res, err = lib.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := lib.Store.Has(ctx, hexOf(stored)); has || res.Objects != 1 || res.Pending != 0 || exists(halfDone+".part") {
		t.Fatalf("gc kept abandoned work past the bound: stored file kept %v, result %+v", has, res)
	}
	if !exists("notes.txt") {
		t.Fatal("gc removed a file that is not a partial")
	}
}
