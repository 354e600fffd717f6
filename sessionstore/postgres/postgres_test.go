package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
)

func query[T any](t testing.TB, sql string, args ...any) T {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var v T
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// Three nodes starting together on an empty schema: every migration is
// applied exactly once and all three start.
func TestMigrationsOnceUnderConcurrentStarts(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	pending, err := postgres.PendingMigrations(t.Context(), dsn, postgres.Options{Schema: schema})
	if err != nil || len(pending) != len(postgres.Migrations()) || pending[0].Version != 1 || !strings.Contains(pending[0].SQL, "CREATE TABLE kratos_identities") {
		t.Fatalf("dry run on an empty schema: %d pending, %v", len(pending), err)
	}
	if n := query[int](t, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema); n != 0 {
		t.Fatalf("the dry run created %d tables", n)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	table := pgx.Identifier{schema, "kratos_schema_migrations"}.Sanitize()
	if n := query[int](t, "SELECT count(*) FROM "+table); n != len(postgres.Migrations()) {
		t.Fatalf("%d migration rows, want %d (each once)", n, len(postgres.Migrations()))
	}
	pending, err = postgres.PendingMigrations(t.Context(), dsn, postgres.Options{Schema: schema})
	if err != nil || len(pending) != 0 {
		t.Fatalf("after start: %d pending, %v", len(pending), err)
	}
	// A schema migrated by a newer binary is refused.
	pgtest.Exec(t, "INSERT INTO "+table+" (version, name) VALUES (999, 'future')")
	if _, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema}); !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestNoMigrateRefusesPendingMigrations(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	if _, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, NoMigrate: true}); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("NoMigrate on an empty schema: %v", err)
	}
	applied, err := postgres.Migrate(t.Context(), dsn, postgres.Options{Schema: schema})
	if err != nil || len(applied) != len(postgres.Migrations()) {
		t.Fatalf("Migrate: %d %v", len(applied), err)
	}
	s := openSchema(t, dsn, schema, postgres.Options{NoMigrate: true})
	if err := s.PutRecord(t.Context(), "ns", "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
}

// The schema can also come from the DSN's search_path (a Caddyfile names
// only a DSN), and the tables then land there.
func TestSchemaFromDSN(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	u, _ := url.Parse(dsn)
	if s.Schema() != u.Query().Get("search_path") {
		t.Fatalf("schema %q, DSN %s", s.Schema(), dsn)
	}
	if n := query[int](t, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'kratos_%'", s.Schema()); n != 6 {
		t.Fatalf("%d kratos tables in the DSN's schema, want 6", n)
	}
}

