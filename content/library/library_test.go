package library_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/library"
	"outpost/content/pack"
)

func newLibrary(t *testing.T) *library.Library {
	t.Helper()
	dir := t.TempDir()
	db := databasetest.Open(t)
	st, err := blockstore.Open(filepath.Join(dir, "store"), db)
	if err != nil {
		t.Fatal(err)
	}
	lib := library.New(dir, st, catalog.New(db))
	lib.Reserve = 0
	return lib
}

// testPack is a pack under construction: files by path, then a manifest
// over them, optionally tampered with by the test.
type testPack struct {
	m     *pack.Manifest
	files map[string][]byte
}

func newTestPack(id string, version int64, files map[string][]byte) *testPack {
	p := &testPack{files: files, m: &pack.Manifest{
		Format: pack.FormatVersion, ID: id, Version: version, Title: "Course " + id, Language: "en",
		Description: "A course about fractions and decimals", Subjects: []string{"math"}, Files: map[string]pack.File{},
	}}
	var items []pack.Item
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := files[name]
		h := sha256.Sum256(b)
		p.m.Files[name] = pack.File{SHA256: hex.EncodeToString(h[:]), Size: int64(len(b))}
		kind := pack.KindDocument
		if strings.HasSuffix(name, ".webm") {
			kind = pack.KindVideo
		}
		items = append(items, pack.Item{ID: strings.NewReplacer("/", "-", ".", "-").Replace(name), Kind: kind, Title: "Item " + name, File: name})
	}
	p.m.Lessons = []pack.Lesson{{ID: "l1", Title: "Lesson one", Items: items}}
	return p
}

// writeDir writes the pack as a folder and returns its path.
func (p *testPack) writeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	raw, err := json_(p.m)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, pack.ManifestName), raw, 0o644)
	for name, b := range p.files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func json_(m *pack.Manifest) ([]byte, error) { return m.Marshal() }

func media(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) * 2654435761
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func basicFiles() map[string][]byte {
	return map[string][]byte{
		"video/intro.webm": media(1, 700_000),
		"notes.txt":        []byte("Halves, quarters and the number line. Denominator practice."),
	}
}

func TestImportFormatsRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := newLibrary(t)
	dir := newTestPack("fractions", 1, basicFiles()).writeDir(t)
	res, err := src.Import(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.NewBytes != res.Bytes {
		t.Fatalf("unexpected result %+v", res)
	}
	// Export in every format and import each into a fresh box.
	for _, ext := range []string{".tar.zst", ".tar", ".zip", ""} {
		t.Run("format"+ext, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "pack"+ext)
			if err := src.Export(ctx, "fractions", out, nil); err != nil {
				t.Fatal(err)
			}
			dst := newLibrary(t)
			res, err := dst.Import(ctx, out, nil)
			if err != nil {
				t.Fatalf("import %s: %v", ext, err)
			}
			if res.ID != "fractions" || res.Files != 2 {
				t.Fatalf("result %+v", res)
			}
			c, err := dst.Catalog.Course(ctx, "fractions")
			if err != nil || len(c.Lessons[0].Items) != 2 {
				t.Fatalf("course after import: %+v %v", c, err)
			}
			for _, it := range c.Lessons[0].Items {
				f, err := dst.Store.OpenObject(it.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(f.Name())
				f.Close()
				if !bytes.Equal(got, basicFiles()[it.Path]) {
					t.Fatalf("%s differs after round trip", it.Path)
				}
			}
			hits, err := dst.Catalog.Search(ctx, "denominat", catalog.Filter{})
			if err != nil || len(hits) == 0 {
				t.Fatalf("search of document text: %v hits, %v", len(hits), err)
			}
		})
	}
	// Exports are deterministic, so a republished pack has the same hash.
	a, b := filepath.Join(t.TempDir(), "a.tar.zst"), filepath.Join(t.TempDir(), "b.tar.zst")
	src.Export(ctx, "fractions", a, nil)
	src.Export(ctx, "fractions", b, nil)
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two exports of the same course differ")
	}
	// Re-importing the same pack is a no-op, not an error.
	res, err = src.Import(ctx, a, nil)
	if err != nil || !res.AlreadyImported {
		t.Fatalf("re-import: %+v %v", res, err)
	}
}

