package web

import (
	"archive/zip"
	"compress/flate"
	"container/list"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"outpost/content/catalog"
	"outpost/content/mediatype"
	"outpost/content/pack"
)

// activityCSP is sent with every file of an HTML5 activity. The sandbox
// directive gives the activity an opaque origin even when a learner opens
// its URL directly, outside the portal's sandboxed <iframe>: it cannot read
// the portal's cookies or storage or call the box's admin API, and
// connect-src 'none' keeps it from phoning anywhere.
const activityCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; media-src 'self'; font-src 'self' data:; connect-src 'none'; frame-ancestors 'self'; sandbox allow-scripts"

// The zip cache keeps the directories of the activities in use. An activity
// page pulls dozens of members in a burst; re-reading the central directory
// of a large zip (and a local header per member) for each one is the cost the
// cache saves. It is bounded by activities and by members in total, since a
// member costs about a hundred bytes and a box may have 1 GB of RAM.
const (
	zipCacheEntries = 32
	zipCacheMembers = 200_000
)

// zipMember is what serving one member needs, taken from the central
// directory and the member's local header once per object.
type zipMember struct {
	method       uint16
	offset       int64 // of the member's data in the zip file
	compressed   int64
	uncompressed int64
	crc          uint32
}

type zipDir struct {
	members map[string]zipMember
}

// zipCache is a small LRU of parsed zip directories by object hash. It holds
// no open files: an entry outlives the request that made it, and an object
// may be garbage-collected after its course is removed.
type zipCache struct {
	mu         sync.Mutex
	max        int // entries
	maxMembers int // summed over entries
	members    int
	ll         *list.List // of *zipCacheEntry, most recent first
	m          map[string]*list.Element
}

type zipCacheEntry struct {
	sha string
	dir *zipDir
}

func newZipCache(max, maxMembers int) *zipCache {
	return &zipCache{max: max, maxMembers: maxMembers, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *zipCache) get(sha string) (*zipDir, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[sha]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*zipCacheEntry).dir, true
	}
	return nil, false
}

func (c *zipCache) add(sha string, d *zipDir) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[sha]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.m[sha] = c.ll.PushFront(&zipCacheEntry{sha: sha, dir: d})
	c.members += len(d.members)
	// The newest entry always stays, however large: the request that read
	// it is about to be followed by its siblings.
	for c.ll.Len() > 1 && (c.ll.Len() > c.max || c.members > c.maxMembers) {
		e := c.ll.Back()
		c.ll.Remove(e)
		old := e.Value.(*zipCacheEntry)
		delete(c.m, old.sha)
		c.members -= len(old.dir.members)
	}
}

func (c *zipCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// readZipDir lists the servable members of a zip. Names that are not clean
// relative paths (absolute, "..", backslashes) are dropped here, so no
// request can ever match them; so are directories.
func readZipDir(f *os.File) (*zipDir, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, err
	}
	d := &zipDir{members: make(map[string]zipMember, len(zr.File))}
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") || pack.CheckPath(zf.Name) != nil {
			continue
		}
		if _, dup := d.members[zf.Name]; dup {
			continue // the first entry wins, as in most unzip tools
		}
		off, err := zf.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", zf.Name, err)
		}
		d.members[zf.Name] = zipMember{
			method:       zf.Method,
			offset:       off,
			compressed:   int64(zf.CompressedSize64),
			uncompressed: int64(zf.UncompressedSize64),
			crc:          zf.CRC32,
		}
	}
	return d, nil
}

// memberPath validates the {path...} of an activity URL: it must be a clean
// pack path, the same rule the zip's own names pass.
func memberPath(p string) (string, error) {
	if err := pack.CheckPath(p); err != nil {
		return "", err
	}
	return p, nil
}

