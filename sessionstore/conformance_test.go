package sessionstore_test

import (
	"testing"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
)

// TestConformance runs the engines' one conformance suite on Badger.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Engine{
		Open: func(t testing.TB) sessionstore.Storage {
			s, err := sessionstore.Open(t.TempDir(), sessionstore.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	})
}

func openBadger(tb testing.TB, cacheSize int) sessionstore.Storage {
	s, err := sessionstore.Open(tb.TempDir(), sessionstore.Options{SessionCacheSize: cacheSize})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkEngine measures the Badger engine (durable writes, as in
// production); the PostgreSQL engine runs the same benchmarks.
func BenchmarkEngine(b *testing.B) {
	storetest.Bench(b, storetest.BenchEngine{
		Open:         func(tb testing.TB) sessionstore.Storage { return openBadger(tb, 0) },
		OpenUncached: func(tb testing.TB) sessionstore.Storage { return openBadger(tb, -1) },
	})
}