// Expired records and sessions past their grace are swept; live ones
// stay; a node finding another sweeping skips.
func TestSweep(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s := openSchema(t, dsn, schema, postgres.Options{SweepInterval: -1})
	ctx := t.Context()
	for i := range 30 {
		ttl := time.Millisecond
		if i%3 == 0 {
			ttl = time.Hour
		}
		if err := s.PutRecord(ctx, "flow", fmt.Sprint(i), []byte("x"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRecord(ctx, "outbox", "forever", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	old := storetest.NewSession("old", "id", time.Now().Add(-ss.SessionGrace-2*time.Hour), time.Hour)
	live := storetest.NewSession("live", "id", time.Now(), time.Hour)
	for _, sess := range []*ss.Session{old, live} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	records := pgx.Identifier{schema, "kratos_records"}.Sanitize()
	sessions := pgx.Identifier{schema, "kratos_sessions"}.Sanitize()

	// Another node holds the sweep lock: this one skips.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var locked bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", postgres.SweepLockKey(s)).Scan(&locked); err != nil || !locked {
		t.Fatalf("taking the sweep lock: %v %v", locked, err)
	}
	rep, err := s.Sweep(ctx)
	if err != nil || rep.Swept || rep.Records != 0 {
		t.Fatalf("sweep while another node sweeps: %+v %v", rep, err)
	}
	_ = tx.Rollback(ctx)

	rep, err = s.Sweep(ctx)
	if err != nil || !rep.Swept || rep.Records != 20 || rep.Sessions != 1 {
		t.Fatalf("sweep: %+v %v, want 20 records and 1 session", rep, err)
	}
	if n := query[int](t, "SELECT count(*) FROM "+records); n != 11 {
		t.Fatalf("%d records left, want 11", n)
	}
	if n := query[int](t, "SELECT count(*) FROM "+sessions); n != 1 {
		t.Fatalf("%d sessions left, want 1", n)
	}
	if _, err := s.GetSessionByTokenHash(ctx, live.TokenHash); err != nil {
		t.Fatalf("live session after the sweep: %v", err)
	}
}

// proxy is a TCP proxy to the test server that a test can cut and
// restore, as a database that goes down and comes back.
type proxy struct {
	t      testing.TB
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t testing.TB) *proxy {
	u, err := url.Parse(pgtest.DSN())
	if err != nil || u.Host == "" {
		t.Skip("the proxy test needs a URL DSN with a host")
	}
	p := &proxy{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	p.start("127.0.0.1:0")
	t.Cleanup(p.down)
	return p
}

func (p *proxy) start(addr string) {
	var ln net.Listener
	var err error
	for range 100 { // the port may linger briefly after down
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// down closes the listener and every connection (the server is gone).
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *proxy) up() { p.start(p.addr) }

func (p *proxy) dsn(schema string) string {
	u, _ := url.Parse(pgtest.DSN())
	u.Host = p.addr
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String()
}

// A database that goes away: every call returns an error wrapping
// ErrUnavailable within a bounded time (no panic, no hang), the caches
// stop serving, and when the database is back the same store works
// again, listener included, without being reopened.
func TestDatabaseDownAndBack(t *testing.T) {
	_, schema := pgtest.Schema(t)
	p := newProxy(t)
	s, err := postgres.Open(t.Context(), p.dsn(schema), postgres.Options{ReconnectDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := t.Context()
	id := storetest.NewIdentity("id-down", "down@example.com")
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	sess := storetest.NewSession("s-down", id.ID, time.Now(), time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
		t.Fatal(err)
	}

	p.down()
	waitUntil(t, "the caches stop serving", func() bool { return !s.CachesLive() })
	calls := map[string]func() error{
		"GetSessionByTokenHash": func() error { _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); return err },
		"GetIdentity":           func() error { _, err := s.GetIdentity(ctx, id.ID); return err },
		"CreateIdentity":        func() error { return s.CreateIdentity(ctx, storetest.NewIdentity("id-2", "2@example.com")) },
		"ModifyIdentity": func() error {
			_, err := s.ModifyIdentity(ctx, id.ID, func(i *ss.Identity) error { i.State = "inactive"; return nil })
			return err
		},
		"CreateSession": func() error { return s.CreateSession(ctx, storetest.NewSession("s2", id.ID, time.Now(), time.Hour)) },
		"RevokeSession": func() error { return s.RevokeSession(ctx, "s-down") },
		"UpdateRecord": func() error {
			return s.UpdateRecord(ctx, "limit", "k", func([]byte) ([]byte, time.Duration, error) { return []byte("1"), time.Hour, nil })
		},
		"TakeRecord":  func() error { _, err := s.TakeRecord(ctx, "code", "k"); return err },
		"PutRecord":   func() error { return s.PutRecord(ctx, "flow", "f", []byte("x"), time.Hour) },
		"ScanRecords": func() error { return s.ScanRecords(ctx, "outbox", func(string, []byte) error { return nil }) },
		"Secret": func() error {
			_, err := s.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("k"), nil })
			return err
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, ss.ErrUnavailable) {
			t.Errorf("%s with the database down: %v, want ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %v to fail", name, d)
		}
	}

	p.up()
	waitUntil(t, "the store works again", func() bool {
		_, err := s.GetIdentity(ctx, id.ID)
		return err == nil
	})
	waitUntil(t, "the listener is back", s.CachesLive)
	if g, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil || !g.Active {
		t.Fatalf("after recovery: %+v %v", g, err)
	}
	if err := s.RevokeSession(ctx, "s-down"); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Check(ctx); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("check after recovery: %+v %v", rep, err)
	}
}

// Pool connections killed under the store (a restart, a failover) cost
// no request: the operation retries on a fresh connection.
func TestDroppedPoolConnectionsAreRetried(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	// An application name of its own: only this store's backends die.
	app := "kratos_test_" + schema
	if strings.Contains(dsn, "://") {
		dsn += map[bool]string{true: "&", false: "?"}[strings.Contains(dsn, "?")] + "application_name=" + app
	} else {
		dsn += " application_name=" + app
	}
	s := openSchema(t, dsn, schema, postgres.Options{MinConns: 2})
	ctx := t.Context()
	for round := range 5 {
		// Warm the pool, then kill every backend of this schema's
		// store except the listener.
		if err := s.PutRecord(ctx, "ns", "warm", []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		pgtest.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1 AND pid <> $2`, app, int32(postgres.ListenerPID(s))) // #nosec G115 -- a backend pid
		time.Sleep(10 * time.Millisecond)
		if err := s.CreateIdentity(ctx, storetest.NewIdentity(fmt.Sprintf("id-%d", round), fmt.Sprintf("r%d@example.com", round))); err != nil {
			t.Fatalf("round %d: create after the connections died: %v", round, err)
		}
		if _, err := s.GetIdentity(ctx, fmt.Sprintf("id-%d", round)); err != nil {
			t.Fatalf("round %d: read: %v", round, err)
		}
	}
}
