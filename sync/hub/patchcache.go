package hub

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"outpost/content/blockstore"
	"outpost/sync/patch"
)

// patchHeader precedes each cached patch: the old-file window (offset,
// length) it was encoded against, which the box needs to decode it.
const patchHeader = 16

var errNoSegment = errors.New("no such patch segment")

// patchCache computes each (old file, new file, segment) patch once and
// keeps it as a file: every box on the same old version downloads the same
// bytes, so the hub's cost per box is that of serving a file.
type patchCache struct {
	dir   string
	store *blockstore.Store

	mu       sync.Mutex
	inflight map[string]chan struct{}
}

func newPatchCache(dir string, store *blockstore.Store) (*patchCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("patch cache: %w", err)
	}
	return &patchCache{dir: dir, store: store, inflight: map[string]chan struct{}{}}, nil
}

type cachedPatch struct {
	file   *os.File
	window patch.Window
	size   int64 // patch bytes, header excluded
}

func (c *patchCache) path(from, to string, seg int) string {
	return filepath.Join(c.dir, to[:2], fmt.Sprintf("%s-%s-%d.zst", to, from, seg))
}

// get returns the patch, building it if needed. Concurrent requests for the
// same patch wait for one build.
func (c *patchCache) get(ctx context.Context, from, to string, seg int, built func()) (*cachedPatch, error) {
	if len(from) != 64 || len(to) != 64 {
		return nil, fmt.Errorf("patch %q→%q: %w", from, to, blockstore.ErrNotFound)
	}
	key := c.path(from, to, seg)
	for {
		if p, err := openPatch(key); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		c.mu.Lock()
		wait, busy := c.inflight[key]
		if !busy {
			done := make(chan struct{})
			c.inflight[key] = done
			c.mu.Unlock()
			err := c.build(ctx, from, to, seg, key)
			c.mu.Lock()
			delete(c.inflight, key)
			close(done)
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			built()
			continue
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func openPatch(path string) (*cachedPatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var h [patchHeader]byte
	st, err := f.Stat()
	if err == nil {
		_, err = f.ReadAt(h[:], 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open patch %s: %w", path, err)
	}
	return &cachedPatch{
		file:   f,
		window: patch.Window{Offset: int64(binary.BigEndian.Uint64(h[:8])), Length: int64(binary.BigEndian.Uint64(h[8:]))},
		size:   st.Size() - patchHeader,
	}, nil
}

func (c *patchCache) build(ctx context.Context, from, to string, seg int, dst string) error {
	oldSize, _, err := c.store.Stat(ctx, from)
	if err != nil {
		return fmt.Errorf("build patch: old file: %w", err)
	}
	newSize, _, err := c.store.Stat(ctx, to)
	if err != nil {
		return fmt.Errorf("build patch: new file: %w", err)
	}
	if seg >= patch.Segments(newSize) {
		return fmt.Errorf("build patch: %w: file %s has %d segments", errNoSegment, to, patch.Segments(newSize))
	}
	oldF, err := c.store.OpenObject(from)
	if err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	defer oldF.Close()
	newF, err := c.store.OpenObject(to)
	if err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	defer newF.Close()
	win := patch.ChooseWindow(oldSize, newSize, seg, -1)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".building-*")
	if err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var h [patchHeader]byte
	binary.BigEndian.PutUint64(h[:8], uint64(win.Offset))
	binary.BigEndian.PutUint64(h[8:], uint64(win.Length))
	if _, err := tmp.Write(h[:]); err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	if _, err := patch.Encode(tmp, oldF, oldSize, win, newF, newSize, seg); err != nil {
		return fmt.Errorf("build patch %s→%s segment %d: %w", from, to, seg, err)
	}
	// The box verifies what it decodes, so a torn patch could never
	// corrupt it, but it would be served (and wasted) until deleted.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("build patch: %w", err)
	}
	return nil
}