func (s *server) activity(w http.ResponseWriter, r *http.Request) {
	courseID, itemID := r.PathValue("course"), r.PathValue("item")
	it, err := s.courses.Item(r.Context(), courseID, itemID)
	if err != nil {
		s.lookupFailed(w, r, err, reasonItem, courseID)
		return
	}
	if it.Kind != pack.KindHTML5 {
		s.errorPage(w, r, http.StatusNotFound, reasonItem, courseID)
		return
	}
	raw := r.PathValue("path")
	if raw == "" {
		s.toEntry(w, r, it)
		return
	}
	name, err := memberPath(raw)
	if err != nil {
		http.Error(w, "Bad file name in the address.", http.StatusBadRequest)
		return
	}
	f, err := s.objects.OpenObject(it.SHA256)
	if err != nil {
		s.objectFailed(w, r, it.SHA256, err)
		return
	}
	defer f.Close()
	dir, ok := s.zips.get(it.SHA256)
	if !ok {
		dir, err = readZipDir(f)
		if err != nil {
			s.serverError(w, r, fmt.Errorf("read activity %s/%s (%s): %w", courseID, itemID, it.SHA256, err))
			return
		}
		s.zips.add(it.SHA256, dir)
	}
	m, ok := dir.members[name]
	if !ok {
		http.NotFound(w, r)
		return
	}

	h := w.Header()
	ctype := mediatype.Member(name)
	h.Set("Content-Type", ctype)
	if ctype == mediatype.OctetStream {
		h.Set("Content-Disposition", attachment(path.Base(name)))
	}
	h.Set("Content-Security-Policy", activityCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", mediaCacheControl)
	// The object's hash fixes every member's bytes; the member's offset
	// tells members apart.
	etag := `"` + it.SHA256 + "-" + strconv.FormatInt(m.offset, 16) + `"`
	h.Set("ETag", etag)

	switch m.method {
	case zip.Store:
		if m.compressed != m.uncompressed {
			s.serverError(w, r, fmt.Errorf("activity %s/%s member %s: stored sizes differ", courseID, itemID, name))
			return
		}
		http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, m.offset, m.uncompressed))
	case zip.Deflate:
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Length", strconv.FormatInt(m.uncompressed, 10))
		if r.Method == http.MethodHead {
			return
		}
		zr := flate.NewReader(io.NewSectionReader(f, m.offset, m.compressed))
		defer zr.Close()
		// CopyN: a zip whose header understates the size must not make us
		// write past the Content-Length we promised.
		if _, err := io.CopyN(w, zr, m.uncompressed); err != nil && r.Context().Err() == nil {
			s.log.Warn("activity member cut short", "course", courseID, "item", itemID, "member", name, "err", err)
		}
	default:
		s.serverError(w, r, fmt.Errorf("activity %s/%s member %s: zip compression method %d is not supported; repack the activity with deflate or no compression", courseID, itemID, name, m.method))
	}
}

// toEntry redirects a bare activity URL to its entry page. The Location is
// built here as an absolute path on the box from the ids and the escaped
// entry, never handed to http.Redirect as a relative reference: an entry
// such as "https:evil.example/x" would otherwise be read by the browser as
// an absolute URL and send the learner off the box. (Import refuses such
// entries too, but a catalog row may come from an older build.)
func (s *server) toEntry(w http.ResponseWriter, r *http.Request, it *catalog.Item) {
	entry := it.Entry
	if entry == "" {
		entry = "index.html"
	}
	if pack.CheckPath(entry) != nil {
		s.errorPage(w, r, http.StatusNotFound, reasonItem, it.CourseID)
		return
	}
	loc := activityPath(it.CourseID, it.ID, entry)
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// activityPath is the URL path of a file inside an activity: always
// "/a/…", so it can never be read as another host or a scheme.
func activityPath(course, item, member string) string {
	return "/a/" + url.PathEscape(course) + "/" + url.PathEscape(item) + "/" + escapePath(member)
}

// etagMatches implements If-None-Match's weak comparison for the deflated
// members that http.ServeContent cannot serve (they are not seekable).
func etagMatches(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = textproto.TrimString(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
