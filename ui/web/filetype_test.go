package web

import (
	"strings"
	"testing"

	"outpost/content/mediatype"
	"outpost/content/pack"
)

// setRow overwrites an item's catalog row the way no import can: what an
// older build, a hand-edited database or a bug elsewhere could leave.
func (e *testEnv) setRow(course, item, column, value string) {
	e.t.Helper()
	res, err := e.sql.Exec(`UPDATE items SET `+column+` = ? WHERE course_id = ? AND item_id = ?`, value, course, item)
	if err != nil {
		e.t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		e.t.Fatalf("no item %s/%s to change", course, item)
	}
}

// TestCourseFileHeaders: every response carrying a course file has nosniff
// and a sandboxing CSP, and a type from the allowlist.
func TestCourseFileHeaders(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	for _, tc := range []struct {
		path, ctype, csp string
		attach           bool
	}{
		{"/m/" + testCourse + "/intro-video", "video/webm", playerCSP, false},
		{"/m/" + testCourse + "/song", "audio/ogg", playerCSP, false},
		{"/m/" + testCourse + "/notes", "application/pdf", fileCSP, false},
		{"/m/" + testCourse + "/reading", "text/plain; charset=utf-8", fileCSP, false},
		{"/m/" + testCourse + "/book", "application/epub+zip", fileCSP, false},
		{"/m/" + testCourse + "/quiz", "application/zip", fileCSP, false},
		{"/d/" + testCourse + "/notes", "application/pdf", fileCSP, true},
		{"/d/" + testCourse + "/intro-video", "video/webm", playerCSP, true},
		{"/t/" + testCourse + "/intro-video", captionsType, fileCSP, false},
		{"/a/" + testCourse + "/quiz/index.html", "text/html; charset=utf-8", activityCSP, false},
		{"/a/" + testCourse + "/quiz/app.js", "text/javascript; charset=utf-8", activityCSP, false},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			resp, _ := e.do(method, tc.path, map[string]string{"Range": "bytes=0-0"})
			h := resp.Header
			if resp.StatusCode != 200 && resp.StatusCode != 206 {
				t.Errorf("%s %s: status %d", method, tc.path, resp.StatusCode)
			}
			if got := h.Get("Content-Type"); got != tc.ctype {
				t.Errorf("%s %s: Content-Type %q, want %q", method, tc.path, got, tc.ctype)
			}
			if got := h.Get("Content-Security-Policy"); got != tc.csp || !strings.Contains(got, "sandbox") {
				t.Errorf("%s %s: CSP %q, want %q", method, tc.path, got, tc.csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: no nosniff", method, tc.path)
			}
			if got := strings.HasPrefix(h.Get("Content-Disposition"), "attachment"); got != tc.attach {
				t.Errorf("%s %s: Content-Disposition %q", method, tc.path, h.Get("Content-Disposition"))
			}
		}
	}
	// No CSP may let a course file script the box: only activities run
	// script, and only in an opaque origin (sandbox without
	// allow-same-origin).
	for name, csp := range map[string]string{"fileCSP": fileCSP, "playerCSP": playerCSP, "activityCSP": activityCSP} {
		sb := sandboxTokens(csp)
		if sb == nil {
			t.Errorf("%s has no sandbox directive", name)
		}
		if sb["allow-scripts"] && sb["allow-same-origin"] {
			t.Errorf("%s allows scripts in the box's origin", name)
		}
		for tok := range sb {
			if tok != "allow-scripts" && tok != "allow-same-origin" {
				t.Errorf("%s allows %s", name, tok)
			}
		}
	}
}

// sandboxTokens returns the tokens of a CSP's sandbox directive, or nil.
func sandboxTokens(csp string) map[string]bool {
	for d := range strings.SplitSeq(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && f[0] == "sandbox" {
			m := map[string]bool{}
			for _, tok := range f[1:] {
				m[tok] = true
			}
			return m
		}
	}
	return nil
}

// TestServeTimeAllowlist: a catalog row holding a type its kind does not
// allow — as an older build stored whatever a pack declared — is served as
// an attachment of application/octet-stream, and its page embeds nothing.
func TestServeTimeAllowlist(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	for _, tc := range []struct{ item, kind, mime string }{
		{"notes", "", "text/xsl"},
		{"notes", "", "application/pdf, text/html"},
		{"reading", "", "image/png, text/html"},
		{"reading", "", "application/xhtml+xml"},
		{"reading", "", "image/svg+xml"},
		{"reading", "", "text/xml"},
		{"reading", "", "multipart/x-mixed-replace; boundary=x"},
		{"intro-video", "", "text/html"},
		{"song", "", "TEXT/HTML; charset=UTF-8"},
		{"notes", "", "text/html;charset=utf-7"},
		{"book", "", ""}, // no type, and .epub is fine: a control
		{"reading", "applet", "text/plain"},
	} {
		t.Run(tc.item+" "+tc.kind+" "+tc.mime, func(t *testing.T) {
			kind := map[string]pack.Kind{"notes": pack.KindPDF, "reading": pack.KindDocument, "intro-video": pack.KindVideo, "song": pack.KindAudio, "book": pack.KindEPUB}[tc.item]
			if tc.kind != "" {
				kind = pack.Kind(tc.kind)
			}
			e.setRow(testCourse, tc.item, "kind", string(kind))
			e.setRow(testCourse, tc.item, "mime", tc.mime)
			e.handler.(*server).items.forget(testCourse, tc.item)
			want := mediatype.ForItem(string(kind), tc.mime, "x"+map[string]string{"book": ".epub"}[tc.item])
			resp, _ := e.get("/m/" + testCourse + "/" + tc.item)
			h := resp.Header
			if tc.item == "book" && tc.kind == "" {
				if h.Get("Content-Type") != "application/epub+zip" {
					t.Errorf("control: Content-Type %q", h.Get("Content-Type"))
				}
				return
			}
			if want != mediatype.OctetStream || h.Get("Content-Type") != mediatype.OctetStream {
				t.Errorf("Content-Type %q (allowlist says %q), want %s", h.Get("Content-Type"), want, mediatype.OctetStream)
			}
			if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
				t.Errorf("Content-Disposition %q, want an attachment", h.Get("Content-Disposition"))
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != fileCSP {
				t.Errorf("nosniff %q CSP %q", h.Get("X-Content-Type-Options"), h.Get("Content-Security-Policy"))
			}
			_, page := e.get("/c/" + testCourse + "/i/" + tc.item)
			for _, embed := range []string{"<object", "<iframe", "<video", "<audio", `class="text"`} {
				if strings.Contains(page, embed) {
					t.Errorf("the item page embeds the file (%s)", embed)
				}
			}
			if !strings.Contains(page, `href="/d/`+testCourse+"/"+tc.item+`"`) {
				t.Error("the item page lost its download link")
			}
		})
	}
}
