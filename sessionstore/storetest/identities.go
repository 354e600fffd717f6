package storetest

import (
	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"

	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func testIdentityCRUD(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	ident := NewIdentity("id-1", "a@example.com")
	if err := s.CreateIdentity(ctx, ident); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetIdentity(ctx, "id-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ident.ID || got.SchemaID != "default" || !got.CreatedAt.Equal(ident.CreatedAt) {
		t.Fatalf("got %+v", got)
	}
	var traits map[string]string
	if err := json.Unmarshal(got.Traits, &traits); err != nil || traits["email"] != "a@example.com" {
		t.Fatalf("traits %s %v", got.Traits, err)
	}
	if c := got.Credentials["password"]; len(c.Identifiers) != 1 || string(c.Config) != `{"hashed_password":"x"}` {
		t.Fatalf("credentials %+v", got.Credentials)
	}

	found, err := s.FindIdentityByCredential(ctx, "password", "a@example.com")
	if err != nil || found.ID != "id-1" {
		t.Fatalf("find: %v %v", found, err)
	}
	if _, err := s.FindIdentityByCredential(ctx, "password", "nobody@example.com"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("find unknown: %v", err)
	}
	if _, err := s.FindIdentityByCredential(ctx, "totp", "a@example.com"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("find other type: %v", err)
	}
	if _, err := s.GetIdentity(ctx, "missing"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if err := s.CreateIdentity(ctx, NewIdentity("id-1", "other@example.com")); !errors.Is(err, ss.ErrAlreadyExists) {
		t.Fatalf("create same id: %v", err)
	}

	got.State = "inactive"
	if err := s.UpdateIdentity(ctx, got); err != nil {
		t.Fatal(err)
	}
	got2, _ := s.GetIdentity(ctx, "id-1")
	if got2.State != "inactive" {
		t.Fatalf("update not stored: %+v", got2)
	}
	if err := s.UpdateIdentity(ctx, NewIdentity("missing", "m@example.com")); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if _, err := s.FindIdentityByCredential(ctx, "password", "m@example.com"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("failed update left an index: %v", err)
	}

	if err := s.DeleteIdentity(ctx, "id-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetIdentity(ctx, "id-1"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.FindIdentityByCredential(ctx, "password", "a@example.com"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("find after delete: %v", err)
	}
	if err := s.DeleteIdentity(ctx, "id-1"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// The identifier is free again.
	if err := s.CreateIdentity(ctx, NewIdentity("id-2", "a@example.com")); err != nil {
		t.Fatalf("re-register after delete: %v", err)
	}
}

func testDuplicateCredentialSequential(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-1", "dup@example.com")); err != nil {
		t.Fatal(err)
	}
	err := s.CreateIdentity(ctx, NewIdentity("id-2", "dup@example.com"))
	if !errors.Is(err, ss.ErrDuplicateCredential) {
		t.Fatalf("want ss.ErrDuplicateCredential, got %v", err)
	}
	if _, err := s.GetIdentity(ctx, "id-2"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("loser identity stored: %v", err)
	}
	// Same identifier under another credential type is fine.
	other := NewIdentity("id-3", "x@example.com")
	other.Credentials["code"] = ss.Credential{Type: "code", Identifiers: []string{"dup@example.com"}}
	if err := s.CreateIdentity(ctx, other); err != nil {
		t.Fatalf("other type: %v", err)
	}
}

func testDuplicateCredentialConcurrent(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	const n = 50
	errs := make([]error, n)
	together(n, func(i int) {
		errs[i] = s.CreateIdentity(ctx, NewIdentity(fmt.Sprintf("id-%02d", i), "race@example.com"))
	})
	wins, dups := 0, 0
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = fmt.Sprintf("id-%02d", i)
		case errors.Is(err, ss.ErrDuplicateCredential):
			dups++
		default:
			t.Errorf("goroutine %d: unexpected error %v", i, err)
		}
	}
	if wins != 1 || dups != n-1 {
		t.Fatalf("wins=%d dups=%d, want 1 and %d", wins, dups, n-1)
	}
	found, err := s.FindIdentityByCredential(ctx, "password", "race@example.com")
	if err != nil || found.ID != winner {
		t.Fatalf("index points at %v (%v), winner %s", found, err, winner)
	}
	ids, _, err := s.ListIdentities(ctx, "", 0)
	if err != nil || len(ids) != 1 {
		t.Fatalf("stored identities: %d %v", len(ids), err)
	}
}

