package flows

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// gateFixture stores an identity and a session directly and returns the
// session token.
func gateFixture(t *testing.T, e *Engine, traits string, creds map[string]sessionstore.Credential, aal string) (*sessionstore.Identity, *sessionstore.Session, string) {
	t.Helper()
	now := time.Now().UTC()
	ident := &sessionstore.Identity{ID: uuid.NewString(), SchemaID: "default", State: "active", StateChangedAt: now,
		Traits: json.RawMessage(traits), CreatedAt: now, UpdatedAt: now, Credentials: creds}
	if err := e.store.CreateIdentity(context.Background(), ident); err != nil {
		t.Fatal(err)
	}
	tok := token.NewSessionToken()
	ip, ua := "127.0.0.1:1234", `Mozilla/5.0 "quoted" <b>&`
	methods := []sessionstore.AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: now}}
	if aal == "aal2" {
		methods = append(methods, sessionstore.AuthMethod{Method: "totp", AAL: "aal2", CompletedAt: now})
	}
	s := &sessionstore.Session{ID: uuid.NewString(), IdentityID: ident.ID, Active: true,
		ExpiresAt: now.Add(e.cfg.SessionLifespan), AuthenticatedAt: now, IssuedAt: now, AAL: aal,
		AuthenticationMethods: methods,
		Devices:               []sessionstore.Device{{ID: uuid.NewString(), IPAddress: &ip, UserAgent: &ua}},
		TokenHash:             token.Hash(tok)}
	if err := e.store.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return ident, s, tok
}

func tokenRequest(target, tok string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.Header.Set("X-Session-Token", tok)
	r.Header.Set("Accept", "application/json")
	return r
}

func TestCheckGatePolicies(t *testing.T) {
	e, srv := testEngine(t, nil)
	totp := map[string]sessionstore.Credential{"totp": {Type: "totp", Config: json.RawMessage(`{"totp_url":"otpauth://totp/x?secret=ABC"}`)}}
	_, _, plain1 := gateFixture(t, e, `{"email":"p@example.com"}`, nil, "aal1")
	_, _, mfa1 := gateFixture(t, e, `{"email":"m@example.com"}`, totp, "aal1")
	_, _, mfa2 := gateFixture(t, e, `{"email":"n@example.com"}`, totp, "aal2")
	for _, tc := range []struct {
		tok, policy string
		want        error
	}{
		{plain1, "", nil}, {plain1, "aal1", nil}, {plain1, "highest_available", nil}, {plain1, "aal2", session.ErrAAL2SetupRequired},
		{mfa1, "", session.ErrAAL2Required}, {mfa1, "aal1", nil}, {mfa1, "aal2", session.ErrAAL2Required},
		{mfa2, "", nil}, {mfa2, "aal2", nil},
		{"ory_st_" + strings.Repeat("x", 32), "aal1", session.ErrNoSession},
	} {
		var gs session.GateSession
		err := e.CheckGate(nil, tokenRequest(srv.URL+"/", tc.tok), session.GatePolicy{RequiredAAL: tc.policy}, &gs)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("policy %q: err %v, want %v", tc.policy, err, tc.want)
		}
		if err == nil && (gs.IdentityID == "" || gs.SessionID == "" || gs.AAL == "") {
			t.Errorf("policy %q: incomplete GateSession %+v", tc.policy, gs)
		}
	}
	// The engine-wide aal1 turns highest_available off for whoami and
	// gates without their own policy, not for a gate that asks for more.
	cfg := e.cfg
	cfg.RequiredAAL = "aal1"
	e, err := New(cfg, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var gs session.GateSession
	if err := e.CheckGate(nil, tokenRequest(srv.URL+"/", mfa1), session.GatePolicy{}, &gs); err != nil {
		t.Errorf("aal1 engine: %v", err)
	}
	if err := e.CheckGate(nil, tokenRequest(srv.URL+"/", mfa1), session.GatePolicy{RequiredAAL: "highest_available"}, &gs); !errors.Is(err, session.ErrAAL2Required) {
		t.Errorf("aal1 engine, highest_available gate: %v", err)
	}
}

