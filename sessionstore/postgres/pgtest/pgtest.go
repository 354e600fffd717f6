// Package pgtest gives tests a PostgreSQL schema of their own on the test
// server: KRATOS_TEST_POSTGRES (a DSN) or, by default, the local server
// of the project's machines (127.0.0.1:5432, trust auth, database test;
// scripts/postgres-test-deps.sh starts one where none answers). Each call
// creates a fresh schema and drops it when the test ends, so parallel
// runs and packages never see each other's rows.
//
// Without a server the tests skip — unless KRATOS_TEST_POSTGRES is set or
// CI=true, where a missing database is a failure, not a skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the server the project's machines and CI run.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns the test server's DSN.
func DSN() string {
	if d := os.Getenv("KRATOS_TEST_POSTGRES"); d != "" {
		return d
	}
	return DefaultDSN
}

// Required reports whether a missing server fails the tests.
func Required() bool {
	return os.Getenv("KRATOS_TEST_POSTGRES") != "" || os.Getenv("CI") == "true"
}

var (
	probeOnce sync.Once
	probeErr  error
)

func probe() error {
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, DSN())
		if err != nil {
			probeErr = err
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		probeErr = conn.Ping(ctx)
	})
	return probeErr
}

// Available skips (or, when Required, fails) t when no server answers.
func Available(t testing.TB) {
	t.Helper()
	if err := probe(); err != nil {
		if Required() {
			t.Fatalf("PostgreSQL test server %s unreachable: %v", redact(DSN()), err)
		}
		t.Skipf("no PostgreSQL test server (%s: %v); set KRATOS_TEST_POSTGRES or run scripts/postgres-test-deps.sh", redact(DSN()), err)
	}
}

// Schema creates an empty schema for t (dropped when t ends) and returns
// the server's DSN and the schema's name, to open a store with
// postgres.Options{Schema: name}.
func Schema(t testing.TB) (dsn, schema string) {
	t.Helper()
	Available(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema = "kt_" + hex.EncodeToString(b)
	exec(t, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	return DSN(), schema
}

// SchemaDSN is Schema with the schema in the DSN's search_path, for code
// that takes only a DSN (a Caddyfile's `storage postgres://…`).
func SchemaDSN(t testing.TB) string {
	t.Helper()
	dsn, schema := Schema(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs sql on the test server (outside any test schema).
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	exec(t, sql, args...)
}

func exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, DSN())
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return fmt.Sprint(u)
}
