package flows

import (
	"errors"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/method/passkey"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The password method can be turned off only with another first factor on.
func TestDisablePasswordNeedsAnotherFirstFactor(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"nothing else", Config{}, false},
		{"second factors only", Config{Methods: map[string]bool{"totp": true, "lookup_secret": true, "webauthn": true}}, false},
		{"code without passwordless", Config{Methods: map[string]bool{"code": true}, CodeMFA: true}, false},
		{"passwordless code without the method", Config{CodePasswordless: true}, false},
		{"passkey", Config{Methods: map[string]bool{"passkey": true}}, true},
		{"passwordless webauthn", Config{Methods: map[string]bool{"webauthn": true}, WebAuthnPasswordless: true}, true},
		{"passwordless code", Config{Methods: map[string]bool{"code": true}, CodePasswordless: true}, true},
		{"oidc without a provider", Config{Methods: map[string]bool{"oidc": true}}, false},
		{"oidc with a provider", Config{Methods: map[string]bool{"oidc": true}, OIDCProviders: []provider.Config{{
			ID: "corp", Provider: "generic", ClientID: "caddy-kratos", ClientSecret: "s3cret", IssuerURL: "https://idp.example.com",
			Scope: []string{"openid", "email", "profile"}, ClaimsSource: "id_token", PKCE: "auto", // as provider.ValidateAll leaves it
		}}}, true},
	} {
		tc.cfg.PublicURL, tc.cfg.DisablePassword, tc.cfg.BcryptCost = "https://auth.example.com/", true, 4
		e, err := New(tc.cfg, st, nil)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, ErrNoFirstFactor):
			t.Errorf("%s: err %v, want ErrNoFirstFactor", tc.name, err)
		case tc.ok && e.methodEnabled("password"):
			t.Errorf("%s: the password method is still enabled", tc.name)
		}
	}
}

// Passkeys need a discoverable credential; the selection values are
// WebAuthn's.
func TestPasskeySelectionChecked(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, tc := range []struct {
		rk, uv, at string
		ok         bool
	}{
		{"", "", "", true},
		{"preferred", "required", "cross-platform", true},
		{"required", "discouraged", "any", true},
		{"discouraged", "", "", false},
		{"always", "", "", false},
		{"", "sometimes", "", false},
		{"", "", "usb", false},
	} {
		cfg := Config{
			SiteOptions:             SiteOptions{PublicURL: "https://auth.example.com/"},
			PasswordOptions:         PasswordOptions{BcryptCost: 4},
			Methods:                 map[string]bool{"passkey": true},
			PasskeyResidentKey:      tc.rk,
			PasskeyUserVerification: tc.uv,
			PasskeyAttachment:       tc.at,
		}
		e, err := New(cfg, st, nil)
		if tc.ok != (err == nil) {
			t.Errorf("%+v: err %v, want ok %v", tc, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		sel := passkey.Selection(e.cfg.PasskeyResidentKey, e.cfg.PasskeyUserVerification, e.cfg.PasskeyAttachment)
		wantAt := map[string]string{"": "platform", "any": ""}[tc.at]
		if tc.at == "cross-platform" {
			wantAt = "cross-platform"
		}
		if string(sel.AuthenticatorAttachment) != wantAt || *sel.RequireResidentKey != (sel.ResidentKey == "required") {
			t.Errorf("%+v: selection %+v", tc, sel)
		}
	}
}
