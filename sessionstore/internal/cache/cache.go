// Package cache is the bounded, sharded in-memory map behind the
// engines' session and identity caches, with the generation fence that
// keeps a reader that raced with a write from re-inserting a stale value.
package cache

import (
	"hash/maphash"
	"sync"
)

// Shards is a power of two; sharding keeps lock contention on the gate's
// hot path low.
const Shards = 64

// Cache is a bounded map from a key (a token hash, an identity id) to a
// shared decoded value that nobody may modify.
//
// Staleness guard: a reader that missed remembers its shard's generation
// before reading the database and only inserts if the generation is unchanged.
// Writers bump the generation (and drop the entry) after their commit, so
// a read that raced with a revocation can never re-insert the old value.
// Eviction is random (Go's map iteration order), which is good enough for
// session access patterns and costs nothing on hits. A nil *Cache is a
// disabled cache: every Get misses and Put drops.
type Cache[V any] struct {
	seed   maphash.Seed
	shards [Shards]cacheShard[V]
}

type cacheShard[V any] struct {
	mu  sync.RWMutex
	m   map[cacheKey]cacheEntry[V]
	max int
	gen uint64
	shardCounters
	_ [64]byte // keep neighbouring shard locks off one cache line
}

// cacheKey holds a key (a token hash, an identity id) inline in the map's
// slots: unlike a string key it is no separate object for the garbage
// collector to trace, and a lookup compares it without following a
// pointer into cold memory. Byte 0 is the length; keys of up to 47 bytes
// fit, longer ones are not cached.
type cacheKey [48]byte

func makeCacheKey(b []byte) (cacheKey, bool) {
	var k cacheKey
	if len(b) >= len(k) {
		return k, false
	}
	k[0] = byte(len(b)) // #nosec G115 -- len(b) < 48, checked above
	copy(k[1:], b)
	return k, true
}

type cacheEntry[V any] struct {
	sess V
	// deadline is when the store drops the value (unix nanoseconds);
	// 0 means never. Past it the entry is treated as a miss so the cache
	// never outlives the store.
	deadline int64
}

// New returns a cache of about size entries.
func New[V any](size int) *Cache[V] {
	c := &Cache[V]{seed: maphash.MakeSeed()}
	per := (size + Shards - 1) / Shards
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry[V])
		c.shards[i].max = per
	}
	return c
}

func (c *Cache[V]) shard(hash []byte) *cacheShard[V] {
	return &c.shards[maphash.Bytes(c.seed, hash)&(Shards-1)]
}

// Get returns the cached value and, on a miss, the shard generation to
// pass to Put. nowNano is only consulted for entries with a deadline.
func (c *Cache[V]) Get(hash []byte, nowNano func() int64) (V, uint64, bool) {
	if c == nil {
		var zero V
		return zero, 0, false
	}
	sh := c.shard(hash)
	k, cacheable := makeCacheKey(hash)
	sh.mu.RLock()
	e, ok := sh.m[k]
	gen := sh.gen
	sh.mu.RUnlock()
	if ok && cacheable && (e.deadline == 0 || nowNano() < e.deadline) {
		sh.hits.Add(1)
		return e.sess, gen, true
	}
	sh.misses.Add(1)
	var zero V
	return zero, gen, false
}

// Put inserts sess unless a writer invalidated the shard since Get.
// deadline is when the entry stops being served (unix nanoseconds; 0:
// never).
func (c *Cache[V]) Put(hash []byte, sess V, deadline int64, gen uint64) {
	if c == nil {
		return
	}
	k, ok := makeCacheKey(hash)
	if !ok {
		return
	}
	sh := c.shard(hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	if _, ok := sh.m[k]; !ok && len(sh.m) >= sh.max {
		for old := range sh.m {
			delete(sh.m, old)
			sh.evictions.Add(1)
			break
		}
	}
	sh.m[k] = cacheEntry[V]{sess: sess, deadline: deadline}
}

// Invalidate drops hash and fences out in-flight readers of its shard.
// Call it after the write that changed the value has committed.
func (c *Cache[V]) Invalidate(hash []byte) {
	if c == nil || len(hash) == 0 {
		return
	}
	k, _ := makeCacheKey(hash) // an uncacheable key is absent: bumping gen is enough
	sh := c.shard(hash)
	sh.mu.Lock()
	delete(sh.m, k)
	sh.gen++
	sh.mu.Unlock()
}

// Clear drops every entry and fences out every in-flight reader: for a
// node that may have missed invalidations (its notification connection
// dropped).
func (c *Cache[V]) Clear() {
	if c == nil {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.gen++
		sh.mu.Unlock()
	}
}

// Counters sums the shards' lookups and evictions.
func (c *Cache[V]) Counters() Counters {
	if c == nil {
		return Counters{}
	}
	return sumShards(func(i int) *shardCounters { return &c.shards[i].shardCounters })
}

// Len reports the number of cached entries.
func (c *Cache[V]) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
