package flows

import (
	"errors"
	"testing"

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
