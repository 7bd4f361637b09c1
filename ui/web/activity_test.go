package web

import (
	"net/http"
	"path"
	"strconv"
	"strings"
	"testing"
)

func TestActivity(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	const base = "/a/" + testCourse + "/quiz/"

	t.Run("members", func(t *testing.T) {
		for _, tc := range []struct{ member, ctype, body string }{
			{"index.html", "text/html; charset=utf-8", quizIndex},                                       // stored
			{"app.js", "text/javascript; charset=utf-8", quizJS},                                        // deflated
			{"css/style.css", "text/css; charset=utf-8", strings.Repeat("body { color: #123; }\n", 50)}, // deflated, in a folder
		} {
			resp, body := e.get(base + tc.member)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", tc.member, resp.StatusCode)
			}
			if body != tc.body {
				t.Errorf("%s: body %q", tc.member, body)
			}
			h := resp.Header
			if got := h.Get("Content-Type"); got != tc.ctype {
				t.Errorf("%s: Content-Type %q, want %q", tc.member, got, tc.ctype)
			}
			if got := h.Get("Content-Security-Policy"); got != activityCSP {
				t.Errorf("%s: CSP %q", tc.member, got)
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "sandbox allow-scripts") {
				t.Errorf("%s: the CSP must sandbox the activity", tc.member)
			}
			if got := h.Get("Content-Length"); got != "" && got != strconv.Itoa(len(tc.body)) {
				t.Errorf("%s: Content-Length %q, want %d", tc.member, got, len(tc.body))
			}
			if h.Get("Content-Length") == "" {
				t.Errorf("%s: no Content-Length", tc.member)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", tc.member)
			}
			// Revalidation answers 304 for stored and deflated members alike.
			resp, _ = e.do("GET", base+tc.member, map[string]string{"If-None-Match": h.Get("ETag")})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("%s: If-None-Match: status %d, want 304", tc.member, resp.StatusCode)
			}
			resp, body2 := e.do("HEAD", base+tc.member, nil)
			if resp.StatusCode != 200 || len(body2) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(tc.body)) {
				t.Errorf("%s: HEAD: %d, %d bytes, Content-Length %q", tc.member, resp.StatusCode, len(body2), resp.Header.Get("Content-Length"))
			}
		}
		if n := e.zipCacheLen(); n != 1 {
			t.Errorf("zip directory cache holds %d entries, want 1 (one activity)", n)
		}
	})

	t.Run("entry redirect", func(t *testing.T) {
		resp, _ := e.get(base)
		if resp.StatusCode != 200 || resp.Request.URL.Path != base+"index.html" {
			t.Errorf("bare activity URL ended at %s with %d", resp.Request.URL.Path, resp.StatusCode)
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, p := range []string{base + "nope.js", base + "css", "/a/" + testCourse + "/nope/index.html", "/a/nope/quiz/index.html",
			"/a/" + testCourse + "/notes/index.html"} { // a PDF is no activity
			if resp, _ := e.get(p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
			}
		}
	})

	t.Run("traversal", func(t *testing.T) {
		// The zip itself holds "../evil.txt", "/abs.txt" and "dir\win.txt";
		// every spelling that could reach them, or anything outside the
		// zip, must fail.
		for _, p := range []string{
			base + "..%2fevil.txt",
			base + "%2e%2e/evil.txt",
			base + "%2e%2e%2fevil.txt",
			base + "../evil.txt",
			base + "%2fabs.txt",
			base + "/abs.txt",
			base + "dir%5cwin.txt",
			base + "dir%5Cwin.txt",
			base + "css/..%2f..%2f..%2fcourse.go",
			base + "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
			base + "./index.html%00",
			base + "index.html%00.js",
		} {
			resp, body := e.get(p)
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: status %d (final URL %s), want 400 or 404", p, resp.StatusCode, resp.Request.URL)
			}
			if strings.Contains(body, "EVIL") || strings.Contains(body, "root:") {
				t.Errorf("%s: served a file outside the activity: %.80q", p, body)
			}
		}
	})
}

func (e *testEnv) zipCacheLen() int {
	return e.handler.(*server).zips.len()
}

func dirOf(n int) *zipDir {
	d := &zipDir{members: map[string]zipMember{}}
	for i := range n {
		d.members[strconv.Itoa(i)] = zipMember{}
	}
	return d
}

func TestZipCacheEvicts(t *testing.T) {
	c := newZipCache(2, 100)
	for _, k := range []string{"a", "b", "a", "c"} { // "a" is used again, so "b" goes
		if k == "a" {
			if _, ok := c.get(k); ok {
				continue
			}
		}
		c.add(k, dirOf(1))
	}
	if _, ok := c.get("b"); ok {
		t.Error("least recently used entry was kept")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s was evicted", k)
		}
	}
	if c.len() != 2 {
		t.Errorf("len %d", c.len())
	}

	// The member bound evicts too, but never the entry just added.
	c.add("big", dirOf(99))
	if _, ok := c.get("big"); !ok || c.len() != 2 || c.members != 100 { // one small entry had to go
		t.Errorf("after a 99-member entry: len %d, members %d", c.len(), c.members)
	}
	c.add("huge", dirOf(500))
	if _, ok := c.get("huge"); !ok || c.len() != 1 || c.members != 500 {
		t.Errorf("after a 500-member entry: len %d, members %d", c.len(), c.members)
	}
}

func FuzzZipMemberPath(f *testing.F) {
	for _, s := range []string{"index.html", "a/b/c.js", "../x", "a/../b", "/etc/passwd", `a\b`, "a//b", "", ".", "a/", "a/./b", "\x00", "..", "...", "a/..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := memberPath(p)
		if err != nil {
			return
		}
		if got != p {
			t.Fatalf("memberPath(%q) = %q; it must accept or reject, never rewrite", p, got)
		}
		if path.IsAbs(got) || strings.Contains(got, `\`) || path.Clean(got) != got || strings.ContainsRune(got, 0) {
			t.Fatalf("memberPath accepted %q", p)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("memberPath accepted %q with segment %q", p, seg)
			}
		}
		if j := path.Join("/root", got); !strings.HasPrefix(j, "/root/") {
			t.Fatalf("memberPath accepted %q, which leaves the root as %q", p, j)
		}
	})
}
