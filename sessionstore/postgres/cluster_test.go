package postgres_test

import (
	"testing"
	"time"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
)

// join opens another node on s's schema.
func join(t testing.TB, s *postgres.Store, opts postgres.Options) *postgres.Store {
	t.Helper()
	return openSchema(t, pgtest.DSN(), s.Schema(), opts)
}

// disconnect terminates s's LISTEN connection with pg_terminate_backend
// and keeps it from reconnecting until the returned func is called.
func disconnect(t testing.TB, s *postgres.Store) func() {
	t.Helper()
	pid := postgres.ListenerPID(s)
	if pid == 0 || !s.CachesLive() {
		t.Fatal("the node does not listen")
	}
	postgres.HoldNotifications(s, true)
	pgtest.Exec(t, "SELECT pg_terminate_backend($1)", int32(pid)) // #nosec G115 -- a backend pid
	waitUntil(t, "the node notices its lost connection", func() bool { return !s.CachesLive() })
	gen := postgres.ListenGen(s)
	return func() {
		postgres.HoldNotifications(s, false)
		waitUntil(t, "the node listens again", func() bool { return s.CachesLive() && postgres.ListenGen(s) > gen })
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClusterConformance runs the several-nodes part of the suite: nodes
// are stores of their own (pool, listener, caches) on one schema.
func TestClusterConformance(t *testing.T) {
	pgtest.Available(t)
	storetest.RunCluster(t, storetest.Cluster{
		Open:       func(t testing.TB) ss.Storage { return newStore(t) },
		Join:       func(t testing.TB, s ss.Storage) ss.Storage { return join(t, s.(*postgres.Store), postgres.Options{}) },
		Disconnect: func(t testing.TB, s ss.Storage) func() { return disconnect(t, s.(*postgres.Store)) },
	})
}

// A lost notification connection empties the node's caches at once (the
// cluster suite shows the behaviour; this shows the caches themselves),
// and a real drop (no hold) is repaired by the listener without help.
func TestLostListenerEmptiesCachesAndReconnects(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for i := range 20 {
		sess := storetest.NewSession(string(rune('a'+i)), "id", time.Now(), time.Hour)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
			t.Fatal(err)
		}
	}
	if n := postgres.CacheLen(s); n != 20 {
		t.Fatalf("%d cached, want 20", n)
	}
	pid, gen := postgres.ListenerPID(s), postgres.ListenGen(s)
	pgtest.Exec(t, "SELECT pg_terminate_backend($1)", int32(pid)) // #nosec G115 -- a backend pid
	start := time.Now()
	waitUntil(t, "reconnected", func() bool { return postgres.ListenGen(s) > gen && s.CachesLive() })
	t.Logf("listener back after %v", time.Since(start))
	if n := postgres.CacheLen(s); n != 0 {
		t.Fatalf("%d entries survived the lost connection", n)
	}
	if postgres.ListenerPID(s) == pid {
		t.Fatal("same backend after reconnecting")
	}
}

// The heartbeat pings a silent notification connection; notifications
// still arrive between pings.
func TestListenerHeartbeat(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	a := openSchema(t, dsn, schema, postgres.Options{HeartbeatInterval: 20 * time.Millisecond})
	b := openSchema(t, dsn, schema, postgres.Options{})
	ctx := t.Context()
	gen := postgres.ListenGen(a)
	time.Sleep(200 * time.Millisecond) // several heartbeats
	if postgres.ListenGen(a) != gen || !a.CachesLive() {
		t.Fatal("heartbeats broke the listener")
	}
	sess := storetest.NewSession("hb", "id", time.Now(), time.Hour)
	if err := a.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeSession(ctx, "hb"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "revocation seen", func() bool {
		g, err := a.GetSessionByTokenHash(ctx, sess.TokenHash)
		return err == nil && !g.Active
	})
}
