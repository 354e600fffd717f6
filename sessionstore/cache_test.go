package sessionstore

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
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

// benchUUID is a UUID-shaped id of n.
func benchUUID(kind, n int) string {
	return fmt.Sprintf("%08x-7777-4777-8777-%012x", kind, n)
}

// benchSession and benchIdentity are what scripts/benchtool seeds (one
// password method, one device with address and user agent; Kratos's
// default traits, one verifiable and one recovery address, the password
// credential), decoded from JSON as the engines decode them.
func benchSession(tb testing.TB, i, identities int) *Session {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	ip, ua := "127.0.0.1", "benchtool/1.0 (load test)"
	h := make([]byte, 32)
	copy(h, fmt.Sprintf("%032d", i))
	return sessionViaJSON(tb, &Session{
		ID: benchUUID(1, i), IdentityID: benchUUID(2, i%identities), Active: true,
		ExpiresAt: now.Add(24 * time.Hour), AuthenticatedAt: now, IssuedAt: now, AAL: "aal1",
		AuthenticationMethods: []AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: now}},
		Devices:               []Device{{ID: benchUUID(3, i), IPAddress: &ip, UserAgent: &ua}},
		TokenHash:             h,
	})
}

func benchIdentity(tb testing.TB, i int) *Identity {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	em := fmt.Sprintf("user%d@example.com", i)
	traits, _ := json.Marshal(map[string]any{"email": em, "name": map[string]string{"first": "Bench", "last": fmt.Sprintf("User %d", i)}})
	return identityViaJSON(tb, &Identity{
		ID: benchUUID(2, i), SchemaID: "default", State: "active", StateChangedAt: now, Traits: traits,
		VerifiableAddresses: []VerifiableAddress{{ID: benchUUID(4, i), Value: em, Via: "email", Status: "pending", CreatedAt: now, UpdatedAt: now}},
		RecoveryAddresses:   []RecoveryAddress{{ID: benchUUID(5, i), Value: em, Via: "email", CreatedAt: now, UpdatedAt: now}},
		CreatedAt:           now, UpdatedAt: now,
		Credentials: map[string]Credential{"password": {Type: "password", Identifiers: []string{em},
			Config: json.RawMessage(`{"hashed_password":"$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"}`), CreatedAt: now, UpdatedAt: now}},
	})
}

// BenchmarkCachesMemory fills the caches the way the load benchmark's
// warm-up does (every session looked up once, with its identity) and
// reports what they hold on the heap and what the garbage collector has to
// scan, and how long a full collection takes then, for the decoded-only
// caches of before (100 000 entries of each kind) and the two tiers at
// their defaults. Run with -benchtime=1x; -short: 100 000 sessions.
func BenchmarkCachesMemory(b *testing.B) {
	sessions, identities := 1000000, 100000
	if testing.Short() {
		sessions, identities = 100000, 10000
	}
	for _, bc := range []struct {
		name    string
		entries int
		bytes   int64
	}{
		{"decoded-100k", 100000, -1},
		{"two-tier-default", 0, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				scan0, live0 := heapScan()
				c := NewCaches(bc.entries, bc.bytes)
				for i := range sessions {
					s := benchSession(b, i, identities)
					if _, f, ok := c.Session(s.TokenHash); !ok {
						c.PutSession(s.TokenHash, s, 0, f)
					}
					id := s.IdentityID
					if _, f, ok := c.Identity(id); !ok {
						c.PutIdentity(benchIdentity(b, i%identities), f)
					}
				}
				scan1, live1 := heapScan()
				start := time.Now()
				runtime.GC()
				gc := time.Since(start)
				decoded, compact := c.Lens()
				runtime.KeepAlive(c)
				b.ReportMetric(float64(int64(live1)-int64(live0))/(1<<20), "live-MB") // #nosec G115 -- heap sizes
				b.ReportMetric(float64(int64(scan1)-int64(scan0))/(1<<20), "scan-MB") // #nosec G115 -- heap sizes
				b.ReportMetric(float64(gc.Microseconds())/1000, "gc-ms")
				b.ReportMetric(float64(decoded), "decoded-entries")
				b.ReportMetric(float64(compact), "compact-entries")
			}
		})
	}
}

// heapScan is the scannable and the live heap after a collection.
func heapScan() (scan, live uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}
