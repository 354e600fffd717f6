package flows

import (
	"context"
	"errors"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// TestCipherSecretsKeepKeysOutOfTheStore: with cipher secrets configured
// (from the environment, outside the storage directory), what is sealed
// cannot be opened and code MACs cannot be recomputed by someone who has
// the storage directory and even the cookie secrets; values sealed before
// cipher secrets were set still open (and report stale, so they get
// re-sealed).
func TestCipherSecretsKeepKeysOutOfTheStore(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	engine := func(cookie, cipher []string) *Engine {
		t.Helper()
		e, err := New(Config{
			SiteOptions:   SiteOptions{PublicURL: "https://auth.example.com/"},
			SecretOptions: SecretOptions{CookieSecrets: cookie, CipherSecrets: cipher},
		}, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cookie := []string{"cookie-secret-0123456789"}
	cipher := []string{"cipher-secret-0123456789"}

	before := engine(cookie, nil)
	old, err := before.sealer.Seal(ctx, "totp", "identity-1", []byte("JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}

	after := engine(cookie, cipher)
	if p, stale, err := after.sealer.Open(ctx, "totp", "identity-1", old); err != nil || !stale || string(p) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("a value sealed under the cookie secret: %q stale=%v err=%v, want it opened and stale", p, stale, err)
	}
	sealed, err := after.sealer.Seal(ctx, "totp", "identity-1", []byte("KRUGKIDROVUWG2ZA"))
	if err != nil {
		t.Fatal(err)
	}
	if p, stale, err := after.sealer.Open(ctx, "totp", "identity-1", sealed); err != nil || stale || string(p) != "KRUGKIDROVUWG2ZA" {
		t.Fatalf("own value: %q stale=%v err=%v", p, stale, err)
	}
	// The store plus the cookie secret do not open it.
	if _, _, err := before.sealer.Open(ctx, "totp", "identity-1", sealed); !errors.Is(err, token.ErrUnsealable) {
		t.Fatalf("opened without the cipher secret: err = %v", err)
	}
	// Nor the store alone (the generated, persisted cookie secret).
	if _, _, err := engine(nil, nil).sealer.Open(ctx, "totp", "identity-1", sealed); !errors.Is(err, token.ErrUnsealable) {
		t.Fatalf("opened with the persisted secret: err = %v", err)
	}
	// Code MACs are keyed with the cipher secret.
	if before.kernel.CodeMAC("flow", "123456") == after.kernel.CodeMAC("flow", "123456") {
		t.Fatal("the code MAC does not depend on the cipher secret")
	}
	if after.kernel.CodeMAC("flow", "123456") != engine(nil, cipher).kernel.CodeMAC("flow", "123456") {
		t.Fatal("the code MAC depends on more than the first cipher secret")
	}
	// Rotation: a new cipher secret in front still opens the old one's values.
	rotated := engine(cookie, []string{"cipher-secret-new-000000", cipher[0]})
	if p, stale, err := rotated.sealer.Open(ctx, "totp", "identity-1", sealed); err != nil || !stale || string(p) != "KRUGKIDROVUWG2ZA" {
		t.Fatalf("after rotation: %q stale=%v err=%v", p, stale, err)
	}
	if _, err := New(Config{SiteOptions: SiteOptions{PublicURL: "https://auth.example.com/"}, SecretOptions: SecretOptions{CipherSecrets: []string{"short"}}}, st, nil); err == nil {
		t.Fatal("a cipher secret under 16 characters was accepted")
	}
}
