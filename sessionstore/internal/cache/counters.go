package cache

import "sync/atomic"

// Counters are a cache's lookups since it was created: hits, misses
// (absent, expired or uncacheable keys) and evictions (live entries
// dropped to make room; invalidations are not evictions).
type Counters struct {
	Hits, Misses, Evictions uint64
}

// shardCounters live in each shard, next to its lock, so that counting a
// lookup touches no cache line other shards' readers write.
type shardCounters struct {
	hits, misses, evictions atomic.Uint64
}

// sumShards adds the counters of every shard.
func sumShards(shard func(i int) *shardCounters) Counters {
	var n Counters
	for i := range Shards {
		sc := shard(i)
		n.Hits += sc.hits.Load()
		n.Misses += sc.misses.Load()
		n.Evictions += sc.evictions.Load()
	}
	return n
}