func testUpdateIdentityReindexes(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	a := NewIdentity("id-a", "old@example.com")
	if err := s.CreateIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateIdentity(ctx, NewIdentity("id-b", "b@example.com")); err != nil {
		t.Fatal(err)
	}

	// Change identifier: old index released, new one claimed.
	c := a.Credentials["password"]
	c.Identifiers = []string{"new@example.com"}
	a.Credentials["password"] = c
	a.Credentials["webauthn"] = ss.Credential{Type: "webauthn", Identifiers: []string{"user-handle-a"}}
	if err := s.UpdateIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindIdentityByCredential(ctx, "password", "old@example.com"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("old identifier still indexed: %v", err)
	}
	for _, q := range [][2]string{{"password", "new@example.com"}, {"webauthn", "user-handle-a"}} {
		got, err := s.FindIdentityByCredential(ctx, q[0], q[1])
		if err != nil || got.ID != "id-a" {
			t.Fatalf("find %v: %v %v", q, got, err)
		}
	}
	// The released identifier can be taken by someone else.
	if err := s.CreateIdentity(ctx, NewIdentity("id-c", "old@example.com")); err != nil {
		t.Fatalf("released identifier: %v", err)
	}

	// Taking b's identifier fails and changes nothing.
	c.Identifiers = []string{"new@example.com", "b@example.com"}
	a.Credentials["password"] = c
	a.State = "changed"
	if err := s.UpdateIdentity(ctx, a); !errors.Is(err, ss.ErrDuplicateCredential) {
		t.Fatalf("want ss.ErrDuplicateCredential, got %v", err)
	}
	got, _ := s.GetIdentity(ctx, "id-a")
	if got.State == "changed" {
		t.Fatal("failed update was stored")
	}
	if b, _ := s.FindIdentityByCredential(ctx, "password", "b@example.com"); b == nil || b.ID != "id-b" {
		t.Fatalf("b's index changed: %v", b)
	}

	// Dropping a credential type releases its identifiers.
	delete(a.Credentials, "webauthn")
	c.Identifiers = []string{"new@example.com"}
	a.Credentials["password"] = c
	if err := s.UpdateIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindIdentityByCredential(ctx, "webauthn", "user-handle-a"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("dropped credential still indexed: %v", err)
	}
}

func testDeleteIdentityRemovesSessions(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-1", "d@example.com")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var sessions []*ss.Session
	for i := range 3 {
		sess := NewSession(fmt.Sprintf("s%d", i), "id-1", now, time.Hour)
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		// Warm the cache so deletion must invalidate it.
		if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
	}
	other := NewSession("other", "id-2", now, time.Hour)
	if err := s.CreateSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIdentity(ctx, "id-1"); err != nil {
		t.Fatal(err)
	}
	for _, sess := range sessions {
		if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); !errors.Is(err, ss.ErrNotFound) {
			t.Fatalf("session %s by hash after delete: %v", sess.ID, err)
		}
		if _, err := s.GetSession(ctx, sess.ID); !errors.Is(err, ss.ErrNotFound) {
			t.Fatalf("session %s by id after delete: %v", sess.ID, err)
		}
		if _, err := s.GetSessionByLogoutTokenHash(ctx, sess.LogoutTokenHash); !errors.Is(err, ss.ErrNotFound) {
			t.Fatalf("session %s by logout hash after delete: %v", sess.ID, err)
		}
	}
	list, err := s.ListSessionsByIdentity(ctx, "id-1")
	if err != nil || len(list) != 0 {
		t.Fatalf("sessions after delete: %d %v", len(list), err)
	}
	if _, err := s.GetSession(ctx, "other"); err != nil {
		t.Fatalf("other identity's session: %v", err)
	}
}

