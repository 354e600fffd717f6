package postgres_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
)

// TestSweepInBatchesWhileServing: 50 000 sessions past their grace and
// 3 000 expired records are swept in transactions of at most 1 000 rows
// of each table, with rests between them, while readers keep reading a
// live session from the database (caches off): they are served all along,
// none waiting long (the bound is generous: the machine is shared).
func TestSweepInBatchesWhileServing(t *testing.T) {
	const expiredSessions, expiredRecords = 50_000, 3_000
	dsn, schema := pgtest.Schema(t)
	s := openSchema(t, dsn, schema, postgres.Options{SweepInterval: -1, SessionCacheSize: -1})
	ctx := t.Context()
	live := storetest.NewSession("live", "id-live", time.Now(), time.Hour)
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	sessions := pgx.Identifier{schema, "kratos_sessions"}.Sanitize()
	records := pgx.Identifier{schema, "kratos_records"}.Sanitize()
	pgtest.Exec(t, `INSERT INTO `+sessions+` (id, token_hash, identity_id, purge_at, data)
		SELECT 'expired-' || g, sha256(('tok-expired-' || g)::bytea), 'id-' || (g % 1000), now() - interval '1 hour', '{}'::json
		FROM generate_series(1, $1) g`, expiredSessions)
	pgtest.Exec(t, `INSERT INTO `+records+` (ns, key, value, expires_at)
		SELECT 'flow', ('k' || g)::bytea, 'x'::bytea, now() - interval '1 minute' FROM generate_series(1, $1) g`, expiredRecords)

	read := func() time.Duration {
		t0 := time.Now()
		if _, err := s.GetSessionByTokenHash(ctx, live.TokenHash); err != nil {
			t.Errorf("reading the live session: %v", err)
		}
		return time.Since(t0)
	}
	var before []time.Duration
	for range 200 {
		before = append(before, read())
	}

	var (
		done    atomic.Bool
		mu      sync.Mutex
		during  []time.Duration
		readers sync.WaitGroup
	)
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !done.Load() {
				d := read()
				mu.Lock()
				during = append(during, d)
				mu.Unlock()
			}
		}()
	}
	t0 := time.Now()
	rep, err := s.Sweep(ctx)
	took := time.Since(t0)
	done.Store(true)
	readers.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Swept || rep.Sessions != expiredSessions || rep.Records != expiredRecords {
		t.Fatalf("sweep %+v, want %d sessions and %d records", rep, expiredSessions, expiredRecords)
	}
	// 1 000 rows of each table per transaction: 50 full batches and a
	// last one that finds nothing left.
	if rep.Batches != expiredSessions/1000+1 {
		t.Errorf("%d batches, want %d", rep.Batches, expiredSessions/1000+1)
	}
	// The rests: at least 10 ms after each full batch.
	if took < time.Duration(expiredSessions/1000)*10*time.Millisecond {
		t.Errorf("the sweep took %v: it did not rest between batches", took)
	}
	if n := query[int](t, "SELECT count(*) FROM "+sessions); n != 1 {
		t.Fatalf("%d sessions left, want the live one", n)
	}
	if _, err := s.GetSessionByTokenHash(ctx, live.TokenHash); err != nil {
		t.Fatalf("live session after the sweep: %v", err)
	}
	slices.Sort(before)
	slices.Sort(during)
	if len(during) < rep.Batches {
		t.Fatalf("%d reads during a sweep of %d batches: the readers were not served", len(during), rep.Batches)
	}
	p := func(d []time.Duration, q float64) time.Duration { return d[int(float64(len(d)-1)*q)] }
	t.Logf("sweep of %d sessions and %d records: %d batches in %v; reads before: p50 %v p99 %v max %v; during (%d): p50 %v p99 %v max %v",
		rep.Sessions, rep.Records, rep.Batches, took.Round(time.Millisecond), p(before, .5), p(before, .99), before[len(before)-1],
		len(during), p(during, .5), p(during, .99), during[len(during)-1])
	if max := during[len(during)-1]; max > 2*time.Second {
		t.Errorf("a read during the sweep took %v", max)
	}
}

// The sweep does not outlive Close: it stops between batches.
func TestSweepStopsOnClose(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, SweepInterval: -1, SessionCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	sessions := pgx.Identifier{schema, "kratos_sessions"}.Sanitize()
	pgtest.Exec(t, `INSERT INTO `+sessions+` (id, token_hash, identity_id, purge_at, data)
		SELECT 'expired-' || g, sha256(('tok-expired-' || g)::bytea), 'id', now() - interval '1 hour', '{}'::json
		FROM generate_series(1, 20000) g`)
	type result struct {
		rep postgres.SweepReport
		err error
	}
	res := make(chan result, 1)
	go func() {
		rep, err := s.Sweep(t.Context())
		res <- result{rep, err}
	}()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan struct{})
	go func() { _ = s.Close(); close(closed) }()
	select {
	case r := <-res:
		if r.err != nil || r.rep.Sessions == 0 || r.rep.Sessions >= 20000 {
			t.Errorf("sweep cut by Close: %+v %v, want part of the rows and no error", r.rep, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep did not stop on Close")
	}
	<-closed
	if _, err := s.GetSessionByTokenHash(t.Context(), storetest.TokenHash("tok-x")); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
