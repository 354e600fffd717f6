package cache

import (
	"fmt"
	"testing"
)

// TestCacheCounters: hits, misses (absent and expired) and evictions of
// the decoded tier; an invalidation is no eviction.
func TestCacheCounters(t *testing.T) {
	c := New[int](4 * Shards) // room for both keys in any one shard
	now := func() int64 { return 100 }
	k := []byte("k")
	_, gen, _ := c.Get(k, now)
	c.Put(k, 1, 0, gen)
	c.Get(k, now)
	c.Put([]byte("expired"), 2, 50, c.shard([]byte("expired")).gen)
	c.Get([]byte("expired"), now)
	c.Invalidate(k)
	if got, want := c.Counters(), (Counters{Hits: 1, Misses: 2}); got != want {
		t.Fatalf("counters %+v, want %+v", got, want)
	}
	small := New[int](Shards) // one entry per shard
	for i := range 10 * Shards {
		key := fmt.Appendf(nil, "key-%d", i)
		_, gen, _ := small.Get(key, now)
		small.Put(key, i, 0, gen)
	}
	if got, want := small.Counters(), uint64(10*Shards-small.Len()); got.Evictions != want || got.Misses != 10*Shards {
		t.Fatalf("after overfilling: %+v, want %d evictions", got, want)
	}
	if (*Cache[int])(nil).Counters() != (Counters{}) {
		t.Fatal("nil cache counts")
	}
}

// TestCompactCounters: hits and misses of the compact tier, and
// evictions of live records only.
func TestCompactCounters(t *testing.T) {
	c := NewCompact(1 << 20)
	k := []byte("session-token-hash")
	_, gen, _ := c.Get(k, nil, never)
	c.Put(k, []byte("v"), 0, gen)
	c.Get(k, nil, never)
	c.Get(k, nil, never)
	if got, want := c.Counters(), (Counters{Hits: 2, Misses: 1}); got != want {
		t.Fatalf("counters %+v, want %+v", got, want)
	}
	const n = 50000
	for i := range n {
		key := fmt.Appendf(nil, "key-%d", i)
		_, gen, _ := c.Get(key, nil, never)
		c.Put(key, make([]byte, 100), 0, gen)
	}
	got := c.Counters()
	if want := uint64(n + 1 - c.Len()); got.Evictions != want {
		t.Fatalf("%d evictions, want %d (puts %d, entries left %d)", got.Evictions, want, n+1, c.Len())
	}
	if (*Compact)(nil).Counters() != (Counters{}) {
		t.Fatal("nil cache counts")
	}
}
