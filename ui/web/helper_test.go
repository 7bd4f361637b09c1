package web

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/pack"
)

// testEnv is a portal over real components: a migrated SQLite database, a
// block store on disk, the catalog, and the handler behind a real HTTP
// server on 127.0.0.1.
type testEnv struct {
	t       *testing.T
	srv     *httptest.Server
	handler http.Handler
	db      *catalog.Catalog
	sql     *sql.DB // the catalog's database, for rows no import would write
	store   *blockstore.Store
	files   map[string][]byte // pack path → bytes, of every committed pack
	logs    *syncBuffer
}

type envOption func(*Options)

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	dir := t.TempDir()
	sqlDB := databasetest.Open(t)
	store, err := blockstore.Open(filepath.Join(dir, "store"), sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, db: catalog.New(sqlDB), sql: sqlDB, store: store, files: map[string][]byte{}, logs: &syncBuffer{}}
	o := Options{
		Courses:         e.db,
		Objects:         store,
		DefaultLanguage: "en",
		Logger:          slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	for _, f := range opts {
		f(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// commit stores every file of a pack and makes the course visible, the way
// an import does.
func (e *testEnv) commit(m *pack.Manifest, files map[string][]byte) {
	e.t.Helper()
	ctx := context.Background()
	m.Files = map[string]pack.File{}
	for p, data := range files {
		sum := sha256.Sum256(data)
		m.Files[p] = pack.File{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	}
	if err := m.Validate(); err != nil {
		e.t.Fatal(err)
	}
	for p, data := range files {
		f := m.Files[p]
		if _, err := e.store.Put(ctx, bytes.NewReader(data), blockstore.Expect{SHA256: f.SHA256, Size: f.Size}, nil); err != nil {
			e.t.Fatal(err)
		}
		e.files[p] = data
	}
	raw, err := m.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Commit(ctx, m, raw, nil); err != nil {
		e.t.Fatal(err)
	}
}

// Words the test course uses to check search: each appears in one place
// only.
const (
	wordInText  = "chlorophyll" // only in the song's inline text
	videoSize   = 20000
	testCourse  = "test-course"
	frenchCours = "cours-fr"
)

// pseudoRandom is deterministic filler that never repeats within a few
// hundred bytes, so a wrong range offset shows up as wrong bytes.
func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// quizZip has stored and deflated members, plus names a hostile pack could
// carry (absolute, "..", backslash) that must never be reachable.
func quizZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, method uint16, data string) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, data)
	}
	add("index.html", zip.Store, quizIndex)
	add("app.js", zip.Deflate, quizJS)
	add("css/", zip.Store, "")
	add("css/style.css", zip.Deflate, strings.Repeat("body { color: #123; }\n", 50))
	add("../evil.txt", zip.Store, "EVIL-OUTSIDE")
	add("/abs.txt", zip.Store, "EVIL-ABSOLUTE")
	add(`dir\win.txt`, zip.Store, "EVIL-BACKSLASH")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const quizIndex = `<!DOCTYPE html><html><head><link rel="stylesheet" href="css/style.css"></head>
<body><p id="out">waiting</p><script src="app.js"></script></body></html>`

const quizJS = `document.getElementById("out").textContent = "ready";` + "\n"

// addTestCourses commits an English course with one item of every kind and
// a one-item French course.
func (e *testEnv) addTestCourses() {
	e.t.Helper()
	e.commit(&pack.Manifest{
		Format:      pack.FormatVersion,
		ID:          testCourse,
		Version:     1,
		Title:       "Plants & Light",
		Description: "How plants <grow> using sunlight.",
		Language:    "en",
		Subjects:    []string{"science", "biology"},
		Grades:      []string{"5"},
		Lessons: []pack.Lesson{
			{ID: "basics", Title: "Basics", Items: []pack.Item{
				{ID: "intro-video", Kind: pack.KindVideo, Title: "Introduction video", File: "media/intro.webm", TextFile: "media/intro.vtt"},
				{ID: "notes", Kind: pack.KindPDF, Title: "Lesson notes", File: "docs/notes.pdf"},
				{ID: "reading", Kind: pack.KindDocument, Title: "A short reading", File: "docs/reading.txt"},
			}},
			{ID: "practice", Title: "Practice", Items: []pack.Item{
				{ID: "song", Kind: pack.KindAudio, Title: "The leaf song", File: "media/song.ogg",
					Text: "A song about " + wordInText + " and the <i>green</i> leaf."},
				{ID: "quiz", Kind: pack.KindHTML5, Title: "Leaf quiz", File: "activities/quiz.zip", Entry: "index.html"},
				{ID: "book", Kind: pack.KindEPUB, Title: "Plant book", File: "books/plants book.epub"},
			}},
		},
	}, map[string][]byte{
		"media/intro.webm":       pseudoRandom(videoSize),
		"media/intro.vtt":        []byte("WEBVTT\n\n00:00.000 --> 00:02.000\nHello plants\n"),
		"docs/notes.pdf":         []byte("%PDF-1.4\n% not a real PDF, the portal does not look inside\n"),
		"docs/reading.txt":       []byte("Plants turn light into food.\n<script>alert(1)</script>\n"),
		"media/song.ogg":         pseudoRandom(3000)[1000:],
		"activities/quiz.zip":    quizZip(e.t),
		"books/plants book.epub": []byte("PK fake epub"),
	})
	e.commit(&pack.Manifest{
		Format:   pack.FormatVersion,
		ID:       frenchCours,
		Version:  1,
		Title:    "Les fractions",
		Language: "fr",
		Subjects: []string{"maths"},
		Lessons: []pack.Lesson{{ID: "l1", Title: "Moitiés", Items: []pack.Item{
			{ID: "fiche", Kind: pack.KindDocument, Title: "Fiche", File: "fiche.txt"},
		}}},
	}, map[string][]byte{"fiche.txt": []byte("Une moitié, un quart.\n")})
}

// do sends a request and returns the response with its body read.
func (e *testEnv) do(method, path string, header map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, body
}

func (e *testEnv) get(path string) (*http.Response, string) {
	e.t.Helper()
	resp, body := e.do("GET", path, nil)
	return resp, string(body)
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// syncBuffer collects log output from handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
