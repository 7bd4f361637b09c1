package web

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/mediatype"
)

// mediaCacheControl: /m/ and /d/ URLs name an item, not a version of its
// content, so a browser may reuse a copy for a few minutes and then
// revalidates it with the ETag (the object's SHA-256), which costs one tiny
// round trip on the LAN and never serves a stale video after an update.
const mediaCacheControl = "public, max-age=300"

// Every course file the portal serves (/m/, /d/, /t/) carries nosniff and a
// sandboxing CSP, whatever its type: the type is already one the box chose
// from its allowlist (package mediatype), and the sandbox makes sure that
// even a file a browser did render as a page could run no script.
//
// fileCSP is the sandbox without any allowance: no script, an opaque origin
// (no cookies, no storage, no same-origin requests), no forms, popups or
// plugins. It is what HTML documents, PDFs and everything else get.
//
// PDFs were checked against it in Chromium 156 (TestBrowser): its PDF
// viewer renders a PDF served with this CSP both inside the item page's
// <object> and opened on its own. What Chromium refuses is a PDF in an
// <iframe sandbox> (it shows an error page instead), which is why the item
// page embeds PDFs with <object> and relies on the header. The viewer's own
// download and print buttons are sandboxed too; the item page's Download
// link is the way to save the file.
const fileCSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; media-src 'self'; frame-ancestors 'self'"

// playerCSP is for audio and video only. Opened on its own, such a file is
// shown by the browser in a media page the browser writes itself, which
// fetches the file again in CORS mode (Chromium marks it
// crossorigin=anonymous); under fileCSP's opaque origin that fetch is
// cross-origin and fails, and the player stays empty. allow-same-origin
// keeps the box's origin for that fetch and nothing else: without
// allow-scripts no script runs in the document at all, and a file served as
// audio/* or video/* with nosniff is only ever decoded as media.
const playerCSP = "sandbox allow-same-origin; default-src 'none'; media-src 'self'; frame-ancestors 'self'"

func (s *server) media(w http.ResponseWriter, r *http.Request)    { s.itemFile(w, r, false) }
func (s *server) download(w http.ResponseWriter, r *http.Request) { s.itemFile(w, r, true) }

func (s *server) itemFile(w http.ResponseWriter, r *http.Request, attach bool) {
	courseID, itemID := r.PathValue("course"), r.PathValue("item")
	it, cached, err := s.items.get(r.Context(), courseID, itemID)
	if err != nil {
		s.lookupFailed(w, r, err, reasonItem, courseID)
		return
	}
	f, err := s.objects.OpenObject(it.SHA256)
	if err != nil && cached {
		// The cached item may predate a version switch and gc; ask again.
		s.items.forget(courseID, itemID)
		if it, _, err = s.items.get(r.Context(), courseID, itemID); err != nil {
			s.lookupFailed(w, r, err, reasonItem, courseID)
			return
		}
		f, err = s.objects.OpenObject(it.SHA256)
	}
	if err != nil {
		s.objectFailed(w, r, it.SHA256, err)
		return
	}
	defer f.Close()
	// Checked again at every request, not only at import: the row may come
	// from an older build that stored whatever type a pack declared.
	ctype := mediatype.ForItem(string(it.Kind), it.MIME, it.Path)
	name := ""
	if attach || ctype == mediatype.OctetStream {
		name = path.Base(it.Path)
	}
	s.serveFile(w, r, f, it.SHA256, ctype, name)
}

// captionsType is the one type a transcript is served as: /t/ serves only
// .vtt transcripts, for <track>.
const captionsType = "text/vtt; charset=utf-8"

func (s *server) transcript(w http.ResponseWriter, r *http.Request) {
	courseID := r.PathValue("course")
	it, err := s.courses.Item(r.Context(), courseID, r.PathValue("item"))
	if err != nil {
		s.lookupFailed(w, r, err, reasonItem, courseID)
		return
	}
	if !hasCaptions(it) {
		s.lookupFailed(w, r, catalog.ErrNotFound, reasonFile, courseID)
		return
	}
	sha, _, err := s.courses.File(r.Context(), courseID, it.TextPath)
	if err != nil {
		s.lookupFailed(w, r, err, reasonFile, courseID)
		return
	}
	s.serveObject(w, r, sha, captionsType, "")
}

