package postgres_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
)

// TestSessionCacheMissIsOneIndexScan: with the per-node cache off, every
// lookup of a session by its token costs exactly one index scan of the
// sessions table and no sequential scan, and creating a session scans
// nothing sequentially either — read off PostgreSQL's own statistics
// (pg_stat_user_tables) with 2 000 sessions stored. A backend reports its
// counters when it exits, so each phase runs on a store of its own that
// is closed before the counters are read.
func TestSessionCacheMissIsOneIndexScan(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	ctx := t.Context()
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema, SessionCacheSize: -1, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	scans := func() (idx, seq int64) {
		// The exited backends' reports arrive within moments.
		time.Sleep(500 * time.Millisecond)
		v := query[[]int64](t, "SELECT ARRAY[coalesce(idx_scan, 0), seq_scan] FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'kratos_sessions'", schema)
		return v[0], v[1]
	}
	now := time.Now().UTC()
	id := &ss.Identity{ID: "8d1c2b3a-4e5f-4a6b-9c7d-0e1f2a3b4c5d", SchemaID: "default", State: "active",
		Traits: []byte(`{"email":"index@example.com"}`), CreatedAt: now, UpdatedAt: now}
	const n, more, lookups = 2000, 200, 200
	hashes := make([][]byte, n+more)
	create := func(s *postgres.Store, from, to int) {
		for i := from; i < to; i++ {
			h := sha256.Sum256([]byte(fmt.Sprintf("ory_st_index_%d", i)))
			hashes[i] = h[:]
			lh := sha256.Sum256([]byte(fmt.Sprintf("ory_lo_index_%d", i)))
			sess := &ss.Session{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), IdentityID: id.ID, Active: true,
				ExpiresAt: now.Add(time.Hour), AuthenticatedAt: now, IssuedAt: now, AAL: "aal1", TokenHash: hashes[i], LogoutTokenHash: lh[:]}
			if err := s.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := open()
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	create(s, 0, n)
	_ = s.Close()
	pgtest.Exec(t, "ANALYZE "+schema+".kratos_sessions")

	idx0, seq0 := scans()
	s = open()
	create(s, n, n+more)
	_ = s.Close()
	idx1, seq1 := scans()
	if d := seq1 - seq0; d != 0 {
		t.Errorf("%d session creations among %d took %d sequential scans of the sessions table, want none (%d index scans)", more, n, d, idx1-idx0)
	}

	s = open()
	for i := range lookups {
		got, err := s.GetSessionByTokenHash(ctx, hashes[(i*7)%(n+more)])
		if err != nil || got.IdentityID != id.ID {
			t.Fatalf("lookup %d: %v", i, err)
		}
	}
	_ = s.Close()
	idx2, seq2 := scans()
	if d := idx2 - idx1; d != lookups {
		t.Errorf("%d uncached lookups took %d index scans, want exactly one each", lookups, d)
	}
	if d := seq2 - seq1; d != 0 {
		t.Errorf("%d uncached lookups took %d sequential scans, want none", lookups, d)
	}
}
