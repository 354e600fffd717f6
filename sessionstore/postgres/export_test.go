package postgres

// Test hooks.

// HoldNotifications keeps s's listener from (re)connecting while hold is
// true; releasing it wakes the listener.
func HoldNotifications(s *Store, hold bool) {
	s.holdListen.Store(hold)
	if !hold {
		select {
		case s.listenWake <- struct{}{}:
		default:
		}
	}
}

// ListenerPID is the backend pid of s's notification connection (0: none).
func ListenerPID(s *Store) uint32 { return s.listenPID.Load() }

// ListenGen counts s's notification (re)connections.
func ListenGen(s *Store) uint64 { return s.listenGen.Load() }

// CacheLen is the number of cached sessions and identities: the larger
// of the two tiers' counts, so that an entry left in either shows.
func CacheLen(s *Store) int {
	decoded, compact := s.caches.Lens()
	return max(decoded, compact)
}

// SweepLockKey is the advisory lock id of s's sweeper.
func SweepLockKey(s *Store) int64 { return s.sweepID }
