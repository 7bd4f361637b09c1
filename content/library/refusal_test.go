package library_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/content/library"
	"outpost/content/pack"
)

// TestRefusedImportReportsEveryProblem: one run names every problem of a
// pack, manifest and files together, as docs/PACK_FORMAT.md promises; an
// import used to stop at the first file problem ("1 problem" when there
// were two).
func TestRefusedImportReportsEveryProblem(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper func(p *testPack)
		want   []string
	}{
		{"two file problems", func(p *testPack) {
			p.files["notes.txt"] = []byte("Halves, quarters and the number line. Denominator practicE.")
			p.files["more/a.txt"] = []byte("listed, then deleted")
			p.addFile("more/b.txt", []byte("listed, then deleted"))
			delete(p.files, "more/b.txt")
			delete(p.files, "more/a.txt")
		}, []string{"(2 problems)", `notes.txt: files["notes.txt"]: content does not match`, `files["more/b.txt"]: is listed but absent`}},
		{"manifest and file problems", func(p *testPack) {
			p.m.Title = ""
			p.m.Lessons[0].Items[0].Kind = "hologram"
			p.files["notes.txt"] = []byte("Halves, quarters and the number line. Denominator practicE.")
			p.files["extra.bin"] = []byte("x")
			f := p.m.Files["video/intro.webm"]
			f.Size++
			p.m.Files["video/intro.webm"] = f
			p.addFile("gone.txt", []byte("absent"))
			delete(p.files, "gone.txt")
		}, []string{"(6 problems)", "title: is required", `kind: unknown kind "hologram"`, "notes.txt", "does not match",
			"extra.bin: is in the pack but not listed", `video/intro.webm: files["video/intro.webm"].size`, `files["gone.txt"]: is listed but absent`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lib := newLibrary(t)
			p := newTestPack("fractions", 1, basicFiles())
			tc.tamper(p)
			_, err := lib.Import(ctx, p.writeDir(t), nil)
			if !errors.Is(err, pack.ErrInvalid) {
				t.Fatalf("import: %v, want an invalid-pack error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			assertNothingVisible(t, lib)
			assertStoreHolds(t, lib)
		})
	}
}

// TestRefusedImportDeletesWhatItStored: a pack refused for its last file
// leaves nothing of itself in the store (the 300 MB pack with one bad file
// used to leave 281 MB until gc, counted neither by du nor by the quota),
// and the files it shares with an installed course stay.
func TestRefusedImportDeletesWhatItStored(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	shared := []byte("a file both courses hold")
	first := newTestPack("first", 1, map[string][]byte{"shared.txt": shared})
	if _, err := lib.Import(ctx, first.writeDir(t), nil); err != nil {
		t.Fatal(err)
	}
	// More files than a store batch holds before it commits by itself
	// (2,048), so the refusal comes after some were indexed, with a large
	// one among them, and a bad one walked last.
	files := map[string][]byte{"shared.txt": shared, "big.webm": media(3, 3<<20)}
	for i := range 2100 {
		files[fmt.Sprintf("pages/%04d.txt", i)] = fmt.Appendf(nil, "page %d", i)
	}
	files["zz-last.txt"] = []byte("good")
	p := newTestPack("second", 1, files)
	p.files["zz-last.txt"] = []byte("bad!")
	if _, err := lib.Import(ctx, p.writeDir(t), nil); !errors.Is(err, pack.ErrInvalid) {
		t.Fatalf("import: %v, want an invalid-pack error", err)
	}
	assertStoreHolds(t, lib, "shared.txt")
	if rep, err := lib.Verify(ctx, nil, nil); err != nil || !rep.Clean() {
		t.Fatalf("the installed course lost a file: %+v %v", rep, err)
	}
}

// TestRefusedImportKeepsPendingFiles: a file an interrupted sync pass still
// needs (recorded as pending) is not the refused import's to delete, even
// when the import is what stored it.
func TestRefusedImportKeepsPendingFiles(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	wanted := []byte("a file the next synced version needs")
	p := newTestPack("refused", 1, map[string][]byte{"wanted.txt": wanted, "other.txt": []byte("not needed"), "zz.txt": []byte("good")})
	p.files["zz.txt"] = []byte("bad!")
	if err := lib.Catalog.SetPending(ctx, "sync", []string{p.m.Files["wanted.txt"].SHA256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Import(ctx, p.writeDir(t), nil); !errors.Is(err, pack.ErrInvalid) {
		t.Fatalf("import: %v, want an invalid-pack error", err)
	}
	if ok, err := lib.Store.Has(ctx, p.m.Files["wanted.txt"].SHA256); err != nil || !ok {
		t.Fatalf("the refused import deleted a file pending sync work needs (%v)", err)
	}
	if ok, _ := lib.Store.Has(ctx, p.m.Files["other.txt"].SHA256); ok {
		t.Fatal("the refused import kept a file nothing needs")
	}
	if n := countObjects(t, lib); n != 1 {
		t.Fatalf("the store holds %d objects, want the pending one only", n)
	}
}

// TestRefusedImportLeavesFilesOthersMayUse: while another import or sync
// pass holds the content lock, a refused import cannot know whether that
// work has come to rely on a file it stored, so it leaves them; gc
// reclaims them once the other work is done.
func TestRefusedImportLeavesFilesOthersMayUse(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	release, err := lib.Hold() // a sync pass in progress
	if err != nil {
		t.Fatal(err)
	}
	files := basicFiles()
	files["zz.txt"] = []byte("walked last")
	p := newTestPack("fractions", 1, files)
	p.files["zz.txt"] = []byte("walked last, and damaged")
	if _, err := lib.Import(ctx, p.writeDir(t), nil); !errors.Is(err, pack.ErrInvalid) {
		t.Fatalf("import: %v", err)
	}
	if n := countObjects(t, lib); n == 0 {
		t.Fatalf("the refused import deleted its files while other work held the content lock")
	}
	release()
	if _, err := lib.GC(ctx); err != nil {
		t.Fatal(err)
	}
	assertStoreHolds(t, lib)
}

// addFile lists a file in the manifest (and the pack) after the fact.
func (p *testPack) addFile(name string, b []byte) {
	p.files[name] = b
	other := newTestPack("x", 1, map[string][]byte{name: b})
	p.m.Files[name] = other.m.Files[name]
}

// assertStoreHolds checks that the store (index and disk) holds exactly
// the objects of the named files of installed courses, nothing else.
func assertStoreHolds(t *testing.T, lib *library.Library, names ...string) {
	t.Helper()
	ctx := context.Background()
	objs, err := lib.Store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(names) {
		t.Errorf("store index holds %d objects, want %d", len(objs), len(names))
	}
	if n := countObjects(t, lib); n != len(names) {
		t.Errorf("store folder holds %d object files, want %d", n, len(names))
	}
}

func countObjects(t *testing.T, lib *library.Library) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(lib.Store.Dir(), "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}
