package upstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/syncthing/syncthing/lib/weakhash"
	"golang.org/x/sys/unix"

	"outpost/content/blockstore"
	"outpost/sync/wire"
)

// partFile is a new file being assembled block by block. It lives in
// DATA/sync/partial/SHA.part at its final size (sparse where blocks are
// still missing). Which blocks it holds is not recorded anywhere else: on
// restart the box re-hashes the partial against the block list, so a block
// counts exactly when its bytes are on disk and correct, whatever a crash
// interrupted.
type partFile struct {
	fb      wire.FileBlocks
	path    string
	f       *os.File
	have    []bool
	missing int
	done    bool // stored in the block store, partial removed
}

func (c *Client) openPart(fb wire.FileBlocks) (*partFile, error) {
	dir := c.partialDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	p := &partFile{fb: fb, path: filepath.Join(dir, fb.SHA256+".part")}
	n := wire.NumBlocks(fb.Size, fb.BlockSize)
	p.have, p.missing = make([]bool, n), n
	_, statErr := os.Stat(p.path)
	existed := statErr == nil
	f, err := os.OpenFile(p.path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sync: open partial %s: %w", fb.SHA256, err)
	}
	p.f = f
	if err := f.Truncate(fb.Size); err != nil {
		f.Close()
		if isDiskFull(err) {
			return nil, fmt.Errorf("%w: disk full while preparing %s", ErrPaused, fb.SHA256)
		}
		return nil, fmt.Errorf("sync: size partial %s: %w", fb.SHA256, err)
	}
	if existed {
		buf := make([]byte, fb.BlockSize)
		for i := range n {
			off, ln := fb.BlockSpan(i)
			if _, err := f.ReadAt(buf[:ln], off); err != nil {
				break
			}
			if verify(buf[:ln], fb.Hash(i)) {
				p.have[i] = true
				p.missing--
			}
		}
	}
	return p, nil
}

func (p *partFile) close() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
}

func verify(data, hash []byte) bool {
	sum := sha256.Sum256(data)
	return bytes.Equal(sum[:], hash)
}

// put writes a verified block. durable syncs it first: a fetched block is
// paid for on the wire, so it must survive a power cut before it counts.
func (c *Client) put(p *partFile, i int, data []byte, durable bool, source string) error {
	off, _ := p.fb.BlockSpan(i)
	if _, err := p.f.WriteAt(data, off); err != nil {
		if isDiskFull(err) {
			return fmt.Errorf("%w: disk full while writing %s; free space with `outpost content gc` or `outpost content rm`", ErrPaused, p.fb.SHA256)
		}
		return fmt.Errorf("sync: write partial %s: %w", p.fb.SHA256, err)
	}
	if durable {
		if err := unix.Fdatasync(int(p.f.Fd())); err != nil {
			return fmt.Errorf("sync: flush partial %s: %w", p.fb.SHA256, err)
		}
	}
	p.have[i] = true
	p.missing--
	c.m.blocks.WithLabelValues(source).Inc()
	c.m.queueBytes.Sub(float64(len(data)))
	c.update(func(s *Status) {
		s.QueueBytes -= int64(len(data))
		switch source {
		case "local":
			s.Totals.BlocksLocal++
		case "shifted":
			s.Totals.BlocksShifted++
		case "patched":
			s.Totals.BlocksPatched++
		case "fetched":
			s.Totals.BlocksFetched++
		}
	})
	if h := c.opts.Hooks; h != nil && h.BlockStored != nil {
		h.BlockStored(p.fb.Hash(i), source)
	}
	return nil
}

// objects caches open store objects for one phase.
type objects struct {
	store *blockstore.Store
	open  map[string]*os.File
}

func (o *objects) get(sha string) (*os.File, error) {
	if f, ok := o.open[sha]; ok {
		return f, nil
	}
	f, err := o.store.OpenObject(sha)
	if err != nil {
		return nil, err
	}
	if o.open == nil {
		o.open = map[string]*os.File{}
	}
	o.open[sha] = f
	return f, nil
}

func (o *objects) close() {
	for _, f := range o.open {
		f.Close()
	}
}

