package hub

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"outpost/content/blockstore"
	"outpost/sync/patch"
)

// patchHeader precedes each cached patch: the old-file window (offset,
// length) it was encoded against, which the box needs to decode it.
const patchHeader = 16

var errNoSegment = errors.New("no such patch segment")

// errBusy is returned when every builder stayed busy for the whole wait.
var errBusy = errors.New("every patch builder is busy")

// patchCache computes each (old file, new file, segment) patch once and
// keeps it as a file: every box on the same old version downloads the same
// bytes, so the hub's cost per box is that of serving a file.
//
// Building is the expensive part (~128 MiB and about a second of CPU per
// segment), so at most cap(builds) run at once, whoever asks; a request
// that finds them all busy waits up to wait, then gets errBusy. The files
// kept are bounded by limit bytes: past it, the least recently served go,
// but never one being served.
type patchCache struct {
	dir     string
	store   *blockstore.Store
	builds  chan struct{} // a token per running build
	wait    time.Duration
	limit   int64
	log     *slog.Logger
	onBuild func(from, to string, seg int)
	onWait  func(from, to string, seg int)
	metrics *metrics

	mu       sync.Mutex
	inflight map[string]*flight
	entries  map[string]*list.Element // path → *cacheEntry
	lru      *list.List               // front: most recently served
	total    int64
}

type patchCacheConfig struct {
	dir             string
	store           *blockstore.Store
	builds          int
	wait            time.Duration
	limit           int64
	log             *slog.Logger
	onBuild, onWait func(from, to string, seg int)
	metrics         *metrics
}

// flight is one build that concurrent requests for the same patch share.
type flight struct {
	done chan struct{}
	err  error
}

type cacheEntry struct {
	path    string
	size    int64 // on disk, header included
	refs    int   // requests serving it now
	touched time.Time
}

func newPatchCache(cfg patchCacheConfig) (*patchCache, error) {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("patch cache: %w", err)
	}
	c := &patchCache{dir: cfg.dir, store: cfg.store, builds: make(chan struct{}, max(cfg.builds, 1)), wait: cfg.wait,
		limit: cfg.limit, log: cfg.log, onBuild: cfg.onBuild, onWait: cfg.onWait, metrics: cfg.metrics,
		inflight: map[string]*flight{}, entries: map[string]*list.Element{}, lru: list.New()}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("patch cache: %w", err)
	}
	c.mu.Lock()
	c.prune()
	c.mu.Unlock()
	return c, nil
}

// load indexes the patches on disk, the most recently served first (a
// patch's modification time is when it was built or last served), and
// deletes what a crash left half-built.
func (c *patchCache) load() error {
	type found struct {
		path string
		size int64
		mod  time.Time
	}
	var all []found
	err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".building-") {
			return os.Remove(path)
		}
		if !strings.HasSuffix(d.Name(), ".zst") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		all = append(all, found{path, info.Size(), info.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	// Oldest first, each pushed to the front: the newest ends in front.
	slices.SortFunc(all, func(a, b found) int { return a.mod.Compare(b.mod) })
	for _, f := range all {
		c.entries[f.path] = c.lru.PushFront(&cacheEntry{path: f.path, size: f.size, touched: f.mod})
		c.total += f.size
	}
	return nil
}

type cachedPatch struct {
	file    *os.File
	window  patch.Window
	size    int64 // patch bytes, header excluded
	release func()
}

// Close closes the patch and lets the cache delete it again.
func (p *cachedPatch) Close() {
	p.file.Close()
	p.release()
}

func (c *patchCache) path(from, to string, seg int) string {
	return filepath.Join(c.dir, to[:2], fmt.Sprintf("%s-%s-%d.zst", to, from, seg))
}

// get returns the patch, building it if needed; the caller must Close it.
// Concurrent requests for the same patch wait for one build.
func (c *patchCache) get(ctx context.Context, from, to string, seg int, built func()) (*cachedPatch, error) {
	if len(from) != 64 || len(to) != 64 {
		return nil, fmt.Errorf("patch %q→%q: %w", from, to, blockstore.ErrNotFound)
	}
	key := c.path(from, to, seg)
	for {
		c.mu.Lock()
		if p, err := c.openCached(key); p != nil || err != nil {
			c.mu.Unlock()
			return p, err
		}
		if f, busy := c.inflight[key]; busy {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// A build given up because its own request went away is
			// not this request's failure: try again.
			if f.err != nil && !errors.Is(f.err, context.Canceled) && !errors.Is(f.err, context.DeadlineExceeded) {
				return nil, f.err
			}
			continue
		}
		f := &flight{done: make(chan struct{})}
		c.inflight[key] = f
		c.mu.Unlock()
		p, err := c.buildLimited(ctx, from, to, seg, key)
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		f.err = err
		close(f.done)
		if err == nil {
			built()
		}
		return p, err
	}
}

// openCached opens a cached patch and marks it in use; nil, nil if the
// cache has none. Called with c.mu held, so pruning cannot delete the
// file between the lookup and the open.
func (c *patchCache) openCached(key string) (*cachedPatch, error) {
	el, ok := c.entries[key]
	if !ok {
		return nil, nil
	}
	e := el.Value.(*cacheEntry)
	p, err := openPatch(key)
	if errors.Is(err, os.ErrNotExist) { // deleted behind the hub's back
		c.forget(el)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e.refs++
	c.lru.MoveToFront(el)
	// Keep the order across restarts (load reads modification times),
	// without a metadata write for every request.
	if now := time.Now(); now.Sub(e.touched) > 10*time.Minute {
		e.touched = now
		os.Chtimes(key, now, now)
	}
	p.release = func() { c.release(el) }
	return p, nil
}

func (c *patchCache) release(el *list.Element) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el.Value.(*cacheEntry).refs--
	c.prune()
}

// add indexes a patch just written, as the most recently served. Called
// with c.mu held.
func (c *patchCache) add(path string, size int64) {
	if el, ok := c.entries[path]; ok { // rebuilt after its file vanished
		c.forget(el)
	}
	c.entries[path] = c.lru.PushFront(&cacheEntry{path: path, size: size, touched: time.Now()})
	c.total += size
}

// forget drops an entry from the index (its file is gone or going).
func (c *patchCache) forget(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.path)
	c.total -= e.size
	c.metrics.patchCache.Set(float64(c.total))
}

