package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Cluster opens several nodes of an engine on one database for
// RunCluster.
type Cluster struct {
	// Open returns the first node of a new, empty database; it is closed
	// when the test ends.
	Open func(t testing.TB) ss.Storage
	// Join opens another node on s's database (closed when the test ends).
	Join func(t testing.TB, s ss.Storage) ss.Storage
	// Disconnect cuts node s's cache-invalidation channel for real (the
	// PostgreSQL engine: pg_terminate_backend of its LISTEN connection)
	// and keeps it down until reconnect is called; it returns once s has
	// noticed. reconnect returns once s listens again.
	Disconnect func(t testing.TB, s ss.Storage) (reconnect func())
}

// CoherenceBound is how soon after a write returns on one node every
// other node must see it, cached or not (issue 14: "a revoked session is
// refused by every node within 1 s of the revoke returning").
const CoherenceBound = time.Second

// RunCluster runs the several-nodes part of the conformance suite: what
// must hold across nodes sharing one database.
func RunCluster(t *testing.T, c Cluster) {
	tests := []struct {
		name string
		fn   func(*testing.T, Cluster)
	}{
		{"UniqueIdentifierAcrossNodes", testClusterUniqueIdentifier},
		{"SingleUseAcrossNodes", testClusterSingleUse},
		{"RateLimitAcrossNodes", testClusterRateLimit},
		{"SecretsAgreeAcrossNodes", testClusterSecrets},
		{"OptimisticWritesAcrossNodes", testClusterModifyIdentity},
		{"DeactivationRacesLogin", testClusterDeactivationRacesLogin},
		{"CacheCoherence", testClusterCoherence},
		{"RevocationBound", testClusterRevocationBound},
		{"LostNotificationsEmptyCaches", testClusterDisconnect},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, c) })
	}
}

func nodes(t *testing.T, c Cluster, n int) []ss.Storage {
	first := c.Open(t)
	out := []ss.Storage{first}
	for len(out) < n {
		out = append(out, c.Join(t, first))
	}
	return out
}

