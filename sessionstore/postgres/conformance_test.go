package postgres_test

import (
	"testing"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
)

func openSchema(t testing.TB, dsn, schema string, opts postgres.Options) *postgres.Store {
	t.Helper()
	opts.Schema = schema
	if opts.Logf == nil {
		opts.Logf = func(level, format string, args ...any) {
			t.Logf("postgres %s: "+format, append([]any{level}, args...)...)
		}
	}
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	dsn, schema := pgtest.Schema(t)
	return openSchema(t, dsn, schema, postgres.Options{})
}

// TestConformance runs the engines' one conformance suite on PostgreSQL.
func TestConformance(t *testing.T) {
	pgtest.Available(t)
	storetest.Run(t, storetest.Engine{
		Open: func(t testing.TB) ss.Storage { return newStore(t) },
	})
}

// BenchmarkEngine measures the PostgreSQL engine with the benchmarks the
// Badger engine runs (sessionstore.BenchmarkEngine).
func BenchmarkEngine(b *testing.B) {
	storetest.Bench(b, storetest.BenchEngine{
		Open: func(tb testing.TB) ss.Storage { return newStore(tb) },
		OpenUncached: func(tb testing.TB) ss.Storage {
			dsn, schema := pgtest.Schema(tb)
			return openSchema(tb, dsn, schema, postgres.Options{SessionCacheSize: -1})
		},
	})
}
