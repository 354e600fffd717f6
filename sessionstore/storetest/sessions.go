package storetest

import (
	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"

	"errors"
	"fmt"
	"testing"
	"time"
)

func testSessionLifecycle(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	sess := NewSession("s1", "id-1", now, time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, sess); !errors.Is(err, ss.ErrAlreadyExists) {
		t.Fatalf("create twice: %v", err)
	}

	byHash, err := s.GetSessionByTokenHash(ctx, sess.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if byHash.ID != "s1" || byHash.IdentityID != "id-1" || !byHash.Active || !byHash.ExpiresAt.Equal(sess.ExpiresAt) ||
		len(byHash.AuthenticationMethods) != 1 || len(byHash.Devices) != 1 || string(byHash.LogoutTokenHash) != string(sess.LogoutTokenHash) {
		t.Fatalf("by hash: %+v", byHash)
	}
	byID, err := s.GetSession(ctx, "s1")
	if err != nil || byID.ID != "s1" {
		t.Fatalf("by id: %v %v", byID, err)
	}
	byLogout, err := s.GetSessionByLogoutTokenHash(ctx, sess.LogoutTokenHash)
	if err != nil || byLogout.ID != "s1" {
		t.Fatalf("by logout hash: %v %v", byLogout, err)
	}
	for name, err := range map[string]error{
		"hash":   second(s.GetSessionByTokenHash(ctx, TokenHash("nope"))),
		"id":     second(s.GetSession(ctx, "nope")),
		"logout": second(s.GetSessionByLogoutTokenHash(ctx, TokenHash("nope"))),
		"revoke": s.RevokeSession(ctx, "nope"),
		"update": s.UpdateSession(ctx, NewSession("nope", "id-1", now, time.Hour)),
	} {
		if !errors.Is(err, ss.ErrNotFound) {
			t.Errorf("unknown %s: want ss.ErrNotFound, got %v", name, err)
		}
	}

	// Extend + AAL upgrade via UpdateSession on a clone of the cached value.
	upd := byHash.Clone()
	upd.ExpiresAt = now.Add(2 * time.Hour)
	upd.AAL = "aal2"
	upd.AuthenticationMethods = append(upd.AuthenticationMethods, ss.AuthMethod{Method: "totp", AAL: "aal2", CompletedAt: now})
	if err := s.UpdateSession(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if len(byHash.AuthenticationMethods) != 1 {
		t.Fatal("Clone shares AuthenticationMethods with the cached value")
	}
	got, err := s.GetSessionByTokenHash(ctx, sess.TokenHash)
	if err != nil || got.AAL != "aal2" || !got.ExpiresAt.Equal(upd.ExpiresAt) || len(got.AuthenticationMethods) != 2 {
		t.Fatalf("after update: %+v %v", got, err)
	}
	// Every index follows the update.
	if g, err := s.GetSession(ctx, "s1"); err != nil || g.AAL != "aal2" || !g.ExpiresAt.Equal(upd.ExpiresAt) {
		t.Fatalf("by id after update: %+v %v", g, err)
	}
	if g, err := s.GetSessionByLogoutTokenHash(ctx, sess.LogoutTokenHash); err != nil || g.AAL != "aal2" {
		t.Fatalf("by logout hash after update: %+v %v", g, err)
	}
	if l, err := s.ListSessionsByIdentity(ctx, "id-1"); err != nil || len(l) != 1 || l[0].AAL != "aal2" {
		t.Fatalf("listed after update: %v %v", l, err)
	}

	if err := s.RevokeSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "s1"); err != nil {
		t.Fatalf("revoke twice: %v", err)
	}
	got, err = s.GetSession(ctx, "s1")
	if err != nil || got.Active {
		t.Fatalf("after revoke: %+v %v", got, err)
	}
}

func testSessionCacheInvalidation(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	now := time.Now()
	sess := NewSession("s1", "id-1", now, time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	a, err := s.GetSessionByTokenHash(ctx, sess.TokenHash)
	if err != nil || !a.Active {
		t.Fatalf("first get: %+v %v", a, err)
	}
	b, _ := s.GetSessionByTokenHash(ctx, sess.TokenHash)
	if a != b {
		t.Fatal("second get did not come from the cache")
	}
	if err := s.RevokeSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	c, err := s.GetSessionByTokenHash(ctx, sess.TokenHash)
	if err != nil || c.Active {
		t.Fatalf("after RevokeSession: active=%v %v", c != nil && c.Active, err)
	}
	if !a.Active {
		t.Fatal("revocation mutated a value already handed out")
	}

	// RevokeSessionsOfIdentity invalidates too.
	s2 := NewSession("s2", "id-1", now, time.Hour)
	if err := s.CreateSession(ctx, s2); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetSessionByTokenHash(ctx, s2.TokenHash); g == nil || !g.Active {
		t.Fatal("s2 not active")
	}
	if _, err := s.RevokeSessionsOfIdentity(ctx, "id-1", ""); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetSessionByTokenHash(ctx, s2.TokenHash); g == nil || g.Active {
		t.Fatal("s2 still active after RevokeSessionsOfIdentity")
	}

	// UpdateSession invalidates.
	upd := NewSession("s2", "id-1", now, time.Hour)
	upd.Active = true
	upd.AAL = "aal2"
	if err := s.UpdateSession(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetSessionByTokenHash(ctx, s2.TokenHash); g == nil || g.AAL != "aal2" || !g.Active {
		t.Fatalf("after UpdateSession: %+v", g)
	}
}

// A reader that missed the cache before a revocation committed must not
// put the stale (active) session back into the cache afterwards.
func testSessionCacheNoStaleRefill(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	now := time.Now()
	for round := range 20 {
		sess := NewSession(fmt.Sprintf("r%d", round), "id-1", now, time.Hour)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		stop := hammer(t, 4, func() error {
			_, _ = s.GetSessionByTokenHash(ctx, sess.TokenHash)
			return nil
		})
		time.Sleep(time.Millisecond)
		if err := s.RevokeSession(ctx, sess.ID); err != nil {
			stop()
			t.Fatal(err)
		}
		got, err := s.GetSessionByTokenHash(ctx, sess.TokenHash)
		stop()
		if err != nil || got.Active {
			t.Fatalf("round %d: read right after revoke: active=%v %v", round, got != nil && got.Active, err)
		}
		got, _ = s.GetSessionByTokenHash(ctx, sess.TokenHash)
		if got.Active {
			t.Fatalf("round %d: stale active session re-entered the cache", round)
		}
	}
}

func testListAndRevokeSessionsOfIdentity(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	now := time.Now().UTC()
	mk := func(id, identity string, issuedAgo, ttl time.Duration, active bool) *ss.Session {
		sess := NewSession(id, identity, now.Add(-issuedAgo), ttl)
		sess.Active = active
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		return sess
	}
	mk("current", "id-1", 0, time.Hour, true)
	mk("older", "id-1", time.Hour, 2*time.Hour, true)
	mk("oldest", "id-1", 3*time.Hour, 4*time.Hour, true)
	mk("inactive", "id-1", 2*time.Hour, 4*time.Hour, false)
	mk("expired", "id-1", 5*time.Hour, 4*time.Hour, true) // expired 1h ago, still in grace
	mk("foreign", "id-2", 0, time.Hour, true)

	list, err := s.ListSessionsByIdentity(ctx, "id-1")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, x := range list {
		order = append(order, x.ID)
	}
	if fmt.Sprint(order) != "[current older inactive oldest expired]" {
		t.Fatalf("order %v", order)
	}

	n, err := s.RevokeSessionsOfIdentity(ctx, "id-1", "current")
	if err != nil || n != 2 {
		t.Fatalf("revoked %d (%v), want 2 (older, oldest)", n, err)
	}
	for id, want := range map[string]bool{"current": true, "older": false, "oldest": false, "inactive": false, "foreign": true} {
		got, err := s.GetSession(ctx, id)
		if err != nil || got.Active != want {
			t.Errorf("%s: active=%v (%v), want %v", id, got != nil && got.Active, err, want)
		}
	}
	n, err = s.RevokeSessionsOfIdentity(ctx, "id-1", "current")
	if err != nil || n != 0 {
		t.Fatalf("second revoke: %d %v", n, err)
	}
	n, err = s.RevokeSessionsOfIdentity(ctx, "id-1", "")
	if err != nil || n != 1 {
		t.Fatalf("revoke all: %d %v", n, err)
	}
	if list, _ := s.ListSessionsByIdentity(ctx, "nobody"); len(list) != 0 {
		t.Fatalf("unknown identity has %d sessions", len(list))
	}
}

func testSessionTTLFromExpiry(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	// Expired more than the grace period ago: stored but gone immediately.
	old := NewSession("ancient", "id-1", time.Now().Add(-ss.SessionGrace-2*time.Hour), time.Hour)
	if err := s.CreateSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSessionByTokenHash(ctx, old.TokenHash); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("session past grace: %v", err)
	}
	if list, _ := s.ListSessionsByIdentity(ctx, "id-1"); len(list) != 0 {
		t.Fatalf("listed %d sessions past grace", len(list))
	}
}

func testUpdateSessionMovesIndexes(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	sess := NewSession("s1", "id-1", time.Now(), time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	oldLogout := sess.LogoutTokenHash
	upd := sess.Clone()
	upd.LogoutTokenHash = TokenHash("new-logout")
	if err := s.UpdateSession(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSessionByLogoutTokenHash(ctx, oldLogout); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("old logout hash still resolves: %v", err)
	}
	if g, err := s.GetSessionByLogoutTokenHash(ctx, upd.LogoutTokenHash); err != nil || g.ID != "s1" {
		t.Fatalf("new logout hash: %v %v", g, err)
	}
}

// TestModifySessionRotatesToken: a new token hash replaces the old one in
// one step, the old hash stops resolving at once (cache included), a
// writer holding the old hash (a stale copy) gets ss.ErrTokenChanged and can
// never bring the old token back, and of concurrent rotations from one
// token exactly one wins.
func testModifySessionRotatesToken(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	now := time.Now().UTC()
	id := NewIdentity("66666666-6666-4666-8666-666666666666", "rot@example.com")
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	sess := NewSession("77777777-7777-4777-8777-777777777777", id.ID, now, time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	stale, err := s.GetSessionByTokenHash(ctx, sess.TokenHash) // cached now
	if err != nil {
		t.Fatal(err)
	}
	next := TokenHash("rotated")
	got, err := s.ModifySession(ctx, sess.ID, sess.TokenHash, func(c *ss.Session) error {
		c.TokenHash = next
		c.AAL = "aal2"
		c.AuthenticationMethods = append(c.AuthenticationMethods, ss.AuthMethod{Method: "totp", AAL: "aal2", CompletedAt: now})
		return nil
	})
	if err != nil || string(got.TokenHash) != string(next) || got.AAL != "aal2" {
		t.Fatalf("rotate: %+v %v", got, err)
	}
	if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("old token hash after rotation: %v, want ss.ErrNotFound", err)
	}
	if g, err := s.GetSessionByTokenHash(ctx, next); err != nil || g.ID != sess.ID || g.AAL != "aal2" || len(g.AuthenticationMethods) != 2 {
		t.Fatalf("new token hash: %+v %v", g, err)
	}
	if g, err := s.GetSessionByLogoutTokenHash(ctx, sess.LogoutTokenHash); err != nil || string(g.TokenHash) != string(next) {
		t.Fatalf("logout index after rotation: %+v %v", g, err)
	}

	// Writers that still hold the old token.
	ext := stale.Clone()
	ext.ExpiresAt = now.Add(2 * time.Hour)
	if err := s.UpdateSession(ctx, ext); !errors.Is(err, ss.ErrTokenChanged) {
		t.Fatalf("UpdateSession with the rotated-out hash: %v, want ss.ErrTokenChanged", err)
	}
	if _, err := s.ModifySession(ctx, sess.ID, sess.TokenHash, func(c *ss.Session) error { c.ExpiresAt = ext.ExpiresAt; return nil }); !errors.Is(err, ss.ErrTokenChanged) {
		t.Fatalf("ModifySession with the rotated-out hash: %v, want ss.ErrTokenChanged", err)
	}
	if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("old token hash came back: %v", err)
	}
	// A nil hash skips the check (administrative changes).
	if g, err := s.ModifySession(ctx, sess.ID, nil, func(c *ss.Session) error { c.ExpiresAt = ext.ExpiresAt; return nil }); err != nil || !g.ExpiresAt.Equal(ext.ExpiresAt) || g.AAL != "aal2" {
		t.Fatalf("extend by id: %+v %v", g, err)
	}
	// The identity, id and logout token cannot be changed this way.
	if _, err := s.ModifySession(ctx, sess.ID, nil, func(c *ss.Session) error { c.IdentityID = "other"; return nil }); err == nil {
		t.Fatal("ModifySession moved the session to another identity")
	}
	// An error from change writes nothing.
	boom := errors.New("boom")
	if _, err := s.ModifySession(ctx, sess.ID, nil, func(c *ss.Session) error { c.Active = false; return boom }); !errors.Is(err, boom) {
		t.Fatalf("change error: %v", err)
	}
	if g, _ := s.GetSessionByTokenHash(ctx, next); g == nil || !g.Active {
		t.Fatal("a failed change was written")
	}

	// Concurrent rotations from one token: exactly one wins.
	const n = 16
	errs := make([]error, n)
	together(n, func(i int) {
		_, errs[i] = s.ModifySession(ctx, sess.ID, next, func(c *ss.Session) error {
			c.TokenHash = TokenHash(fmt.Sprintf("race-%d", i))
			return nil
		})
	})
	if wins := successes(t, errs, ss.ErrTokenChanged); wins != 1 {
		t.Fatalf("%d concurrent rotations from one token succeeded, want 1", wins)
	}
	for i, err := range errs {
		if err == nil {
			if g, err := s.GetSessionByTokenHash(ctx, TokenHash(fmt.Sprintf("race-%d", i))); err != nil || g.ID != sess.ID {
				t.Errorf("winner's token: %v", err)
			}
		}
	}
	if rep, err := s.Check(ctx); err != nil || len(rep.Problems) != 0 || rep.Sessions != 1 {
		t.Fatalf("store after rotations: %+v %v", rep, err)
	}
}

// TestCreateSessionRefusesInactiveIdentity: the identity's state is read in
// the session's own transaction, so a deactivation that lands while a
// login is checking the password leaves no session behind.
func testCreateSessionRefusesInactiveIdentity(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	now := time.Now().UTC()
	id := &ss.Identity{ID: "id-inactive", SchemaID: "default", State: "active", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, NewSession("s-ok", id.ID, now, time.Hour)); err != nil {
		t.Fatalf("active identity: %v", err)
	}
	if _, err := s.ModifyIdentity(ctx, id.ID, func(cur *ss.Identity) error { cur.State = "inactive"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, NewSession("s-late", id.ID, now, time.Hour)); !errors.Is(err, ss.ErrIdentityInactive) {
		t.Fatalf("inactive identity: err = %v, want ss.ErrIdentityInactive", err)
	}
	if _, err := s.GetSession(ctx, "s-late"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("the refused session was stored: %v", err)
	}
}
