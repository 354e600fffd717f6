package sessionstore

import "github.com/caddy-kratos/caddy-kratos/sessionstore/internal/cache"

// The session cache maps token hashes to shared decoded sessions; the
// identity cache maps identity ids to shared trimmed identities. Both are
// internal/cache's bounded map with its staleness fence.
type (
	sessionCache       = cache.Cache[*Session]
	sharedCache[V any] = cache.Cache[V]
)

const cacheShards = cache.Shards

func newSessionCache(size int) *sessionCache { return cache.New[*Session](size) }

func newSharedCache[V any](size int) *sharedCache[V] { return cache.New[V](size) }
