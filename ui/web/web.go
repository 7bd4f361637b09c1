// Package web is the LAN portal: the pages a phone or laptop on the school
// network opens to browse, search and play the courses a box holds.
//
// Everything works offline and without JavaScript: pages are rendered on the
// server with html/template, styles and icons are embedded in the binary,
// navigation is plain links and GET forms, and players are the browser's own
// <video>, <audio>, PDF viewer and sandboxed <iframe>. No page refers to an
// address outside the box.
//
// Routes:
//
//	GET /                           courses by subject, with language and subject filters
//	GET /search?q=&lang=&subject=   full-text search
//	GET /c/{course}                 a course: description, lessons, items
//	GET /c/{course}/i/{item}        an item with its player, previous/next links
//	GET /m/{course}/{item}          the item's file, inline, with Range support
//	GET /d/{course}/{item}          the same as an attachment download
//	GET /t/{course}/{item}          the item's WebVTT transcript, if the pack has one
//	GET /a/{course}/{item}/{path}   a file inside an HTML5 activity's zip
//	GET /s/{name}                   embedded CSS and icons
//
// Course files (/m/, /d/, /t/, /a/) are sent with a media type the box
// chooses from a fixed allowlist per item kind (package mediatype), with
// nosniff and a CSP whose sandbox keeps any script out of the portal's
// origin; see media.go for why each policy is what it is.
//
// Every page takes ?hl=en or ?hl=fr to choose the portal's language;
// otherwise the browser's Accept-Language decides.
//
// Pages are sent gzipped to browsers that take it, with a validator, so an
// unchanged page costs a 304 (respond.go). Course and item pages are kept
// rendered under their course's edition, which each view asks the catalog
// for, so a page seen before costs one lookup and a version switch is seen
// at the next view (pagecache.go).
package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"

	"outpost/content/catalog"
)

// Courses is what the portal reads from the course catalog; the
// *catalog.Catalog satisfies it.
type Courses interface {
	Courses(ctx context.Context, f catalog.Filter) ([]catalog.Course, error)
	Edition(ctx context.Context, id string) (catalog.Edition, error)
	CourseWindow(ctx context.Context, id string, offset, limit int) (*catalog.Course, error)
	ItemContext(ctx context.Context, courseID, itemID string) (*catalog.ItemContext, error)
	Item(ctx context.Context, courseID, itemID string) (*catalog.Item, error)
	File(ctx context.Context, courseID, path string) (sha string, size int64, err error)
	Search(ctx context.Context, q string, f catalog.Filter) ([]catalog.Hit, error)
	Facets(ctx context.Context) (languages, subjects []string, err error)
}

// Objects opens stored files by SHA-256; the *blockstore.Store satisfies it.
type Objects interface {
	OpenObject(sha string) (*os.File, error)
}

// Options configure the portal.
type Options struct {
	Courses Courses
	Objects Objects
	// DefaultLanguage is the portal language for browsers that ask for none
	// the portal speaks; "en" when empty.
	DefaultLanguage string
	// Logger receives server errors; nothing is logged when nil.
	Logger *slog.Logger
}

// Portal pages embed only same-origin frames, objects and media; they have
// no script at all, so script-src falls back to 'self' and nothing inline
// runs even if an escaping bug slipped through.
const pageCSP = "default-src 'self'; frame-src 'self'; object-src 'self'; img-src 'self' data:; media-src 'self'; " +
	"frame-ancestors 'self'; form-action 'self'; base-uri 'none'"

type server struct {
	courses Courses
	objects Objects
	log     *slog.Logger
	tr      *translator
	views   *views
	assets  *assets
	zips    *zipCache
	items   *itemCache
	pages   *pageCache
	mux     *http.ServeMux
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// New returns the portal's handler.
func New(o Options) (http.Handler, error) {
	if o.Courses == nil || o.Objects == nil {
		return nil, errors.New("web: Options.Courses and Options.Objects are required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr, err := newTranslator(o.DefaultLanguage)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if tr.defaultFellBack {
		log.Warn("the portal has no translation for the default language; using English", "language", o.DefaultLanguage)
	}
	a, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	v, err := newViews(tr, a)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &server{courses: o.Courses, objects: o.Objects, log: log, tr: tr, views: v, assets: a, zips: newZipCache(zipCacheEntries, zipCacheMembers), items: newItemCache(o.Courses), pages: newPageCache(pageCacheBytes)}

	mux := http.NewServeMux()
	s.mux = mux
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /search", s.search)
	mux.HandleFunc("GET /c/{course}", s.course)
	mux.HandleFunc("GET /c/{course}/i/{item}", s.item)
	mux.HandleFunc("GET /m/{course}/{item}", s.media)
	mux.HandleFunc("GET /d/{course}/{item}", s.download)
	mux.HandleFunc("GET /t/{course}/{item}", s.transcript)
	mux.HandleFunc("GET /a/{course}/{item}/{path...}", s.activity)
	mux.HandleFunc("GET /s/{name...}", s.static)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w, r, reasonPage) })
	return s, nil
}

