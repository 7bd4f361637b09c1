package web

import (
	"container/list"
	"sync"

	"outpost/content/catalog"
)

// pageCache keeps rendered course and item pages, keyed by the course's
// edition (version and manifest hash). A page depends only on its course
// version, its language variant and the build, so a cached page is right
// until the course changes; when it does, the edition every view asks the
// catalog for changes too (cheap: one primary-key lookup), and the old
// version's pages are never asked for again and age out. There is nothing
// to invalidate, so a course switched by another process (an import from
// the command line) is seen at the next view, like a switch by sync.
//
// Rendering a course page of 200 items was ~2.7 ms of CPU; a class opening
// the same pages at once now pays it once per page and version.
type pageCache struct {
	max int // bytes, over bodies and keys

	mu    sync.Mutex
	size  int
	order *list.List // of *cacheEntry, most recently used first
	m     map[pageKey]*list.Element
}

// pageKey names one rendered page of one course edition.
type pageKey struct {
	course  string
	item    string // the item page's item; "" for a course page
	page    int    // the course page's page number
	variant int    // language and whether it was chosen by a link (see variant)
	edition catalog.Edition
}

type cacheEntry struct {
	key  pageKey
	page *rendered
	size int
}

const (
	// pageCacheBytes bounds the cache: ~2,000 course pages of 200 items
	// or ~6,000 item pages (kept compressed), on a 1 GB box.
	pageCacheBytes = 8 << 20
	// entryOverhead approximates the map, list and struct bytes per entry,
	// so a flood of tiny pages is bounded too.
	entryOverhead = 256
)

func newPageCache(max int) *pageCache {
	return &pageCache{max: max, order: list.New(), m: map[pageKey]*list.Element{}}
}

func (c *pageCache) get(k pageKey) *rendered {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).page
}

// put keeps p under k, evicting the least recently used pages to stay
// within max; a page larger than a sixteenth of the cache is not kept (a
// long plain-text document shown inline), so no single page can empty it.
func (c *pageCache) put(k pageKey, p *rendered) {
	size := len(p.body) + len(p.gz) + len(p.etag) + len(k.course) + len(k.item) + len(k.edition.Sum) + entryOverhead
	if size > c.max/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		old := e.Value.(*cacheEntry)
		c.size += size - old.size
		old.page, old.size = p, size
		c.order.MoveToFront(e)
	} else {
		c.m[k] = c.order.PushFront(&cacheEntry{key: k, page: p, size: size})
		c.size += size
	}
	for c.size > c.max {
		last := c.order.Back()
		ent := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.m, ent.key)
		c.size -= ent.size
	}
}

// bytes reports what the cache holds, for tests.
func (c *pageCache) bytes() (entries, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.size
}
