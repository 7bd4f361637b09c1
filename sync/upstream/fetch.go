package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"outpost/sync/patch"
	"outpost/sync/wire"
)

// fetchFiles obtains every missing file: local reuse first, then patches,
// then blocks from the hub.
func (c *Client) fetchFiles(ctx context.Context, need map[string]int64, bases map[string][]string) error {
	if err := c.checkSpace(ctx, need); err != nil {
		return err
	}
	shas := sortedKeys(need)
	var lists []wire.FileBlocks
	for start := 0; start < len(shas); start += wire.MaxFilesPerQuery {
		end := min(start+wire.MaxFilesPerQuery, len(shas))
		var resp wire.FilesResponse
		err := c.retry(ctx, "block lists", func() (bool, error) {
			return false, c.call(ctx, http.MethodPost, wire.PathFiles, &wire.FilesRequest{Files: shas[start:end]}, &resp)
		})
		if err != nil {
			return err
		}
		if len(resp.Files) != end-start {
			return fmt.Errorf("sync: %w: asked for %d block lists, got %d", wire.ErrMalformed, end-start, len(resp.Files))
		}
		for i, fb := range resp.Files {
			if err := fb.Validate(); err != nil {
				return fmt.Errorf("sync: %w", err)
			}
			if fb.SHA256 != shas[start+i] || fb.Size != need[fb.SHA256] {
				return fmt.Errorf("sync: %w: block list %d is for %s (%d bytes), asked for %s (%d bytes)", wire.ErrMalformed, i, fb.SHA256, fb.Size, shas[start+i], need[shas[start+i]])
			}
		}
		lists = append(lists, resp.Files...)
	}
	parts := make([]*partFile, 0, len(lists))
	defer func() {
		for _, p := range parts {
			p.close()
		}
	}()
	var queue int64
	for _, fb := range lists {
		p, err := c.openPart(fb)
		if err != nil {
			return err
		}
		parts = append(parts, p)
		for i, have := range p.have {
			if !have {
				_, n := fb.BlockSpan(i)
				queue += int64(n)
			}
		}
	}
	c.m.queueBytes.Set(float64(queue))
	c.update(func(s *Status) {
		s.QueueFiles, s.QueueBytes = len(parts), queue
		s.Message = fmt.Sprintf("obtaining %d files", len(parts))
	})
	for _, p := range parts {
		if err := c.reuseLocal(ctx, p, bases[p.fb.SHA256]); err != nil {
			return err
		}
	}
	if err := c.finishFiles(ctx, parts); err != nil {
		return err
	}
	for _, p := range parts {
		if p.missing == 0 {
			continue
		}
		if err := c.applyPatches(ctx, p, bases[p.fb.SHA256]); err != nil {
			return err
		}
	}
	if err := c.finishFiles(ctx, parts); err != nil {
		return err
	}
	return c.fetchBlocks(ctx, parts)
}

