package caddymodule

import (
	"strings"
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

// TestStorageResidentLimit: storage_resident_limit reaches the Badger
// engine's options; PostgreSQL (which maps no table files) and
// out-of-range values stop the config.
func TestStorageResidentLimit(t *testing.T) {
	repl := caddy.NewReplacer()
	for _, ok := range []int64{0, -1, 1 << 20, 16 << 20} {
		tgt, err := (&App{Storage: t.TempDir(), StorageResidentLimit: ok}).storage(repl)
		if err != nil || tgt.residentLimit != ok {
			t.Fatalf("badger, limit %d: target %+v, %v", ok, tgt, err)
		}
	}
	for _, bad := range []int64{-2, 1000, 65 << 30} {
		if _, err := (&App{Storage: t.TempDir(), StorageResidentLimit: bad}).storage(repl); err == nil {
			t.Errorf("storage_resident_limit %d accepted", bad)
		}
	}
	if _, err := (&App{Postgres: &PostgresOptions{DSN: "postgres://x/y"}, StorageResidentLimit: 16 << 20}).storage(repl); err == nil ||
		!strings.Contains(err.Error(), "Badger") {
		t.Errorf("storage_resident_limit with PostgreSQL: %v", err)
	}
	if _, err := (&App{Storage: "postgres://x/y", StorageResidentLimit: -1}).storage(repl); err == nil {
		t.Error("storage_resident_limit off with a PostgreSQL URL accepted")
	}
}
