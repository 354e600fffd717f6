// The engine's edges: what arrives from users and requests (identifiers
// of any bytes, ids that name nothing) is stored, found and refused exactly.

package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Identifiers come from users (usernames, emails): whatever bytes a JSON
// string can decode to, including NUL, are stored and found exactly, and
// compared as bytes (no case folding, no collation).
func testIdentifiersAreBytes(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	odd := []string{"nul\x00byte@example.com", "Case@Example.com", "case@example.com", "ünïcödé@example.com"}
	for i, ident := range odd {
		if err := s.CreateIdentity(ctx, NewIdentity(fmt.Sprintf("id-odd-%d", i), ident)); err != nil {
			t.Fatalf("identifier %q: %v", ident, err)
		}
	}
	for i, ident := range odd {
		got, err := s.FindIdentityByCredential(ctx, "password", ident)
		if err != nil || got.ID != fmt.Sprintf("id-odd-%d", i) {
			t.Fatalf("find %q: %v %v", ident, got, err)
		}
	}
	if _, err := s.FindIdentityByCredential(ctx, "password", "nul"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("prefix before NUL matched: %v", err)
	}
	if err := s.CreateIdentity(ctx, NewIdentity("id-odd-x", odd[0])); !errors.Is(err, ss.ErrDuplicateCredential) {
		t.Fatalf("duplicate NUL identifier: %v", err)
	}
	if rep, err := s.Check(ctx); err != nil || len(rep.Problems) != 0 || rep.Identities != len(odd) {
		t.Fatalf("check: %+v %v", rep, err)
	}
}

// Ids and keys that arrive from a request (an admin URL path, a cookie)
// and can name nothing stored answer ErrNotFound, never another error
// (which the HTTP layer would turn into a 500).
func testUnstorableIDs(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	for _, id := range []string{"a\x00b", "\xff\xfe", strings.Repeat("x", 5000)} {
		checks := map[string]error{}
		_, checks["GetIdentity"] = s.GetIdentity(ctx, id)
		_, checks["GetIdentityShared"] = s.GetIdentityShared(ctx, id)
		_, checks["FindIdentityByCredential"] = s.FindIdentityByCredential(ctx, "password", id)
		_, checks["FindIdentityByCredential type"] = s.FindIdentityByCredential(ctx, id, "a@example.com")
		checks["DeleteIdentity"] = s.DeleteIdentity(ctx, id)
		_, checks["GetSession"] = s.GetSession(ctx, id)
		checks["RevokeSession"] = s.RevokeSession(ctx, id)
		_, checks["ModifySession"] = s.ModifySession(ctx, id, nil, func(*ss.Session) error { return nil })
		_, checks["ModifyIdentity"] = s.ModifyIdentity(ctx, id, func(*ss.Identity) error { return nil })
		_, checks["GetRecord"] = s.GetRecord(ctx, "flow", id)
		_, checks["TakeRecord"] = s.TakeRecord(ctx, "flow", id)
		for name, err := range checks {
			if !errors.Is(err, ss.ErrNotFound) {
				t.Errorf("%s(%q): %v, want ErrNotFound", name, id, err)
			}
		}
		if n, err := s.RevokeSessionsOfIdentity(ctx, id, ""); err != nil || n != 0 {
			t.Errorf("RevokeSessionsOfIdentity(%q): %d %v", id, n, err)
		}
		if l, err := s.ListSessionsByIdentity(ctx, id); err != nil || len(l) != 0 {
			t.Errorf("ListSessionsByIdentity(%q): %d %v", id, len(l), err)
		}
		if err := s.DeleteRecord(ctx, "flow", id); err != nil {
			t.Errorf("DeleteRecord(%q): %v", id, err)
		}
	}
	// A page token that names no identity still pages from where it
	// would sort.
	if err := s.CreateIdentity(ctx, NewIdentity("id-1", "p@example.com")); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]int{"\x00": 1, "id-0\xff": 1, "id-1\x00": 0, "\xff": 0} {
		ids, next, err := s.ListIdentities(ctx, tok, 10)
		if err != nil || len(ids) != want || next != "" {
			t.Errorf("ListIdentities(%q): %d %q %v, want %d", tok, len(ids), next, err, want)
		}
	}
	// Record keys are arbitrary strings too.
	for _, k := range []string{"a\x00b", "\xff", "c/d"} {
		if err := s.PutRecord(ctx, "odd", k, []byte(k), 0); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
		if v, err := s.GetRecord(ctx, "odd", k); err != nil || string(v) != k {
			t.Fatalf("get %q: %q %v", k, v, err)
		}
	}
	var keys []string
	if err := s.ScanRecords(ctx, "odd", func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", keys) != `["a\x00b" "c/d" "\xff"]` {
		t.Fatalf("scan order %q, want byte order", keys)
	}
}
