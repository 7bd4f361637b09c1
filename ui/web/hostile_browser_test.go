package web

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"outpost/content/pack"
)

// The hostile course is a pack whose files try to run script as the
// portal. Each payload leaves traces only where it succeeds: a localStorage
// key and a cookie (only a document in the box's origin can set them), a
// copy of the home page read with a same-origin request, a marker and a
// title written into its parent and top documents (only possible from the
// box's origin), and a report to a recording URL on the box (a synchronous
// request, so it is done before the page's load event ends the visit).
const hostileCourse = "hostile"

// payloadJS is the script every hostile file carries, tagged so a trace
// names the file that left it. It uses synchronous requests only: a
// document's scripts and their requests then finish before its load event,
// and the load event of the page embedding it, which is what a visit waits
// for — no sleeping.
func payloadJS(tag string) string {
	return `(function () {
  var tag = "` + tag + `", o = String(self.origin);
  function report(what) {
    try { var x = new XMLHttpRequest(); x.open("POST", "/__record", false); x.send(tag + " " + o + " " + what); } catch (e) {}
  }
  report("ran");
  try { localStorage.setItem("pwned-" + tag, o); } catch (e) {}
  try { document.cookie = "pwned_" + tag.replace(/[^a-z0-9]/g, "_") + "=1; path=/"; } catch (e) {}
  try {
    var r = new XMLHttpRequest(); r.open("GET", "/", false); r.send();
    if (r.status === 200 && r.responseText.indexOf("<html") >= 0) {
      localStorage.setItem("read-" + tag, String(r.responseText.length));
      report("read the home page: " + r.responseText.length + " bytes");
    }
  } catch (e) {}
  var ws = [window.parent, window.top];
  for (var i = 0; i < ws.length; i++) {
    try {
      ws[i].document.title = "PWNED " + tag;
      ws[i].document.documentElement.setAttribute("data-pwned", tag);
      report("changed a portal page");
    } catch (e) {}
  }
})();`
}

func htmlPayload(tag string) []byte {
	return []byte("<!DOCTYPE html><html><head><title>hostile</title></head><body><p>hostile</p><script>" + payloadJS(tag) + "</script></body></html>\n")
}

// xhtmlPayload is XML that runs as a page wherever a browser parses it as
// XML (text/xml, text/xsl, application/xhtml+xml, anything ending +xml).
func xhtmlPayload(tag string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>hostile</title></head><body><p>hostile</p><script>//<![CDATA[
` + payloadJS(tag) + `
//]]></script></body></html>
`)
}

func svgPayload(tag string) []byte {
	return []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>//<![CDATA[
` + payloadJS(tag) + `
//]]></script></svg>
`)
}