func TestImportRejectsBadPacks(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper func(p *testPack)
		want   []string // substrings of the error
	}{
		{"unknown kind", func(p *testPack) { p.m.Lessons[0].Items[0].Kind = "hologram" }, []string{"manifest.json", "kind", "hologram"}},
		{"listed but absent", func(p *testPack) { delete(p.files, "notes.txt") }, []string{`files["notes.txt"]`, "absent"}},
		{"hash mismatch", func(p *testPack) {
			p.files["notes.txt"] = []byte("Halves, quarters and the number line. Denominator practicE.")
		}, []string{"notes.txt", "does not match"}},
		{"size lie", func(p *testPack) { f := p.m.Files["notes.txt"]; f.Size += 3; p.m.Files["notes.txt"] = f }, []string{"notes.txt", "size"}},
		{"unlisted extra file", func(p *testPack) { p.files["extra.bin"] = []byte("x") }, []string{"extra.bin", "not listed"}},
		{"item file not listed", func(p *testPack) { p.m.Lessons[0].Items[0].File = "nope.pdf" }, []string{"file", "nope.pdf", "not listed"}},
		{"missing title", func(p *testPack) { p.m.Title = "" }, []string{"title", "required"}},
		{"bad id", func(p *testPack) { p.m.ID = "../etc" }, []string{"id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lib := newLibrary(t)
			p := newTestPack("fractions", 1, basicFiles())
			tc.tamper(p)
			_, err := lib.Import(ctx, p.writeDir(t), nil)
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errors.Is(err, pack.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			assertNothingVisible(t, lib)
		})
	}
	t.Run("malformed manifest", func(t *testing.T) {
		lib := newLibrary(t)
		dir := newTestPack("fractions", 1, basicFiles()).writeDir(t)
		os.WriteFile(filepath.Join(dir, pack.ManifestName), []byte("{\n  \"format\": 1,\n  \"id\": \"x\",,\n}"), 0o644)
		_, err := lib.Import(ctx, dir, nil)
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Fatalf("want a JSON error with its line, got %v", err)
		}
		assertNothingVisible(t, lib)
	})
	t.Run("missing manifest", func(t *testing.T) {
		lib := newLibrary(t)
		dir := newTestPack("fractions", 1, basicFiles()).writeDir(t)
		os.Remove(filepath.Join(dir, pack.ManifestName))
		_, err := lib.Import(ctx, dir, nil)
		if !errors.Is(err, pack.ErrInvalid) || !strings.Contains(err.Error(), "manifest.json") {
			t.Fatalf("got %v", err)
		}
	})
}

func assertNothingVisible(t *testing.T, lib *library.Library) {
	t.Helper()
	cs, err := lib.Catalog.Courses(context.Background(), catalog.Filter{})
	if err != nil || len(cs) != 0 {
		t.Fatalf("a refused pack left %d visible courses (err %v)", len(cs), err)
	}
}

func TestSameVersionDifferentContentIsRefused(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	if _, err := lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil); err != nil {
		t.Fatal(err)
	}
	files := basicFiles()
	files["notes.txt"] = []byte("changed notes")
	_, err := lib.Import(ctx, newTestPack("fractions", 1, files).writeDir(t), nil)
	if !errors.Is(err, catalog.ErrConflict) || !strings.Contains(err.Error(), "higher version") {
		t.Fatalf("want ErrConflict telling to bump the version, got %v", err)
	}
}

