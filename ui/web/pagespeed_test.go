package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/html"

	"outpost/content/catalog"
	"outpost/content/pack"
)

// rawGet sends a GET whose transport neither asks for nor undoes any
// compression, so the test sees the bytes as sent.
func (e *testEnv) rawGet(path string, header map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
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

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("bad gzip: %v", err)
	}
	return out
}

// TestPagesCompressed: every page goes out gzip-compressed to a browser
// that accepts it, as kiwix-serve sends its pages, and as it is to a
// client that does not. A course page of 200 items was 56 KB on the wire.
func TestPagesCompressed(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	e.commit(longCourse(200, "Item"))
	for _, p := range []string{"/c/long", "/c/long/i/i007", "/c/" + testCourse, "/", "/search?q=leaf", "/c/no-such-course"} {
		plain, body := e.rawGet(p, nil)
		if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
			t.Errorf("%s without Accept-Encoding: Content-Encoding %q, Content-Length %q for %d bytes",
				p, plain.Header.Get("Content-Encoding"), plain.Header.Get("Content-Length"), len(body))
		}
		resp, gz := e.rawGet(p, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
		if resp.StatusCode != plain.StatusCode {
			t.Errorf("%s: status %d compressed, %d not", p, resp.StatusCode, plain.StatusCode)
		}
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: sent with Content-Encoding %q to a browser that takes gzip (%d bytes)", p, resp.Header.Get("Content-Encoding"), len(gz))
			continue
		}
		if !bytes.Equal(gunzip(t, gz), body) {
			t.Errorf("%s: the compressed page is not the page", p)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") || !strings.Contains(plain.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: Vary %q / %q lacks Accept-Encoding", p, resp.Header.Get("Vary"), plain.Header.Get("Vary"))
		}
		checkPageHeaders(t, resp)
		// Kept pages are kept compressed: a client without gzip gets the
		// same page from the cache, inflated, with its length.
		again, body2 := e.rawGet(p, nil)
		if !bytes.Equal(body2, body) || again.Header.Get("Content-Length") != fmt.Sprint(len(body)) || again.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s asked again without gzip: %d bytes (Content-Length %q, Content-Encoding %q), want the %d of the first answer",
				p, len(body2), again.Header.Get("Content-Length"), again.Header.Get("Content-Encoding"), len(body))
		}
		head, _ := e.do("HEAD", p, nil)
		if head.StatusCode != plain.StatusCode || head.ContentLength != int64(len(body)) {
			t.Errorf("HEAD %s: status %d, length %d; want %d, %d", p, head.StatusCode, head.ContentLength, plain.StatusCode, len(body))
		}
		if p == "/c/long" {
			t.Logf("course page of 200 items: %d bytes, %d compressed", len(body), len(gz))
		}
	}
	// gzip refused with q=0 is not sent.
	resp, _ := e.rawGet("/c/long", map[string]string{"Accept-Encoding": "gzip;q=0, identity"})
	if resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate, br": true, "br;q=1.0, gzip;q=0.8, *;q=0.1": true, "GZIP": true,
		"deflate, br": false, "gzip;q=0": false, "gzip; q=0.000": false, "*": true, "*;q=0": false, "identity": false, "x-gzip-not": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Accept-Encoding", h)
		}
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", h, got, want)
		}
	}
}

// longCourse is a course of n documents in lessons of 50, titled
// title + the item's number.
func longCourse(n int, title string) (*pack.Manifest, map[string][]byte) {
	m := &pack.Manifest{Format: pack.FormatVersion, ID: "long", Version: 1, Title: "Long", Language: "en"}
	files := map[string][]byte{}
	for i := range n {
		if i%50 == 0 {
			m.Lessons = append(m.Lessons, pack.Lesson{ID: fmt.Sprintf("l%d", i/50), Title: fmt.Sprintf("Lesson %d", i/50)})
		}
		p := fmt.Sprintf("p/%03d.txt", i)
		files[p] = []byte(fmt.Sprintf("page %d", i))
		l := &m.Lessons[len(m.Lessons)-1]
		l.Items = append(l.Items, pack.Item{ID: fmt.Sprintf("i%03d", i), Kind: pack.KindDocument, Title: fmt.Sprintf("%s %03d", title, i), File: p})
	}
	return m, files
}

