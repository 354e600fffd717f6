package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
)

func runStorageCLI(args ...string) (string, string, error) {
	cmd := &cobra.Command{Use: "kratos", SilenceUsage: true, SilenceErrors: true}
	setupKratosCommand(cmd)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

// TestStorageMigrateCommand: --dry-run prints the pending migrations and
// applies none; migrate applies them once; a second run has nothing to do.
func TestStorageMigrateCommand(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	out, _, err := runStorageCLI("storage", "migrate", "--to", dsn, "--dry-run")
	if err != nil {
		t.Fatalf("migrate --dry-run: %v", err)
	}
	if !strings.Contains(out, "-- would apply 0001_") || !strings.Contains(out, "CREATE TABLE") || !strings.Contains(out, "nothing applied: --dry-run") {
		t.Fatalf("migrate --dry-run printed:\n%s", out)
	}
	pending, err := postgres.PendingMigrations(context.Background(), dsn, postgres.Options{})
	if err != nil || len(pending) == 0 {
		t.Fatalf("after --dry-run: %d pending, %v; want the migrations still pending", len(pending), err)
	}
	out, _, err = runStorageCLI("storage", "migrate", "--dsn", dsn)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !strings.Contains(out, "applied 0001_") || !strings.Contains(out, "the schema is current") {
		t.Fatalf("migrate printed:\n%s", out)
	}
	out, _, err = runStorageCLI("storage", "migrate", "--to", dsn)
	if err != nil || !strings.Contains(out, "0 migrations applied") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
	out, _, err = runStorageCLI("storage", "migrate", "--to", dsn, "--dry-run")
	if err != nil || strings.TrimSpace(out) != "no pending migrations" {
		t.Fatalf("dry run on a current schema: %v\n%s", err, out)
	}

	// Mistakes: no DSN, a non-PostgreSQL URL, a password in an error.
	t.Setenv("DATABASE_URL", "")
	if _, _, err := runStorageCLI("storage", "migrate"); err == nil || !strings.Contains(err.Error(), "--to postgres://") {
		t.Errorf("migrate without a DSN: %v", err)
	}
	if _, _, err := runStorageCLI("storage", "migrate", "--to", "mysql://root:hunter2@db/x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("migrate to mysql: %v", err)
	}
	if _, _, err := runStorageCLI("storage", "migrate", "--to", "postgres://ck:hunter2@127.0.0.1:1/x?connect_timeout=2"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("migrate to a closed port: %v", err)
	}
}

// TestStorageCopyCommand copies a Badger store with an identity, a
// session and a record into PostgreSQL; the session's token is found
// there, the counts are reported, and a second run is harmless.
func TestStorageCopyCommand(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	dir := filepath.Join(t.TempDir(), "kratos")
	src, err := sessionstore.Open(dir, sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	id := &sessionstore.Identity{ID: "6a4f1a6e-3b7c-4d0f-9a55-0c1e2d3f4a5b", SchemaID: "default", State: "active",
		Traits: []byte(`{"email":"copy@example.com"}`), CreatedAt: now, UpdatedAt: now}
	if err := src.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	token := sha256.Sum256([]byte("ory_st_copy"))
	sess := &sessionstore.Session{ID: "0b9d2c4e-1f3a-4b5c-8d7e-6f5a4b3c2d1e", IdentityID: id.ID, Active: true,
		ExpiresAt: now.Add(time.Hour), AuthenticatedAt: now, IssuedAt: now, AAL: "aal1", TokenHash: token[:]}
	if err := src.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := src.PutRecord(ctx, "outbox", "m1", []byte("queued"), time.Hour); err != nil {
		t.Fatal(err)
	}

	// The directory is still open (a running gateway): refused, clearly.
	if _, _, err := runStorageCLI("storage", "copy", "--from", dir, "--to", dsn); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("copy from a directory in use: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		out, _, err := runStorageCLI("storage", "copy", "--from", dir, "--to", dsn)
		if err != nil {
			t.Fatalf("copy run %d: %v", run, err)
		}
		if !strings.Contains(out, "copied and verified 1 identities, 1 sessions, 1 records") {
			t.Fatalf("copy run %d printed:\n%s", run, out)
		}
	}
	dst, err := postgres.Open(ctx, dsn, postgres.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got, err := dst.GetSessionByTokenHash(ctx, token[:])
	if err != nil || got.ID != sess.ID || got.IdentityID != id.ID || !got.Active {
		t.Fatalf("the copied session by its token: %+v, %v", got, err)
	}
	if v, err := dst.GetRecord(ctx, "outbox", "m1"); err != nil || string(v) != "queued" {
		t.Fatalf("the copied record: %q, %v", v, err)
	}
	// A gateway starts on the database: from then on a copy would roll
	// back what it did, and is refused.
	if err := provisionApp(t, &App{Storage: dsn}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runStorageCLI("storage", "copy", "--from", dir, "--to", dsn); err == nil || !strings.Contains(err.Error(), "gateways have served from this database") {
		t.Fatalf("copy into a database gateways serve from: %v", err)
	}
	if _, _, err := runStorageCLI("storage", "copy", "--from", filepath.Join(dir, "missing"), "--to", dsn); err == nil || !strings.Contains(err.Error(), "not a storage directory") {
		t.Errorf("copy from a missing directory: %v", err)
	}
}