func TestGateSessionMethodsAndTraits(t *testing.T) {
	e, srv := testEngine(t, nil)
	ident, _, tok := gateFixture(t, e, `{"email":"t@example.com","name":{"first":"Ada","last":"L"},"age":42,"admin":true,"tags":["a","b"]}`, nil, "aal2")
	var gs session.GateSession
	if err := e.CheckGate(nil, tokenRequest(srv.URL+"/", tok), session.GatePolicy{}, &gs); err != nil {
		t.Fatal(err)
	}
	if got := string(gs.AppendMethods(nil, ",")); got != "password,totp" {
		t.Errorf("methods %q", got)
	}
	traits, err := e.IdentityTraits(context.Background(), ident.ID)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"email": "t@example.com", "name.first": "Ada", "age": "42", "admin": "true", "tags": `["a","b"]`, "name": `{"first":"Ada","last":"L"}`} {
		v, ok := session.TraitValue(traits, path)
		if !ok || session.TraitString(v) != want {
			t.Errorf("%s = %v (%v), want %s", path, session.TraitString(v), ok, want)
		}
	}
	if _, ok := session.TraitValue(traits, "name.middle"); ok {
		t.Error("missing trait found")
	}
	again, _ := e.Traits(&gs)
	if again["email"] != traits["email"] {
		t.Error("Traits and IdentityTraits differ")
	}
	// A changed identity is a new version: new traits, no stale cache.
	fresh, _ := e.store.GetIdentity(context.Background(), ident.ID)
	fresh.Traits = json.RawMessage(`{"email":"new@example.com"}`)
	if err := e.store.UpdateIdentity(context.Background(), fresh); err != nil {
		t.Fatal(err)
	}
	traits, _ = e.IdentityTraits(context.Background(), ident.ID)
	if traits["email"] != "new@example.com" {
		t.Errorf("traits after update: %v", traits)
	}
}