// TestPageValidators: course and item pages carry a validator; a browser
// that has the page gets a 304 instead of the page, and a new version of
// the course, or the same version number with other content, is a new
// page at once.
func TestPageValidators(t *testing.T) {
	e := newEnv(t)
	m, files := longCourse(30, "First")
	e.commit(m, files)
	for _, p := range []string{"/c/long", "/c/long/i/i003", "/c/long?hl=fr"} {
		resp, body := e.rawGet(p, map[string]string{"Accept-Encoding": "gzip"})
		tag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || tag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: status %d, ETag %q, Cache-Control %q", p, resp.StatusCode, tag, resp.Header.Get("Cache-Control"))
		}
		again, body2 := e.rawGet(p, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": tag})
		if again.StatusCode != http.StatusNotModified || len(body2) != 0 || again.Header.Get("ETag") != tag {
			t.Errorf("%s with If-None-Match %s: status %d, %d bytes, ETag %q; want 304", p, tag, again.StatusCode, len(body2), again.Header.Get("ETag"))
		}
		// The uncompressed page is the same page: the same validator.
		plain, _ := e.rawGet(p, nil)
		if plain.Header.Get("ETag") != tag {
			t.Errorf("%s: ETag %q uncompressed, %q compressed", p, plain.Header.Get("ETag"), tag)
		}
		if len(body) == 0 {
			t.Errorf("%s: empty", p)
		}
	}
	en, _ := e.rawGet("/c/long", nil)
	fr, _ := e.rawGet("/c/long?hl=fr", nil)
	if en.Header.Get("ETag") == fr.Header.Get("ETag") {
		t.Error("the English and French course pages share a validator")
	}

	// Version 2 renames the items: seen at once, with a new validator.
	old := en.Header.Get("ETag")
	oldItem, _ := e.rawGet("/c/long/i/i003", nil)
	m, files = longCourse(30, "Second")
	m.Version = 2
	e.commit(m, files)
	resp, body := e.rawGet("/c/long", map[string]string{"If-None-Match": old})
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Second 003") || strings.Contains(string(body), "First 003") || resp.Header.Get("ETag") == old {
		t.Errorf("after the switch to version 2: status %d, ETag %q (was %q), shows the new titles %v", resp.StatusCode, resp.Header.Get("ETag"), old, strings.Contains(string(body), "Second 003"))
	}
	resp, body = e.rawGet("/c/long/i/i003", map[string]string{"If-None-Match": oldItem.Header.Get("ETag")})
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Second 003") {
		t.Errorf("the item page after the switch: status %d, new title %v", resp.StatusCode, strings.Contains(string(body), "Second 003"))
	}

	// Removed, then a different pack under the same id and version.
	if err := e.db.Remove(context.Background(), "long"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.rawGet("/c/long", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the removed course answers %d", resp.StatusCode)
	}
	m, files = longCourse(30, "Third")
	m.Version = 2
	e.commit(m, files)
	for _, p := range []string{"/c/long", "/c/long/i/i003"} {
		if _, body := e.rawGet(p, nil); !strings.Contains(string(body), "Third 003") {
			t.Errorf("%s shows the removed pack's version 2, not the new one", p)
		}
	}
}

// countingCourses counts what the portal asks the catalog.
type countingCourses struct {
	*catalog.Catalog
	editions, windows, contexts atomic.Int64
}

func (c *countingCourses) Edition(ctx context.Context, id string) (catalog.Edition, error) {
	c.editions.Add(1)
	return c.Catalog.Edition(ctx, id)
}

func (c *countingCourses) CourseWindow(ctx context.Context, id string, offset, limit int) (*catalog.Course, error) {
	c.windows.Add(1)
	return c.Catalog.CourseWindow(ctx, id, offset, limit)
}

func (c *countingCourses) ItemContext(ctx context.Context, courseID, itemID string) (*catalog.ItemContext, error) {
	c.contexts.Add(1)
	return c.Catalog.ItemContext(ctx, courseID, itemID)
}

