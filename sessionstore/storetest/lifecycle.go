// A whole store's life: Check on a clean store, Export, Close and
// cancelled contexts.

package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func testCheckCleanStore(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	rep, err := s.Check(ctx)
	if err != nil || len(rep.Problems) != 0 || rep.Identities != 0 || rep.Sessions != 0 {
		t.Fatalf("empty store: %+v %v", rep, err)
	}
	id := NewIdentity("44444444-4444-4444-8444-444444444444", "c@example.com")
	id.RecoveryAddresses = []ss.RecoveryAddress{{ID: "r", Value: "c@example.com", Via: "email"}}
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 3 {
		if err := s.CreateSession(ctx, NewSession(fmt.Sprintf("s%d", i), id.ID, now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = s.Check(ctx)
	if err != nil || len(rep.Problems) != 0 || rep.Identities != 1 || rep.Sessions != 3 {
		t.Fatalf("clean store: %+v %v", rep, err)
	}
	// A session of an identity that does not exist is reported.
	if err := s.CreateSession(ctx, NewSession("orphan", "no-such-identity", now, time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Check(ctx)
	if err != nil || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "missing identity no-such-identity") {
		t.Fatalf("orphan session: %+v %v", rep, err)
	}
}

// Export lists every live identity, session, record and secret, nothing
// expired, with what `storage copy` needs to carry them over unchanged.
func testExport(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	ex, ok := s.(ss.Exporter)
	if !ok {
		t.Fatalf("%T does not implement sessionstore.Exporter", s)
	}
	id := NewIdentity("id-x", "x@example.com")
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	live := NewSession("s-live", id.ID, now, time.Hour)
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, NewSession("s-gone", id.ID, now.Add(-ss.SessionGrace-2*time.Hour), time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyIdentity(ctx, id.ID, func(i *ss.Identity) error { i.State = "inactive"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "outbox", "m1", []byte("mail"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "limit", "l1", []byte("3"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "flow", "gone", []byte("x"), -time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("k"), nil }); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := ex.Export(ctx, func(it *ss.Item) error {
		switch it.Kind {
		case ss.ItemIdentity:
			got = append(got, fmt.Sprintf("identity %s v%d %s %s", it.Identity.ID, it.Identity.Version, it.Identity.State,
				it.Identity.Credentials["password"].Config))
		case ss.ItemSession:
			got = append(got, fmt.Sprintf("session %s %v %x", it.Session.ID, it.Session.Active, it.Session.TokenHash[:4]))
		case ss.ItemRecord:
			exp := "never"
			if !it.ExpiresAt.IsZero() {
				if d := time.Until(it.ExpiresAt); d < 59*time.Minute || d > time.Hour+2*time.Second {
					exp = "wrong " + d.String()
				} else {
					exp = "1h"
				}
			}
			got = append(got, fmt.Sprintf("record %s/%s %s %s", it.Namespace, it.Key, it.Value, exp))
		case ss.ItemSecret:
			got = append(got, fmt.Sprintf("secret %s %s", it.Key, it.Value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{
		`identity id-x v1 inactive {"hashed_password":"x"}`,
		"record limit/l1 3 1h",
		"record outbox/m1 mail never",
		"secret cookie k",
		fmt.Sprintf("session s-live true %x", live.TokenHash[:4]),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("exported:\n%v\nwant:\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	stop := errors.New("stop")
	if err := ex.Export(ctx, func(*ss.Item) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn error: %v", err)
	}
}

func testClose(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.PutRecord(ctx, "ns", "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSessionByTokenHash(ctx, TokenHash("x")); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["GetRecord"] = s.GetRecord(ctx, "ns", "k")
	checks["PutRecord"] = s.PutRecord(ctx, "ns", "k", nil, 0)
	checks["UpdateRecord"] = s.UpdateRecord(ctx, "ns", "k", func([]byte) ([]byte, time.Duration, error) { return nil, 0, nil })
	_, checks["TakeRecord"] = s.TakeRecord(ctx, "ns", "k")
	_, checks["GetSessionByTokenHash"] = s.GetSessionByTokenHash(ctx, TokenHash("x"))
	_, checks["GetIdentity"] = s.GetIdentity(ctx, "a")
	_, checks["GetIdentityShared"] = s.GetIdentityShared(ctx, "a")
	checks["CreateIdentity"] = s.CreateIdentity(ctx, NewIdentity("a", "a@x"))
	_, _, checks["ListIdentities"] = s.ListIdentities(ctx, "", 0)
	checks["CreateSession"] = s.CreateSession(ctx, NewSession("s", "a", time.Now(), time.Hour))
	_, checks["RevokeSessionsOfIdentity"] = s.RevokeSessionsOfIdentity(ctx, "a", "")
	checks["ScanRecords"] = s.ScanRecords(ctx, "ns", func(string, []byte) error { return nil })
	_, checks["Secret"] = s.Secret(ctx, "n", func() ([]byte, error) { return []byte("x"), nil })
	_, checks["Check"] = s.Check(ctx)
	for name, err := range checks {
		if !errors.Is(err, ss.ErrClosed) {
			t.Errorf("%s after Close: want ErrClosed, got %v", name, err)
		}
	}
}

func testCanceledContext(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx, cancel := context.WithCancel(ctxOf(t))
	cancel()
	if err := s.PutRecord(ctx, "ns", "k", []byte("v"), 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if _, err := s.GetSessionByTokenHash(ctx, TokenHash("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if _, err := s.GetIdentity(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}
