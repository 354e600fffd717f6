package flows

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/method/lookupsecret"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func methods(names ...string) []sessionstore.AuthMethod {
	var out []sessionstore.AuthMethod
	for _, n := range names {
		aal := "aal1"
		switch n {
		case "totp", "lookup_secret", "webauthn2", "code2":
			aal = "aal2"
		}
		switch n {
		case "webauthn2":
			n = "webauthn"
		case "code2":
			n = "code"
		}
		out = append(out, sessionstore.AuthMethod{Method: n, AAL: aal})
	}
	return out
}

// TestIdentityFactors: what each method reports as an active credential.
func TestIdentityFactors(t *testing.T) {
	e, _ := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"totp": true, "lookup_secret": true, "webauthn": true, "code": true}
		c.CodeMFA = true
	})
	now := time.Now().UTC()
	lookup := func(used ...bool) sessionstore.Credential {
		var cfg lookupsecret.CredentialConfig
		for _, u := range used {
			c := lookupsecret.Code{Hash: "h"}
			if u {
				c.UsedAt = &now
			}
			cfg.RecoveryCodes = append(cfg.RecoveryCodes, c)
		}
		return sessionstore.Credential{Type: "lookup_secret", Config: identity.EncodeConfig(cfg)}
	}
	key := func(passwordless bool) sessionstore.Credential {
		return sessionstore.Credential{Type: "webauthn", Config: identity.EncodeConfig(ceremony.Keys{Credentials: []ceremony.Key{{IsPasswordless: passwordless}}})}
	}
	email := []sessionstore.VerifiableAddress{{Value: "a@example.com", Via: "email"}}
	for _, tc := range []struct {
		name  string
		creds map[string]sessionstore.Credential
		addrs []sessionstore.VerifiableAddress
		want  session.FactorSet
	}{
		{"nothing", nil, nil, 0},
		{"address only: mailed code", nil, email, session.FactorMailbox},
		{"totp", map[string]sessionstore.Credential{"totp": {Type: "totp", Config: json.RawMessage(`{}`)}}, nil, session.FactorStrong},
		{"backup codes, one left", map[string]sessionstore.Credential{"lookup_secret": lookup(true, false)}, nil, session.FactorStrong},
		{"backup codes, all used", map[string]sessionstore.Credential{"lookup_secret": lookup(true, true)}, email, session.FactorMailbox},
		{"second-factor key", map[string]sessionstore.Credential{"webauthn": key(false)}, nil, session.FactorStrong},
		{"passwordless key", map[string]sessionstore.Credential{"webauthn": key(true)}, nil, 0},
	} {
		ident := &sessionstore.Identity{ID: "i", Credentials: tc.creds, VerifiableAddresses: tc.addrs}
		if got := e.sessions.IdentityFactors(ident); got != tc.want {
			t.Errorf("%s: factors %b, want %b", tc.name, got, tc.want)
		}
	}
	// The mailed code needs code { mfa } and the code method.
	off, _ := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"totp": true, "code": false}
		c.CodeMFA = true
	})
	if got := off.sessions.IdentityFactors(&sessionstore.Identity{VerifiableAddresses: email}); got != 0 {
		t.Errorf("code method off: factors %b", got)
	}
}

// TestCheckGateSecondFactorNoAllocs: the gate's check of an identity with
// second factors (credentials decoded once per stored version) allocates
// nothing, at aal1 (refused) and aal2 (passed).
func TestCheckGateSecondFactorNoAllocs(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.Methods = map[string]bool{"totp": true, "lookup_secret": true} })
	now := time.Now().UTC()
	creds := map[string]sessionstore.Credential{
		"totp":          {Type: "totp", Config: json.RawMessage(`{"totp_url":"x"}`)},
		"lookup_secret": {Type: "lookup_secret", Config: identity.EncodeConfig(lookupsecret.CredentialConfig{RecoveryCodes: []lookupsecret.Code{{Hash: "a", UsedAt: &now}, {Hash: "b"}}})},
	}
	_, _, tok1 := gateFixture(t, e, `{"email":"f1@example.com"}`, creds, "aal1")
	_, _, tok2 := gateFixture(t, e, `{"email":"f2@example.com"}`, creds, "aal2")
	r1, r2 := tokenRequest(srv.URL+"/", tok1), tokenRequest(srv.URL+"/", tok2)
	var gs session.GateSession
	if err := e.CheckGate(nil, r1, session.GatePolicy{}, &gs); !errors.Is(err, session.ErrAAL2Required) {
		t.Fatalf("aal1 session: %v", err)
	}
	if err := e.CheckGate(nil, r2, session.GatePolicy{}, &gs); err != nil {
		t.Fatalf("aal2 session: %v", err)
	}
	if n := testing.AllocsPerRun(200, func() { _ = e.CheckGate(nil, r1, session.GatePolicy{}, &gs) }); n != 0 {
		t.Errorf("refused check: %.1f allocs", n)
	}
	if n := testing.AllocsPerRun(200, func() { _ = e.CheckGate(nil, r2, session.GatePolicy{}, &gs) }); n != 0 {
		t.Errorf("passed check: %.1f allocs", n)
	}
}

