package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
)

// storage copy: a Badger store moves to PostgreSQL without logging
// anyone out (sessions by token, secrets, identities with credentials,
// versions and identifiers, pending mail, limits, flows with their TTL),
// verified, and safe to run again.
func TestCopyFromBadger(t *testing.T) {
	src, err := ss.Open(t.TempDir(), ss.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	ctx := t.Context()
	now := time.Now()
	const n = 450 // more than two batches
	for i := range n {
		id := storetest.NewIdentity(fmt.Sprintf("id-%04d", i), fmt.Sprintf("u%d@example.com", i))
		id.RecoveryAddresses = []ss.RecoveryAddress{{ID: fmt.Sprint(i), Value: fmt.Sprintf("u%d@example.com", i), Via: "email"}}
		if err := src.CreateIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := src.CreateSession(ctx, storetest.NewSession(fmt.Sprintf("s-%04d", i), id.ID, now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.ModifyIdentity(ctx, "id-0007", func(i *ss.Identity) error { i.State = "inactive"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := src.RevokeSession(ctx, "s-0003"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		ns, key, value string
		ttl            time.Duration
	}{{"outbox", "m1", `{"state":"queued"}`, 0}, {"limit", "login/x", "3", time.Hour}, {"flow", "f1", "{}", 30 * time.Minute}} {
		if err := src.PutRecord(ctx, r.ns, r.key, []byte(r.value), r.ttl); err != nil {
			t.Fatal(err)
		}
	}
	cookie, err := src.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("badger-cookie-key"), nil })
	if err != nil {
		t.Fatal(err)
	}

	dst := newStore(t)
	other := join(t, dst, postgres.Options{}) // a node already running
	if _, err := other.GetSessionByTokenHash(ctx, storetest.TokenHash("tok-s-0001")); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("before the copy: %v", err)
	}
	var progress int
	rep, err := dst.CopyFrom(ctx, src, postgres.CopyOptions{Progress: func(postgres.CopyReport) { progress++ }})
	if err != nil {
		t.Fatal(err)
	}
	if rep != (postgres.CopyReport{Identities: n, Sessions: n, Records: 3, Secrets: 1}) || progress < 5 {
		t.Fatalf("copied %v in %d batches", rep, progress)
	}
	// Nobody is logged out: the token of a Badger session works on any node.
	for _, node := range []*postgres.Store{dst, other} {
		g, err := node.GetSessionByTokenHash(ctx, storetest.TokenHash("tok-s-0001"))
		if err != nil || !g.Active || g.IdentityID != "id-0001" {
			t.Fatalf("copied session: %+v %v", g, err)
		}
		if g, err := node.GetSessionByTokenHash(ctx, storetest.TokenHash("tok-s-0003")); err != nil || g.Active {
			t.Fatalf("revoked session copied as %+v %v", g, err)
		}
	}
	if v, err := dst.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("new"), nil }); err != nil || string(v) != string(cookie) {
		t.Fatalf("secret: %q %v", v, err)
	}
	got, err := dst.FindIdentityByCredential(ctx, ss.AddressIndexType("recovery", "email"), "u7@example.com")
	if err != nil || got.ID != "id-0007" || got.State != "inactive" || got.Version != 1 || string(got.Credentials["password"].Config) != `{"hashed_password":"x"}` {
		t.Fatalf("copied identity: %+v %v", got, err)
	}
	if v, err := dst.GetRecord(ctx, "outbox", "m1"); err != nil || string(v) != `{"state":"queued"}` {
		t.Fatalf("pending mail: %q %v", v, err)
	}
	var exp time.Time
	_ = dst.Export(ctx, func(it *ss.Item) error {
		if it.Kind == ss.ItemRecord && it.Key == "f1" {
			exp = it.ExpiresAt
		}
		return nil
	})
	if d := time.Until(exp); d < 29*time.Minute || d > 31*time.Minute {
		t.Fatalf("flow expiry after the copy: in %v, want 30m", d)
	}
	if chk, err := dst.Check(ctx); err != nil || len(chk.Problems) != 0 || chk.Identities != n || chk.Sessions != n {
		t.Fatalf("check after copy: %d identities %d sessions %v %v", chk.Identities, chk.Sessions, chk.Problems, err)
	}

	// Again (an interrupted copy is re-run): same result, nothing doubled.
	rep2, err := dst.CopyFrom(ctx, src, postgres.CopyOptions{})
	if err != nil || rep2 != rep {
		t.Fatalf("second copy: %v %v", rep2, err)
	}
	if chk, err := dst.Check(ctx); err != nil || len(chk.Problems) != 0 || chk.Identities != n || chk.Sessions != n {
		t.Fatalf("check after the second copy: %+v %v", chk, err)
	}

	// Once a gateway has served from the database, a copy would roll its
	// state back (a revoked session alive again): refused, nothing
	// written.
	if err := dst.RevokeSession(ctx, firstSessionID(ctx, t, dst)); err != nil {
		t.Fatal(err)
	}
	if err := dst.MarkServed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dst.MarkServed(ctx); err != nil {
		t.Fatalf("a second MarkServed: %v", err)
	}
	before, _ := dst.Check(ctx)
	if _, err := dst.CopyFrom(ctx, src, postgres.CopyOptions{}); !errors.Is(err, postgres.ErrServed) {
		t.Fatalf("copy into a served database: %v, want ErrServed", err)
	}
	if after, _ := dst.Check(ctx); after.Sessions != before.Sessions {
		t.Fatalf("the refused copy changed the sessions: %d → %d", before.Sessions, after.Sessions)
	}

	// A database whose cluster already made its own cookie key.
	fresh := newStore(t)
	if _, err := fresh.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("cluster-key"), nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.CopyFrom(ctx, src, postgres.CopyOptions{}); !errors.Is(err, postgres.ErrSecretDiffers) {
		t.Fatalf("copy over another secret: %v, want ErrSecretDiffers", err)
	}
	if _, err := fresh.CopyFrom(ctx, src, postgres.CopyOptions{ReplaceSecrets: true}); err != nil {
		t.Fatalf("copy with ReplaceSecrets: %v", err)
	}
	if v, _ := fresh.Secret(ctx, "cookie", nil); string(v) != string(cookie) {
		t.Fatalf("secret after ReplaceSecrets: %q", v)
	}
}

// firstSessionID returns the id of an active session in s.
func firstSessionID(ctx context.Context, t *testing.T, s *postgres.Store) string {
	t.Helper()
	var id string
	err := s.Export(ctx, func(it *ss.Item) error {
		if it.Kind == ss.ItemSession && id == "" && it.Session.Active {
			id = it.Session.ID
		}
		return nil
	})
	if err != nil || id == "" {
		t.Fatalf("no session to revoke: %v", err)
	}
	return id
}
