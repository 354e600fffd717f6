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
