package mediatype

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"video/webm":             "video/webm",
		"Video/WebM":             "video/webm",
		"  audio/ogg  ":          "audio/ogg",
		`audio/ogg; codecs=opus`: "audio/ogg",
		`video/mp4; codecs="avc1.4d401e, mp4a.40.2"`: "video/mp4", // a comma inside quotes is a value
		"text/plain;charset=utf-8":                   "text/plain",
		"TEXT/HTML; Charset=UTF-8":                   "text/html",
		`text/plain; charset="us-ascii"`:             "text/plain",
		"application/pdf;":                           "application/pdf",
		"application/pdf ; ; x=1":                    "application/pdf",
		"text/xsl":                                   "text/xsl", // well formed; whether allowed is Check's business
		"multipart/x-mixed-replace; boundary=x":      "multipart/x-mixed-replace",
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "   ", "video", "video/", "/webm", "video /webm", "video/ webm", "video/webm/x",
		"application/pdf, text/html", "image/png, text/html", "image/png,text/html", "text/plain, text/html",
		"text/html;charset=utf-7", "text/plain; charset=iso-8859-1", "text/plain; charset=utf-8; charset=utf-7",
		`video/mp4; codecs="avc1`, "video/mp4; codecs", "video/mp4; =x", "video/mp4 x", "video/mp4; a=b c",
		"video/mp4\x00", "video/mp4\n", "vidéo/mp4", "video/mp4; x=\"é\"",
		"text/html\r\nX-Injected: 1",
		"video/" + strings.Repeat("a", 300),
	} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %q; want an error", in, got)
		}
	}
}

