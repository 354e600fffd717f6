package sessionstore

import (
	"context"
	"testing"
	"time"
)

// TestStoreCacheStats: the engine's counters see a session read from
// storage (misses in both tiers) and then served from the decoded tier.
func TestStoreCacheStats(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{NoSync: true})
	ctx := context.Background()
	sess := newSession("88888888-8888-4888-8888-000000000001", "88888888-8888-4888-8888-000000000002", time.Now(), time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	before := s.CacheStats()
	for range 3 {
		if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
			t.Fatal(err)
		}
	}
	st := s.CacheStats()
	if d := st.Sessions.Hits - before.Sessions.Hits; d != 2 {
		t.Errorf("decoded-tier session hits +%d, want +2", d)
	}
	if d := st.Sessions.Misses - before.Sessions.Misses; d != 1 {
		t.Errorf("decoded-tier session misses +%d, want +1", d)
	}
	if d := st.Compact.Misses - before.Compact.Misses; d != 1 {
		t.Errorf("compact-tier misses +%d, want +1", d)
	}
	if st.DecodedEntries == 0 || st.CompactEntries == 0 {
		t.Errorf("entries %d/%d after a cached read", st.DecodedEntries, st.CompactEntries)
	}
	if (*Caches)(nil).Stats() != (CacheStats{}) {
		t.Error("nil caches report something")
	}
}