func testListIdentitiesPaging(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	const n = 23
	for i := n - 1; i >= 0; i-- { // insertion order differs from id order
		if err := s.CreateIdentity(ctx, NewIdentity(fmt.Sprintf("id-%03d", i), fmt.Sprintf("u%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	token, pages := "", 0
	for {
		ids, next, err := s.ListIdentities(ctx, token, 5)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, id := range ids {
			all = append(all, id.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	if pages != 5 || len(all) != n {
		t.Fatalf("pages=%d ids=%d", pages, len(all))
	}
	for i, id := range all {
		if want := fmt.Sprintf("id-%03d", i); id != want {
			t.Fatalf("position %d: %s, want %s", i, id, want)
		}
	}
	// Exact multiple of the page size: the last full page has next "".
	ids, next, err := s.ListIdentities(ctx, "id-017", 5)
	if err != nil || len(ids) != 5 || next != "" {
		t.Fatalf("last page: %d %q %v", len(ids), next, err)
	}
	// Default page size.
	ids, next, err = s.ListIdentities(ctx, "", 0)
	if err != nil || len(ids) != n || next != "" {
		t.Fatalf("default page: %d %q %v", len(ids), next, err)
	}
	// Empty store.
	empty := e.Open(t)
	ids, next, err = empty.ListIdentities(ctx, "", 10)
	if err != nil || len(ids) != 0 || next != "" {
		t.Fatalf("empty: %d %q %v", len(ids), next, err)
	}
}

func testAddressIndex(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	a := &ss.Identity{ID: "11111111-1111-4111-8111-111111111111", Traits: []byte(`{}`),
		RecoveryAddresses:   []ss.RecoveryAddress{{ID: "r1", Value: "a@example.com", Via: "email"}},
		VerifiableAddresses: []ss.VerifiableAddress{{ID: "v1", Value: "a@example.com", Via: "email"}}}
	if err := s.CreateIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindIdentityByCredential(ctx, ss.AddressIndexType("recovery", "email"), "a@example.com")
	if err != nil || got.ID != a.ID {
		t.Fatalf("find by recovery address: %v %v", got, err)
	}
	b := &ss.Identity{ID: "22222222-2222-4222-8222-222222222222", Traits: []byte(`{}`),
		RecoveryAddresses: []ss.RecoveryAddress{{ID: "r2", Value: "a@example.com", Via: "email"}}}
	if err := s.CreateIdentity(ctx, b); !errors.Is(err, ss.ErrDuplicateCredential) {
		t.Fatalf("duplicate address: %v", err)
	}
	a.RecoveryAddresses = nil
	a.VerifiableAddresses = nil
	if err := s.UpdateIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindIdentityByCredential(ctx, ss.AddressIndexType("recovery", "email"), "a@example.com"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("index not released: %v", err)
	}
}

func testGetIdentitySharedInvalidation(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	id := &ss.Identity{ID: "33333333-3333-4333-8333-333333333333", State: "active", Traits: []byte(`{}`)}
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	a, err := s.GetIdentityShared(ctx, id.ID)
	if err != nil || a.State != "active" {
		t.Fatalf("first read: %v %v", a, err)
	}
	if b, _ := s.GetIdentityShared(ctx, id.ID); b != a {
		t.Fatal("second read did not come from the cache")
	}
	id.State = "inactive"
	if err := s.UpdateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.GetIdentityShared(ctx, id.ID); c.State != "inactive" {
		t.Fatalf("stale identity after update: %s", c.State)
	}
	if err := s.DeleteIdentity(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetIdentityShared(ctx, id.ID); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("deleted identity still served: %v", err)
	}
}

func testGetIdentitySharedTrimsSecrets(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	pw := func(email string) ss.Credential {
		return ss.Credential{Type: "password", Identifiers: []string{email}, Config: []byte(`{"hashed_password":"$2a$12$x"}`)}
	}
	totp := ss.Credential{Type: "totp", Config: []byte(`{"totp_url":"otpauth://totp/x"}`)}
	for _, tc := range []struct {
		id    string
		creds map[string]ss.Credential
		want  []string
	}{
		{"44444444-4444-4444-8444-444444444444", map[string]ss.Credential{"password": pw("a@example.com")}, nil},
		{"55555555-5555-4555-8555-555555555555", map[string]ss.Credential{"password": pw("b@example.com"), "totp": totp}, []string{"totp"}},
	} {
		id := &ss.Identity{ID: tc.id, State: "active", Traits: []byte(`{}`), MetadataAdmin: []byte(`{"secret":1}`), Credentials: tc.creds}
		if err := s.CreateIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
		shared, err := s.GetIdentityShared(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range shared.Credentials {
			got = append(got, k)
		}
		if len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) || shared.MetadataAdmin != nil {
			t.Errorf("%s: shared credentials %v, admin metadata %s", tc.id, got, shared.MetadataAdmin)
		}
		full, _ := s.GetIdentity(ctx, tc.id)
		if _, ok := full.Credentials["password"]; !ok || full.MetadataAdmin == nil {
			t.Errorf("%s: GetIdentity lost data", tc.id)
		}
	}
}
