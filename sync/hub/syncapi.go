package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/content/blockstore"
	"outpost/sync/wire"
)

type ctxKey struct{}

type deviceCtx struct {
	id  protocol.DeviceID
	box *box
}

// device authorises a sync request by its client certificate.
func (h *Hub) device(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dev, ok := wire.PeerDevice(r.TLS)
		if !ok {
			h.fail(w, r, http.StatusUnauthorized, &wire.Error{Code: wire.CodeUnauthorized, Message: "sync requests need the box's certificate (mutual TLS)"})
			return
		}
		b, werr := h.lookupBox(r.Context(), dev, r.Header.Get(wire.HeaderSoftware))
		if werr != nil {
			status := http.StatusForbidden
			if werr.Code == wire.CodeInternal {
				status = http.StatusInternalServerError
			}
			h.fail(w, r, status, werr)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &deviceCtx{id: dev, box: b})))
	})
}

func deviceOf(r *http.Request) *deviceCtx { return r.Context().Value(ctxKey{}).(*deviceCtx) }

func (h *Hub) fail(w http.ResponseWriter, r *http.Request, status int, e *wire.Error) {
	h.metrics.requests.WithLabelValues(r.URL.Path, e.Code).Inc()
	if e.Code == wire.CodeInternal {
		h.log.Error("sync request failed", "path", r.URL.Path, "err", e.Message)
	}
	wire.WriteError(w, status, e.Code, e.Message)
}

func (h *Hub) ok(r *http.Request) { h.metrics.requests.WithLabelValues(r.URL.Path, "ok").Inc() }

func (h *Hub) reply(w http.ResponseWriter, r *http.Request, v any) {
	b, err := wire.Marshal(v)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, internal(err))
		return
	}
	h.ok(r)
	w.Header().Set("Content-Type", wire.ContentTypeJSON)
	w.Header().Set("Content-Encoding", "zstd")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// decodeRequest reads a request body of at most limit compressed bytes,
// answering 400 itself when it cannot.
func (h *Hub) decodeRequest(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if err := wire.DecodeLimit(http.MaxBytesReader(w, r.Body, limit), v, wire.MaxRequest); err != nil {
		h.badRequest(w, r, err)
		return false
	}
	return true
}

func (h *Hub) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, http.StatusBadRequest, &wire.Error{Code: wire.CodeBadRequest, Message: err.Error()})
}

func (h *Hub) handleEnrol(w http.ResponseWriter, r *http.Request) {
	dev, ok := wire.PeerDevice(r.TLS)
	if !ok {
		h.fail(w, r, http.StatusUnauthorized, &wire.Error{Code: wire.CodeUnauthorized, Message: "enrolment needs the box's certificate (mutual TLS)"})
		return
	}
	var req wire.EnrolRequest
	if !h.decodeRequest(w, r, 64<<10, &req) {
		return
	}
	secret, _, err := wire.ParseToken(req.Token)
	if err != nil {
		h.fail(w, r, http.StatusForbidden, &wire.Error{Code: wire.CodeTokenUnknown, Message: err.Error()})
		return
	}
	resp, werr := h.enrol(r.Context(), secret, dev, req.Hostname, r.Header.Get(wire.HeaderSoftware))
	if werr != nil {
		status := http.StatusForbidden
		if werr.Code == wire.CodeInternal {
			status = http.StatusInternalServerError
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
		h.fail(w, r, http.StatusInternalServerError, internal(err))
		return
	}
	h.metrics.changesServed.Inc()
	h.reply(w, r, ch)
}

func (h *Hub) handleFiles(w http.ResponseWriter, r *http.Request) {
	var req wire.FilesRequest
	if !h.decodeRequest(w, r, 1<<20, &req) {
		return
	}
	if len(req.Files) > wire.MaxFilesPerQuery {
		h.badRequest(w, r, fmt.Errorf("at most %d files per request", wire.MaxFilesPerQuery))
		return
	}
	resp := &wire.FilesResponse{Files: []wire.FileBlocks{}}
	d := deviceOf(r)
	for _, sha := range req.Files {
		if ok, err := h.mayFetch(r.Context(), d.box, sha); err != nil {
			h.fail(w, r, http.StatusInternalServerError, internal(err))
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
			h.fail(w, r, http.StatusInternalServerError, internal(err))
			return
		}
		blocks, err := h.store.Blocks(r.Context(), sha)
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, internal(err))
			return
		}
		fb := wire.FileBlocks{SHA256: sha, Size: size, BlockSize: bs, Hashes: make([]byte, 0, 32*len(blocks)), Weak: make([]byte, 0, 4*len(blocks))}
		for _, b := range blocks {
			fb.Hashes = append(fb.Hashes, b.Hash...)
			fb.Weak = append(fb.Weak, byte(b.WeakHash>>24), byte(b.WeakHash>>16), byte(b.WeakHash>>8), byte(b.WeakHash))
		}
		resp.Files = append(resp.Files, fb)
	}
	h.reply(w, r, resp)
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
	if ok, err := h.mayFetch(r.Context(), deviceOf(r).box, to); err != nil {
		h.fail(w, r, http.StatusInternalServerError, internal(err))
		return
	} else if !ok {
		h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: fmt.Sprintf("no course in this box's channels holds file %s", to)})
		return
	}
	if ok, err := h.isOffered(r.Context(), from, to); err != nil {
		h.fail(w, r, http.StatusInternalServerError, internal(err))
		return
	} else if !ok {
		h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: fmt.Sprintf("the hub offers no patch from %s to %s; fetch the blocks", from, to)})
		return
	}
	p, err := h.patches.get(r.Context(), from, to, seg, h.metrics.patchBuilt.Inc)
	if errors.Is(err, blockstore.ErrNotFound) || errors.Is(err, errNoSegment) {
		h.fail(w, r, http.StatusNotFound, &wire.Error{Code: wire.CodeNotFound, Message: err.Error()})
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, internal(err))
		return
	}
	defer p.file.Close()
	h.ok(r)
	w.Header().Set("Content-Type", wire.ContentTypePatch)
	w.Header().Set(wire.HeaderPatchWindow, fmt.Sprintf("%d,%d", p.window.Offset, p.window.Length))
	w.Header().Set("Content-Length", strconv.FormatInt(p.size, 10))
	n, _ := io.Copy(w, io.NewSectionReader(p.file, patchHeader, p.size))
	h.metrics.patches.Inc()
	h.metrics.patchBytes.Add(float64(n))
}
