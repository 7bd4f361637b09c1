package web

import (
	"context"
	"errors"
	"html"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"outpost/content/catalog"
	"outpost/content/pack"
)

// mustContain fails for each wanted fragment the page lacks.
func mustContain(t *testing.T, page string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func mustNotContain(t *testing.T, page string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(page, b) {
			t.Errorf("page contains %q", b)
		}
	}
}

func checkPageHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	h := resp.Header
	if got := h.Get("Content-Security-Policy"); got != pageCSP {
		t.Errorf("CSP %q", got)
	}
	for _, d := range []string{"default-src 'self'", "frame-src 'self'", "object-src 'self'", "img-src 'self' data:", "media-src 'self'"} {
		if !strings.Contains(h.Get("Content-Security-Policy"), d) {
			t.Errorf("CSP lacks %s", d)
		}
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers: nosniff %q referrer %q", h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
	}
	if h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
}

func TestHome(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	resp, page := e.get("/")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkPageHeaders(t, resp)
	mustContain(t, page,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<a href="/c/test-course">Plants &amp; Light</a>`,
		`How plants &lt;grow&gt; using sunlight.`,
		`<a href="/c/cours-fr">Les fractions</a>`,
		`<h2 class="subject">science</h2>`, `<h2 class="subject">biology</h2>`, `<h2 class="subject">maths</h2>`,
		`6 items`, `1 item ·`,
		`href="/?lang=fr"`, `href="/?subject=maths"`,
		`<form class="searchbar" action="/search" method="get"`,
	)
	// A course with two subjects is listed under both.
	if n := strings.Count(page, `<a href="/c/test-course">`); n != 2 {
		t.Errorf("the two-subject course is listed %d times, want 2", n)
	}

	_, page = e.get("/?lang=fr")
	mustContain(t, page, "Les fractions", `href="/?lang=fr" aria-current="true"`)
	mustNotContain(t, page, "Plants &amp; Light")

	_, page = e.get("/?subject=biology")
	mustContain(t, page, "Plants &amp; Light", `<h2 class="subject">biology</h2>`)
	mustNotContain(t, page, "Les fractions", `<h2 class="subject">science</h2>`)

	_, page = e.get("/?subject=knitting")
	mustContain(t, page, "No course matches these filters.", `<a href="/">Show all courses</a>`)
}

func TestHomeEmpty(t *testing.T) {
	e := newEnv(t)
	_, page := e.get("/")
	mustContain(t, page, "No courses on this box yet.")
}

func TestSearch(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	resp, page := e.get("/search?q=" + wordInText)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkPageHeaders(t, resp)
	// The word is only in the song's text, not in any title.
	mustContain(t, page,
		`href="/c/test-course/i/song"`, "The leaf song",
		"<mark>"+wordInText+"</mark>",
		"&lt;i&gt;green&lt;/i&gt;", // the snippet's own markup is text, not HTML
		`value="`+wordInText+`"`,
	)
	mustNotContain(t, page, "<i>green")

	_, page = e.get("/search?q=" + wordInText + "&lang=fr")
	mustContain(t, page, "Nothing found for “"+wordInText+"”")

	_, page = e.get("/search?q=")
	mustContain(t, page, "Type a few words to search")

	_, page = e.get("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
	mustNotContain(t, page, "<script>")
	mustContain(t, page, "&lt;script&gt;")

	// Course-level hits link to the course.
	_, page = e.get("/search?q=fractions")
	mustContain(t, page, `<h3><a href="/c/cours-fr">Les fractions</a></h3>`)
}

func TestHighlight(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"a \x02b\x03 c":            "a <mark>b</mark> c",
		"\x02<x>\x03 & \x02y":      "<mark>&lt;x&gt;</mark> &amp; <mark>y</mark>",
		"cut\x03 \x03\x02\x02 end": "cut <mark> end</mark>",
		`"q" 'a'`:                  "&#34;q&#34; &#39;a&#39;",
	} {
		if got := string(highlight(in)); got != want {
			t.Errorf("highlight(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()

	_, page := e.get("/?hl=fr")
	mustContain(t, page, `<html lang="fr">`, "Rechercher", "Bibliothèque Outpost",
		`href="/c/test-course?hl=fr"`, `<input type="hidden" name="hl" value="fr">`,
		"6 éléments", "1 élément")
	mustNotContain(t, page, ">Search<")

	// Accept-Language decides when there is no hl, and links then stay bare.
	resp, body := e.do("GET", "/", map[string]string{"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
	page = string(body)
	mustContain(t, page, `<html lang="fr">`, "Rechercher", `href="/c/test-course"`)
	if v := resp.Header.Get("Vary"); !strings.Contains(v, "Accept-Language") {
		t.Errorf("Vary %q", v)
	}
	// hl beats Accept-Language.
	_, body = e.do("GET", "/?hl=en", map[string]string{"Accept-Language": "fr"})
	mustContain(t, string(body), `<html lang="en">`, ">Search<")
	// A language the portal does not speak falls back to the default.
	_, body = e.do("GET", "/", map[string]string{"Accept-Language": "de-DE"})
	mustContain(t, string(body), `<html lang="en">`)
	// x/text's matcher knows which portal language speakers of another
	// language most likely read: Wolof speakers get French.
	_, body = e.do("GET", "/", map[string]string{"Accept-Language": "wo"})
	mustContain(t, string(body), `<html lang="fr">`)
	_, page = e.get("/?hl=xx-nonsense")
	mustContain(t, page, `<html lang="en">`)

	_, page = e.get("/c/test-course?hl=fr")
	mustContain(t, page, "Leçons", "6 éléments", "Vidéo", "Activité", "Livre numérique", "Vidéo · 20,0 ko")
	_, page = e.get("/c/test-course")
	mustContain(t, page, "Lessons", "6 items", "Video", "Activity", "E-book", "20.0 kB")

	// The language switch keeps the page and its query.
	_, page = e.get("/search?q=leaf")
	mustContain(t, page, `href="/search?hl=fr&amp;q=leaf"`)

	// Default language of the box.
	fr := newEnv(t, func(o *Options) { o.DefaultLanguage = "fr" })
	_, page = fr.get("/")
	mustContain(t, page, `<html lang="fr">`)
}

func TestCoursePage(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	resp, page := e.get("/c/" + testCourse)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkPageHeaders(t, resp)
	mustContain(t, page, "<h1", "Plants &amp; Light", "How plants &lt;grow&gt; using sunlight.", "Basics", "Practice")
	order := []string{"intro-video", "notes", "reading", "song", "quiz", "book"}
	last := -1
	for _, id := range order {
		i := strings.Index(page, `href="/c/test-course/i/`+id+`"`)
		if i < 0 {
			t.Fatalf("no link to item %s", id)
		}
		if i < last {
			t.Errorf("item %s is out of lesson order", id)
		}
		last = i
	}
	mustContain(t, page, `<li class="k-video"><a href="/c/test-course/i/intro-video">Introduction video</a>`, `class="k-html5"`, "Video · 20.0 kB")
	// The kinds' icons come with the stylesheet, under their hashed names.
	_, css := e.get(cssPath(t, page))
	mustContain(t, css, `.k-video a::before { background-image: url(/s/kinds/video.svg?v=`, `url(/s/kinds/html5.svg?v=`)
}

// cssPath is the stylesheet address a page links to.
func cssPath(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page links no stylesheet")
	}
	return html.UnescapeString(m[1])
}

func TestItemPages(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	item := func(id string) string {
		t.Helper()
		resp, page := e.get("/c/" + testCourse + "/i/" + id)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", id, resp.StatusCode)
		}
		checkPageHeaders(t, resp)
		return page
	}
	page := item("intro-video")
	mustContain(t, page,
		`<video controls preload="metadata" playsinline src="/m/test-course/intro-video">`,
		`<track kind="captions" src="/t/test-course/intro-video" srclang="en" label="Transcript">`,
		`href="/d/test-course/intro-video"`,
		`rel="next" href="/c/test-course/i/notes"`,
	)
	mustNotContain(t, page, `rel="prev"`)

	page = item("song")
	mustContain(t, page, `<audio controls preload="metadata" src="/m/test-course/song">`,
		`rel="prev" href="/c/test-course/i/reading"`, `rel="next" href="/c/test-course/i/quiz"`)
	mustNotContain(t, page, "<track")

	page = item("notes")
	mustContain(t, page, `<object class="doc" data="/m/test-course/notes" type="application/pdf">`, `href="/d/test-course/notes"`)

	page = item("reading")
	mustContain(t, page, "Plants turn light into food.", "&lt;script&gt;alert(1)&lt;/script&gt;")
	mustNotContain(t, page, "<script>")

	page = item("quiz")
	mustContain(t, page, `<iframe class="activity" sandbox="allow-scripts" src="/a/test-course/quiz/index.html"`)

	page = item("book")
	mustContain(t, page, `href="/d/test-course/book"`, "e-book reader")
	mustNotContain(t, page, `rel="next"`)

	_, page = e.get("/c/" + testCourse + "/i/song?hl=fr")
	mustContain(t, page, `rel="next" href="/c/test-course/i/quiz?hl=fr"`, "Suivant", "Précédent", `href="/d/test-course/song"`)
}

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	for _, tc := range []struct{ path, says string }{
		{"/c/no-such-course", "This course is not on this box"},
		{"/c/%2e%2e", "This course is not on this box"},
		{"/c/%00", "This course is not on this box"},
		{"/c/no-such-course/i/x", "This course is not on this box"},
		{"/c/" + testCourse + "/i/no-such-item", "This item is not in the course"},
		{"/no/such/page", "There is no page at this address"},
		{"/c/", "There is no page at this address"},
	} {
		resp, page := e.get(tc.path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", tc.path, resp.StatusCode)
			continue
		}
		checkPageHeaders(t, resp)
		mustContain(t, page, tc.says, `<a href="/">Go to the home page</a>`, `action="/search"`)
	}
	_, page := e.get("/c/" + testCourse + "/i/no-such-item")
	mustContain(t, page, `<a href="/c/test-course">Back to the course</a>`)
	_, page = e.get("/c/no-such-course?hl=fr")
	mustContain(t, page, "Page introuvable", "Ce cours n&#39;est pas sur ce boîtier")
	if strings.Contains(e.logs.String(), "level=ERROR") {
		t.Errorf("a 404 was logged as an error:\n%s", e.logs)
	}
}

// failingCourses breaks the course lookup for one id, as a damaged
// database would.
type failingCourses struct{ *catalog.Catalog }

func (f failingCourses) Edition(ctx context.Context, id string) (catalog.Edition, error) {
	if id == "boom" {
		return catalog.Edition{}, errors.New("disk I/O error (the cause)")
	}
	return f.Catalog.Edition(ctx, id)
}

// CourseWindow fails for "boom" and, after its edition was read, for the
// test course.
func (f failingCourses) CourseWindow(ctx context.Context, id string, offset, limit int) (*catalog.Course, error) {
	if id == "boom" || id == testCourse {
		return nil, errors.New("disk I/O error (the cause)")
	}
	return f.Catalog.CourseWindow(ctx, id, offset, limit)
}

func TestServerError(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Courses = failingCourses{o.Courses.(*catalog.Catalog)} })
	e.addTestCourses()
	for _, p := range []string{"/c/boom", "/c/boom/i/x", "/c/" + testCourse} {
		resp, page := e.get(p)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%s: status %d, want 500", p, resp.StatusCode)
		}
		mustContain(t, page, "Something went wrong", "Try again in a minute", `<a href="/">`)
		mustNotContain(t, page, "disk I/O")
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("ETag") != "" {
			t.Errorf("%s: an error page is sent with Cache-Control %q and ETag %q", p, resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
	}
	if !strings.Contains(e.logs.String(), "disk I/O error (the cause)") {
		t.Errorf("the cause was not logged:\n%s", e.logs)
	}
}

// TestOffline visits every kind of page in both languages and checks that
// nothing refers outside the box: no absolute URL, and every link, source
// and form target is a path on this server.
func TestOffline(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	attr := regexp.MustCompile(`\s(?:href|src|action|data|poster|srcset|formaction)="([^"]*)"`)
	var pages []string
	for _, p := range []string{"/", "/?lang=en", "/search", "/search?q=" + wordInText, "/search?q=zzzz", "/c/" + testCourse, "/c/" + frenchCours, "/c/nope", "/nope"} {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		pages = append(pages, p, p+sep+"hl=fr")
	}
	for _, id := range []string{"intro-video", "notes", "reading", "song", "quiz", "book"} {
		pages = append(pages, "/c/"+testCourse+"/i/"+id)
	}
	for _, p := range pages {
		_, page := e.get(p)
		if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
			t.Errorf("%s refers to an address outside the box", p)
		}
		for _, m := range attr.FindAllStringSubmatch(page, -1) {
			if u := html.UnescapeString(m[1]); !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
				t.Errorf("%s: attribute %q is not a local path", p, m[0])
			}
		}
	}
	// The embedded assets too, as served; an SVG file must name its XML
	// namespace, which is an identifier, never fetched. The stylesheet's
	// url()s are the icons' paths on the box.
	a, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	cssURLs := regexp.MustCompile(`url\(([^)]*)\)`)
	for name, f := range a.files {
		s := strings.ReplaceAll(string(f.data), `xmlns="http://www.w3.org/2000/svg"`, "")
		for _, m := range cssURLs.FindAllStringSubmatch(s, -1) {
			if !strings.HasPrefix(m[1], "/s/") {
				t.Errorf("%s refers to %s, not an embedded file", name, m[0])
			}
		}
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "@import") {
			t.Errorf("%s refers to something outside the box", name)
		}
	}
}