// applyPatches asks the hub for a patch per segment that still misses
// blocks, decodes it against the box's copy of the old file, and keeps
// every block that verifies. A patch that fails in any way only costs
// bytes: what it did not produce is fetched as blocks.
func (c *Client) applyPatches(ctx context.Context, p *partFile, bases []string) error {
	if p.fb.BlockSize > patch.SegmentSize {
		return nil
	}
	var base string
	var oldSize int64
	for _, b := range bases {
		if size, _, err := c.opts.Store.Stat(ctx, b); err == nil {
			base, oldSize = b, size
			break
		}
	}
	if base == "" {
		return nil
	}
	old, err := c.opts.Store.OpenObject(base)
	if err != nil {
		return nil
	}
	defer old.Close()
	for seg := range patch.Segments(p.fb.Size) {
		start, end := patch.SegmentRange(p.fb.Size, seg)
		first, last := int(start/int64(p.fb.BlockSize)), wire.NumBlocks(end, p.fb.BlockSize)
		missing := false
		for i := first; i < last; i++ {
			missing = missing || !p.have[i]
		}
		if !missing {
			continue
		}
		var out []byte
		var wireBytes int64
		err := c.retry(ctx, "patch", func() (bool, error) {
			var err error
			out, wireBytes, err = c.fetchPatch(ctx, base, p.fb.SHA256, seg, old, oldSize, end-start)
			if isCode(err, wire.CodeBusy) {
				return false, errPatchBusy // the hub already made it wait
			}
			return false, err
		})
		if isCode(err, wire.CodeNotFound) {
			return nil // the hub no longer patches from this base
		}
		if errors.Is(err, errPatchBusy) {
			// Every builder on the hub stayed busy: the blocks cost more
			// bytes, but the course arrives now rather than after passes
			// of waiting for a builder.
			c.opts.Log.Info("the hub is busy building patches; fetching blocks instead", "file", p.fb.SHA256)
			return nil
		}
		if errors.Is(err, patch.ErrCorrupt) {
			c.update(func(s *Status) { s.Totals.BadStreams++ })
			continue
		}
		if err != nil {
			return err
		}
		c.m.wireBytes.Add(float64(wireBytes))
		c.update(func(s *Status) { s.Totals.PatchBytes += wireBytes; s.Totals.BytesFetched += wireBytes })
		wrote := false
		for i := first; i < last; i++ {
			if p.have[i] {
				continue
			}
			off, n := p.fb.BlockSpan(i)
			data := out[off-start : off-start+int64(n)]
			if !verify(data, p.fb.Hash(i)) {
				continue
			}
			if err := c.put(p, i, data, false, "patched"); err != nil {
				return err
			}
			wrote = true
		}
		if wrote {
			if err := unix.Fdatasync(int(p.f.Fd())); err != nil {
				return fmt.Errorf("sync: flush partial %s: %w", p.fb.SHA256, err)
			}
		}
	}
	return nil
}