// TestLookupExhaustedGate (item 14): an identity whose only second factor
// is a set of used-up backup codes passes highest_available at aal1, and
// a gate that requires aal2 sends it to set a factor up (not to an aal2
// login it cannot complete).
func TestLookupExhaustedGate(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.Methods = map[string]bool{"lookup_secret": true} })
	now := time.Now().UTC()
	used := map[string]sessionstore.Credential{"lookup_secret": {Type: "lookup_secret",
		Config: identity.EncodeConfig(lookupsecret.CredentialConfig{RecoveryCodes: []lookupsecret.Code{{Hash: "a", UsedAt: &now}, {Hash: "b", UsedAt: &now}}})}}
	_, _, tok := gateFixture(t, e, `{"email":"used@example.com"}`, used, "aal1")
	for policy, want := range map[string]error{"": nil, "highest_available": nil, "aal2": session.ErrAAL2SetupRequired} {
		var gs session.GateSession
		err := e.CheckGate(nil, tokenRequest(srv.URL+"/", tok), session.GatePolicy{RequiredAAL: policy}, &gs)
		if !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Errorf("policy %q: %v, want %v", policy, err, want)
		}
	}
}

// TestStaleAAL2Session: a session stored at aal2 whose second factor is a
// mailed code no longer counts once the identity has TOTP (or was stored
// by the old rule after code_recovery): the gate and whoami see aal1, and
// it may start an aal2 flow that offers the authenticator app.
func TestStaleAAL2Session(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"totp": true, "code": true}
		c.CodeMFA = true
	})
	now := time.Now().UTC()
	totpCred := map[string]sessionstore.Credential{"totp": {Type: "totp", Config: json.RawMessage(`{"totp_url":"otpauth://totp/x?secret=ABC"}`)}}
	for _, tc := range []struct {
		name    string
		creds   map[string]sessionstore.Credential
		methods []sessionstore.AuthMethod
	}{
		{"password+code, totp added since", totpCred, methods("password", "code2")},
		{"code_recovery+code by the old rule", nil, methods("code_recovery", "code2")},
	} {
		addr := strings.ReplaceAll(tc.name[:8], " ", "") + "@example.com"
		ident, s, tok := gateFixture(t, e, `{"email":"`+addr+`"}`, tc.creds, "aal1")
		ident.VerifiableAddresses = []sessionstore.VerifiableAddress{{ID: addr, Value: addr, Via: "email"}}
		if err := e.store.UpdateIdentity(t.Context(), ident); err != nil {
			t.Fatal(err)
		}
		up := s.Clone()
		up.AAL, up.AuthenticationMethods = "aal2", tc.methods
		for i := range up.AuthenticationMethods {
			up.AuthenticationMethods[i].CompletedAt = now
		}
		if err := e.store.UpdateSession(t.Context(), up); err != nil {
			t.Fatal(err)
		}
		var gs session.GateSession
		if err := e.CheckGate(nil, tokenRequest(srv.URL+"/", tok), session.GatePolicy{RequiredAAL: "aal2"}, &gs); err == nil {
			t.Errorf("%s: passed an aal2 gate", tc.name)
		}
		if err := e.CheckGate(nil, tokenRequest(srv.URL+"/", tok), session.GatePolicy{RequiredAAL: "aal1"}, &gs); err != nil || gs.AAL != "aal1" {
			t.Errorf("%s: aal1 gate: %v, aal %q, want aal1", tc.name, err, gs.AAL)
		}
		l := do(t, nil, "GET", srv.URL+"/self-service/login/api?aal=aal2", nil, map[string]string{"X-Session-Token": tok})
		if l.status != 200 {
			t.Errorf("%s: aal2 flow: %d %s", tc.name, l.status, l.raw)
		} else if findUINode(l.body, "address") != nil {
			t.Errorf("%s: the aal2 flow offers a mailed code", tc.name)
		}
	}
}