// xslPayload is an XSLT stylesheet that applies itself and writes a page
// with the payload, for browsers that still run XSLT; as plain XML it is
// still an XHTML script element.
func xslPayload(tag string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="#"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns="http://www.w3.org/1999/xhtml">
<xsl:template match="/"><html><head><title>hostile</title></head><body><script>//<![CDATA[
` + payloadJS(tag) + `
//]]></script></body></html></xsl:template>
</xsl:stylesheet>
`)
}

// multipartPayload is a multipart/x-mixed-replace body whose one part is an
// HTML page.
func multipartPayload(tag string) []byte {
	return []byte("--outpost\r\nContent-Type: text/html\r\n\r\n" + string(htmlPayload(tag)) + "\r\n--outpost--\r\n")
}

// hostileZip is an HTML5 activity whose every member tries the payload. An
// activity may run script, but only in its own opaque origin.
func hostileZip(t *testing.T, tag string) ([]byte, []string) {
	t.Helper()
	members := map[string][]byte{
		"index.html": htmlPayload(tag + "-index"),
		"evil.svg":   svgPayload(tag + "-svg"),
		"evil.xml":   xhtmlPayload(tag + "-xml"),
		"evil.xsl":   xhtmlPayload(tag + "-xsl"),
		"evil.xhtml": xhtmlPayload(tag + "-xhtml"),
		"evil.bin":   htmlPayload(tag + "-bin"),
	}
	var names []string
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"index.html", "evil.svg", "evil.xml", "evil.xsl", "evil.xhtml", "evil.bin"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(members[name])
		names = append(names, name)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), names
}

// hostileItem is one row of the table: an item as a pack declares it, and
// optionally the kind and type a catalog row holds instead — what an older
// build, a hand-edited database or a bug elsewhere could leave there.
type hostileItem struct {
	id       string
	kind     pack.Kind
	file     string
	data     []byte
	declared string // the manifest's items[].type (a type import accepts)
	rowKind  string // if set, written into the catalog row after import
	rowMIME  string // if set, written into the catalog row after import
	textFile string
	textData []byte
	members  []string // of an html5 activity
}

// traceRecorder collects the reports payloads send to /__record.
type traceRecorder struct {
	mu      sync.Mutex
	reports []string
}

func (r *traceRecorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, s)
}

// take returns and forgets the reports of payloads tagged with prefix.
func (r *traceRecorder) take(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var got, kept []string
	for _, s := range r.reports {
		if strings.HasPrefix(s, prefix) {
			got = append(got, s)
		} else {
			kept = append(kept, s)
		}
	}
	r.reports = kept
	return got
}

func hostileItems(t *testing.T) []hostileItem {
	act, members := hostileZip(t, "activity")
	return []hostileItem{
		// The tester's findings, as catalog rows no import can write any more.
		{id: "xsl-pdf", kind: pack.KindPDF, file: "f/xsl.pdf", data: xhtmlPayload("xsl-pdf"), rowMIME: "text/xsl"},
		{id: "xslt-pdf", kind: pack.KindPDF, file: "f/xslt.pdf", data: xslPayload("xslt-pdf"), rowMIME: "text/xsl"},
		{id: "comma-pdf", kind: pack.KindPDF, file: "f/comma.pdf", data: htmlPayload("comma-pdf"), rowMIME: "application/pdf, text/html"},
		{id: "comma-png", kind: pack.KindDocument, file: "f/comma.png", data: htmlPayload("comma-png"), rowMIME: "image/png, text/html"},
		{id: "html-video", kind: pack.KindVideo, file: "f/html.webm", data: htmlPayload("html-video"), rowMIME: "text/html"},
		{id: "upper-html-pdf", kind: pack.KindPDF, file: "f/upper.pdf", data: htmlPayload("upper-html-pdf"), rowMIME: "TEXT/HTML; Charset=UTF-8"},
		{id: "xhtml-doc", kind: pack.KindDocument, file: "f/x.xhtml", data: xhtmlPayload("xhtml-doc"), rowMIME: "application/xhtml+xml"},
		{id: "svg-audio", kind: pack.KindAudio, file: "f/svg.ogg", data: svgPayload("svg-audio"), rowMIME: "image/svg+xml"},
		{id: "xml-epub", kind: pack.KindEPUB, file: "f/xml.epub", data: xhtmlPayload("xml-epub"), rowMIME: "text/xml"},
		{id: "xslt-doc", kind: pack.KindDocument, file: "f/xslt.doc", data: xhtmlPayload("xslt-doc"), rowMIME: "application/xslt+xml"},
		{id: "plus-xml-doc", kind: pack.KindDocument, file: "f/plus.xml", data: xhtmlPayload("plus-xml-doc"), rowMIME: "application/vnd.outpost-hostile+xml"},
		{id: "mixed-doc", kind: pack.KindDocument, file: "f/mixed.txt", data: multipartPayload("mixed-doc"), rowMIME: "multipart/x-mixed-replace; boundary=outpost"},
		{id: "plain-comma-doc", kind: pack.KindDocument, file: "f/plain.txt", data: htmlPayload("plain-comma-doc"), rowMIME: "text/plain, text/html"},
		{id: "odd-kind", kind: pack.KindDocument, file: "f/odd.html", data: htmlPayload("odd-kind"), rowKind: "applet", rowMIME: "text/html"},
		{id: "html-html5-row", kind: pack.KindHTML5, file: "f/act.zip", data: act, rowMIME: "text/html", members: members},
		// Packs import accepts: the bytes lie about what the file is, or
		// the type is guessed from an extension a browser would run.
		{id: "html-document", kind: pack.KindDocument, file: "f/page.html", data: htmlPayload("html-document"), declared: "text/html"},
		{id: "html-as-pdf", kind: pack.KindPDF, file: "f/lie.pdf", data: htmlPayload("html-as-pdf"), declared: "application/pdf"},
		{id: "html-as-video", kind: pack.KindVideo, file: "f/lie.webm", data: htmlPayload("html-as-video"), declared: "video/webm"},
		{id: "xsl-as-pdf", kind: pack.KindPDF, file: "f/xsl-lie.pdf", data: xslPayload("xsl-as-pdf"), declared: "application/pdf"},
		{id: "svg-as-png", kind: pack.KindDocument, file: "f/lie.png", data: svgPayload("svg-as-png"), declared: "image/png"},
		{id: "html-as-text", kind: pack.KindDocument, file: "f/lie.txt", data: htmlPayload("html-as-text"), declared: "text/plain"},
		{id: "svg-by-ext", kind: pack.KindDocument, file: "f/picture.svg", data: svgPayload("svg-by-ext")},
		{id: "xsl-by-ext", kind: pack.KindDocument, file: "f/style.xsl", data: xslPayload("xsl-by-ext")},
		{id: "xhtml-by-ext", kind: pack.KindDocument, file: "f/page.xhtml", data: xhtmlPayload("xhtml-by-ext")},
		{id: "vtt-transcript", kind: pack.KindVideo, file: "f/v.webm", data: pseudoRandom(4096), declared: "video/webm",
			textFile: "f/v.vtt", textData: htmlPayload("vtt-transcript")},
		{id: "activity", kind: pack.KindHTML5, file: "f/activity.zip", data: act, members: members},
	}
}

// TestHostilePackCannotScriptThePortal loads, in real Chromium, every way a
// learner can reach the files of a hostile course — the item page that
// embeds them, and /m/, /d/, /t/ and /a/ opened directly — and checks that
// no script from the pack ran in the box's origin: no portal page changed,
// no portal page read, no cookie or localStorage set for the box.
func TestHostilePackCannotScriptThePortal(t *testing.T) {
	chrome := needChromium(t)
	e := newEnv(t)
	items := hostileItems(t)
	m := &pack.Manifest{Format: pack.FormatVersion, ID: hostileCourse, Version: 1, Title: "Hostile course", Language: "en"}
	lesson := pack.Lesson{ID: "l", Title: "Everything"}
	files := map[string][]byte{}
	for _, h := range items {
		lesson.Items = append(lesson.Items, pack.Item{ID: h.id, Kind: h.kind, Title: "Item " + h.id, File: h.file, Type: h.declared, TextFile: h.textFile})
		files[h.file] = h.data
		if h.textFile != "" {
			files[h.textFile] = h.textData
		}
	}
	m.Lessons = []pack.Lesson{lesson}
	e.commit(m, files)
	for _, h := range items {
		if h.rowMIME != "" {
			if _, err := e.sql.Exec(`UPDATE items SET mime = ? WHERE course_id = ? AND item_id = ?`, h.rowMIME, hostileCourse, h.id); err != nil {
				t.Fatal(err)
			}
		}
		if h.rowKind != "" {
			if _, err := e.sql.Exec(`UPDATE items SET kind = ? WHERE course_id = ? AND item_id = ?`, h.rowKind, hostileCourse, h.id); err != nil {
				t.Fatal(err)
			}
		}
	}

	rec := &traceRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/__record":
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			rec.add(string(b) + " (Origin: " + r.Header.Get("Origin") + ")")
			w.WriteHeader(http.StatusNoContent)
		case "/__raw":
			// The control: the payload served the way the portal must
			// never serve a course file, to show the traces are seen.
			w.Header().Set("Content-Type", "text/html")
			w.Write(htmlPayload("control"))
		default:
			e.handler.ServeHTTP(w, r)
		}
	}))
	defer srv.Close()
	box := srv.URL

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	browser := startChromium(t, ctx, chrome)
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}

	// visit opens urls in a fresh browser profile (its own storage and
	// cookies) and returns the traces a payload left in the box's origin.
	visit := func(t *testing.T, urls []string, itemPage string) (traces []string) {
		t.Helper()
		tab, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancelTab()
		if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		// Downloads (/d/, attachments) are refused rather than written.
		if _, err := chromedp.CallBrowser(tab, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny, BrowserContextID: chromedp.FromContext(tab).BrowserContextID,
		}); err != nil {
			t.Fatalf("deny downloads: %v", err)
		}
		for _, u := range urls {
			nctx, cancelNav := context.WithTimeout(tab, 20*time.Second)
			err := chromedp.Do(nctx, chromedp.Navigate(box+u))
			cancelNav()
			if err != nil && !strings.Contains(err.Error(), "ERR_ABORTED") { // a download or a refused type ends the navigation
				t.Errorf("open %s: %v", u, err)
				continue
			}
			if u != itemPage {
				continue // a course file: nothing of the portal's in that document
			}
			got, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[document.title, String(document.documentElement.getAttribute("data-pwned")), String(document.querySelector("h1") && document.querySelector("h1").textContent)]`))
			if err != nil {
				t.Errorf("read %s: %v", u, err)
				continue
			}
			if strings.HasPrefix(got[0], "PWNED") || got[1] != "null" {
				traces = append(traces, fmt.Sprintf("%s: the portal page was changed (title %q, marker %q)", u, got[0], got[1]))
			}
		}
		// Back in a portal page of the box's origin: what did the pack leave?
		if err := chromedp.Do(tab, chromedp.Navigate(box+"/")); err != nil {
			t.Fatalf("open the home page: %v", err)
		}
		js, err := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify({storage: Object.keys(localStorage), cookie: document.cookie})`))
		if err != nil {
			t.Fatalf("read the box's storage: %v", err)
		}
		var st struct {
			Storage []string
			Cookie  string
		}
		json.Unmarshal([]byte(js), &st)
		for _, k := range st.Storage {
			traces = append(traces, "localStorage of the box holds "+k)
		}
		if st.Cookie != "" {
			traces = append(traces, "the box has cookies: "+st.Cookie)
		}
		return traces
	}

	t.Run("control", func(t *testing.T) {
		traces := visit(t, []string{"/__raw"}, "")
		reports := rec.take("control ")
		if len(traces) == 0 || len(reports) == 0 {
			t.Fatalf("a payload served as a plain page left no trace (%q, reports %q): this test could not see an attack", traces, reports)
		}
	})

	for _, h := range items {
		t.Run(h.id, func(t *testing.T) {
			itemPage := "/c/" + hostileCourse + "/i/" + h.id
			urls := []string{itemPage, "/m/" + hostileCourse + "/" + h.id, "/d/" + hostileCourse + "/" + h.id}
			if h.textFile != "" {
				urls = append(urls, "/t/"+hostileCourse+"/"+h.id)
			}
			if h.kind == pack.KindHTML5 {
				urls = append(urls, "/a/"+hostileCourse+"/"+h.id+"/")
				for _, name := range h.members {
					urls = append(urls, "/a/"+hostileCourse+"/"+h.id+"/"+name)
				}
			}
			traces := visit(t, urls, itemPage)
			for _, r := range rec.take(tagOf(h)) {
				// An activity runs its script, but only in an opaque origin
				// ("null"), which can reach nothing of the box; any other
				// course file must not run script at all.
				if h.kind != pack.KindHTML5 || !strings.Contains(r, " null ") || strings.Contains(r, "Origin: "+box) {
					traces = append(traces, "report: "+r)
				}
			}
			for _, tr := range traces {
				t.Errorf("script from the pack acted as the portal: %s", tr)
			}
		})
	}
}

// tagOf is the tag prefix of an item's payloads (an activity shares its
// zip, and so its tags, with the row that reuses it).
func tagOf(h hostileItem) string {
	if h.kind == pack.KindHTML5 {
		return "activity"
	}
	return h.id + " "
}
