package library_test

import (
	"context"
	"path/filepath"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/appliance/loadgen"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/library"
	"outpost/content/samplecourse"
)

// benchLibrary opens an empty library on the test's temporary disk.
func benchLibrary(b *testing.B) *library.Library {
	b.Helper()
	dir := b.TempDir()
	db := databasetest.Open(b)
	st, err := blockstore.Open(filepath.Join(dir, "store"), db)
	if err != nil {
		b.Fatal(err)
	}
	lib := library.New(dir, st, catalog.New(db))
	lib.Reserve = 0
	return lib
}

// benchImport imports the pack in dir into a fresh library per iteration;
// opening the library is not timed.
func benchImport(b *testing.B, dir string) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		lib := benchLibrary(b)
		b.StartTimer()
		if _, err := lib.Import(ctx, dir, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportMedia is a whole import of large files: hash, copy, fsync
// per file, then the catalog commit. Its MB/s is the disk-bound figure next
// to blockstore's BenchmarkHashCopy.
func BenchmarkImportMedia(b *testing.B) {
	dir := b.TempDir()
	const n, size = 4, 16 << 20
	if _, err := loadgen.WriteMediaPack(dir, "bench-media", n, size, 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n * size)
	benchImport(b, dir)
}

// BenchmarkImportManySmall is an import of 1,000 small items, where the
// per-file costs (an fsync and a transaction each) and the catalog's text
// index dominate; ns/op divided by 1,000 is the cost of one item.
func BenchmarkImportManySmall(b *testing.B) {
	dir := b.TempDir()
	if _, err := samplecourse.WriteLarge(dir, "bench-1k", 1000); err != nil {
		b.Fatal(err)
	}
	benchImport(b, dir)
}
