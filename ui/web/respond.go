package web

import (
	"bytes"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// rendered is a page ready to send: the HTML, its gzip encoding and a
// validator. Pages are sent compressed to every browser that accepts gzip
// (all of them): a course page of 200 items is ~4 KB on the wire instead of
// ~30 KB, which is what counts on a school's shared Wi-Fi. kiwix-serve does
// the same for its pages.
type rendered struct {
	body []byte // the HTML; nil in a kept page that has gz
	gz   []byte // nil when compression would not shrink the page
	size int    // of the HTML
	etag string // weak: both encodings of the page share it
}

// kept is the page as the page cache keeps it: compressed only, when it
// compresses. A kept course page is then ~4 KB instead of ~35 KB, so the
// cache holds every page of a 50,000-item course's listing and thousands
// of item pages; a client that takes no gzip (not a browser) gets the page
// inflated on the way out, ~40 µs for a course page.
func (p *rendered) kept() *rendered {
	if p.gz == nil {
		return p
	}
	return &rendered{gz: p.gz, size: p.size, etag: p.etag}
}

// Compression levels, measured on the portal's pages (klauspost/compress,
// pooled writers): the default level costs 17 µs for a 2 KB item page and
// 75 µs for a 34 KB course page, the fastest 13 µs and 39 µs for 7 % more
// bytes (a course page's 3.7 KB become 4.0 KB, an item page's 0.95 KB
// 1.02 KB). A kept page is compressed once and sent many times, so it gets
// the default level; a page rendered for one answer (home, search, errors)
// gets the fastest.
const (
	levelKept = gzip.DefaultCompression
	levelOnce = gzip.BestSpeed
	// minGzip: below this a page is sent as it is; the gzip header and a
	// second buffer would cost more than the bytes saved.
	minGzip = 1 << 10
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// newPage compresses body at level (when asked and the page is large
// enough) and derives the page's validator from its bytes, so the validator changes
// whenever anything on the page does: the course version, a translation,
// the stylesheet's hash after an upgrade. A CRC with the length is enough
// for a validator (a collision would at worst make one browser keep an old
// copy of one page); a cryptographic hash would cost a Pi without SHA
// instructions ~0.3 ms per course page for nothing.
func newPage(body []byte, level int, compress bool) *rendered {
	p := &rendered{body: body, size: len(body), etag: etag(body)}
	if compress && len(body) >= minGzip {
		var buf bytes.Buffer
		buf.Grow(len(body) / 4)
		zw := gzipWriter(&buf, level)
		zw.Write(body)
		zw.Close()
		putGzipWriter(zw, level)
		if buf.Len() < len(body) {
			p.gz = buf.Bytes()
		}
	}
	return p
}

func etag(body []byte) string {
	return `W/"` + strconv.FormatUint(crc64.Checksum(body, crcTable), 36) + "-" + strconv.FormatInt(int64(len(body)), 36) + `"`
}

// gzip writers are pooled per level: each holds a few hundred kilobytes of
// tables, too much to allocate per answer.
var gzipPools [gzip.BestCompression + 2]sync.Pool

func poolIndex(level int) int {
	if level == gzip.DefaultCompression {
		return len(gzipPools) - 1
	}
	return level
}

func gzipWriter(w io.Writer, level int) *gzip.Writer {
	if zw, ok := gzipPools[poolIndex(level)].Get().(*gzip.Writer); ok {
		zw.Reset(w)
		return zw
	}
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		panic(err) // the levels are constants of this file
	}
	return zw
}

func putGzipWriter(zw *gzip.Writer, level int) {
	zw.Reset(io.Discard)
	gzipPools[poolIndex(level)].Put(zw)
}

// acceptsGzip reports whether a request's Accept-Encoding allows gzip:
// "gzip" or "*" listed without q=0. Browsers send "gzip, deflate, br" and
// the like; a client that sends nothing gets the page as it is.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && name != "*" {
				continue
			}
			if !qZero(params) {
				return true
			}
		}
	}
	return false
}

// qZero reports whether an Accept-Encoding entry's parameters say q=0
// (q=0, q=0.0, q=0.000), which refuses the coding.
func qZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil && q == 0
	}
	return false
}

// noneMatch reports whether a conditional request's If-None-Match lists
// etag (weak comparison, as RFC 9110 asks for If-None-Match) or is "*".
func noneMatch(r *http.Request, etag string) bool {
	strong := strings.TrimPrefix(etag, "W/")
	for _, v := range r.Header.Values("If-None-Match") {
		if etagMatches(v, strong) {
			return true
		}
	}
	return false
}

// send answers with a page: 304 when the browser's copy is current, the
// gzip encoding when the browser takes it, the HTML as it is otherwise.
// Every answer says it varies with Accept-Encoding (and, when the language
// came from the browser, Accept-Language), so no cache between hands the
// wrong one to another browser.
func (s *server) send(w http.ResponseWriter, r *http.Request, l locale, status int, p *rendered) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if l.explicit {
		h.Set("Vary", "Accept-Encoding")
	} else {
		h.Set("Vary", "Accept-Language, Accept-Encoding")
	}
	if status == http.StatusOK {
		// Pages change when a course does, so a browser asks again each
		// time; an unchanged page then costs a 304 of a few hundred bytes.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", p.etag)
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && noneMatch(r, p.etag) {
			h.Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := p.body
	if p.gz != nil && acceptsGzip(r) {
		body = p.gz
		h.Set("Content-Encoding", "gzip")
	}
	if body == nil {
		h.Set("Content-Length", strconv.Itoa(p.size))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			inflate(w, p.gz)
		}
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

var gunzipPool sync.Pool

// inflate writes the HTML of a kept page. The page was compressed by this
// process, so a failure can only be the client going away mid-answer.
func inflate(w io.Writer, gz []byte) {
	zr, ok := gunzipPool.Get().(*gzip.Reader)
	var err error
	if ok {
		err = zr.Reset(bytes.NewReader(gz))
	} else {
		zr, err = gzip.NewReader(bytes.NewReader(gz))
	}
	if err != nil {
		return
	}
	io.Copy(w, zr)
	gunzipPool.Put(zr)
}
