package caddymodule

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"64MB": 64e6, "64mb": 64e6, "64 MB": 64e6, "64M": 64e6, "128MiB": 128 << 20, "1GiB": 1 << 30,
		"2GB": 2e9, "1048576": 1 << 20, "1048576B": 1 << 20, "512KiB": 512 << 10, "100kb": 1e5,
	} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "1.5GB", "-1MB", "64XB", "64 M B", "99999999999GB"} {
		if got, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestStorageSessionCacheSize: session_cache_size reaches the engine's
// options (both engines) and out-of-range JSON values stop the config.
func TestStorageSessionCacheSize(t *testing.T) {
	repl := caddy.NewReplacer()
	tgt, err := (&App{Storage: t.TempDir(), SessionCacheSize: 128 << 20}).storage(repl)
	if err != nil || tgt.cacheBytes != 128<<20 {
		t.Fatalf("badger target %+v, %v", tgt, err)
	}
	tgt, err = (&App{Postgres: &PostgresOptions{DSN: "postgres://x/y"}, SessionCacheSize: 32 << 20}).storage(repl)
	if err != nil || tgt.cacheBytes != 32<<20 {
		t.Fatalf("postgres target %+v, %v", tgt, err)
	}
	for _, bad := range []int64{-1, 1000, 65 << 30} {
		if _, err := (&App{Storage: t.TempDir(), SessionCacheSize: bad}).storage(repl); err == nil {
			t.Errorf("session_cache_size %d accepted", bad)
		}
	}
}
