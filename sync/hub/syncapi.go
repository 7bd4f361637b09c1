package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/content/blockstore"
	"outpost/sync/wire"
)

type ctxKey struct{}

type deviceCtx struct {
	id  protocol.DeviceID
	box *box
}

// device authorises a sync request by its client certificate. Whatever
// fails here is answered before the body is read: a peer that has not
// proved it is an enrolled box costs one small, uncompressed answer (and,
// once its source failed too often, a 429 instead). An enrolled box is
// never throttled for what others at its address did: the check that
// would refuse it comes first, and costs a map lookup without a
// certificate, one indexed query with one.
func (h *Hub) device(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dev, ok := wire.PeerDevice(r.TLS)
		if !ok {
			if h.throttled(w, r, true) {
				return
			}
			h.refused(w, r, "no_certificate")
			h.fail(w, r, http.StatusUnauthorized, &wire.Error{Code: wire.CodeUnauthorized, Message: "sync requests need the box's certificate (mutual TLS)"})
			return
		}
		b, werr := h.lookupBox(r.Context(), dev, r.Header.Get(wire.HeaderSoftware))
		if werr != nil {
			if werr.Code == wire.CodeInternal {
				h.fail(w, r, http.StatusInternalServerError, werr)
				return
			}
			if h.throttled(w, r, true) {
				return
			}
			h.refused(w, r, werr.Code)
			h.fail(w, r, http.StatusForbidden, werr)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &deviceCtx{id: dev, box: b})))
	})
}

func deviceOf(r *http.Request) *deviceCtx { return r.Context().Value(ctxKey{}).(*deviceCtx) }

func (h *Hub) fail(w http.ResponseWriter, r *http.Request, status int, e *wire.Error) {
	h.metrics.requests.WithLabelValues(r.URL.Path, e.Code).Inc()
	wire.WriteError(w, status, e.Code, e.Message)
}

func (h *Hub) ok(r *http.Request) { h.metrics.requests.WithLabelValues(r.URL.Path, "ok").Inc() }

// internal is the answer to a failure of the hub itself: the cause goes to
// the hub's log, the box is told only to try later (a database error or a
// path says nothing it could act on, and is not its business).
func (h *Hub) internal(op string, err error) *wire.Error {
	h.log.Error("sync request failed", "op", op, "err", err)
	return &wire.Error{Code: wire.CodeInternal, Message: "the hub failed to answer (its log says why); the box tries again later"}
}

// reply sends v as a JSON answer, compressed a chunk at a time.
func (h *Hub) reply(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
		return
	}
	h.ok(r)
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.Header().Set("Content-Encoding", "zstd")
	mw := wire.NewMessageWriter(w)
	mw.Write(append(b, '\n'))
	if err := mw.Close(); err != nil {
		h.log.Debug("sync answer not delivered", "path", r.URL.Path, "err", err)
	}
}

// decodeRequest reads the body of an enrolled box's request, of at most
// limit compressed bytes, answering 400 itself when it cannot. The body is read whole before it is
// decoded, so a peer that sends slowly holds a connection, never one of
// the few pooled decoders.
func (h *Hub) decodeRequest(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		err = wire.DecodeEnrolled(bytes.NewReader(body), v)
	}
	if err != nil {
		h.badRequest(w, r, err)
		return false
	}
	return true
}

func (h *Hub) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, http.StatusBadRequest, &wire.Error{Code: wire.CodeBadRequest, Message: err.Error()})
}

func (h *Hub) handleEnrol(w http.ResponseWriter, r *http.Request) {
	if h.throttled(w, r, true) {
		return
	}
	dev, ok := wire.PeerDevice(r.TLS)
	if !ok {
		h.refused(w, r, "no_certificate")
		h.fail(w, r, http.StatusUnauthorized, &wire.Error{Code: wire.CodeUnauthorized, Message: "enrolment needs the box's certificate (mutual TLS)"})
		return
	}
	var req wire.EnrolRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = wire.DecodeLimit(bytes.NewReader(body), &req, wire.MaxRequest)
	}
	if err != nil {
		h.refused(w, r, "bad_enrol_request")
		h.badRequest(w, r, err)
		return
	}
	secret, _, err := wire.ParseToken(req.Token)
	if err != nil {
		h.refused(w, r, wire.CodeTokenUnknown)
		h.fail(w, r, http.StatusForbidden, &wire.Error{Code: wire.CodeTokenUnknown, Message: err.Error()})
		return
	}
	resp, werr := h.enrol(r.Context(), secret, dev, req.Hostname, r.Header.Get(wire.HeaderSoftware))
	if werr != nil {
		status := http.StatusForbidden
		if werr.Code == wire.CodeInternal {
			status = http.StatusInternalServerError
		} else {
			h.refused(w, r, werr.Code)
		}
		h.fail(w, r, status, werr)
		return
	}
	h.log.Info("box enrolled", "device", dev.String(), "site", resp.Site, "channels", resp.Channels)
	h.reply(w, r, resp)
}