// TestPageCost bounds what a course page costs the box: a page seen before
// (by anyone, in this language and course version) is one catalog lookup
// by primary key and a few dozen allocations; a page rendered anew a
// bounded number of allocations per item. Before, every view of a course
// page rendered 200 items through the template: ~100 allocations an item
// and 2.7 ms of CPU.
func TestPageCost(t *testing.T) {
	var counted *countingCourses
	e := newEnv(t, func(o *Options) {
		counted = &countingCourses{Catalog: o.Courses.(*catalog.Catalog)}
		o.Courses = counted
	})
	e.commit(longCourse(400, "Item"))
	h := e.handler
	serve := func(p string) {
		w := &countingWriter{h: http.Header{}}
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		r.Header.Set("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.8")
		h.ServeHTTP(w, r)
		if w.status != 200 {
			t.Fatalf("%s: status %d", p, w.status)
		}
	}
	for _, p := range []string{"/c/long?page=2", "/c/long/i/i250"} {
		serve(p) // rendered and kept
		e0, w0, c0 := counted.editions.Load(), counted.windows.Load(), counted.contexts.Load()
		allocs := testing.AllocsPerRun(20, func() { serve(p) })
		n := float64(counted.editions.Load() - e0)
		if n != 21 || counted.windows.Load() != w0 || counted.contexts.Load() != c0 {
			t.Errorf("%s seen before: %v edition lookups for 21 views, %d windows, %d item lookups; want one edition lookup a view and nothing else",
				p, n, counted.windows.Load()-w0, counted.contexts.Load()-c0)
		}
		// A hit allocates for the request's parsing, the edition query and
		// the headers, none of it per item: 46 measured.
		if allocs > 100 {
			t.Errorf("%s seen before: %.0f allocations a view, want ≤ 100", p, allocs)
		}
		t.Logf("%s seen before: %.0f allocations a view", p, allocs)
	}

	// Rendered anew each time: reading an item row allocates ~20 (a
	// string per text column, the driver's values), writing it ~5; 60
	// leaves room for a driver update, where the template's ~100 an item
	// would not fit.
	s := e.handler.(*server)
	s.pages = newPageCache(0)
	allocs := testing.AllocsPerRun(10, func() { serve("/c/long?page=2") })
	if perItem := allocs / coursePageItems; perItem > 60 {
		t.Errorf("a course page rendered anew: %.0f allocations, %.0f an item; want ≤ 60 an item", allocs, perItem)
	}
	t.Logf("a course page rendered anew: %.0f allocations (%.1f an item)", allocs, allocs/coursePageItems)
}

// TestCoursePageSize: an item on a course page is a short row, not ~250
// bytes of markup (an <img> with its full address, two lang attributes,
// indentation: ~230 bytes beyond the title and id). Bytes a row beyond
// the title and id every design needs: measured 96 (the kind and size a
// learner reads are 14 of them); the bound, 128, leaves room for a class
// or an attribute more, not for the old row.
func TestCoursePageSize(t *testing.T) {
	e := newEnv(t)
	m, files := longCourse(200, "Item")
	e.commit(m, files)
	_, page := e.get("/c/long")
	var titles int
	for _, l := range m.Lessons {
		titles += len(l.Title)
		for _, it := range l.Items {
			titles += len(it.Title) + len(it.ID) // the id is in the link
		}
	}
	_, empty := e.get("/c/long?page=99") // the same page without items
	perItem := (len(page) - len(empty) - titles) / 200
	if perItem > 128 {
		t.Errorf("a course page spends %d bytes of markup an item, want ≤ 128 (%d bytes for 200 items)", perItem, len(page))
	}
	t.Logf("course page of 200 items: %d bytes, %d of markup an item", len(page), perItem)
}

