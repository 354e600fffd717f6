package flows

import (
	"bytes"
	"slices"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
)

// The second identifier-first screen lists the methods in Kratos's
// strategy order, as the engine lists them.
func TestIdentifierFirstMethodOrder(t *testing.T) {
	e, _ := testEngine(t, nil)
	var names []string
	for _, m := range e.idFirstMethods {
		names = append(names, m.ID())
	}
	if want := []string{"password", "oidc", "code", "passkey", "webauthn"}; !slices.Equal(names, want) {
		t.Fatalf("identifier-first methods %v, want %v", names, want)
	}
}

// The made-up security key of an unknown identifier is the same for every
// spelling of the identifier and every request, differs between
// identifiers and between server secrets, and can never verify (no
// public key).
func TestDecoyWebAuthnIdentity(t *testing.T) {
	e, _ := testEngine(t, func(c *Config) { c.CipherSecrets = []string{"a-cipher-secret-of-some-length"} })
	key := func(e *Engine, id string) ceremony.Key {
		t.Helper()
		ident := e.webauthn.DecoyIdentity(id)
		if ident.ID != "" {
			t.Fatalf("decoy identity has an id %q", ident.ID)
		}
		cfg, ok := ceremony.KeysOf(ident, "webauthn")
		if !ok || len(cfg.Credentials) != 1 || len(cfg.UserHandle) == 0 {
			t.Fatalf("decoy config %+v", cfg)
		}
		k := cfg.Credentials[0]
		if len(k.PublicKey) != 0 || !k.IsPasswordless || len(k.Transports) == 0 || !slices.Contains([]int{16, 32, 48, 64}, len(k.ID)) {
			t.Fatalf("decoy key %+v", k)
		}
		return k
	}
	a := key(e, "Someone@Example.com")
	if b := key(e, " someone@example.com"); !bytes.Equal(a.ID, b.ID) || !slices.Equal(a.Transports, b.Transports) {
		t.Fatal("the same identifier got two keys")
	}
	if c := key(e, "other@example.com"); bytes.Equal(a.ID, c.ID) {
		t.Fatal("two identifiers got the same key")
	}
	e2, _ := testEngine(t, func(c *Config) { c.CipherSecrets = []string{"another-cipher-secret-0123456"} })
	if d := key(e2, "someone@example.com"); bytes.Equal(a.ID, d.ID) {
		t.Fatal("the key does not depend on the server secret")
	}
}

// Identifier-first in flows that are not a plain sign-in: refresh=true
// without a session is a sign-in (its first screen works), a
// re-authentication of a session and a second-factor flow refuse the
// step (4010002), as do unified-style flows.
func TestIdentifierFirstFlowKinds(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) { c.LoginStyle = "identifier_first" })
	token := registerNative(t, srv.URL, "kinds@example.com")
	step := func(query string, hdr map[string]string) resp {
		t.Helper()
		f := do(t, nil, "GET", srv.URL+"/self-service/login/api"+query, nil, hdr)
		if f.status != 200 {
			t.Fatalf("create %s: %d %s", query, f.status, f.raw)
		}
		return do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "identifier_first", "identifier": "kinds@example.com"}, hdr)
	}
	if r := step("?refresh=true", nil); r.status != 400 || r.body["active"] != "identifier_first" || len(messageIDs(r.body)) != 0 {
		t.Fatalf("refresh without a session: %d %s", r.status, r.raw)
	}
	auth := map[string]string{"X-Session-Token": token}
	if r := step("?refresh=true", auth); r.status != 400 || !slices.Equal(messageIDs(r.body), []int{4010002}) {
		t.Fatalf("refresh of a session: %d %s", r.status, r.raw)
	}
	_, unified := testEngine(t, nil)
	f := do(t, nil, "GET", unified.URL+"/self-service/login/api", nil, nil)
	if r := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "identifier_first", "identifier": "x@example.com"}, nil); r.status != 400 || !slices.Equal(messageIDs(r.body), []int{4010002}) {
		t.Fatalf("unified flow: %d %s", r.status, r.raw)
	}
}
