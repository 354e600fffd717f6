package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// What the e2e tests read from an instance's PostgreSQL schema directly:
// the equivalents of the Badger directory scans.

// pgConnect opens a connection to the instance's schema (its DSN's
// search_path), closed when t ends.
func pgConnect(t *testing.T, in *instance) *pgx.Conn {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(c, in.dsn)
	if err != nil {
		t.Fatalf("connecting to the instance's database: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// pgStorageHolds reports which of needles occur in the raw column values
// of every row of the instance's tables (ids, keys, JSON and bytea values
// as sent by the server). It sees the rows as they are now: unlike the
// Badger scan, a value written and then overwritten in place is not
// found (its dead row version is not visible to SQL).
func pgStorageHolds(t *testing.T, in *instance, needles ...string) map[string]bool {
	t.Helper()
	conn := pgConnect(t, in)
	c := context.Background()
	rows, err := conn.Query(c, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatalf("the instance's schema (%s) has no tables", in.dsn)
	}
	found := map[string]bool{}
	for _, table := range tables {
		rows, err := conn.Query(c, "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			for _, v := range rows.RawValues() {
				for _, n := range needles {
					if bytes.Contains(v, []byte(n)) {
						found[n] = true
					}
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return found
}

// storeBytes is the space the instance's store takes: the Badger
// directory's allocated blocks, or on PostgreSQL the size of the
// schema's tables with their indexes and TOAST.
func storeBytes(t *testing.T, in *instance) int64 {
	t.Helper()
	if !in.onPostgres() {
		return dirBlocks(t, in.storage)
	}
	var n int64
	err := pgConnect(t, in).QueryRow(context.Background(), `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
		WHERE ns.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
