package sessionstore

import "github.com/caddy-kratos/caddy-kratos/sessionstore/internal/cache"

// CacheCounters are one cache's lookups since the engine opened: hits,
// misses (absent or expired) and evictions (live entries dropped to make
// room; invalidations after writes are not evictions).
type CacheCounters struct {
	Hits, Misses, Evictions uint64
}

// CacheStats describes an engine's caches (Caches) for metrics: the
// decoded tier of each kind, and the compact tier a decoded-tier miss
// falls back to (shared by sessions and identities). A lookup that
// misses both tiers reads storage.
type CacheStats struct {
	Sessions   CacheCounters
	Identities CacheCounters
	Compact    CacheCounters
	// DecodedEntries and CompactEntries are the entries held now.
	DecodedEntries, CompactEntries int
}

// Stats reads the counters; they only grow while the engine is open. A
// nil *Caches (caching disabled) reports zeros.
func (c *Caches) Stats() CacheStats {
	if c == nil {
		return CacheStats{}
	}
	decoded, compact := c.Lens()
	return CacheStats{
		Sessions:       cacheCounters(c.sessions.Counters()),
		Identities:     cacheCounters(c.identities.Counters()),
		Compact:        cacheCounters(c.compact.Counters()),
		DecodedEntries: decoded,
		CompactEntries: compact,
	}
}

func cacheCounters(n cache.Counters) CacheCounters {
	return CacheCounters{Hits: n.Hits, Misses: n.Misses, Evictions: n.Evictions}
}

// CacheStats reports the engine's cache counters (Caches.Stats).
func (s *Store) CacheStats() CacheStats { return s.caches.Stats() }