// serveObject streams a stored object with http.ServeContent, which does
// Range (single, suffix, open-ended, multipart), If-Range, If-None-Match and
// HEAD; handing it the *os.File lets the kernel's sendfile do the copying.
func (s *server) serveObject(w http.ResponseWriter, r *http.Request, sha, ctype, attachName string) {
	f, err := s.objects.OpenObject(sha)
	if err != nil {
		s.objectFailed(w, r, sha, err)
		return
	}
	defer f.Close()
	s.serveFile(w, r, f, sha, ctype, attachName)
}

// serveFile sends a course file. ctype must come from package mediatype;
// the caller passes attachName for downloads and for OctetStream.
func (s *server) serveFile(w http.ResponseWriter, r *http.Request, f *os.File, sha, ctype, attachName string) {
	if ctype == "" {
		ctype = mediatype.OctetStream
	}
	// Direct map assignment with canonical keys: Header.Set canonicalises
	// every key on every call, which shows up at thousands of requests/s.
	h := w.Header()
	h["Content-Type"] = []string{ctype}
	h["Etag"] = []string{`"` + sha + `"`}
	h["Cache-Control"] = mediaCacheControlHdr
	h["X-Content-Type-Options"] = nosniffHdr
	h["Referrer-Policy"] = noReferrerHdr
	if mediatype.Playable(ctype) {
		h["Content-Security-Policy"] = playerCSPHdr
	} else {
		h["Content-Security-Policy"] = fileCSPHdr
	}
	if attachName != "" {
		h.Set("Content-Disposition", attachment(attachName))
	}
	// No modification time: the ETag is the whole truth about the bytes.
	http.ServeContent(w, r, "", time.Time{}, f)
}

var (
	mediaCacheControlHdr = []string{mediaCacheControl}
	nosniffHdr           = []string{"nosniff"}
	noReferrerHdr        = []string{"no-referrer"}
	fileCSPHdr           = []string{fileCSP}
	playerCSPHdr         = []string{playerCSP}
)

// objectFailed answers a file the catalog lists but the store cannot open:
// quarantined or lost files are the keeper's to fix by re-importing, which
// the page says; anything else is a server error.
func (s *server) objectFailed(w http.ResponseWriter, r *http.Request, sha string, err error) {
	if errors.Is(err, blockstore.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("object of a visible course is missing", "sha256", sha, "path", r.URL.Path)
		s.errorPage(w, r, http.StatusNotFound, reasonFile, r.PathValue("course"))
		return
	}
	s.serverError(w, r, err)
}

// attachment builds a Content-Disposition that every browser saves under a
// sensible name: an ASCII fallback with anything risky replaced (quotes,
// slashes, control characters), and the real name in RFC 5987 form when it
// differs.
func attachment(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	ascii := strings.Trim(b.String(), ".")
	if ascii == "" {
		ascii = "download"
	}
	v := `attachment; filename="` + ascii + `"`
	if ascii != name {
		v += "; filename*=UTF-8''" + rfc5987(name)
	}
	return v
}

// rfc5987 percent-encodes every byte outside RFC 5987's attr-char set, so no
// ';', ',' or quote can end the parameter early.
func rfc5987(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// static serves the embedded assets. A link with the current content hash
// (what the templates emit) may be cached for a year; any other request gets
// a short lifetime, so an old bookmark cannot pin an old stylesheet.
func (s *server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a, ok := s.assets.files[name]
	if !ok {
		s.notFound(w, r, reasonPage)
		return
	}
	h := w.Header()
	h.Set("Content-Type", mediatype.Member(name))
	h.Set("ETag", `"`+a.hash+`"`)
	if r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", mediaCacheControl)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", fileCSP) // the icons are SVG
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
