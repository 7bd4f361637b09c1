package web

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"outpost/appliance/database"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/mediatype"
	"outpost/content/pack"
	"outpost/content/samplecourse"
)

// TestUpgradeFromSchema4KeepsPages: a box whose catalog was written by a
// release at schema 4 (manifest inside course_versions, no stored counts,
// no item positions) opens with this binary, and its portal pages show the
// same courses: counts, sizes, neighbours across lessons, windows, search,
// media and the manifest for export all carried over by migration 0006.
func TestUpgradeFromSchema4KeepsPages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "outpost.db")
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if err := database.MigrateTo(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	store, err := blockstore.Open(filepath.Join(dir, "store"), db)
	if err != nil {
		t.Fatal(err)
	}
	sample, err := samplecourse.Write(filepath.Join(dir, "sample"))
	if err != nil {
		t.Fatal(err)
	}
	pages, err := samplecourse.WritePages(filepath.Join(dir, "pages"), "old-pages", 45)
	if err != nil {
		t.Fatal(err)
	}
	raws := map[string][]byte{}
	for _, p := range []struct {
		dir string
		m   *pack.Manifest
	}{{filepath.Join(dir, "sample"), sample}, {filepath.Join(dir, "pages"), pages}} {
		for name, f := range p.m.Files {
			data, err := os.ReadFile(filepath.Join(p.dir, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Put(ctx, bytes.NewReader(data), blockstore.Expect{SHA256: f.SHA256, Size: f.Size}, nil); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := os.ReadFile(filepath.Join(p.dir, pack.ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		raws[p.m.ID] = raw
		commitSchema4(t, db, p.m, raw)
	}
	db.Close()

	sqlDB, err := database.Open(ctx, file)
	if err != nil {
		t.Fatalf("upgrade from schema 4: %v", err)
	}
	defer sqlDB.Close()
	store, err = blockstore.Open(filepath.Join(dir, "store"), sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(sqlDB)
	h, err := New(Options{Courses: cat, Objects: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string, want ...string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s lacks %q", path, w)
			}
		}
	}

	cs, err := cat.Courses(ctx, catalog.Filter{})
	if err != nil || len(cs) != 2 {
		t.Fatalf("courses after upgrade: %v %v", cs, err)
	}
	for _, c := range cs {
		m := map[string]*pack.Manifest{sample.ID: sample, pages.ID: pages}[c.ID]
		var size int64
		for _, f := range m.Files {
			size += f.Size
		}
		if c.ItemCount != len(m.Items()) || c.Bytes != size || c.ImportedAt.Unix() != 1700000000 {
			t.Errorf("%s after upgrade: %d items, %d bytes, imported %v; want %d, %d, 1700000000", c.ID, c.ItemCount, c.Bytes, c.ImportedAt.Unix(), len(m.Items()), size)
		}
		raw, err := cat.Manifest(ctx, c.ID)
		if err != nil || !bytes.Equal(raw, raws[c.ID]) {
			t.Errorf("%s: manifest for export changed in the upgrade (%v)", c.ID, err)
		}
	}
	get("/", "old-pages", sample.Title)
	get("/c/old-pages", "Page 1: ", "Page 45: ")
	// Page 21 opens lesson 2: its neighbours are the end of lesson 1 and
	// the next page.
	get("/c/old-pages/i/"+samplecourse.PageItemID(20), "/c/old-pages/i/"+samplecourse.PageItemID(19), "/c/old-pages/i/"+samplecourse.PageItemID(21))
	first := sample.Lessons[0].Items[0]
	get("/c/"+sample.ID+"/i/"+first.ID, first.Title)
	get("/m/old-pages/" + samplecourse.PageItemID(3))
	get("/search?q=evapor", sample.Title)

	// A new version commits over the carried rows.
	m := *pages
	m.Version = 2
	raw, _ := m.Marshal()
	if _, err := cat.Commit(ctx, &m, raw, nil); err != nil {
		t.Fatalf("commit over upgraded rows: %v", err)
	}
	get("/c/old-pages/i/"+samplecourse.PageItemID(44), "/c/old-pages/i/"+samplecourse.PageItemID(43))
}

// commitSchema4 writes a course version the way the release at schema 4
// did (its catalog.Commit, statement for statement), so the upgrade test
// carries real rows.
func commitSchema4(t *testing.T, db *sql.DB, m *pack.Manifest, raw []byte) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	subjects, _ := json.Marshal(m.Subjects)
	grades, _ := json.Marshal(m.Grades)
	if m.Grades == nil {
		grades = []byte("[]")
	}
	exec(`INSERT INTO course_versions(course_id, version, title, description, language, subjects, grades, manifest, manifest_sha256, imported_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, m.Version, m.Title, m.Description, m.Language, string(subjects), string(grades), raw, catalog.ManifestSum(raw), 1700000000)
	for _, s := range m.Subjects {
		exec(`INSERT INTO course_subjects(course_id, version, subject) VALUES (?, ?, ?)`, m.ID, m.Version, s)
	}
	for p, f := range m.Files {
		exec(`INSERT INTO version_files(course_id, version, path, sha256, size) VALUES (?, ?, ?, ?, ?)`, m.ID, m.Version, p, f.SHA256, f.Size)
	}
	exec(`INSERT INTO search(course_id, version, item_id, title, body) VALUES (?, ?, '', ?, ?)`, m.ID, m.Version, m.Title, m.Description)
	for li, l := range m.Lessons {
		exec(`INSERT INTO lessons(course_id, version, idx, lesson_id, title) VALUES (?, ?, ?, ?, ?)`, m.ID, m.Version, li, l.ID, l.Title)
		for ii, it := range l.Items {
			f := m.Files[it.File]
			entry := it.Entry
			if it.Kind == pack.KindHTML5 && entry == "" {
				entry = "index.html"
			}
			exec(`INSERT INTO items(course_id, version, lesson_idx, idx, item_id, kind, title, path, sha256, size, mime, entry, text_path)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				m.ID, m.Version, li, ii, it.ID, string(it.Kind), it.Title, it.File, f.SHA256, f.Size, mediatype.ForItem(string(it.Kind), it.Type, it.File), entry, it.TextFile)
			exec(`INSERT INTO search(course_id, version, item_id, title, body) VALUES (?, ?, ?, ?, ?)`, m.ID, m.Version, it.ID, it.Title, it.Text)
		}
	}
	exec(`INSERT INTO courses(id, current_version) VALUES (?, ?)`, m.ID, m.Version)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