func (h *Hub) handleChanges(w http.ResponseWriter, r *http.Request) {
	d := deviceOf(r)
	since, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	if err != nil || since < 0 {
		h.badRequest(w, r, fmt.Errorf("since must be a cursor (a number ≥ 0), got %q", r.URL.Query().Get("since")))
		return
	}
	// The cursor a box sends is what it has applied: that is its lag.
	h.touch(d.id, r.Header.Get(wire.HeaderSoftware), since)
	ch, err := h.changesSince(r.Context(), d.box, since)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
		return
	}
	h.metrics.changesServed.Inc()
	h.reply(w, r, ch)
}

// handleFiles answers block lists, one per distinct file asked for, in
// the order first asked. Asking for one file 4,096 times gets one entry:
// a box never repeats a file, and a rogue one must not make the hub build
// 4,096 copies. Every file is authorised before the first byte is sent (a
// 404 is the whole answer); the lists are then streamed, one file's
// blocks in memory at a time, so an answer costs the hub about a chunk of
// the message whatever its size.
func (h *Hub) handleFiles(w http.ResponseWriter, r *http.Request) {
	var req wire.FilesRequest
	if !h.decodeRequest(w, r, 1<<20, &req) {
		return
	}
	if len(req.Files) > wire.MaxFilesPerQuery {
		h.badRequest(w, r, fmt.Errorf("at most %d files per request", wire.MaxFilesPerQuery))
		return
	}
	type file struct {
		sha  string
		size int64
		bs   int
	}
	files := make([]file, 0, len(req.Files))
	seen := make(map[string]bool, len(req.Files))
	d := deviceOf(r)
	for _, sha := range req.Files {
		if seen[sha] {
			continue
		}
		seen[sha] = true
		if ok, err := h.mayFetch(r.Context(), d.box, sha); err != nil {
			h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
			return
		} else if !ok {
			h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: fmt.Sprintf("no course in this box's channels holds file %s (it may have been replaced since the box asked for changes)", sha)})
			return
		}
		size, bs, err := h.store.Stat(r.Context(), sha)
		if errors.Is(err, blockstore.ErrNotFound) {
			h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: fmt.Sprintf("the hub holds no file %s", sha)})
			return
		}
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
			return
		}
		files = append(files, file{sha, size, bs})
	}
	h.ok(r)
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.Header().Set("Content-Encoding", "zstd")
	// The same bytes json.Marshal(&wire.FilesResponse{...}) would give.
	mw := wire.NewMessageWriter(w)
	mw.Write([]byte(`{"files":[`))
	for i, f := range files {
		blocks, err := h.store.Blocks(r.Context(), f.sha)
		if err != nil {
			// The status is sent: cut the answer, which the box reads as
			// malformed and asks again.
			h.log.Error("sync request failed", "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
		fb := wire.FileBlocks{SHA256: f.sha, Size: f.size, BlockSize: f.bs, Hashes: make([]byte, 0, 32*len(blocks)), Weak: make([]byte, 0, 4*len(blocks))}
		for _, b := range blocks {
			fb.Hashes = append(fb.Hashes, b.Hash...)
			fb.Weak = append(fb.Weak, byte(b.WeakHash>>24), byte(b.WeakHash>>16), byte(b.WeakHash>>8), byte(b.WeakHash))
		}
		js, err := json.Marshal(&fb)
		if err != nil {
			h.log.Error("sync request failed", "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
		if i > 0 {
			mw.Write([]byte{','})
		}
		if _, err := mw.Write(js); err != nil {
			return // the box went away
		}
	}
	mw.Write([]byte("]}\n"))
	mw.Close()
}

func (h *Hub) handleBlocks(w http.ResponseWriter, r *http.Request) {
	var req wire.BlocksRequest
	if !h.decodeRequest(w, r, 1<<20, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		h.badRequest(w, r, err)
		return
	}
	h.ok(r)
	w.Header().Set("Content-Type", wire.ContentTypeBlocks)
	rc := http.NewResponseController(w)
	bw, err := wire.NewBlockWriter(w, func() { rc.Flush() })
	if err != nil {
		return
	}
	pos := 0
	var buf []byte
	d := deviceOf(r)
	for _, wb := range req.Want {
		f, size, bs, err := h.openForBlocks(r.Context(), wb.File)
		if err == nil {
			var ok bool
			if ok, err = h.mayFetch(r.Context(), d.box, wb.File); err == nil && !ok {
				err = blockstore.ErrNotFound // sent as Missing frames
			}
		}
		for _, idx := range wb.Indexes {
			if err != nil || idx < 0 || idx >= wire.NumBlocks(size, bs) {
				if bw.Missing(pos) != nil {
					closeFile(f)
					return
				}
				pos++
				continue
			}
			off := int64(idx) * int64(bs)
			ln := int(min(int64(bs), size-off))
			if cap(buf) < ln {
				buf = make([]byte, ln)
			}
			data := buf[:ln]
			if _, rerr := f.ReadAt(data, off); rerr != nil {
				h.log.Error("read block", "file", wb.File, "index", idx, "err", rerr)
				if bw.Missing(pos) != nil {
					closeFile(f)
					return
				}
				pos++
				continue
			}
			if h.hooks.CorruptBlock != nil && h.hooks.CorruptBlock(wb.File, idx) {
				data = append([]byte(nil), data...)
				data[len(data)/2] ^= 0xff
			}
			if h.hooks.AbortBefore != nil && h.hooks.AbortBefore(wb.File, idx) {
				closeFile(f)
				panic(http.ErrAbortHandler)
			}
			bw.Mangle = nil
			if h.hooks.MangleFrame != nil && h.hooks.MangleFrame(wb.File, idx) {
				bw.Mangle = func(p []byte) { p[len(p)/2] ^= 0x55 }
			}
			if h.hooks.BlockServed != nil {
				h.hooks.BlockServed(wb.File, idx)
			}
			c0, r0 := bw.Compressed, bw.Raw
			if bw.Block(pos, data) != nil {
				closeFile(f)
				return // the box went away; it asks again for what it lacks
			}
			if bw.Compressed > c0 {
				h.metrics.blocks.WithLabelValues("zstd").Inc()
				h.metrics.blockBytes.WithLabelValues("zstd").Add(float64(bw.Compressed - c0))
			} else {
				h.metrics.blocks.WithLabelValues("raw").Inc()
				h.metrics.blockBytes.WithLabelValues("raw").Add(float64(bw.Raw - r0))
			}
			pos++
		}
		closeFile(f)
	}
	bw.End()
}

func closeFile(f *os.File) {
	if f != nil {
		f.Close()
	}
}

func (h *Hub) openForBlocks(ctx context.Context, sha string) (*os.File, int64, int, error) {
	size, bs, err := h.store.Stat(ctx, sha)
	if err != nil {
		return nil, 0, 0, err
	}
	f, err := h.store.OpenObject(sha)
	if err != nil {
		return nil, 0, 0, err
	}
	return f, size, bs, nil
}

func (h *Hub) handlePatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	seg, err := strconv.Atoi(q.Get("seg"))
	if err != nil || seg < 0 {
		h.badRequest(w, r, fmt.Errorf("seg must be a segment number, got %q", q.Get("seg")))
		return
	}
	box := deviceOf(r).box
	if ok, err := h.mayFetch(r.Context(), box, to); err != nil {
		h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
		return
	} else if !ok {
		h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: fmt.Sprintf("no course in this box's channels holds file %s", to)})
		return
	}
	// Both ends must belong to the box's channels: a patch tells its
	// reader the old file's size and what it shares with the new one.
	if ok, err := h.isOffered(r.Context(), box, from, to); err != nil {
		h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
		return
	} else if !ok {
		h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: fmt.Sprintf("the hub offers no patch from %s to %s; fetch the blocks", from, to)})
		return
	}
	p, err := h.patches.get(r.Context(), from, to, seg, h.metrics.patchBuilt.Inc)
	if errors.Is(err, errBusy) {
		h.metrics.patchBusy.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(max(h.patches.wait, time.Second).Seconds())))
		if wire.HasFeature(r.Header, wire.FeatureBusy) {
			h.fail(w, r, http.StatusServiceUnavailable, &wire.Error{Code: wire.CodeBusy, Message: "the hub is busy building patches for other boxes; fetch the blocks, or ask again later"})
		} else {
			// Boxes released before "busy" existed stop patching this
			// file on not_found and fetch its blocks: that is the right
			// answer for them too.
			h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: "the hub is busy building patches for other boxes; fetch the blocks"})
		}
		return
	}
	if errors.Is(err, blockstore.ErrNotFound) || errors.Is(err, errNoSegment) {
		h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: err.Error()})
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, h.internal(r.URL.Path, err))
		return
	}
	defer p.Close()
	h.ok(r)
	w.Header().Set("Content-Type", wire.ContentTypePatch)
	w.Header().Set(wire.HeaderPatchWindow, fmt.Sprintf("%d,%d", p.window.Offset, p.window.Length))
	w.Header().Set("Content-Length", strconv.FormatInt(p.size, 10))
	n, _ := io.Copy(w, io.NewSectionReader(p.file, patchHeader, p.size))
	h.metrics.patches.Inc()
	h.metrics.patchBytes.Add(float64(n))
}
