package sessionstore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCachesTiers: a session put in the caches is served from the
// decoded tier; once the decoded tier has evicted it, from the compact
// tier (an equal value, moved up again); invalidation drops both.
func TestCachesTiers(t *testing.T) {
	c := NewCaches(1, 1<<20) // one decoded entry per shard
	s := sessionViaJSON(t, newSession("s1", "id-1", time.Now().UTC(), time.Hour))
	_, f, ok := c.Session(s.TokenHash)
	if ok {
		t.Fatal("hit in empty caches")
	}
	c.PutSession(s.TokenHash, s, cacheDeadline(s), f)
	if got, _, ok := c.Session(s.TokenHash); !ok || got != s {
		t.Fatalf("decoded tier: %p %v, want %p", got, ok, s)
	}
	c.sessions.Clear()
	got, _, ok := c.Session(s.TokenHash)
	if !ok || got == s || got.ID != s.ID || !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("compact tier: %+v %v", got, ok)
	}
	if again, _, _ := c.Session(s.TokenHash); again != got {
		t.Fatal("a compact hit did not move the value to the decoded tier")
	}
	c.InvalidateSession(s.TokenHash)
	if _, _, ok := c.Session(s.TokenHash); ok {
		t.Fatal("hit after InvalidateSession")
	}

	id := identityViaJSON(t, recordIdentities()[1])
	_, f, _ = c.Identity(id.ID)
	c.PutIdentity(id, f)
	c.identities.Clear()
	gi, _, ok := c.Identity(id.ID)
	if !ok || gi == id || gi.ID != id.ID || string(gi.Traits) != string(id.Traits) || !gi.IsShared() {
		t.Fatalf("identity from the compact tier: %+v %v", gi, ok)
	}
	c.InvalidateIdentity([]byte(id.ID))
	if _, _, ok := c.Identity(id.ID); ok {
		t.Fatal("hit after InvalidateIdentity")
	}
	if c.Len() != 0 {
		t.Fatalf("Len %d", c.Len())
	}
}

// TestCachesFence: a put that raced with an invalidation is dropped by
// both tiers, whichever tier the reader missed in.
func TestCachesFence(t *testing.T) {
	c := NewCaches(0, 0)
	s := sessionViaJSON(t, newSession("s1", "id-1", time.Now().UTC(), time.Hour))
	_, f, _ := c.Session(s.TokenHash)
	c.InvalidateSession(s.TokenHash)
	c.PutSession(s.TokenHash, s, 0, f)
	if _, _, ok := c.Session(s.TokenHash); ok {
		t.Fatal("a session put that raced with an invalidation was stored")
	}
	c.sessions.Clear()
	if _, _, ok := c.Session(s.TokenHash); ok {
		t.Fatal("... in the compact tier")
	}
	_, f, _ = c.Identity("id-1")
	c.Clear()
	c.PutIdentity(&Identity{ID: "id-1", trimmed: true}, f)
	if _, _, ok := c.Identity("id-1"); ok {
		t.Fatal("an identity put that raced with Clear was stored")
	}
}

// TestCachesNoStaleAcrossTiers races readers (hitting the decoded tier,
// or missing it and hitting the compact tier, or missing both and reading
// the "store") with a writer that commits a new version and then
// invalidates: once the invalidation returned, no reader may see an older
// version, now or later.
func TestCachesNoStaleAcrossTiers(t *testing.T) {
	c := NewCaches(0, 0)
	base := sessionViaJSON(t, newSession("s1", "id-1", time.Now().UTC(), time.Hour))
	hash := base.TokenHash
	var stored atomic.Pointer[Session] // the "database"
	var committed atomic.Int64         // the version whose invalidation returned
	version := func(s *Session) int64 {
		var v int64
		_, _ = fmt.Sscanf(s.AAL, "v%d", &v)
		return v
	}
	mk := func(v int64) *Session {
		s := *base
		s.AAL = fmt.Sprintf("v%d", v)
		return &s
	}
	stored.Store(mk(0))
	read := func() *Session {
		s, f, ok := c.Session(hash)
		if ok {
			return s
		}
		s = stored.Load()
		c.PutSession(hash, s, 0, f)
		return s
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var stale atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				min := committed.Load()
				if v := version(read()); v < min {
					stale.Add(1)
				}
			}
		}()
	}
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	for v := int64(1); v <= int64(rounds); v++ {
		stored.Store(mk(v))
		c.InvalidateSession(hash)
		committed.Store(v)
		for i := 0; i < 50; i++ {
			read() // the compact tier serves the next version to readers
			c.sessions.Invalidate(hash)
		}
	}
	close(stop)
	wg.Wait()
	if n := stale.Load(); n > 0 {
		t.Fatalf("%d reads saw a version older than the last committed and invalidated one", n)
	}
}

// TestCachesHitAllocs: a hit in the decoded tier allocates nothing; one
// in the compact tier allocates what the decoded value needs.
func TestCachesHitAllocs(t *testing.T) {
	c := NewCaches(0, 0)
	s := sessionViaJSON(t, newSession("77777777-7777-4777-8777-000000000001", "77777777-7777-4777-8777-000000000002", time.Now().UTC(), time.Hour))
	_, f, _ := c.Session(s.TokenHash)
	c.PutSession(s.TokenHash, s, 0, f)
	id := identityViaJSON(t, recordIdentities()[1])
	_, f, _ = c.Identity(id.ID)
	c.PutIdentity(id, f)
	if n := testing.AllocsPerRun(100, func() {
		if _, _, ok := c.Session(s.TokenHash); !ok {
			t.Fatal("miss")
		}
		if _, _, ok := c.Identity(id.ID); !ok {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Errorf("a decoded-tier hit allocates %v times", n)
	}
	n := testing.AllocsPerRun(100, func() {
		c.sessions.Clear()
		if _, _, ok := c.Session(s.TokenHash); !ok {
			t.Fatal("miss")
		}
	})
	t.Logf("a compact-tier session hit allocates %v times", n)
	if n > 8 {
		t.Errorf("a compact-tier session hit allocates %v times", n)
	}
}

func TestCachesDisabled(t *testing.T) {
	c := NewCaches(-1, 0)
	if c != nil {
		t.Fatal("negative entries did not disable the caches")
	}
	s := newSession("s", "i", time.Now(), time.Hour)
	_, f, ok := c.Session(s.TokenHash)
	c.PutSession(s.TokenHash, s, 0, f)
	c.InvalidateSession(s.TokenHash)
	c.PutIdentity(&Identity{ID: "i"}, f)
	c.InvalidateIdentity([]byte("i"))
	c.Clear()
	if ok || c.Len() != 0 {
		t.Fatal("nil caches hold something")
	}
	// No compact tier: the decoded tier alone.
	d := NewCaches(0, -1)
	_, f, _ = d.Session(s.TokenHash)
	d.PutSession(s.TokenHash, s, 0, f)
	if got, _, ok := d.Session(s.TokenHash); !ok || got != s {
		t.Fatal("decoded tier alone does not serve")
	}
}
