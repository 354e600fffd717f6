package sessionstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/caddy-kratos/caddy-kratos/sessionstore/internal/cache"
)

// The behaviour of sessions is asserted for every engine by the
// conformance suite (storetest, run by conformance_test.go); these check
// what only Badger has: the TTL of a session's indexes and the bound of
// its cache.

// TestSessionIndexesShareTTL: an update gives the session and every index
// of it the new TTL.
func TestSessionIndexesShareTTL(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	sess := newSession("s1", "id-1", now, time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	upd := sess.Clone()
	upd.ExpiresAt = now.Add(2 * time.Hour)
	if err := s.UpdateSession(ctx, upd); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(txn *badger.Txn) error {
		want := expiresAtUnix(upd.ExpiresAt.Add(SessionGrace))
		for _, k := range [][]byte{sessKey(sess.TokenHash), sessIDKey("s1"), logoutKey(sess.LogoutTokenHash), idSessKey("id-1", "s1")} {
			item, err := txn.Get(k)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if item.ExpiresAt() != want {
				return fmt.Errorf("%s expires %d, want %d", k, item.ExpiresAt(), want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSessionCacheBounded(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{NoSync: true, SessionCacheSize: 128})
	ctx := context.Background()
	now := time.Now()
	for i := range 400 {
		sess := newSession(fmt.Sprintf("s%d", i), "id-1", now, time.Hour)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.caches.sessions.Len(); n > 128+cache.Shards {
		t.Fatalf("cache holds %d entries, bound 128", n)
	}
	// Disabled cache still works.
	d := openStore(t, t.TempDir(), Options{NoSync: true, SessionCacheSize: -1})
	sess := newSession("x", "id-1", now, time.Hour)
	if err := d.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if g, err := d.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil || g.ID != "x" {
		t.Fatalf("uncached get: %v %v", g, err)
	}
}