// base is what the layout needs on every page.
type base struct {
	Page  string // names the page for tests and styles
	Title string
	Query string // what the search box shows
	Langs []langLink
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

// base fills the layout's fields for a page at path (escaped) whose query
// is q: the language links keep the page and its query.
func (s *server) base(path string, q url.Values, l locale, page, title string) base {
	b := base{Page: page, Title: title, Langs: make([]langLink, 0, len(supported))}
	for i, tag := range supported {
		lq := make(url.Values, len(q)+1)
		for k, v := range q {
			lq[k] = v
		}
		lq.Set("hl", tag.String())
		b.Langs = append(b.Langs, langLink{
			Code:    tag.String(),
			Name:    languageName(tag.String()),
			URL:     path + "?" + lq.Encode(),
			Current: i == l.idx,
		})
	}
	return b
}

// baseOf is base for the page the request asked for, query and all.
func (s *server) baseOf(r *http.Request, l locale, page, title string) base {
	return s.base(r.URL.EscapedPath(), r.URL.Query(), l, page, title)
}

// execute renders a page into a buffer of its own, so a template error
// becomes a clean 500 instead of half a page.
func (s *server) execute(l locale, name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := s.views.page(l, name).ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// render executes a page for this answer only (home, search, errors) and
// sends it.
func (s *server) render(w http.ResponseWriter, r *http.Request, l locale, status int, name string, data any) {
	body, err := s.execute(l, name, data)
	if err != nil {
		s.renderFailed(w, r, name, err)
		return
	}
	s.send(w, r, l, status, newPage(body, levelOnce, acceptsGzip(r)))
}

func (s *server) renderFailed(w http.ResponseWriter, r *http.Request, name string, err error) {
	s.log.Error("render page", "page", name, "path", r.URL.Path, "err", err)
	if name != "error" {
		s.serverError(w, r, err)
		return
	}
	http.Error(w, "Internal server error", http.StatusInternalServerError)
}

// Reasons the error page explains; the template words each one.
const (
	reasonPage   = "page"
	reasonCourse = "course"
	reasonItem   = "item"
	reasonFile   = "file"
	reasonServer = "server"
)

type errorPage struct {
	base
	Reason   string
	CourseID string // for reasonItem: the course to go back to
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request, reason string) {
	s.errorPage(w, r, http.StatusNotFound, reason, "")
}

func (s *server) errorPage(w http.ResponseWriter, r *http.Request, status int, reason, courseID string) {
	l := s.tr.choose(r)
	title := "Page not found"
	if status >= 500 {
		title = "Something went wrong"
	}
	// Media and activity URLs reach here too; their caching headers must not
	// make an error stick.
	h := w.Header()
	for _, k := range []string{"ETag", "Cache-Control", "Content-Disposition", "Content-Length"} {
		h.Del(k)
	}
	h.Set("Cache-Control", "no-store")
	s.render(w, r, l, status, "error", errorPage{
		base:     s.baseOf(r, l, "error", s.tr.printer(l).Sprintf(title)),
		Reason:   reason,
		CourseID: courseID,
	})
}

// serverError logs the cause, which is for the box's keeper, and shows the
// learner only what to do.
func (s *server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("portal request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, reasonServer, "")
}

// lookupFailed answers a failed catalog lookup: unknown ids are the
// learner's (or an old link's) business, anything else is ours.
func (s *server) lookupFailed(w http.ResponseWriter, r *http.Request, err error, reason, courseID string) {
	if errors.Is(err, catalog.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, reason, courseID)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away; nobody is left to answer
	}
	s.serverError(w, r, err)
}