// reuseLocal fills missing blocks from what the box already holds: the
// same block anywhere in the block map (another course, the old version at
// the same offset), then blocks that moved within the old versions the hub
// names as patch bases, found by their weak hash.
func (c *Client) reuseLocal(ctx context.Context, p *partFile, bases []string) error {
	objs := &objects{store: c.opts.Store}
	defer objs.close()
	buf := make([]byte, p.fb.BlockSize)
	for i := range p.have {
		if p.have[i] {
			continue
		}
		loc, err := c.opts.Store.FindBlock(ctx, p.fb.Hash(i))
		if errors.Is(err, blockstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		f, err := objs.get(loc.SHA256)
		if err != nil {
			continue // gone since the lookup: fetch it instead
		}
		data := buf[:loc.Size]
		if _, err := f.ReadAt(data, loc.Offset); err != nil || !verify(data, p.fb.Hash(i)) {
			continue
		}
		if err := c.put(p, i, data, false, "local"); err != nil {
			return err
		}
	}
	for _, base := range bases {
		if p.missing == 0 {
			break
		}
		if have, err := c.opts.Store.Has(ctx, base); err != nil || !have {
			continue
		}
		if err := c.reuseShifted(ctx, p, base, objs, buf); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) reuseShifted(ctx context.Context, p *partFile, base string, objs *objects, buf []byte) error {
	var want []uint32
	for i := range p.have {
		if _, n := p.fb.BlockSpan(i); !p.have[i] && n == p.fb.BlockSize {
			want = append(want, p.fb.WeakHash(i))
		}
	}
	if len(want) == 0 {
		return nil
	}
	f, err := objs.get(base)
	if err != nil {
		return nil
	}
	found, err := weakhash.Find(ctx, io.NewSectionReader(f, 0, 1<<62), want, p.fb.BlockSize)
	if err != nil {
		return fmt.Errorf("sync: search %s for moved blocks: %w", base, err)
	}
	for i := range p.have {
		if p.have[i] {
			continue
		}
		offs := found[p.fb.WeakHash(i)]
		for k, off := range offs {
			if k == 8 { // a weak hash shared by many places: give up, fetch it
				break
			}
			data := buf[:p.fb.BlockSize]
			if _, err := f.ReadAt(data, off); err != nil || !verify(data, p.fb.Hash(i)) {
				continue
			}
			if err := c.put(p, i, data, false, "shifted"); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// finishFiles moves every complete partial into the block store (which
// re-hashes the whole file against its name) and commits them together.
func (c *Client) finishFiles(ctx context.Context, parts []*partFile) error {
	batch := c.opts.Store.NewBatch()
	var ready []*partFile
	for _, p := range parts {
		if p.done || p.missing > 0 {
			continue
		}
		_, _, err := batch.Put(ctx, io.NewSectionReader(p.f, 0, p.fb.Size), blockstore.Expect{SHA256: p.fb.SHA256, Size: p.fb.Size}, nil)
		if errors.Is(err, blockstore.ErrMismatch) {
			// Every block matched its hash, so the block list itself
			// disagrees with the manifest: start this file over.
			p.close()
			os.Remove(p.path)
			return fmt.Errorf("sync: file %s: %w: its blocks verify but the whole file does not; the hub's block list is wrong", p.fb.SHA256, wire.ErrMalformed)
		}
		if err != nil {
			if isDiskFull(err) {
				return fmt.Errorf("%w: disk full while storing %s; free space with `outpost content gc` or `outpost content rm`", ErrPaused, p.fb.SHA256)
			}
			return fmt.Errorf("sync: store %s: %w", p.fb.SHA256, err)
		}
		ready = append(ready, p)
	}
	if len(ready) == 0 {
		return nil
	}
	if err := batch.Commit(ctx); err != nil {
		if isDiskFull(err) {
			return fmt.Errorf("%w: disk full while storing files; free space with `outpost content gc` or `outpost content rm`", ErrPaused)
		}
		return fmt.Errorf("sync: %w", err)
	}
	for _, p := range ready {
		p.close()
		os.Remove(p.path)
		p.done = true
		c.update(func(s *Status) { s.QueueFiles-- })
	}
	return nil
}