func (c *Client) fetchPatch(ctx context.Context, from, to string, seg int, old io.ReaderAt, oldSize, segLen int64) ([]byte, int64, error) {
	q := url.Values{"from": {from}, "to": {to}, "seg": {strconv.Itoa(seg)}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, wire.PathPatch+"?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	offS, lenS, ok := strings.Cut(resp.Header.Get(wire.HeaderPatchWindow), ",")
	off, err1 := strconv.ParseInt(offS, 10, 64)
	ln, err2 := strconv.ParseInt(lenS, 10, 64)
	if !ok || err1 != nil || err2 != nil || off < 0 || ln < 0 || ln > patch.MaxWindow || off+ln > oldSize {
		return nil, 0, fmt.Errorf("patch: %w: window %q outside the old file", patch.ErrCorrupt, resp.Header.Get(wire.HeaderPatchWindow))
	}
	dict := make([]byte, ln)
	if _, err := old.ReadAt(dict, off); err != nil {
		return nil, 0, fmt.Errorf("sync: read patch base: %w", err)
	}
	sr := newStallReader(resp.Body, cancel)
	defer sr.stop()
	body := &countingReader{r: sr}
	out, err := patch.Decode(io.LimitReader(body, 2*patch.SegmentSize+(1<<20)), dict, segLen)
	if errors.Is(err, patch.ErrCorrupt) {
		return nil, body.n, err
	}
	if err != nil {
		// Decode reports only corrupt patches as ErrCorrupt; anything else
		// went wrong while reading it off the link.
		return nil, body.n, fmt.Errorf("patch: %w: %w", wire.ErrTruncated, err)
	}
	if int64(len(out)) != segLen {
		return nil, body.n, fmt.Errorf("patch: %w: decoded %d bytes, want %d", patch.ErrCorrupt, len(out), segLen)
	}
	return out, body.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type blockRef struct {
	p *partFile
	i int
}

// fetchBlocks downloads every block still missing, in batches, until all
// files are complete. A cut, a corrupt stream or a wrong block costs at
// most what was in flight: verified blocks are on disk, and the next batch
// asks only for what is still missing.
func (c *Client) fetchBlocks(ctx context.Context, parts []*partFile) error {
	mismatches := map[string]int{}
	batchBytes := int64(2 << 20)
	for {
		// Blocks that appear more than once (in two files, or repeated
		// within one) are fetched once and copied.
		have := map[string]blockRef{}
		var queue []blockRef
		for _, p := range parts {
			if p.done {
				continue
			}
			for i, ok := range p.have {
				if ok {
					have[string(p.fb.Hash(i))] = blockRef{p, i}
				}
			}
		}
		for _, p := range parts {
			if p.done {
				continue
			}
			for i, ok := range p.have {
				if ok {
					continue
				}
				if src, dup := have[string(p.fb.Hash(i))]; dup {
					if err := c.copyBlock(src, blockRef{p, i}); err != nil {
						return err
					}
					continue
				}
				queue = append(queue, blockRef{p, i})
			}
		}
		if err := c.finishFiles(ctx, parts); err != nil {
			return err
		}
		if len(queue) == 0 {
			return nil
		}
		var batch []blockRef
		var bytes int64
		inBatch := map[string]bool{}
		for _, b := range queue {
			h := string(b.p.fb.Hash(b.i))
			if inBatch[h] {
				continue
			}
			_, n := b.p.fb.BlockSpan(b.i)
			if len(batch) > 0 && (len(batch) == wire.MaxBlocksPerBatch || bytes+int64(n) > batchBytes) {
				break
			}
			inBatch[h] = true
			batch = append(batch, b)
			bytes += int64(n)
		}
		start := time.Now()
		var got int64
		err := c.retry(ctx, "blocks", func() (bool, error) {
			// After a cut, ask only for what is still missing: a block
			// that arrived before the cut is never fetched again.
			rest := batch[:0]
			for _, b := range batch {
				if !b.p.have[b.i] {
					rest = append(rest, b)
				}
			}
			batch = rest
			if len(batch) == 0 {
				return true, nil
			}
			n, err := c.fetchBatch(ctx, batch, mismatches)
			got += n
			return n > 0, err
		})
		if err != nil {
			return err
		}
		if el := time.Since(start).Seconds(); el > 0 && got > 0 {
			rate := float64(got) / el
			c.update(func(s *Status) {
				if s.Throughput == 0 {
					s.Throughput = rate
				} else {
					s.Throughput = 0.7*s.Throughput + 0.3*rate
				}
				s.ETASeconds = float64(s.QueueBytes) / s.Throughput
				// A batch worth ~30 s of the link: the round trip between
				// batches (300 ms on a satellite link) then costs ~1%, and
				// a cut still loses only the block in flight.
				batchBytes = min(max(int64(s.Throughput*30), 512<<10), 32<<20)
			})
		}
	}
}

func (c *Client) copyBlock(src, dst blockRef) error {
	_, n := src.p.fb.BlockSpan(src.i)
	off, _ := src.p.fb.BlockSpan(src.i)
	data := make([]byte, n)
	if _, err := src.p.f.ReadAt(data, off); err != nil {
		return fmt.Errorf("sync: copy block: %w", err)
	}
	if !verify(data, dst.p.fb.Hash(dst.i)) {
		return fmt.Errorf("sync: copy block: %s block %d changed on disk", src.p.fb.SHA256, src.i)
	}
	return c.put(dst.p, dst.i, data, false, "local")
}

// fetchBatch requests one batch and stores what arrives; it returns the
// bytes it kept.
func (c *Client) fetchBatch(ctx context.Context, batch []blockRef, mismatches map[string]int) (int64, error) {
	var req wire.BlocksRequest
	sizes := make([]int, len(batch))
	for k, b := range batch {
		_, sizes[k] = b.p.fb.BlockSpan(b.i)
		if k > 0 && batch[k-1].p == b.p {
			w := &req.Want[len(req.Want)-1]
			w.Indexes = append(w.Indexes, b.i)
			continue
		}
		req.Want = append(req.Want, wire.WantBlocks{File: b.p.fb.SHA256, Indexes: []int{b.i}})
	}
	body, err := wire.Marshal(&req)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.do(ctx, http.MethodPost, wire.PathBlocks, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sr := newStallReader(resp.Body, cancel)
	defer sr.stop()
	br, err := wire.NewBlockReader(sr, sizes)
	if err != nil {
		return 0, err
	}
	var kept int64
	for {
		blk, err := br.Next()
		if err == io.EOF {
			return kept, nil
		}
		if err != nil {
			c.update(func(s *Status) { s.Totals.BadStreams++ })
			return kept, err
		}
		ref := batch[blk.Pos]
		c.m.wireBytes.Add(float64(blk.WireBytes))
		c.update(func(s *Status) { s.Totals.BytesFetched += int64(blk.WireBytes) })
		if blk.Missing {
			return kept, fmt.Errorf("sync: the hub cannot serve block %d of %s; it may have lost the file, ask its operator to publish the course again", ref.i, ref.p.fb.SHA256)
		}
		if ref.p.have[ref.i] {
			continue
		}
		hash := ref.p.fb.Hash(ref.i)
		if !verify(blk.Data, hash) {
			c.m.mismatches.Inc()
			c.update(func(s *Status) { s.Totals.HashMismatches++ })
			mismatches[string(hash)]++
			c.opts.Log.Warn("block failed verification; fetching it again", "file", ref.p.fb.SHA256, "block", ref.i)
			if mismatches[string(hash)] >= 3 {
				return kept, fmt.Errorf("sync: block %d of %s failed verification 3 times; the hub's copy may be damaged (run `outpost content verify` on the hub)", ref.i, ref.p.fb.SHA256)
			}
			continue
		}
		if err := c.put(ref.p, ref.i, blk.Data, true, "fetched"); err != nil {
			return kept, err
		}
		kept += int64(len(blk.Data))
	}
}

// retry runs op until it succeeds, backing off with jitter after each
// failure. It gives up after maxFailures failures in a row without
// progress, and at once on errors retrying cannot fix.
func (c *Client) retry(ctx context.Context, what string, op func() (progress bool, err error)) error {
	const maxFailures = 8
	failures := 0
	delay := 250 * time.Millisecond
	for {
		progress, err := op()
		if err == nil {
			return nil
		}
		if permanent(err) || ctx.Err() != nil {
			return err
		}
		if progress {
			failures, delay = 0, 250*time.Millisecond
		}
		failures++
		if failures >= maxFailures {
			return fmt.Errorf("sync: %s: giving up this pass after %d failures: %w", what, failures, err)
		}
		c.opts.Log.Info("sync request failed; retrying", "what", what, "err", err, "in", delay, "progress", progress)
		wait := time.Duration(float64(delay) * (0.5 + rand.Float64()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// errPatchBusy stops retrying a patch the hub is too busy to build.
var errPatchBusy = errors.New("sync: the hub is busy building patches")

func isCode(err error, code string) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == code
}

// permanent errors end the pass (or, for errPatchBusy, the patching of a
// file): retrying will not change the answer. Busy and rate-limited
// answers from the hub are retried with the others.
func permanent(err error) bool {
	if errors.Is(err, ErrPaused) || errors.Is(err, wire.ErrWrongPeer) || errors.Is(err, patch.ErrCorrupt) || errors.Is(err, errPatchBusy) {
		return true
	}
	var we *wire.Error
	if errors.As(err, &we) {
		switch we.Code {
		case wire.CodeRevoked, wire.CodeUnknownDevice, wire.CodeBadRequest, wire.CodeNotFound, wire.CodeUnauthorized:
			return true
		}
	}
	return false
}