// The tester's examples and their variants: none is allowed for any kind
// except text/html for documents, which the portal serves sandboxed.
func TestCheck(t *testing.T) {
	hostile := []string{
		"text/xsl", "application/pdf, text/html", "image/png, text/html", "text/html",
		"application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "multipart/x-mixed-replace",
		"multipart/x-mixed-replace; boundary=x", "TEXT/XSL", "Image/SVG+XML; charset=utf-8", "text/html; charset=UTF-8",
		"APPLICATION/XHTML+XML", "application/xslt+xml", "application/vnd.evil+xml", "text/javascript",
		"application/javascript", "text/html, application/pdf", "application/pdf,", "text/vtt",
	}
	for _, kind := range []string{"video", "audio", "pdf", "epub", "html5", "document"} {
		for _, typ := range hostile {
			err := Check(kind, typ)
			isHTML := kind == "document" && (strings.EqualFold(typ, "text/html") || strings.EqualFold(typ, "text/html; charset=UTF-8"))
			if isHTML {
				if err != nil {
					t.Errorf("Check(%s, %q): %v; a document may be HTML", kind, typ, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("Check(%s, %q) allowed it", kind, typ)
				continue
			}
			// The message lists what the kind allows, so an author can fix it.
			if !strings.Contains(err.Error(), Allowed(kind)[0]) {
				t.Errorf("Check(%s, %q) = %q; it does not list the allowed types", kind, typ, err)
			}
		}
	}
	for _, ok := range []struct{ kind, typ string }{
		{"video", "video/webm"}, {"video", "Video/MP4; codecs=avc1"}, {"audio", "audio/wav"}, {"audio", "audio/ogg; codecs=opus"},
		{"pdf", "application/pdf"}, {"epub", "application/epub+zip"}, {"html5", "application/zip"},
		{"document", "text/plain; charset=utf-8"}, {"document", "application/octet-stream"}, {"document", "image/png"},
		{"video", ""}, // no type: the extension decides
	} {
		if err := Check(ok.kind, ok.typ); err != nil {
			t.Errorf("Check(%s, %q): %v", ok.kind, ok.typ, err)
		}
	}
	if err := Check("applet", "text/plain"); err == nil {
		t.Error("an unknown kind was given a type")
	}
	if err := Check("pdf", "application/pdf, text/html"); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Errorf("a comma-joined type: %v; want the comma named", err)
	}
}

func TestForItem(t *testing.T) {
	for _, tc := range []struct{ kind, declared, file, want string }{
		{"video", "", "media/intro.webm", "video/webm"},
		{"video", "", "media/INTRO.MP4", "video/mp4"},
		{"video", "", "media/old.ogg", "video/ogg"},
		{"audio", "", "media/song.ogg", "audio/ogg"},
		{"video", "video/webm; codecs=vp9", "x.bin", "video/webm"},
		{"pdf", "", "notes.pdf", "application/pdf"},
		{"document", "", "page.html", "text/html; charset=utf-8"},
		{"document", "", "notes.txt", "text/plain; charset=utf-8"},
		{"document", "TEXT/PLAIN; charset=UTF-8", "notes", "text/plain; charset=utf-8"},
		{"epub", "", "book.epub", "application/epub+zip"},
		{"html5", "", "quiz.zip", "application/zip"},
		// Declared but refused: never a guess from the extension instead.
		{"pdf", "text/xsl", "notes.pdf", OctetStream},
		{"pdf", "application/pdf, text/html", "notes.pdf", OctetStream},
		{"document", "image/png, text/html", "p.png", OctetStream},
		{"video", "text/html", "v.webm", OctetStream},
		{"document", "application/xhtml+xml", "p.html", OctetStream},
		{"audio", "image/svg+xml", "a.ogg", OctetStream},
		{"document", "multipart/x-mixed-replace; boundary=x", "m.txt", OctetStream},
		// Extensions the host's /etc/mime.types knows but the box does not.
		{"document", "", "picture.svg", OctetStream},
		{"document", "", "style.xsl", OctetStream},
		{"document", "", "page.xhtml", OctetStream},
		{"document", "", "data.xml", OctetStream},
		{"document", "", "README", OctetStream},
		{"pdf", "", "notes.html", OctetStream}, // a pdf item's extension only implies a PDF
		{"applet", "text/plain", "x.txt", OctetStream},
		{"", "", "x.txt", OctetStream},
	} {
		got := ForItem(tc.kind, tc.declared, tc.file)
		if got != tc.want {
			t.Errorf("ForItem(%q, %q, %q) = %q, want %q", tc.kind, tc.declared, tc.file, got, tc.want)
		}
		if again := ForItem(tc.kind, got, tc.file); got != OctetStream && again != got {
			t.Errorf("ForItem is not stable: %q gives %q", got, again)
		}
	}
}

// TestAllowlistIsInert pins the property the portal relies on: no kind
// allows a type a browser would run as a page, other than documents'
// text/html, which the portal serves only under a script-less sandbox.
func TestAllowlistIsInert(t *testing.T) {
	for kind, rules := range byKind {
		for _, r := range rules {
			e := r.essence
			if strings.HasSuffix(e, "+xml") || strings.HasSuffix(e, "/xml") || strings.Contains(e, "script") || strings.Contains(e, "xhtml") || strings.HasPrefix(e, "multipart/") ||
				e == "text/xsl" || e == "image/svg+xml" || (e == "text/html" && kind != "document") {
				t.Errorf("kind %s allows %s, which a browser may run", kind, e)
			}
			if _, err := Parse(header(e)); err != nil {
				t.Errorf("kind %s: the header for %s does not parse: %v", kind, e, err)
			}
			if got := ForItem(kind, e, ""); got != header(e) {
				t.Errorf("kind %s: ForItem(%s) = %q", kind, e, got)
			}
		}
	}
}

func TestMember(t *testing.T) {
	for name, want := range map[string]string{
		"index.html": "text/html; charset=utf-8", "js/App.JS": "text/javascript; charset=utf-8", "a.css": "text/css; charset=utf-8",
		"img/x.svg": "image/svg+xml", "font.woff2": "font/woff2", "style.xsl": OctetStream, "x.xhtml": OctetStream,
		"noext": OctetStream, "a.exe": OctetStream, ".html.bin": OctetStream,
	} {
		if got := Member(name); got != want {
			t.Errorf("Member(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"video/webm", `a/b; c="d,e"; f=g`, "text/html, text/plain", `a/b; c="\"`, "a/b;;;", "TEXT/PLAIN;CHARSET=UTF-8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		// An accepted type is one lower-case type/subtype of token
		// characters; no comma, space or control character gets through.
		typ, sub, ok := strings.Cut(e, "/")
		if !ok || typ == "" || sub == "" || strings.Contains(sub, "/") || e != strings.ToLower(e) {
			t.Fatalf("Parse(%q) = %q", s, e)
		}
		for i := 0; i < len(e); i++ {
			if e[i] != '/' && !isTchar(e[i]) {
				t.Fatalf("Parse(%q) = %q with byte %q", s, e, e[i])
			}
		}
		if inUnquoted(s, ',') {
			t.Fatalf("Parse(%q) accepted a comma", s)
		}
		for _, kind := range []string{"video", "audio", "pdf", "epub", "html5", "document"} {
			ct := ForItem(kind, s, "")
			if ct != OctetStream && Check(kind, s) != nil {
				t.Fatalf("ForItem(%s, %q) = %q but Check refuses it", kind, s, ct)
			}
		}
	})
}