func TestSlidingExpiry(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) {
		c.SessionLifespan = time.Hour
		c.EarliestPossibleExtend = 30 * time.Minute
	})
	_, s, tok := gateFixture(t, e, `{"email":"x@example.com"}`, nil, "aal1")
	cookie := e.cookies.Seal(tok, s.ExpiresAt)
	whoami := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", srv.URL+"/sessions/whoami", nil)
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Cookie", e.cfg.CookieName+"="+cookie)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("whoami %d %s", w.Code, w.Body)
		}
		return w
	}
	stored := func() time.Time {
		got, err := e.store.GetSession(context.Background(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.ExpiresAt
	}
	// Plenty of time left: nothing happens.
	if w := whoami(); w.Header().Get("Set-Cookie") != "" || !stored().Equal(s.ExpiresAt) {
		t.Fatalf("extended too early: %v", w.Header())
	}
	// 40 minutes later, 20 left (< 30): extended to now+1h, new cookie.
	base := time.Now()
	e.now = func() time.Time { return base.Add(40 * time.Minute) }
	w := whoami()
	want := base.Add(40 * time.Minute).Add(time.Hour)
	if got := stored(); got.Sub(want).Abs() > time.Second {
		t.Fatalf("stored expiry %v, want %v", got, want)
	}
	var body struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if body.ExpiresAt.Sub(want).Abs() > time.Second {
		t.Errorf("whoami expires_at %v, want %v", body.ExpiresAt, want)
	}
	resp := http.Response{Header: w.Header()}
	cs := resp.Cookies()
	if len(cs) != 1 || cs[0].Name != e.cfg.CookieName {
		t.Fatalf("no re-issued cookie: %v", w.Header())
	}
	var h [32]byte
	exp, err := e.cookies.OpenHash(cs[0].Value, e.now(), &h)
	if err != nil || exp != stored().Unix() || !bytes.Equal(h[:], token.Hash(tok)) {
		t.Fatalf("re-issued cookie: exp %d err %v", exp, err)
	}
	// Again 30 s later: within the one-minute step, no second write; the
	// old cookie still gets the new one (its expiry is behind the session's).
	first := stored()
	e.now = func() time.Time { return base.Add(40*time.Minute + 30*time.Second) }
	if w := whoami(); w.Header().Get("Set-Cookie") == "" || !stored().Equal(first) {
		t.Errorf("second extension within a minute, or no cookie for a stale one")
	}
	cookie = cs[0].Value
	if w := whoami(); w.Header().Get("Set-Cookie") != "" {
		t.Error("cookie re-issued although it is current")
	}
	// The gate extends too (token clients).
	e.now = func() time.Time { return base.Add(90 * time.Minute) }
	var gs session.GateSession
	if err := e.CheckGate(nil, tokenRequest(srv.URL+"/", tok), session.GatePolicy{}, &gs); err != nil {
		t.Fatal(err)
	}
	if want := base.Add(150 * time.Minute); stored().Sub(want).Abs() > time.Second || gs.ExpiresAt.Sub(want).Abs() > time.Second {
		t.Errorf("gate extension: stored %v, gate saw %v, want %v", stored(), gs.ExpiresAt, want)
	}
	// A gate that received the (now stale) cookie renews it on its answer.
	r := httptest.NewRequest("GET", srv.URL+"/app", nil)
	r.Header.Set("Cookie", e.cfg.CookieName+"="+cookie)
	rec := httptest.NewRecorder()
	if err := e.CheckGate(rec, r, session.GatePolicy{}, &gs); err != nil {
		t.Fatal(err)
	}
	renewed := (&http.Response{Header: rec.Header()}).Cookies()
	if len(renewed) != 1 {
		t.Fatalf("gate did not renew a stale cookie: %v", rec.Header())
	}
	if exp, err := e.cookies.OpenHash(renewed[0].Value, e.now(), &h); err != nil || exp != stored().Unix() {
		t.Errorf("renewed cookie: exp %d, err %v", exp, err)
	}
}

func TestAssertionAndJWKS(t *testing.T) {
	e, srv := testEngine(t, nil)
	_, s, tok := gateFixture(t, e, `{"email":"j@example.com","name":{"first":"Jo","last":"X"}}`, nil, "aal1")

	jwks := func() jose.JSONWebKeySet {
		res := do(t, nil, "GET", srv.URL+"/.well-known/jwks.json", nil, nil)
		if res.status != 200 {
			t.Fatalf("jwks %d", res.status)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(res.raw, &set); err != nil {
			t.Fatal(err)
		}
		return set
	}
	if n := len(jwks().Keys); n != 0 {
		t.Fatalf("jwks before any signer: %d keys", n)
	}
	a, err := e.NewAssertionSigner(session.AssertionConfig{TTL: time.Minute, Traits: []string{"email", "name.first", "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	// A second engine on the same store finds the same generated key.
	e2, err := New(e.cfg, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := e2.NewAssertionSigner(session.AssertionConfig{}); b.KeyID() != a.KeyID() {
		t.Error("the generated key is not persisted")
	}

	r := tokenRequest(srv.URL+"/app", tok)
	var gs session.GateSession
	if err := e.CheckGate(nil, r, session.GatePolicy{}, &gs); err != nil {
		t.Fatal(err)
	}
	raw, err := a.Assertion(r, &gs)
	if err != nil {
		t.Fatal(err)
	}
	set := jwks()
	keys := set.Key(a.KeyID())
	if len(keys) != 1 {
		t.Fatalf("kid %s not in the JWKS %+v", a.KeyID(), set)
	}
	parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c session.AssertionClaims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if c.Subject != s.IdentityID || c.Session != s.ID || c.AAL != "aal1" || c.Issuer != srv.URL+"/" ||
		c.Expiry-c.IssuedAt != 60 || len(c.Methods) != 1 || c.Methods[0] != "password" {
		t.Errorf("claims %+v", c)
	}
	if want := map[string]any{"email": "j@example.com", "name": map[string]any{"first": "Jo"}}; !jsonEqual(c.Traits, want) {
		t.Errorf("traits claim %v, want %v", c.Traits, want)
	}
	// Reused within a quarter of the ttl, re-signed after.
	if again, _ := a.Assertion(r, &gs); again != raw {
		t.Error("assertion re-signed within ttl/4")
	}
	base := time.Now()
	e.now = func() time.Time { return base.Add(16 * time.Second) }
	if again, _ := a.Assertion(r, &gs); again == raw {
		t.Error("assertion reused after ttl/4")
	}

	// A key file: PKCS #8 and SEC 1 PEM, both published.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	f, err := e.NewAssertionSigner(session.AssertionConfig{KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})})
	if err != nil {
		t.Fatal(err)
	}
	if set := jwks(); len(set.Key(f.KeyID())) != 1 || len(set.Key(a.KeyID())) != 1 {
		t.Error("JWKS lacks the file key or the generated key")
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	if g, err := e.NewAssertionSigner(session.AssertionConfig{KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})}); err != nil || g.KeyID() != f.KeyID() {
		t.Errorf("PKCS #8: %v", err)
	}
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalECPrivateKey(k384)
	if _, err := e.NewAssertionSigner(session.AssertionConfig{KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der384})}); err == nil {
		t.Error("P-384 key accepted for ES256")
	}
	if _, err := e.NewAssertionSigner(session.AssertionConfig{KeyPEM: []byte("nope")}); err == nil {
		t.Error("garbage key accepted")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// BenchmarkAssertion is the gate's assertion per request: cached (the
// common case) and signed every time (a new session, or ttl/4 elapsed).
func BenchmarkAssertion(b *testing.B) {
	e, req := benchEngine(b, 0)
	a, err := e.NewAssertionSigner(session.AssertionConfig{Traits: []string{"email"}})
	if err != nil {
		b.Fatal(err)
	}
	var gs session.GateSession
	if err := e.CheckGate(nil, req, session.GatePolicy{}, &gs); err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Assertion(req, &gs); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A signer whose tokens are never handed out again (ttl/4 rounds to
	// nothing) signs on every call.
	signEvery, err := e.NewAssertionSigner(session.AssertionConfig{Traits: []string{"email"}, TTL: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signEvery.Assertion(req, &gs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAssertionIssuerNeverFromHost: iss is the configured public URL
// whatever the Host (an engine without one does not exist:
// TestNewRequiresPublicURL), and aud is the configured audience.
func TestAssertionIssuerNeverFromHost(t *testing.T) {
	e, srv := testEngine(t, nil)
	_, _, tok := gateFixture(t, e, `{"email":"h@example.com"}`, nil, "aal1")
	claims := func(a *session.AssertionSigner) (session.AssertionClaims, map[string]any) {
		t.Helper()
		r := tokenRequest("http://evil.example/app", tok)
		r.Host = "evil.example"
		var gs session.GateSession
		if err := e.CheckGate(nil, r, session.GatePolicy{}, &gs); err != nil {
			t.Fatal(err)
		}
		raw, err := a.Assertion(r, &gs)
		if err != nil {
			t.Fatal(err)
		}
		p, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c session.AssertionClaims
		var m map[string]any
		if err := p.UnsafeClaimsWithoutVerification(&c, &m); err != nil {
			t.Fatal(err)
		}
		return c, m
	}
	one, err := e.NewAssertionSigner(session.AssertionConfig{Audience: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	c, m := claims(one)
	if c.Issuer != srv.URL+"/" || m["aud"] != "https://app.example.com" {
		t.Errorf("iss %q aud %#v, want %q and the one audience as a string", c.Issuer, m["aud"], srv.URL+"/")
	}
	two, err := e.NewAssertionSigner(session.AssertionConfig{Audience: []string{"https://app.example.com", "billing"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, m := claims(two); !jsonEqual(m["aud"], []string{"https://app.example.com", "billing"}) || c.Issuer != srv.URL+"/" {
		t.Errorf("iss %q aud %#v", c.Issuer, m["aud"])
	}
	none, err := e.NewAssertionSigner(session.AssertionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, m := claims(none); m["aud"] != nil {
		t.Errorf("aud %#v without an audience", m["aud"])
	}
	if _, err := e.NewAssertionSigner(session.AssertionConfig{Audience: []string{""}}); err == nil {
		t.Error("empty audience accepted")
	}
}