// TestCourseListEscapes: the lessons and items of a course page are
// written without html/template (for speed), so the escaping is checked
// here, by parsing the page, against rows no import would accept (an older
// build, a damaged database): whatever a title or id holds comes back as
// text or as an attribute value, and every link stays on the box.
func TestCourseListEscapes(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	hostile := []string{`"><script>alert(1)</script>`, `' onmouseover='alert(2)`, `&amp; &lt;b&gt; <!-- -->`, `javascript:alert(3)`, `//evil.example/x?y#z`}
	for i, h := range hostile {
		if _, err := e.sql.Exec(`UPDATE items SET title = ?, item_id = ? WHERE course_id = ? AND pos = ?`, h+" title", h, testCourse, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.sql.Exec(`UPDATE lessons SET title = ?, lesson_id = ? WHERE course_id = ? AND idx = 0`, hostile[0], hostile[1], testCourse); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sql.Exec(`UPDATE course_versions SET language = ? WHERE course_id = ?`, `fr" onclick="alert(4)`, testCourse); err != nil {
		t.Fatal(err)
	}
	for _, hl := range []string{"", "?hl=fr"} {
		_, page := e.get("/c/" + testCourse + hl)
		doc, err := html.Parse(strings.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		var links map[string]string // href → text
		var lessons []string
		var walk func(n *html.Node, inItems bool)
		links = map[string]string{}
		walk = func(n *html.Node, inItems bool) {
			if n.Type == html.ElementNode {
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") {
						t.Errorf("an element has the attribute %s=%q", a.Key, a.Val)
					}
				}
				switch n.Data {
				case "script":
					t.Error("the page has a <script> element")
				case "ol":
					if attrOf(n, "class") == "items" {
						inItems = true
					}
				case "a":
					if inItems {
						links[attrOf(n, "href")] = textOf(n)
					}
				case "li":
					if attrOf(n, "class") == "lesson" {
						lessons = append(lessons, attrOf(n, "id"))
					}
				case "h3":
					lessons = append(lessons, textOf(n))
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c, inItems)
			}
		}
		walk(doc, false)
		for _, h := range hostile {
			href := "/c/" + testCourse + "/i/" + url.PathEscape(h) + hl
			if got, ok := links[href]; !ok || got != h+" title" {
				t.Errorf("item %q: link %q shows %q (present %v); links: %q", h, href, got, ok, links)
			}
		}
		for href := range links {
			if !strings.HasPrefix(href, "/c/"+testCourse+"/i/") {
				t.Errorf("an item links to %q, off the course", href)
			}
		}
		if len(lessons) < 2 || lessons[0] != "lesson-"+hostile[1] || lessons[1] != hostile[0] {
			t.Errorf("the first lesson reads %q, want id %q and title %q", lessons, "lesson-"+hostile[1], hostile[0])
		}
	}
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// TestCachedPageEchoesNothing: a kept page is the same for every request
// with its key, so it must carry nothing of the request that rendered it
// beyond the page number and language; a link with other parameters once
// put them in the page's language and pager links.
func TestCachedPageEchoesNothing(t *testing.T) {
	e := newEnv(t)
	e.commit(longCourse(450, "Item"))
	_, first := e.get("/c/long?page=2&from=junk%22x&hl=fr")
	_, second := e.get("/c/long?hl=fr&page=2")
	for _, page := range []string{first, second} {
		mustNotContain(t, page, "junk", "from=")
		mustContain(t, page, `href="/c/long?hl=en&amp;page=2"`, `href="/c/long?hl=fr"`, `href="/c/long?hl=fr&amp;page=3"`)
	}
	_, item := e.get("/c/long/i/i010?x=junk")
	mustNotContain(t, item, "junk")
	mustContain(t, item, `href="/c/long/i/i010?hl=fr"`)
}

// TestSizeFormat: sizeFormat writes what the printer would, in every
// language, across the units' edges.
func TestSizeFormat(t *testing.T) {
	tr, err := newTranslator("en")
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int64{0, 1, 7, 999, 1000, 1049, 1050, 1051, 99_949, 99_950, 999_949, 999_950, 999_999, 1_000_000, 2_345_678,
		999_949_999, 999_950_000, 1_000_000_000, 12_345_678_901, 999_949_999_999, 999_950_000_000, 5_000_000_000_000, -1}
	for i := range 2000 {
		sizes = append(sizes, int64(i)*7919, int64(i)*104_729_3)
	}
	for idx := range supported {
		p := tr.printer(locale{idx: idx})
		f := newSizeFormat(p)
		if !f.ok {
			t.Errorf("%s: the size patterns were not understood", supported[idx])
		}
		for _, n := range sizes {
			if got, want := f.format(n), formatSize(p, n); got != want {
				t.Errorf("%s: %d bytes: %q, want %q", supported[idx], n, got, want)
			}
		}
	}
}

// TestPageCacheBounded: whatever is put in, the cache holds at most its
// budget, forgets the least recently used first, and keeps no page larger
// than a sixteenth of it.
func TestPageCacheBounded(t *testing.T) {
	const max = 64 << 10
	c := newPageCache(max)
	page := func(n int) *rendered { return &rendered{gz: make([]byte, n), size: 10 * n, etag: `W/"x"`} }
	key := func(i int) pageKey { return pageKey{course: "c", item: fmt.Sprint(i)} }
	for i := range 1000 {
		c.put(key(i), page(1000))
		c.get(key(0)) // used all along: kept over pages put since
		if _, size := c.bytes(); size > max {
			t.Fatalf("after %d pages the cache holds %d bytes, over its %d", i+1, size, max)
		}
	}
	if c.get(key(999)) == nil || c.get(key(1)) != nil || c.get(key(0)) == nil {
		t.Error("the cache forgot recently used pages before older ones")
	}
	c.put(key(-1), page(max/16))
	if c.get(key(-1)) != nil {
		t.Error("the cache kept a page of a sixteenth of its budget")
	}
	n, size := c.bytes()
	t.Logf("%d pages of 1,000 bytes kept, %d bytes counted", n, size)
}

// TestLanguageMemoBounded: the remembered Accept-Language headers stay
// bounded in number and size whatever strangers send, and a remembered
// header chooses what it chose the first time.
func TestLanguageMemoBounded(t *testing.T) {
	tr, err := newTranslator("en")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 * seenLanguagesMax {
		tr.fromHeader(fmt.Sprintf("fr-x-%d", i))
		tr.fromHeader(strings.Repeat("fr,", 1000) + fmt.Sprint(i))
		tr.mu.Lock()
		n, long := len(tr.seen), 0
		for k := range tr.seen {
			long = max(long, len(k))
		}
		tr.mu.Unlock()
		if n > seenLanguagesMax || long > seenHeaderMax {
			t.Fatalf("after %d headers: %d remembered, the longest %d bytes", i+1, n, long)
		}
	}
	for range 2 {
		if got := tr.fromHeader("fr-CA,fr;q=0.9,en;q=0.5"); supported[got].String() != "fr" {
			t.Errorf("fr-CA chose %s", supported[got])
		}
		if got := tr.fromHeader("de-DE"); got != tr.def {
			t.Errorf("de-DE chose %s, want the default", supported[got])
		}
	}
}

// TestPagesDuringSwitch: pages asked for by many browsers while a new
// version commits are each the old version's or the new one's, never a
// mix, and once the commit has returned every page is the new one's.
func TestPagesDuringSwitch(t *testing.T) {
	e := newEnv(t)
	e.commit(longCourse(450, "Old"))
	paths := []string{"/c/long", "/c/long?page=2", "/c/long?page=3&hl=fr", "/c/long/i/i007", "/c/long/i/i300?hl=fr"}
	check := func(p, page string, wantNew bool) error {
		old, nw := strings.Contains(page, "Old "), strings.Contains(page, "New ")
		if old == nw || wantNew && !nw {
			return fmt.Errorf("%s: old titles %v, new titles %v (want new: %v)", p, old, nw, wantNew)
		}
		return nil
	}
	// get is rawGet for other goroutines, which must not stop the test.
	get := func(p string) (string, error) {
		resp, err := e.srv.Client().Get(e.srv.URL + p) // the client inflates gzip
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("%s: status %d", p, resp.StatusCode)
		}
		return string(b), err
	}
	done := make(chan struct{})
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := 0; i < 400; i++ {
				select {
				case <-done:
					return
				default:
				}
				p := paths[(c+i)%len(paths)]
				page, err := get(p)
				if err == nil {
					err = check(p, page, false)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	m, files := longCourse(450, "New")
	m.Version = 2
	e.commit(m, files)
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range paths {
		_, page := e.rawGet(p, nil)
		if err := check(p, string(page), true); err != nil {
			t.Error(err)
		}
	}
}