// Registrations of one identifier racing on three nodes: exactly one
// identity, the others ErrDuplicateCredential.
func testClusterUniqueIdentifier(t *testing.T, c Cluster) {
	ns := nodes(t, c, 3)
	ctx := ctxOf(t)
	const per = 10
	errs := make([]error, 3*per)
	together(len(errs), func(i int) {
		errs[i] = ns[i%3].CreateIdentity(ctx, NewIdentity(fmt.Sprintf("id-%02d", i), "race@example.com"))
	})
	if n := successes(t, errs, ss.ErrDuplicateCredential); n != 1 {
		t.Fatalf("%d registrations of one identifier succeeded, want 1", n)
	}
	for _, n := range ns {
		ids, _, err := n.ListIdentities(ctx, "", 0)
		if err != nil || len(ids) != 1 {
			t.Fatalf("identities stored: %d %v", len(ids), err)
		}
	}
	if rep, err := ns[2].Check(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// A single-use code taken on three nodes at once is taken once.
func testClusterSingleUse(t *testing.T, c Cluster) {
	ns := nodes(t, c, 3)
	ctx := ctxOf(t)
	for round := range 10 {
		key := fmt.Sprintf("code-%d", round)
		if err := ns[round%3].PutRecord(ctx, "code", key, []byte("prize"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var taken atomic.Int32
		together(9, func(i int) {
			v, err := ns[i%3].TakeRecord(ctx, "code", key)
			switch {
			case err == nil && string(v) == "prize":
				taken.Add(1)
			case !errors.Is(err, ss.ErrNotFound):
				t.Errorf("take: %q %v", v, err)
			}
		})
		if taken.Load() != 1 {
			t.Fatalf("round %d: the code was used %d times", round, taken.Load())
		}
	}
}

// Rate-limit buckets are records updated with UpdateRecord: ten allowed
// attempts for one identifier, thirty tried at once over three nodes,
// exactly ten get through (as on one node).
func testClusterRateLimit(t *testing.T, c Cluster) {
	ns := nodes(t, c, 3)
	ctx := ctxOf(t)
	const limit, tries = 10, 30
	errLimited := errors.New("limited")
	errs := make([]error, tries)
	together(tries, func(i int) {
		errs[i] = ns[i%3].UpdateRecord(ctx, "limit", "login/alice", func(old []byte) ([]byte, time.Duration, error) {
			n := 0
			if old != nil {
				n, _ = strconv.Atoi(string(old))
			}
			if n >= limit {
				return nil, 0, errLimited
			}
			return []byte(strconv.Itoa(n + 1)), time.Hour, nil
		})
	})
	if allowed := successes(t, errs, errLimited); allowed != limit {
		t.Fatalf("%d of %d attempts allowed across nodes, want %d", allowed, tries, limit)
	}
	v, err := ns[1].GetRecord(ctx, "limit", "login/alice")
	if err != nil || string(v) != strconv.Itoa(limit) {
		t.Fatalf("bucket %q %v", v, err)
	}
}

// Secrets generated at once on three nodes: one value, everywhere.
func testClusterSecrets(t *testing.T, c Cluster) {
	ns := nodes(t, c, 3)
	ctx := ctxOf(t)
	results := make([][]byte, 12)
	together(len(results), func(i int) {
		v, err := ns[i%3].Secret(ctx, "cookie", func() ([]byte, error) { return fmt.Appendf(nil, "secret-%d", i), nil })
		if err != nil {
			t.Error(err)
		}
		results[i] = v
	})
	for i := range results {
		if !bytes.Equal(results[i], results[0]) || len(results[0]) == 0 {
			t.Fatalf("secrets disagree: %q vs %q", results[i], results[0])
		}
	}
}

// ModifyIdentity on three nodes at once: every change survives.
func testClusterModifyIdentity(t *testing.T, c Cluster) {
	ns := nodes(t, c, 3)
	ctx := ctxOf(t)
	if err := ns[0].CreateIdentity(ctx, NewIdentity("id-m", "m@example.com")); err != nil {
		t.Fatal(err)
	}
	const n = 30
	together(n, func(i int) {
		_, err := ns[i%3].ModifyIdentity(ctx, "id-m", func(id *ss.Identity) error {
			typ := fmt.Sprintf("cred%d", i)
			id.Credentials[typ] = ss.Credential{Type: typ, Identifiers: []string{fmt.Sprintf("h-%d", i)}}
			return nil
		})
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	got, err := ns[1].GetIdentity(ctx, "id-m")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Credentials) != n+1 || got.Version != n {
		t.Fatalf("%d credentials, version %d; want %d and %d", len(got.Credentials), got.Version, n+1, n)
	}
	if rep, err := ns[2].Check(ctx); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// waitFor polls cond until it holds or CoherenceBound passes, and returns
// how long it took.
func waitFor(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > CoherenceBound {
			t.Fatalf("%s: not seen within %v", what, CoherenceBound)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return time.Since(start)
}

// cached warms n's cache with the session of hash and checks the second
// read came from it (so a later change must really invalidate it).
func cached(t testing.TB, n ss.Storage, hash []byte) {
	t.Helper()
	a, err := n.GetSessionByTokenHash(ctxOf(t), hash)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := n.GetSessionByTokenHash(ctxOf(t), hash); a != b {
		t.Fatal("session not served from the cache")
	}
}

// Every change that a cache may hold is seen by the other node, whose
// cache held the old value: revocation, logout-style revocation of all
// sessions, token rotation, AAL change, deactivation, credential change,
// deletion.
func testClusterCoherence(t *testing.T, c Cluster) {
	ns := nodes(t, c, 2)
	a, b := ns[0], ns[1]
	ctx := ctxOf(t)
	id := NewIdentity("11111111-1111-4111-8111-111111111111", "coh@example.com")
	if err := a.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(sid string) *ss.Session {
		s := NewSession(sid, id.ID, now, time.Hour)
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		// Made on a, valid on b.
		if g, err := b.GetSessionByTokenHash(ctx, s.TokenHash); err != nil || !g.Active {
			t.Fatalf("session made on one node, on the other: %+v %v", g, err)
		}
		cached(t, a, s.TokenHash)
		cached(t, b, s.TokenHash)
		return s
	}
	active := func(n ss.Storage, h []byte) bool {
		g, err := n.GetSessionByTokenHash(ctx, h)
		return err == nil && g.Active
	}

	s1 := mk("s1")
	if err := b.RevokeSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revocation", func() bool { return !active(a, s1.TokenHash) })

	s2, s3 := mk("s2"), mk("s3")
	if n, err := b.RevokeSessionsOfIdentity(ctx, id.ID, "s3"); err != nil || n != 1 {
		t.Fatalf("revoke others: %d %v", n, err)
	}
	waitFor(t, "revocation of the other sessions", func() bool { return !active(a, s2.TokenHash) })
	if !active(a, s3.TokenHash) {
		t.Fatal("the kept session was revoked")
	}

	rotated := TokenHash("rotated-s3")
	if _, err := b.ModifySession(ctx, "s3", s3.TokenHash, func(s *ss.Session) error {
		s.TokenHash, s.AAL = rotated, "aal2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "token rotation", func() bool {
		_, err := a.GetSessionByTokenHash(ctx, s3.TokenHash)
		return errors.Is(err, ss.ErrNotFound)
	})
	if g, err := a.GetSessionByTokenHash(ctx, rotated); err != nil || g.AAL != "aal2" {
		t.Fatalf("rotated session on the other node: %+v %v", g, err)
	}

	cached(t, a, rotated)
	upd, _ := b.GetSession(ctx, "s3")
	upd.AAL = "aal1"
	upd.ExpiresAt = now.Add(2 * time.Hour)
	if err := b.UpdateSession(ctx, upd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "AAL change", func() bool {
		g, err := a.GetSessionByTokenHash(ctx, rotated)
		return err == nil && g.AAL == "aal1"
	})

	// Identities: deactivation and a credential change.
	if g, err := a.GetIdentityShared(ctx, id.ID); err != nil || g.State != "active" {
		t.Fatalf("shared identity: %+v %v", g, err)
	}
	if _, err := b.ModifyIdentity(ctx, id.ID, func(i *ss.Identity) error { i.State = "inactive"; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deactivation", func() bool {
		g, err := a.GetIdentityShared(ctx, id.ID)
		return err == nil && g.State == "inactive"
	})
	if _, err := b.ModifyIdentity(ctx, id.ID, func(i *ss.Identity) error {
		i.Credentials["totp"] = ss.Credential{Type: "totp", Config: []byte(`{"totp_url":"x"}`)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "credential change", func() bool {
		g, err := a.GetIdentityShared(ctx, id.ID)
		_, ok := g.Credentials["totp"]
		return err == nil && ok
	})

	cached(t, a, rotated)
	if err := b.DeleteIdentity(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deletion", func() bool {
		_, err1 := a.GetSessionByTokenHash(ctx, rotated)
		_, err2 := a.GetIdentityShared(ctx, id.ID)
		return errors.Is(err1, ss.ErrNotFound) && errors.Is(err2, ss.ErrNotFound)
	})
}

// The bound, measured: a session revoked on one node is refused
// by two others, whose caches held it, within CoherenceBound of the
// revoke returning. The figures are logged (RevocationBound: …).
func testClusterRevocationBound(t *testing.T, c Cluster) {
	ns := nodes(t, c, 3)
	ctx := ctxOf(t)
	const rounds = 40
	var lat []time.Duration
	now := time.Now()
	for r := range rounds {
		sess := NewSession(fmt.Sprintf("rb-%d", r), "id-rb", now, time.Hour)
		if err := ns[r%3].CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			cached(t, n, sess.TokenHash)
		}
		revoker := ns[r%3]
		if err := revoker.RevokeSession(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		returned := time.Now()
		for _, n := range ns {
			if n == revoker {
				if g, err := n.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil || g.Active {
					t.Fatalf("the revoking node still serves the session: %+v %v", g, err)
				}
				continue
			}
			waitFor(t, "revocation", func() bool {
				g, err := n.GetSessionByTokenHash(ctx, sess.TokenHash)
				return err == nil && !g.Active
			})
			lat = append(lat, time.Since(returned))
		}
	}
	slices.Sort(lat)
	t.Logf("RevocationBound: %d observations on 2 other nodes: p50 %v, p99 %v, max %v (bound %v)",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], CoherenceBound)
}

// A node that loses its invalidation channel empties its caches and reads
// through to the database until the channel is back: a revocation made on
// another node meanwhile (whose notification the node never gets) is seen
// at once, and caching resumes afterwards.
func testClusterDisconnect(t *testing.T, c Cluster) {
	if c.Disconnect == nil {
		t.Fatal("Cluster.Disconnect is required")
	}
	ns := nodes(t, c, 2)
	a, b := ns[0], ns[1]
	ctx := ctxOf(t)
	id := NewIdentity("22222222-2222-4222-8222-222222222222", "dc@example.com")
	if err := a.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s1, s2 := NewSession("d1", id.ID, now, time.Hour), NewSession("d2", id.ID, now, time.Hour)
	for _, s := range []*ss.Session{s1, s2} {
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		cached(t, a, s.TokenHash)
	}
	if _, err := a.GetIdentityShared(ctx, id.ID); err != nil {
		t.Fatal(err)
	}

	reconnect := c.Disconnect(t, a)
	// b's revocation publishes a notification a does not receive.
	if err := b.RevokeSession(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if g, err := a.GetSessionByTokenHash(ctx, s1.TokenHash); err != nil || g.Active {
		t.Fatalf("disconnected node served a stale session: %+v %v", g, err)
	}
	if _, err := b.ModifyIdentity(ctx, id.ID, func(i *ss.Identity) error { i.State = "inactive"; return nil }); err != nil {
		t.Fatal(err)
	}
	if g, err := a.GetIdentityShared(ctx, id.ID); err != nil || g.State != "inactive" {
		t.Fatalf("disconnected node served a stale identity: %+v %v", g, err)
	}
	// Reads go through: nothing is cached while disconnected.
	x, _ := a.GetSessionByTokenHash(ctx, s2.TokenHash)
	y, _ := a.GetSessionByTokenHash(ctx, s2.TokenHash)
	if x == nil || x == y {
		t.Fatal("disconnected node served from its cache")
	}
	if err := b.RevokeSession(ctx, "d2"); err != nil {
		t.Fatal(err)
	}
	if g, err := a.GetSessionByTokenHash(ctx, s2.TokenHash); err != nil || g.Active {
		t.Fatalf("disconnected node: second revocation not seen at once: %+v %v", g, err)
	}

	reconnect()
	s3 := NewSession("d3", "someone", now, time.Hour)
	if err := b.CreateSession(ctx, s3); err != nil {
		t.Fatal(err)
	}
	cached(t, a, s3.TokenHash) // caching resumed
	if err := b.RevokeSession(ctx, "d3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revocation after reconnecting", func() bool {
		g, err := a.GetSessionByTokenHash(ctx, s3.TokenHash)
		return err == nil && !g.Active
	})
}

// A deactivation on one node (ModifyIdentity, then revoking the
// identity's sessions, as the admin API does) racing logins on another:
// afterwards no active session of the identity is left, because a login
// either sees the deactivation and fails (ErrIdentityInactive) or commits
// before it and is revoked.
func testClusterDeactivationRacesLogin(t *testing.T, c Cluster) {
	ns := nodes(t, c, 2)
	ctx := ctxOf(t)
	now := time.Now()
	for round := range 30 {
		idv := fmt.Sprintf("33333333-3333-4333-8333-%012d", round)
		if err := ns[0].CreateIdentity(ctx, NewIdentity(idv, fmt.Sprintf("r%d@example.com", round))); err != nil {
			t.Fatal(err)
		}
		const logins = 6
		together(logins+1, func(i int) {
			if i < logins {
				err := ns[0].CreateSession(ctx, NewSession(fmt.Sprintf("r%d-%d", round, i), idv, now, time.Hour))
				if err != nil && !errors.Is(err, ss.ErrIdentityInactive) {
					t.Errorf("login: %v", err)
				}
				return
			}
			if _, err := ns[1].ModifyIdentity(ctx, idv, func(i *ss.Identity) error { i.State = "inactive"; return nil }); err != nil {
				t.Error(err)
				return
			}
			if _, err := ns[1].RevokeSessionsOfIdentity(ctx, idv, ""); err != nil {
				t.Error(err)
			}
		})
		list, err := ns[0].ListSessionsByIdentity(ctx, idv)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Active {
				t.Fatalf("round %d: session %s of the deactivated identity is active", round, s.ID)
			}
		}
	}
}
