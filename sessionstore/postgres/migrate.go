package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one forward-only schema step, embedded in the binary.
type Migration struct {
	// Version orders migrations; each is applied once, in order.
	Version int
	// Name is the file name's descriptive part.
	Name string
	// SQL is what runs, in one transaction with the bookkeeping.
	SQL string
}

// ErrSchemaTooNew is returned when the database has migrations applied
// that this binary does not know: it was migrated by a newer version,
// whose tables this one may misread.
var ErrSchemaTooNew = errors.New("sessionstore/postgres: the database schema is newer than this binary")

// Migrations lists the embedded migrations in order.
func Migrations() []Migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	var out []Migration
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".sql")
		num, name, ok2 := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || v <= 0 {
			panic("sessionstore/postgres: bad migration file name " + e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := range out {
		if out[i].Version != i+1 {
			panic(fmt.Sprintf("sessionstore/postgres: migration versions not 1..n: %d at position %d", out[i].Version, i+1))
		}
	}
	return out
}

// PendingMigrations connects to dsn and lists the migrations Open would
// apply, without applying anything (`storage migrate --dry-run`).
func PendingMigrations(ctx context.Context, dsn string, opts Options) ([]Migration, error) {
	_, pending, err := migrateDSN(ctx, dsn, opts, true)
	return pending, err
}

// Migrate connects to dsn and applies the pending migrations under the
// advisory lock, returning those it applied (`storage migrate`). Open
// does the same unless Options.NoMigrate is set.
func Migrate(ctx context.Context, dsn string, opts Options) ([]Migration, error) {
	_, applied, err := migrateDSN(ctx, dsn, opts, false)
	return applied, err
}

func migrateDSN(ctx context.Context, dsn string, opts Options, dryRun bool) (schemaInfo, []Migration, error) {
	cfg, err := poolConfig(dsn, opts)
	if err != nil {
		return schemaInfo{}, nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return schemaInfo{}, nil, fmt.Errorf("sessionstore/postgres: connect: %w", unavailable(err))
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return migrateConn(ctx, conn, opts.Schema, opts.NoMigrate, dryRun)
}

type schemaInfo struct {
	name string
	hash string // short, for the NOTIFY channel name
}

func runMigrations(ctx context.Context, conn *pgx.Conn, schema string, noMigrate, dryRun bool) (schemaInfo, error) {
	info, _, err := migrateConn(ctx, conn, schema, noMigrate, dryRun)
	return info, err
}

// migrateConn applies (or, dryRun, lists) pending migrations on a
// connection of its own. The session-level advisory lock serializes nodes
// starting together: the first applies, the others wait and find nothing
// to do; the lock goes with the connection if this node dies midway.
func migrateConn(ctx context.Context, conn *pgx.Conn, schema string, noMigrate, dryRun bool) (schemaInfo, []Migration, error) {
	wrap := func(what string, err error) error {
		return fmt.Errorf("sessionstore/postgres: migrate: %s: %w", what, unavailable(err))
	}
	if schema == "" {
		var cur *string
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&cur); err != nil {
			return schemaInfo{}, nil, wrap("current schema", err)
		}
		if cur == nil {
			return schemaInfo{}, nil, errors.New("sessionstore/postgres: the DSN's search_path names no existing schema: create it or set the schema option")
		}
		schema = *cur
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(schema))
	info := schemaInfo{name: schema, hash: fmt.Sprintf("%016x", h.Sum64())}

	if !dryRun {
		key := lockKey("migrate", schema)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
			return info, nil, wrap("lock", err)
		}
		defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) }()
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return info, nil, wrap("create schema", err)
		}
	}
	table := pgx.Identifier{schema, "kratos_schema_migrations"}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return info, nil, wrap("read applied migrations", err)
	}
	if !exists && !dryRun {
		_, err := conn.Exec(ctx, "CREATE TABLE "+table+` (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
		if err != nil {
			return info, nil, wrap("create migrations table", err)
		}
		exists = true
	}
	applied := map[int]bool{}
	if exists {
		rows, err := conn.Query(ctx, "SELECT version FROM "+table)
		if err != nil {
			return info, nil, wrap("read applied migrations", err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return info, nil, wrap("read applied migrations", err)
		}
		for _, v := range vs {
			applied[int(v)] = true
		}
	}
	all := Migrations()
	for v := range applied {
		if v > len(all) {
			return info, nil, fmt.Errorf("%w: schema %s is at migration %d, this binary knows %d", ErrSchemaTooNew, schema, v, len(all))
		}
	}
	var pending []Migration
	for _, m := range all {
		if !applied[m.Version] {
			pending = append(pending, m)
		}
	}
	if dryRun || len(pending) == 0 {
		return info, pending, nil
	}
	if noMigrate {
		return info, nil, fmt.Errorf("sessionstore/postgres: %d migrations pending in schema %s (run `storage migrate`)", len(pending), schema)
	}
	for _, m := range pending {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// Unqualified names in the migration land in the schema.
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+table+" (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return info, nil, wrap(fmt.Sprintf("%04d_%s", m.Version, m.Name), err)
		}
	}
	return info, pending, nil
}
