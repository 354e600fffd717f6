package flows

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// TestClaimAddress: the first mailbox proof of an address removes the
// identity's first factors (password, passkeys, passwordless keys), keeps
// its second factors (TOTP, backup codes, second-factor keys), verifies the
// address and revokes every session but the one to keep; a verified
// address is never claimed.
func TestClaimAddress(t *testing.T) {
	e, _ := testEngine(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	keys := ceremony.Keys{UserHandle: []byte("h"), Credentials: []ceremony.Key{
		{ID: []byte("first"), IsPasswordless: true}, {ID: []byte("second")},
	}}
	creds := map[string]sessionstore.Credential{
		"password":      {Type: "password", Identifiers: []string{"claim@example.com"}, Config: identity.EncodeConfig(identity.PasswordConfig{HashedPassword: "x"})},
		"passkey":       {Type: "passkey", Identifiers: []string{"claim-passkey"}, Config: []byte(`{}`)},
		"webauthn":      {Type: "webauthn", Identifiers: []string{"claim-webauthn"}, Config: identity.EncodeConfig(keys)},
		"totp":          {Type: "totp", Identifiers: []string{"claim-totp"}, Config: []byte(`{}`)},
		"lookup_secret": {Type: "lookup_secret", Identifiers: []string{"claim-lookup"}, Config: []byte(`{}`)},
	}
	ident, keep, _ := gateFixture(t, e, `{"email":"claim@example.com"}`, creds, "aal1")
	_, other, _ := gateFixture(t, e, `{}`, nil, "aal1")
	// Move the second session to the claimed identity.
	other2 := other.Clone()
	other2.ID, other2.IdentityID, other2.TokenHash, other2.LogoutTokenHash = "99999999-9999-4999-8999-999999999999", ident.ID, token.Hash(token.NewSessionToken()), nil
	if err := e.store.CreateSession(ctx, other2); err != nil {
		t.Fatal(err)
	}
	ident.VerifiableAddresses = []sessionstore.VerifiableAddress{{ID: "a1", Value: "claim@example.com", Via: "email", Status: "sent", CreatedAt: now, UpdatedAt: now}}
	if err := e.store.UpdateIdentity(ctx, ident); err != nil {
		t.Fatal(err)
	}

	if claimed, err := e.kernel.ClaimAddress(ctx, ident.ID, "other@example.com", keep.ID); err != nil || claimed {
		t.Fatalf("an address the identity does not have: claimed %v, %v", claimed, err)
	}
	ident.State = "inactive"
	if err := e.store.UpdateIdentity(ctx, ident); err != nil {
		t.Fatal(err)
	}
	if claimed, err := e.kernel.ClaimAddress(ctx, ident.ID, "claim@example.com", keep.ID); err != nil || claimed {
		t.Fatalf("an inactive identity: claimed %v, %v", claimed, err)
	}
	ident.State = "active"
	if err := e.store.UpdateIdentity(ctx, ident); err != nil {
		t.Fatal(err)
	}
	claimed, err := e.kernel.ClaimAddress(ctx, ident.ID, "claim@example.com", keep.ID)
	if err != nil || !claimed {
		t.Fatalf("first proof: claimed %v, %v", claimed, err)
	}
	got, err := e.store.GetIdentity(ctx, ident.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"password", "passkey"} {
		if _, ok := got.Credentials[typ]; ok {
			t.Errorf("%s credential kept", typ)
		}
	}
	for _, typ := range []string{"totp", "lookup_secret", "webauthn"} {
		if _, ok := got.Credentials[typ]; !ok {
			t.Errorf("%s credential removed", typ)
		}
	}
	var left ceremony.Keys
	if err := identity.DecodeConfig(got.Credentials["webauthn"].Config, &left); err != nil || len(left.Credentials) != 1 || string(left.Credentials[0].ID) != "second" {
		t.Errorf("webauthn keys after the claim: %+v %v, want only the second-factor key", left.Credentials, err)
	}
	if a := got.VerifiableAddresses[0]; !a.Verified || a.Status != "completed" || a.VerifiedAt == nil {
		t.Errorf("address after the claim: %+v", a)
	}
	if _, err := e.store.FindIdentityByCredential(ctx, "password", "claim@example.com"); err == nil {
		t.Error("the removed password still resolves the identifier")
	}
	if s, err := e.store.GetSession(ctx, other2.ID); err != nil || s.Active {
		t.Errorf("other session after the claim: %+v %v, want revoked", s, err)
	}
	if s, err := e.store.GetSession(ctx, keep.ID); err != nil || !s.Active {
		t.Errorf("kept session after the claim: %+v %v, want active", s, err)
	}

	// Verified now: a new password survives the next proof.
	got.Credentials["password"] = creds["password"]
	if err := e.store.UpdateIdentity(ctx, got); err != nil {
		t.Fatal(err)
	}
	if claimed, err := e.kernel.ClaimAddress(ctx, ident.ID, "claim@example.com", ""); err != nil || claimed {
		t.Fatalf("second proof: claimed %v, %v", claimed, err)
	}
	if again, _ := e.store.GetIdentity(ctx, ident.ID); again.Credentials["password"].Type != "password" {
		t.Error("a proof of a verified address removed the password")
	}
	if s, _ := e.store.GetSession(ctx, keep.ID); !s.Active {
		t.Error("a proof of a verified address revoked sessions")
	}
}
