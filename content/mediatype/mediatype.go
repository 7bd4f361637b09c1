// Package mediatype holds the media types the box serves course files as.
//
// A browser decides from a response's type whether to run it as a page, and
// a course pack comes from someone the box does not trust. So the type of
// every course file the portal serves is chosen here, in code, from a fixed
// allowlist per item kind: a pack's declared type may only pick among the
// types allowed for its item's kind, and the host's /etc/mime.types (what
// mime.TypeByExtension reads) is never consulted, since it differs from host
// to host. Whatever fits no rule is served as OctetStream, as an attachment:
// bytes a browser saves and never shows.
//
// No type allowed here lets a file run script in the portal's origin when
// served with nosniff: media, PDF, images, archives and office files are
// never parsed as pages, and the one page type, text/html for documents, is
// only ever served under a CSP sandbox without scripts (see ui/web).
//
// Kinds are named by their strings ("video", "pdf"...) rather than by
// pack.Kind so that the pack format can validate against this package
// without an import cycle.
package mediatype

import (
	"fmt"
	"path"
	"strings"
)

// OctetStream is the type of every file no rule allows: browsers save it.
const OctetStream = "application/octet-stream"

// rule is one type a kind allows, and the file extensions that imply it
// when a pack declares no type.
type rule struct {
	essence string
	exts    []string
}

// byKind is the allowlist. Each kind allows what its player needs, nothing a
// browser would run as a page; documents add what a learner downloads and
// opens elsewhere. Extensions are per kind: ".ogg" is a video in a video
// item and a recording in an audio item.
var byKind = map[string][]rule{
	"video": {
		{"video/webm", []string{".webm"}},
		{"video/mp4", []string{".mp4", ".m4v"}},
		{"video/ogg", []string{".ogv", ".ogg"}},
	},
	"audio": {
		{"audio/mpeg", []string{".mp3"}},
		{"audio/mp4", []string{".m4a"}},
		{"audio/aac", []string{".aac"}},
		{"audio/ogg", []string{".ogg", ".oga", ".opus"}},
		{"audio/wav", []string{".wav"}},
		{"audio/webm", []string{".weba", ".webm"}},
		{"audio/flac", []string{".flac"}},
	},
	"pdf":   {{"application/pdf", []string{".pdf"}}},
	"epub":  {{"application/epub+zip", []string{".epub"}}},
	"html5": {{"application/zip", []string{".zip"}}},
	"document": {
		{"text/plain", []string{".txt"}},
		// Served only under a CSP sandbox without scripts, and shown in a
		// sandboxed frame: a document page can be read, never run.
		{"text/html", []string{".html", ".htm"}},
		{"text/csv", []string{".csv"}},
		{"application/pdf", []string{".pdf"}},
		{"application/epub+zip", []string{".epub"}},
		{"image/png", []string{".png"}},
		{"image/jpeg", []string{".jpg", ".jpeg"}},
		{"image/gif", []string{".gif"}},
		{"image/webp", []string{".webp"}},
		{"application/rtf", []string{".rtf"}},
		{"application/msword", []string{".doc"}},
		{"application/vnd.ms-excel", []string{".xls"}},
		{"application/vnd.ms-powerpoint", []string{".ppt"}},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", []string{".docx"}},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", []string{".xlsx"}},
		{"application/vnd.openxmlformats-officedocument.presentationml.presentation", []string{".pptx"}},
		{"application/vnd.oasis.opendocument.text", []string{".odt"}},
		{"application/vnd.oasis.opendocument.spreadsheet", []string{".ods"}},
		{"application/vnd.oasis.opendocument.presentation", []string{".odp"}},
		{"application/zip", []string{".zip"}},
		{OctetStream, nil},
	},
}

// canonical maps each kind's headers to themselves: the values ForItem
// returns, and so what the catalog stores, recognised without parsing.
var canonical = func() map[string]map[string]string {
	m := map[string]map[string]string{}
	for kind, rules := range byKind {
		m[kind] = map[string]string{}
		for _, r := range rules {
			m[kind][header(r.essence)] = header(r.essence)
		}
	}
	return m
}()