func TestNewVersionSwitchesAtomically(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	if _, err := lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil); err != nil {
		t.Fatal(err)
	}
	files := basicFiles()
	files["video/intro.webm"] = append(media(1, 700_000), media(9, 300_000)...) // 300 KB appended
	v2 := newTestPack("fractions", 2, files).writeDir(t)
	var during int64
	res, err := lib.ImportWithHooks(ctx, v2, nil, library.Hooks{BeforeCommit: func() {
		// Every file of v2 is stored by now, yet the portal still sees v1.
		c, err := lib.Catalog.Course(ctx, "fractions")
		if err != nil {
			t.Errorf("course vanished mid-import: %v", err)
			return
		}
		during = c.Version
	}})
	if err != nil {
		t.Fatal(err)
	}
	if during != 1 {
		t.Fatalf("version visible before the switch = %d, want 1", during)
	}
	if res.Replaced != 1 || res.Version != 2 {
		t.Fatalf("result %+v", res)
	}
	// Only the changed file was new, and its unchanged leading blocks are
	// in the block map twice (old and new file) for the delta sync to use.
	if res.NewBytes != int64(len(files["video/intro.webm"])) {
		t.Fatalf("new bytes %d", res.NewBytes)
	}
	c, _ := lib.Catalog.Course(ctx, "fractions")
	if c.Version != 2 {
		t.Fatalf("visible version %d after import", c.Version)
	}
	// The old video is garbage now; gc reclaims exactly it.
	gc, err := lib.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gc.Objects != 1 || gc.ObjectBytes != 700_000 {
		t.Fatalf("gc %+v, want the 700,000-byte old video", gc)
	}
	rep, err := lib.Verify(ctx, nil, nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify after gc: %+v %v", rep, err)
	}
}

func TestQuotaAndRemove(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	lib.Quota = 100_000
	_, err := lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil)
	if !errors.Is(err, library.ErrNoSpace) || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("want a quota error, got %v", err)
	}
	lib.Quota = 0
	lib.Reserve = 1 << 62 // more than any disk: the free-space check must refuse
	_, err = lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil)
	if !errors.Is(err, library.ErrNoSpace) || !strings.Contains(err.Error(), "free") {
		t.Fatalf("want a free-space error, got %v", err)
	}
	lib.Reserve = 0
	if _, err := lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil); err != nil {
		t.Fatal(err)
	}
	u, _ := lib.Usage(ctx)
	if len(u.Courses) != 1 || u.StoredBytes == 0 {
		t.Fatalf("usage %+v", u)
	}
	if err := lib.Catalog.Remove(ctx, "fractions"); err != nil {
		t.Fatal(err)
	}
	if err := lib.Catalog.Remove(ctx, "fractions"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	gc, err := lib.GC(ctx)
	if err != nil || gc.Objects != 2 {
		t.Fatalf("gc after rm: %+v %v", gc, err)
	}
	if u, _ := lib.Usage(ctx); u.StoredBytes != 0 {
		t.Fatalf("stored bytes after rm+gc: %d", u.StoredBytes)
	}
}

func TestVerifyQuarantinesAndReportsCourse(t *testing.T) {
	ctx := context.Background()
	lib := newLibrary(t)
	if _, err := lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil); err != nil {
		t.Fatal(err)
	}
	sha, _, err := lib.Catalog.File(ctx, "fractions", "notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(lib.Store.Path(sha), []byte("bit rot"), 0o644)
	rep, err := lib.Verify(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 1 || fmt.Sprint(rep.Missing["fractions"]) != "[notes.txt]" {
		t.Fatalf("report %+v", rep)
	}
	// Importing the same pack again repairs it.
	res, err := lib.Import(ctx, newTestPack("fractions", 1, basicFiles()).writeDir(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewBytes != int64(len(basicFiles()["notes.txt"])) {
		t.Fatalf("repair wrote %d bytes, want just the quarantined file", res.NewBytes)
	}
	if rep, err := lib.Verify(ctx, nil, nil); err != nil || !rep.Clean() {
		t.Fatalf("verify after repair: %+v %v", rep, err)
	}
}