// prune deletes the least recently served patches not in use until the
// cache is within its bound. Called with c.mu held.
func (c *patchCache) prune() {
	for el := c.lru.Back(); el != nil && c.total > c.limit; {
		prev := el.Prev()
		if e := el.Value.(*cacheEntry); e.refs == 0 {
			if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				c.log.Warn("prune patch cache", "path", e.path, "err", err)
			} else {
				c.forget(el)
				c.metrics.patchPruned.Inc()
			}
		}
		el = prev
	}
	c.metrics.patchCache.Set(float64(c.total))
}

// buildLimited builds a patch once a builder is free, and returns it open
// and in use, so that pruning cannot delete it before it is served.
func (c *patchCache) buildLimited(ctx context.Context, from, to string, seg int, key string) (*cachedPatch, error) {
	select {
	case c.builds <- struct{}{}:
	default:
		if c.onWait != nil {
			c.onWait(from, to, seg)
		}
		t := time.NewTimer(c.wait)
		defer t.Stop()
		select {
		case c.builds <- struct{}{}:
		case <-t.C:
			return nil, fmt.Errorf("build patch: %w (%d building, waited %s)", errBusy, cap(c.builds), c.wait)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.metrics.patchBuilding.Inc()
	defer func() {
		c.metrics.patchBuilding.Dec()
		<-c.builds
	}()
	if c.onBuild != nil {
		c.onBuild(from, to, seg)
	}
	size, err := c.build(ctx, from, to, seg, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(key, size)
	p, err := c.openCached(key)
	if err == nil && p == nil {
		err = fmt.Errorf("build patch: %s vanished after it was built", key)
	}
	if err != nil {
		return nil, err
	}
	c.prune()
	return p, nil
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

// build writes the patch to dst and returns its size on disk.
func (c *patchCache) build(ctx context.Context, from, to string, seg int, dst string) (int64, error) {
	oldSize, _, err := c.store.Stat(ctx, from)
	if err != nil {
		return 0, fmt.Errorf("build patch: old file: %w", err)
	}
	newSize, _, err := c.store.Stat(ctx, to)
	if err != nil {
		return 0, fmt.Errorf("build patch: new file: %w", err)
	}
	if seg >= patch.Segments(newSize) {
		return 0, fmt.Errorf("build patch: %w: file %s has %d segments", errNoSegment, to, patch.Segments(newSize))
	}
	oldF, err := c.store.OpenObject(from)
	if err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	defer oldF.Close()
	newF, err := c.store.OpenObject(to)
	if err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	defer newF.Close()
	win := patch.ChooseWindow(oldSize, newSize, seg, -1)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".building-*")
	if err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var h [patchHeader]byte
	binary.BigEndian.PutUint64(h[:8], uint64(win.Offset))
	binary.BigEndian.PutUint64(h[8:], uint64(win.Length))
	if _, err := tmp.Write(h[:]); err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	n, err := patch.Encode(tmp, oldF, oldSize, win, newF, newSize, seg)
	if err != nil {
		return 0, fmt.Errorf("build patch %s→%s segment %d: %w", from, to, seg, err)
	}
	// The box verifies what it decodes, so a torn patch could never
	// corrupt it, but it would be served (and wasted) until deleted.
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("build patch: %w", err)
	}
	return patchHeader + n, nil
}
