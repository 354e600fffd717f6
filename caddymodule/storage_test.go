package caddymodule

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
)

// A storage value with a URL scheme is a PostgreSQL DSN or an error; it
// is never taken for a directory name (issue 14: `storage postgres:/x`
// once created a Badger store called "postgres:" in the working
// directory).
func TestStorageURLIsADatabase(t *testing.T) {
	t.Setenv("CK_TEST_DSN", "postgres://ck:s3cret@db.internal:5432/kratos?sslmode=require")
	repl := caddy.NewReplacer()
	for _, v := range []string{
		"postgres://ck@127.0.0.1/test",
		"postgresql://ck@127.0.0.1/test",
		"POSTGRES://ck@127.0.0.1/test",
		"{env.CK_TEST_DSN}",
	} {
		tgt, err := (&App{Storage: v}).storage(repl)
		if err != nil {
			t.Fatalf("storage %q: %v", v, err)
		}
		if tgt.dsn == "" || tgt.dir != "" {
			t.Errorf("storage %q = %+v, want a DSN", v, tgt)
		}
	}
	for _, v := range []string{
		"postgres:/ck@127.0.0.1/test", // one slash: not a path either
		"postgres:test",
		"mysql://root@127.0.0.1/test",
		"sqlite:///var/lib/kratos.db",
		"file:///var/lib/kratos",
		"badger:./data",
	} {
		tgt, err := (&App{Storage: v}).storage(repl)
		if err == nil {
			t.Errorf("storage %q = %+v, want an error", v, tgt)
			continue
		}
		if !strings.Contains(err.Error(), "PostgreSQL DSN") {
			t.Errorf("storage %q: error %q does not say what a URL value must be", v, err)
		}
	}
	// Paths that merely contain a colon later on, and drive letters, stay paths.
	for _, v := range []string{"./a:b", "data/kratos", `C:\kratos`, "C:/kratos"} {
		if err := checkStorageValue(v); err != nil {
			t.Errorf("storage %q: %v, want a directory", v, err)
		}
	}
}

func TestStoragePostgresBlock(t *testing.T) {
	t.Setenv("CK_TEST_DSN", "postgres://ck:s3cret@db.internal/kratos")
	repl := caddy.NewReplacer()
	a := &App{Postgres: &PostgresOptions{DSN: "{env.CK_TEST_DSN}", Schema: "ck", MaxConns: 8, MinConns: 2,
		MaxConnLifetime: caddy.Duration(time.Hour), ConnectTimeout: caddy.Duration(3 * time.Second)}}
	tgt, err := a.storage(repl)
	if err != nil {
		t.Fatal(err)
	}
	if tgt.dsn != "postgres://ck:s3cret@db.internal/kratos" || tgt.opts.Schema != "ck" || tgt.opts.MaxConns != 8 ||
		tgt.opts.MinConns != 2 || tgt.opts.MaxConnLifetime != time.Hour || tgt.opts.ConnectTimeout != 3*time.Second {
		t.Errorf("target = %+v", tgt)
	}
	if s := tgt.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, "db.internal") {
		t.Errorf("String() = %q, want the host without the password", s)
	}
	// Same DSN and options share a pool; other options open another.
	b := *a.Postgres
	tgt2, _ := (&App{Postgres: &b}).storage(repl)
	if tgt.poolKey() != tgt2.poolKey() {
		t.Error("equal configs got different pool keys")
	}
	b.MaxConns = 9
	tgt3, _ := (&App{Postgres: &b}).storage(repl)
	if tgt.poolKey() == tgt3.poolKey() {
		t.Error("changed max_conns kept the pool key")
	}
	if (storageTarget{dir: "/x"}).poolKey() == (storageTarget{dsn: "/x"}).poolKey() {
		t.Error("a directory and a DSN share a pool key")
	}

	for name, bad := range map[string]*App{
		"both":      {Storage: "/srv/kratos", Postgres: &PostgresOptions{DSN: "postgres://x/y"}},
		"empty dsn": {Postgres: &PostgresOptions{DSN: "{env.CK_UNSET_DSN}"}},
		"not pg":    {Postgres: &PostgresOptions{DSN: "mysql://x/y"}},
		"min > max": {Postgres: &PostgresOptions{DSN: "postgres://x/y", MaxConns: 2, MinConns: 3}},
		"negative":  {Postgres: &PostgresOptions{DSN: "postgres://x/y", ConnectTimeout: caddy.Duration(-time.Second)}},
	} {
		if tgt, err := bad.storage(repl); err == nil {
			t.Errorf("%s: %+v, want an error", name, tgt)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://ck:s3cret@db/k":                "postgres://ck:xxxxx@db/k",
		"postgres://ck@db/k?password=s3cret&x=1":   "postgres://ck@db/k?password=xxxxx&x=1",
		"host=db user=ck password=s3cret dbname=k": "host=db user=ck password=xxxxx dbname=k",
		"host=db password='s3 cret' dbname=k":      "host=db password=xxxxx dbname=k",
		"postgres://ck@db/k":                       "postgres://ck@db/k",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestProvisionPostgres provisions configs on a real PostgreSQL: the same
// DSN shares one pool across configs (a reload), other pool options open
// another pool on the same data, and a server that does not answer stops
// the start with the DSN named but its password hidden.
func TestProvisionPostgres(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	a1 := &App{Storage: dsn}
	if err := provisionApp(t, a1); err != nil {
		t.Fatalf("provision on PostgreSQL: %v", err)
	}
	if _, ok := a1.pool.store.(*postgres.Store); !ok {
		t.Fatalf("storage %s opened %T, want the PostgreSQL engine", dsn, a1.pool.store)
	}
	a2 := &App{Storage: dsn}
	if err := provisionApp(t, a2); err != nil {
		t.Fatal(err)
	}
	if a1.pool != a2.pool {
		t.Error("two configs naming one DSN opened two pools")
	}
	a3 := &App{Postgres: &PostgresOptions{DSN: dsn, MaxConns: 3}}
	if err := provisionApp(t, a3); err != nil {
		t.Fatal(err)
	}
	if a3.pool == a1.pool {
		t.Error("other pool options shared the pool")
	}
	ctx := context.Background()
	id := &sessionstore.Identity{ID: "2f1f0c7e-8e33-4c53-9d3f-3c1b5c0d7a11", SchemaID: "default", State: "active",
		Traits: []byte(`{"email":"pool@example.com"}`)}
	if err := a1.pool.store.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	got, err := a3.pool.store.GetIdentity(ctx, id.ID)
	if err != nil || got.ID != id.ID {
		t.Fatalf("the other pool does not see the identity: %v", err)
	}

	bad := &App{Storage: "postgres://ck:hunter2@127.0.0.1:1/kratos?connect_timeout=2"}
	err = provisionApp(t, bad)
	if err == nil {
		t.Fatal("provision against a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "opening kratos storage postgres://ck:xxxxx@127.0.0.1:1/kratos") {
		t.Errorf("error %q does not name the storage", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
}