// TestFrenchComplete makes sure every text the templates and handlers
// translate has a French version, so a new string cannot ship English-only.
func TestFrenchComplete(t *testing.T) {
	keys := map[string]bool{
		"Courses": true, "Search": true, "Page not found": true, "Something went wrong": true,
		"%d B": true, "%.1f kB": true, "%.1f MB": true, "%.1f GB": true,
	}
	for _, k := range append(pack.Kinds, "unknown") {
		keys[kindLabel(k)] = true
	}
	call := regexp.MustCompile(`\bt "((?:[^"\\]|\\.)*)"`)
	fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := templateFS.ReadFile(p)
		for _, m := range call.FindAllStringSubmatch(string(data), -1) {
			keys[m[1]] = true
		}
		return nil
	})
	if len(keys) < 40 {
		t.Fatalf("found only %d keys; is the pattern still right?", len(keys))
	}
	isPlural := map[string]bool{}
	for _, p := range plurals {
		isPlural[p.key] = true
	}
	for k := range keys {
		if _, ok := french[k]; !ok && !isPlural[k] {
			t.Errorf("no French for %q", k)
		}
	}
	for k := range french {
		if !keys[k] {
			t.Errorf("French text for %q, which nothing uses", k)
		}
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a catalog and store succeeded")
	}
	e := newEnv(t)
	if _, err := New(Options{Courses: e.db, Objects: e.store, DefaultLanguage: "not a tag!"}); err == nil {
		t.Error("New accepted a malformed default language")
	}
	// A language the portal does not speak yet works, in English.
	de := newEnv(t, func(o *Options) { o.DefaultLanguage = "de" })
	_, page := de.get("/")
	mustContain(t, page, `<html lang="en">`)
	if !strings.Contains(de.logs.String(), "using English") {
		t.Errorf("the fallback was not logged:\n%s", de.logs)
	}
}

func TestMissingObject(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	// A file quarantined after import: the catalog still lists it.
	for _, p := range []string{"media/intro.webm", "activities/quiz.zip"} {
		if err := os.Remove(e.store.Path(sha(e.files[p]))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/m/" + testCourse + "/intro-video", "/a/" + testCourse + "/quiz/index.html"} {
		resp, page := e.get(p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
		mustContain(t, page, "This file is missing from the box", `<a href="/c/test-course">Back to the course</a>`)
	}
	if !strings.Contains(e.logs.String(), "missing") {
		t.Errorf("the missing file was not logged:\n%s", e.logs)
	}
}
