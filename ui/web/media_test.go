package web

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"testing"
)

func TestRange(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	video := e.files["media/intro.webm"]
	size := len(video)
	etag := `"` + sha(video) + `"`
	const url = "/m/" + testCourse + "/intro-video"

	type part struct {
		contentRange string
		body         []byte
	}
	tests := []struct {
		name         string
		method       string
		header       map[string]string
		status       int
		contentRange string
		body         []byte // nil: not checked; for HEAD, must be empty
		parts        []part // a multipart/byteranges answer
	}{
		{name: "full", status: 200, body: video},
		{name: "head", method: "HEAD", status: 200, body: []byte{}},
		{name: "first 100", header: map[string]string{"Range": "bytes=0-99"}, status: 206,
			contentRange: fmt.Sprintf("bytes 0-99/%d", size), body: video[:100]},
		{name: "suffix", header: map[string]string{"Range": "bytes=-500"}, status: 206,
			contentRange: fmt.Sprintf("bytes %d-%d/%d", size-500, size-1, size), body: video[size-500:]},
		{name: "open-ended", header: map[string]string{"Range": "bytes=100-"}, status: 206,
			contentRange: fmt.Sprintf("bytes 100-%d/%d", size-1, size), body: video[100:]},
		{name: "multipart", header: map[string]string{"Range": "bytes=0-0,10-19"}, status: 206, parts: []part{
			{fmt.Sprintf("bytes 0-0/%d", size), video[:1]},
			{fmt.Sprintf("bytes 10-19/%d", size), video[10:20]},
		}},
		{name: "unsatisfiable", header: map[string]string{"Range": "bytes=999999-"}, status: 416,
			contentRange: fmt.Sprintf("bytes */%d", size)},
		{name: "if-none-match", header: map[string]string{"If-None-Match": etag}, status: 304, body: []byte{}},
		{name: "if-none-match other", header: map[string]string{"If-None-Match": `"0000"`}, status: 200, body: video},
		{name: "if-range same", header: map[string]string{"Range": "bytes=0-99", "If-Range": etag}, status: 206,
			contentRange: fmt.Sprintf("bytes 0-99/%d", size), body: video[:100]},
		{name: "if-range changed", header: map[string]string{"Range": "bytes=0-99", "If-Range": `"an-older-version"`}, status: 200, body: video},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			resp, body := e.do(method, url, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.200q", resp.StatusCode, tc.status, body)
			}
			h := resp.Header
			if tc.status != 416 {
				if got := h.Get("ETag"); got != etag {
					t.Errorf("ETag %q, want %q", got, etag)
				}
			}
			if tc.status == 200 || tc.status == 206 {
				if got := h.Get("Accept-Ranges"); got != "bytes" {
					t.Errorf("Accept-Ranges %q", got)
				}
				if got := h.Get("Cache-Control"); got != mediaCacheControl {
					t.Errorf("Cache-Control %q", got)
				}
				if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("X-Content-Type-Options %q", got)
				}
			}
			if tc.status == 200 {
				if got := h.Get("Content-Type"); got != "video/webm" {
					t.Errorf("Content-Type %q", got)
				}
				if got := h.Get("Content-Length"); got != strconv.Itoa(size) {
					t.Errorf("Content-Length %q, want %d", got, size)
				}
			}
			if got := h.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tc.contentRange)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("body is %d bytes, want %d (or the bytes differ)", len(body), len(tc.body))
			}
			if tc.parts != nil {
				mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
				if err != nil || mt != "multipart/byteranges" {
					t.Fatalf("Content-Type %q (%v), want multipart/byteranges", h.Get("Content-Type"), err)
				}
				mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
				for i, want := range tc.parts {
					p, err := mr.NextPart()
					if err != nil {
						t.Fatalf("part %d: %v", i, err)
					}
					if got := p.Header.Get("Content-Range"); got != want.contentRange {
						t.Errorf("part %d Content-Range %q, want %q", i, got, want.contentRange)
					}
					if got := p.Header.Get("Content-Type"); got != "video/webm" {
						t.Errorf("part %d Content-Type %q", i, got)
					}
					got, _ := io.ReadAll(p)
					if !bytes.Equal(got, want.body) {
						t.Errorf("part %d body %x, want %x", i, got, want.body)
					}
				}
				if _, err := mr.NextPart(); err != io.EOF {
					t.Errorf("more parts than asked for: %v", err)
				}
			}
		})
	}
}

func TestDownload(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	resp, body := e.do("GET", "/d/"+testCourse+"/book", nil)
	if resp.StatusCode != 200 || string(body) != "PK fake epub" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	cd := resp.Header.Get("Content-Disposition")
	if want := `attachment; filename="plants_book.epub"; filename*=UTF-8''plants%20book.epub`; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/epub+zip" {
		t.Errorf("Content-Type %q", ct)
	}
	// Range works on downloads too, so a phone can resume.
	resp, body = e.do("GET", "/d/"+testCourse+"/book", map[string]string{"Range": "bytes=3-"})
	if resp.StatusCode != 206 || string(body) != "fake epub" {
		t.Errorf("resume: status %d body %q", resp.StatusCode, body)
	}
}

func TestAttachmentName(t *testing.T) {
	for name, want := range map[string]string{
		"notes.pdf":         `attachment; filename="notes.pdf"`,
		`a"b;c\d.pdf`:       `attachment; filename="a_b_c_d.pdf"; filename*=UTF-8''a%22b%3Bc%5Cd.pdf`,
		"résumé.txt":        `attachment; filename="r_sum_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`,
		"..":                `attachment; filename="download"; filename*=UTF-8''..`,
		"line\r\nbreak.txt": `attachment; filename="line__break.txt"; filename*=UTF-8''line%0D%0Abreak.txt`,
	} {
		if got := attachment(name); got != want {
			t.Errorf("attachment(%q) = %q, want %q", name, got, want)
		}
		if _, _, err := mime.ParseMediaType(attachment(name)); err != nil {
			t.Errorf("attachment(%q) does not parse: %v", name, err)
		}
	}
}

func TestTranscriptAndMissing(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	resp, body := e.get("/t/" + testCourse + "/intro-video")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/vtt; charset=utf-8" || body != string(e.files["media/intro.vtt"]) {
		t.Errorf("transcript: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, p := range []string{
		"/t/" + testCourse + "/song", // an item without a transcript
		"/m/" + testCourse + "/nope",
		"/m/no-such-course/intro-video",
		"/d/" + testCourse + "/nope",
	} {
		resp, body := e.get(p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
		if resp.Header.Get("ETag") != "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: a 404 must not be cacheable: ETag %q Cache-Control %q", p, resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
		}
		if !bytes.Contains([]byte(body), []byte(`href="/"`)) {
			t.Errorf("%s: the 404 page does not link home", p)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	_, page := e.get("/")
	css := e.srvAsset("style.css")
	if !bytes.Contains([]byte(page), []byte(css)) {
		t.Fatalf("home page does not link %s", css)
	}
	resp, body := e.get(css)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || len(body) == 0 {
		t.Fatalf("%s: %d %q", css, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("versioned asset Cache-Control %q", cc)
	}
	resp, _ = e.get("/s/style.css")
	if cc := resp.Header.Get("Cache-Control"); cc != mediaCacheControl {
		t.Errorf("unversioned asset Cache-Control %q", cc)
	}
	if resp, _ := e.get("/s/nope.css"); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}

func (e *testEnv) srvAsset(name string) string {
	a, err := loadAssets()
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := a.url(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}
