package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/content/catalog"
	"outpost/content/samplecourse"
)

// pagesPortal is the portal over a real SQLite catalog holding the scale
// benchmark's course of n generated HTML pages (samplecourse.WritePages),
// committed as an import would. Item and course pages never open the pages'
// files (an HTML document is framed, not read), so the files stay in the
// pack folder and the store is empty.
func pagesPortal(tb testing.TB, n int) http.Handler {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	m, err := samplecourse.WritePages(filepath.Join(dir, "pack"), "bench-pages", n)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pack", "manifest.json"))
	if err != nil {
		tb.Fatal(err)
	}
	cat := catalog.New(databasetest.Open(tb))
	if _, err := cat.Commit(ctx, m, raw, nil); err != nil {
		tb.Fatal(err)
	}
	h, err := New(Options{Courses: cat, Objects: noObjects{}, DefaultLanguage: "en"})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

type noObjects struct{}

func (noObjects) OpenObject(string) (*os.File, error) { return nil, os.ErrNotExist }

// benchPages serves paths round robin through the whole handler into a
// writer that keeps nothing, so what is measured is the portal's own cost
// per page (lookups, rendering, headers), not a recorder's copying.
func benchPages(b *testing.B, h http.Handler, paths []string, header http.Header) {
	reqs := make([]*http.Request, len(paths))
	for i, p := range paths {
		reqs[i] = httptest.NewRequest("GET", p, nil)
		for k, v := range header {
			reqs[i].Header[k] = v
		}
	}
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w := &countingWriter{h: http.Header{}}
		h.ServeHTTP(w, reqs[i%len(reqs)])
		if w.status != http.StatusOK && w.status != http.StatusNotModified {
			b.Fatalf("%s: status %d", reqs[i%len(reqs)].URL, w.status)
		}
		bytes += w.n
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "B/page")
}

// countingWriter counts what a handler writes and keeps none of it.
type countingWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += int64(len(b))
	return len(b), nil
}
func (w *countingWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

// BenchmarkCoursePage renders the pages of the course listing (200 items
// each) of a 1,000-page course, as the scale benchmark (docs/BENCHMARKS.md
// section e) asks for them.
func BenchmarkCoursePage(b *testing.B) {
	const n = 1000
	h := pagesPortal(b, n)
	var paths []string
	for p := 1; p <= (n+coursePageItems-1)/coursePageItems; p++ {
		paths = append(paths, "/c/bench-pages?page="+strconv.Itoa(p))
	}
	benchVariants(b, h, paths)
}

// benchVariants runs the paths as browsers ask for them (gzip, a language),
// as a client that takes no compression does, and with the page cache off (every page
// rendered), which is what the first view of a page costs.
func benchVariants(b *testing.B, h http.Handler, paths []string) {
	gz := http.Header{"Accept-Encoding": {"gzip, deflate, br"}, "Accept-Language": {"en-US,en;q=0.9"}}
	b.Run("gzip", func(b *testing.B) { benchPages(b, h, paths, gz) })
	b.Run("identity", func(b *testing.B) { benchPages(b, h, paths, nil) })
	b.Run("uncached", func(b *testing.B) {
		s := h.(*server)
		kept := s.pages
		s.pages = newPageCache(0)
		defer func() { s.pages = kept }()
		benchPages(b, h, paths, gz)
	})
}

// BenchmarkItemPage renders item pages of a 1,000-page course, each item in
// turn.
func BenchmarkItemPage(b *testing.B) {
	const n = 1000
	h := pagesPortal(b, n)
	var paths []string
	for i := range n {
		paths = append(paths, fmt.Sprintf("/c/bench-pages/i/%s", samplecourse.PageItemID(i)))
	}
	benchVariants(b, h, paths)
}
