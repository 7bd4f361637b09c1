package web

import (
	"context"
	"sync"
	"time"

	"outpost/content/catalog"
)

// itemCache remembers item lookups for a moment. A video player sends a
// Range request every few hundred kilobytes, and a class of fifty does so
// at once; asking SQLite for the same item each time cost 40% of the media
// path's CPU. Staleness is harmless: after a version switch the old version
// keeps serving for at most itemTTL (its objects stay on disk until gc), and
// a cached item whose object has gone is looked up again (see itemFile).
type itemCache struct {
	src Courses
	ttl time.Duration
	now func() time.Time

	mu sync.RWMutex
	m  map[itemKey]cachedItem
}

type itemKey struct{ course, item string }

type cachedItem struct {
	it  *catalog.Item
	exp time.Time
}

const (
	itemTTL = 2 * time.Second
	// itemCacheMax bounds memory; URLs for items that do not exist are
	// never cached, so only real items can fill it.
	itemCacheMax = 4096
)

func newItemCache(src Courses) *itemCache {
	return &itemCache{src: src, ttl: itemTTL, now: time.Now, m: map[itemKey]cachedItem{}}
}

// get returns the item and whether it came from the cache.
func (c *itemCache) get(ctx context.Context, course, item string) (*catalog.Item, bool, error) {
	k := itemKey{course, item}
	now := c.now()
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok && now.Before(e.exp) {
		return e.it, true, nil
	}
	it, err := c.src.Item(ctx, course, item)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	if len(c.m) >= itemCacheMax {
		clear(c.m) // crude, but a full cache means a burst of distinct items, where recency guesses poorly anyway
	}
	c.m[k] = cachedItem{it: it, exp: now.Add(c.ttl)}
	c.mu.Unlock()
	return it, false, nil
}

// forget drops an entry that turned out stale.
func (c *itemCache) forget(course, item string) {
	c.mu.Lock()
	delete(c.m, itemKey{course, item})
	c.mu.Unlock()
}