// Allowed lists the types an item of kind may have, in the order the docs
// give them; nil for a kind this build does not know.
func Allowed(kind string) []string {
	rules := byKind[kind]
	if rules == nil {
		return nil
	}
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.essence
	}
	return out
}

func allows(rules []rule, essence string) bool {
	for _, r := range rules {
		if r.essence == essence {
			return true
		}
	}
	return false
}

// header is the Content-Type sent for an allowed type: text is always sent
// as UTF-8, the only charset Parse accepts, so no page can be decoded as
// UTF-7 or another encoding that hides markup.
func header(essence string) string {
	if strings.HasPrefix(essence, "text/") {
		return essence + "; charset=utf-8"
	}
	return essence
}

// Check says whether a pack may declare this type for an item of kind; its
// error says why not and lists what the kind allows. An empty declared type
// is fine: the type then follows the file's extension (ForItem).
func Check(kind, declared string) error {
	if declared == "" {
		return nil
	}
	rules := byKind[kind]
	if rules == nil {
		return fmt.Errorf("%q items have no media types", kind)
	}
	allowed := strings.Join(Allowed(kind), ", ")
	essence, err := Parse(declared)
	if err != nil {
		return fmt.Errorf("%w; a %s item may have %s", err, kind, allowed)
	}
	if !allows(rules, essence) {
		return fmt.Errorf("%q is not a type a %s item may have; use one of %s, or leave type out to follow the file's extension", declared, kind, allowed)
	}
	return nil
}

// ForItem is the Content-Type the box serves an item's file with: the
// declared type (a manifest's, or a catalog row's from any build) if it is
// well formed and allowed for kind, else the type the file's extension
// implies for kind, else OctetStream. A declared type that is present but
// not allowed gives OctetStream, never a guess: the pack said something the
// box refuses to act on. ForItem(kind, ForItem(kind, t, f), f) equals
// ForItem(kind, t, f), so the catalog can store its result and the portal
// check it again at serve time.
func ForItem(kind, declared, file string) string {
	if h, ok := canonical[kind][declared]; ok {
		return h // what the catalog stores: no parsing on the media path
	}
	rules := byKind[kind]
	if rules == nil {
		return OctetStream
	}
	if declared != "" {
		essence, err := Parse(declared)
		if err != nil || !allows(rules, essence) {
			return OctetStream
		}
		return header(essence)
	}
	ext := strings.ToLower(path.Ext(file))
	if ext == "" {
		return OctetStream
	}
	for _, r := range rules {
		for _, e := range r.exts {
			if e == ext {
				return header(r.essence)
			}
		}
	}
	return OctetStream
}

// memberTypes are the types of the files inside an HTML5 activity (and of
// the portal's own embedded assets), by extension. Everything under an
// activity is served under a CSP sandbox that gives it an opaque origin, so
// pages and scripts are allowed here; what is not listed is OctetStream.
var memberTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".json":  "application/json",
	".xml":   "application/xml",
	".txt":   "text/plain; charset=utf-8",
	".vtt":   "text/vtt; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".avif":  "image/avif",
	".ico":   "image/x-icon",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".ttf":   "font/ttf",
	".otf":   "font/otf",
	".wasm":  "application/wasm",
	".webm":  "video/webm",
	".mp4":   "video/mp4",
	".ogv":   "video/ogg",
	".mp3":   "audio/mpeg",
	".m4a":   "audio/mp4",
	".ogg":   "audio/ogg",
	".oga":   "audio/ogg",
	".opus":  "audio/ogg",
	".wav":   "audio/wav",
	".pdf":   "application/pdf",
}

// Member is the Content-Type of a file inside an HTML5 activity, or of one
// of the portal's embedded assets, from its name; OctetStream when the
// extension is not listed.
func Member(name string) string {
	if t, ok := memberTypes[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return OctetStream
}

// Playable reports whether a Content-Type from ForItem is audio or video,
// which a browser shows in its own media player and never as a page.
func Playable(ctype string) bool {
	return strings.HasPrefix(ctype, "video/") || strings.HasPrefix(ctype, "audio/")
}
