package postgres

import ss "github.com/caddy-kratos/caddy-kratos/sessionstore"

// CacheStats reports the node's cache counters (sessionstore.Caches.Stats).
func (s *Store) CacheStats() ss.CacheStats { return s.caches.Stats() }
