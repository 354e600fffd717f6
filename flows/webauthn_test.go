package flows

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/descope/virtualwebauthn"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
)

const (
	testRPID   = "localhost"
	testOrigin = "https://localhost"
)

func webauthnTestConfig(methods ...string) func(*Config) {
	return func(c *Config) {
		c.Methods = map[string]bool{}
		for _, m := range methods {
			c.Methods[m] = true
		}
		c.WebAuthnRPID = testRPID
		c.WebAuthnRPOrigins = []string{testOrigin}
	}
}

// vKey is a software authenticator with one credential.
type vKey struct {
	rp   virtualwebauthn.RelyingParty
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

func newVKey() *vKey {
	return &vKey{
		rp:   virtualwebauthn.RelyingParty{ID: testRPID, Name: testRPID, Origin: testOrigin},
		auth: virtualwebauthn.NewAuthenticator(),
		cred: newVirtualCredential(),
	}
}

// newVirtualCredential is an EC2 credential whose public key coordinates
// are a full 32 bytes (virtualwebauthn encodes them without leading zeros,
// which relying parties rightly refuse).
func newVirtualCredential() virtualwebauthn.Credential {
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		return virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der)
	}
}

// at returns a copy of k that claims another origin.
func (k *vKey) at(origin string) *vKey {
	c := *k
	c.rp.Origin = origin
	return &c
}

// attest answers creation options (JSON, with or without the publicKey
// wrapper); the user handle is remembered for discoverable sign-in.
func (k *vKey) attest(t *testing.T, options string) string {
	t.Helper()
	o, err := virtualwebauthn.ParseAttestationOptions(options)
	if err != nil {
		t.Fatalf("attestation options %s: %v", options, err)
	}
	k.auth.Options.UserHandle = []byte(o.UserID)
	return virtualwebauthn.CreateAttestationResponse(k.rp, k.auth, k.cred, *o)
}

func (k *vKey) assert(t *testing.T, options string) string {
	t.Helper()
	o, err := virtualwebauthn.ParseAssertionOptions(options)
	if err != nil {
		t.Fatalf("assertion options %s: %v", options, err)
	}
	return virtualwebauthn.CreateAssertionResponse(k.rp, k.auth, k.cred, *o)
}

func nodeValue(t *testing.T, r resp, key string) string {
	t.Helper()
	v, _ := attrsOf(mustNode(t, r, key))["value"].(string)
	return v
}

// checkScriptNode checks the webauthn_script node of a flow.
func checkScriptNode(t *testing.T, r resp, base string) {
	t.Helper()
	n := mustNode(t, r, "webauthn_script")
	a := attrsOf(n)
	if n["type"] != "script" || n["group"] != "webauthn" || a["src"] != base+"/.well-known/ory/webauthn.js" ||
		a["async"] != true || a["referrerpolicy"] != "no-referrer" || a["crossorigin"] != "anonymous" ||
		a["integrity"] != webauthnIntegrity || a["type"] != "text/javascript" || a["nonce"] == "" || a["node_type"] != "script" {
		t.Fatalf("script node: %v", a)
	}
	if strings.Count(string(r.raw), `"webauthn_script"`) != 1 {
		t.Fatalf("script node not unique: %s", joinKeys(r.body))
	}
}

// browserPasswordLogin signs a fresh browser in with the password (JSON).
func browserPasswordLogin(t *testing.T, base, email string) (*http.Client, resp) {
	t.Helper()
	c := newBrowserClient(t)
	f := do(t, c, "GET", base+"/self-service/login/browser", nil, nil)
	r := browserSubmit(t, c, f, map[string]any{"method": "password", "identifier": email, "password": mfaPassword})
	return c, r
}

func TestWebAuthnSecondFactor(t *testing.T) {
	e, srv := testEngine(t, webauthnTestConfig("webauthn"))
	base := srv.URL
	c := newBrowserClient(t)
	reg := browserRegister(t, c, base, "wa@example.com")
	identityID := reg.body["identity"].(map[string]any)["id"].(string)

	// Native settings flows carry no webauthn nodes, and do not take it.
	tok := registerNative(t, base, "native-wa@example.com")
	ns := nativeSettings(t, base, tok)
	if findUINode(ns.body, "webauthn_register_trigger") != nil || findUINode(ns.body, "webauthn_script") != nil {
		t.Fatalf("webauthn nodes in a native flow: %s", joinKeys(ns.body))
	}
	if r := do(t, nil, "POST", actionOf(t, ns), map[string]any{"method": "webauthn", "webauthn_register": "{}"}, tokenHeader(tok)); r.status != 400 || !contains(messageIDs(r.body), 4010004) {
		t.Fatalf("native webauthn submit: %d %s", r.status, r.raw)
	}

	s := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if s.status != 200 {
		t.Fatalf("settings: %d %s", s.status, s.raw)
	}
	if n := mustNode(t, s, "webauthn_register_displayname"); labelIDOf(n) != 1050013 || attrsOf(n)["type"] != "text" {
		t.Fatalf("display name node: %v", n)
	}
	trig := mustNode(t, s, "webauthn_register_trigger")
	ta := attrsOf(trig)
	opts := ta["value"].(string)
	if ta["type"] != "button" || ta["onclickTrigger"] != "oryWebAuthnRegistration" || labelIDOf(trig) != 1050012 ||
		!strings.HasPrefix(ta["onclick"].(string), "window.oryWebAuthnRegistration({") || !strings.Contains(opts, `"publicKey"`) {
		t.Fatalf("trigger node: %v", ta)
	}
	if n := mustNode(t, s, "webauthn_register"); attrsOf(n)["type"] != "hidden" {
		t.Fatalf("register input: %v", n)
	}
	checkScriptNode(t, s, base)
	var parsed struct {
		PublicKey struct {
			RP   struct{ ID string } `json:"rp"`
			User struct{ ID string } `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(opts), &parsed); err != nil || parsed.PublicKey.RP.ID != testRPID {
		t.Fatalf("options %s: %v", opts, err)
	}

	key := newVKey()
	// Another origin is refused, and the challenge is spent.
	bad := browserSubmit(t, c, s, map[string]any{"method": "webauthn", "webauthn_register": key.at("https://evil.example").attest(t, opts)})
	if bad.status != 400 || !contains(messageIDs(bad.body), 4000001) {
		t.Fatalf("wrong origin: %d %s", bad.status, bad.raw)
	}
	opts2 := nodeValue(t, bad, "webauthn_register_trigger")
	if opts2 == opts {
		t.Fatal("the refused challenge is offered again")
	}
	if r := browserSubmit(t, c, bad, map[string]any{"method": "webauthn", "webauthn_register": key.attest(t, opts)}); r.status != 400 {
		t.Fatalf("spent challenge accepted: %d %s", r.status, r.raw)
	}
	fresh := do(t, c, "GET", base+"/self-service/settings/flows?id="+s.body["id"].(string), nil, nil)
	opts3 := nodeValue(t, fresh, "webauthn_register_trigger")
	// A challenge of another flow is refused.
	other := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if r := browserSubmit(t, c, other, map[string]any{"method": "webauthn", "webauthn_register": key.attest(t, opts3)}); r.status != 400 {
		t.Fatalf("another flow's challenge accepted: %d %s", r.status, r.raw)
	}
	att := key.attest(t, opts3)
	ok := browserSubmit(t, c, fresh, map[string]any{"method": "webauthn", "webauthn_register": att, "webauthn_register_displayname": "Key One"})
	if ok.status != 200 || ok.body["state"] != "success" {
		t.Fatalf("register key: %d %s", ok.status, ok.raw)
	}
	rm := mustNode(t, ok, "webauthn_remove", hex.EncodeToString(key.cred.ID))
	lbl := rm["meta"].(map[string]any)["label"].(map[string]any)
	if int(lbl["id"].(float64)) != 1050018 || lbl["text"] != `Remove security key "Key One"` || lbl["context"].(map[string]any)["display_name"] != "Key One" ||
		lbl["context"].(map[string]any)["added_at"] == nil {
		t.Fatalf("remove node: %v", lbl)
	}
	// The same response again (replay) is refused.
	if r := browserSubmit(t, c, ok, map[string]any{"method": "webauthn", "webauthn_register": att}); r.status != 400 {
		t.Fatalf("replayed registration accepted: %d %s", r.status, r.raw)
	}
	ident, _ := e.store.GetIdentity(t.Context(), identityID)
	cfg, _ := ceremony.KeysOf(ident, "webauthn")
	if cfg == nil || len(cfg.Credentials) != 1 || cfg.Credentials[0].IsPasswordless || len(cfg.Credentials[0].PublicKey) == 0 ||
		len(cfg.Credentials[0].Authenticator.AAGUID) != 16 || cfg.Credentials[0].AddedAt.IsZero() || e.sessions.IdentityAAL(ident) != "aal2" {
		t.Fatalf("stored key: %+v", cfg)
	}
	// Adding the key upgraded this session.
	if who := do(t, c, "GET", base+"/sessions/whoami", nil, nil); who.status != 200 || who.body["authenticator_assurance_level"] != "aal2" {
		t.Fatalf("whoami after adding a key: %d %s", who.status, who.raw)
	}

	// Sign-in: the password is not enough.
	c2, l := browserPasswordLogin(t, base, "wa@example.com")
	if l.status != 422 || errorID(l.body) != "browser_location_change_required" {
		t.Fatalf("password login: %d %s", l.status, l.raw)
	}
	login := func(c *http.Client, k *vKey) resp {
		f := do(t, c, "GET", base+"/self-service/login/browser?aal=aal2", nil, nil)
		if f.status != 200 {
			t.Fatalf("aal2 flow: %d %s", f.status, f.raw)
		}
		return browserSubmit(t, c, f, map[string]any{"method": "webauthn", "webauthn_login": k.assert(t, nodeValue(t, f, "webauthn_login_trigger"))})
	}
	f := do(t, c2, "GET", base+"/self-service/login/browser?aal=aal2", nil, nil)
	lt := mustNode(t, f, "webauthn_login_trigger")
	if attrsOf(lt)["onclickTrigger"] != "oryWebAuthnLogin" || labelIDOf(lt) != 1010008 || attrsOf(lt)["type"] != "button" {
		t.Fatalf("login trigger: %v", lt)
	}
	if id := mustNode(t, f, "identifier"); id["group"] != "default" || attrsOf(id)["type"] != "hidden" {
		t.Fatalf("identifier: %v", id)
	}
	mustNode(t, f, "webauthn_login")
	checkScriptNode(t, f, base)
	if r := browserSubmit(t, c2, f, map[string]any{"method": "webauthn", "webauthn_login": key.at("https://evil.example").assert(t, nodeValue(t, f, "webauthn_login_trigger"))}); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("wrong origin login: %d %s", r.status, r.raw)
	}
	key.cred.Counter = 5
	in := login(c2, key)
	if in.status != 200 || in.body["session"].(map[string]any)["authenticator_assurance_level"] != "aal2" {
		t.Fatalf("webauthn login: %d %s", in.status, in.raw)
	}
	if m := sessionMethods(in.body["session"].(map[string]any)); strings.Join(m, ",") != "password,webauthn" {
		t.Fatalf("methods %v", m)
	}
	ident, _ = e.store.GetIdentity(t.Context(), identityID)
	if cfg, _ := ceremony.KeysOf(ident, "webauthn"); cfg.Credentials[0].Authenticator.SignCount != 5 {
		t.Fatalf("sign count not stored: %+v", cfg.Credentials[0].Authenticator)
	}
	// A counter going backwards (a cloned key) is refused.
	c3, _ := browserPasswordLogin(t, base, "wa@example.com")
	key.cred.Counter = 3
	if r := login(c3, key); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("backwards counter: %d %s", r.status, r.raw)
	}
	key.cred.Counter = 6
	if r := login(c3, key); r.status != 200 {
		t.Fatalf("forward counter: %d %s", r.status, r.raw)
	}
	// An assertion for another flow's challenge is refused.
	c4, _ := browserPasswordLogin(t, base, "wa@example.com")
	fa := do(t, c4, "GET", base+"/self-service/login/browser?aal=aal2", nil, nil)
	fb := do(t, c4, "GET", base+"/self-service/login/browser?aal=aal2", nil, nil)
	key.cred.Counter = 7
	if r := browserSubmit(t, c4, fb, map[string]any{"method": "webauthn", "webauthn_login": key.assert(t, nodeValue(t, fa, "webauthn_login_trigger"))}); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("other flow's challenge: %d %s", r.status, r.raw)
	}

	// Remove the key.
	s4 := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if r := browserSubmit(t, c, s4, map[string]any{"method": "webauthn", "webauthn_remove": "00ff"}); r.status != 400 {
		t.Fatalf("remove unknown key: %d %s", r.status, r.raw)
	}
	s4 = do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if r := browserSubmit(t, c, s4, map[string]any{"method": "webauthn", "webauthn_remove": hex.EncodeToString(key.cred.ID)}); r.status != 200 || findUINode(r.body, "webauthn_remove") != nil {
		t.Fatalf("remove key: %d %s", r.status, r.raw)
	}
	ident, _ = e.store.GetIdentity(t.Context(), identityID)
	if identity.HasCredential(ident, "webauthn") || e.sessions.IdentityAAL(ident) != "aal1" {
		t.Fatalf("key kept: %v", ident.Credentials)
	}
}

func TestWebAuthnPasswordless(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) {
		webauthnTestConfig("webauthn")(c)
		c.WebAuthnPasswordless = true
	})
	base := srv.URL
	c := newBrowserClient(t)
	reg := browserRegister(t, c, base, "pwl@example.com")
	s := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	key := newVKey()
	ok := browserSubmit(t, c, s, map[string]any{"method": "webauthn", "webauthn_register": key.attest(t, nodeValue(t, s, "webauthn_register_trigger")), "webauthn_register_displayname": "pk"})
	if ok.status != 200 {
		t.Fatalf("register: %d %s", ok.status, ok.raw)
	}
	ident, _ := e.store.GetIdentity(t.Context(), reg.body["identity"].(map[string]any)["id"].(string))
	if e.sessions.IdentityAAL(ident) != "aal1" {
		t.Fatal("a passwordless key made the identity aal2-capable")
	}
	// Step one: the identifier.
	c2 := newBrowserClient(t)
	f := do(t, c2, "GET", base+"/self-service/login/browser", nil, nil)
	if attrsOf(mustNode(t, f, "identifier"))["autocomplete"] != "username webauthn" {
		t.Fatalf("identifier autocomplete: %s", f.raw)
	}
	mustNode(t, f, "method", "webauthn")
	unknown := browserSubmit(t, c2, f, map[string]any{"method": "webauthn", "identifier": "nobody@example.com"})
	if unknown.status != 400 || !contains(messageIDs(unknown.body), 4000015) {
		t.Fatalf("unknown identifier: %d %s", unknown.status, unknown.raw)
	}
	step := browserSubmit(t, c2, f, map[string]any{"method": "webauthn", "identifier": "PWL@example.com"})
	if step.status != 400 || !contains(messageIDs(step.body), 1010012) {
		t.Fatalf("step one: %d %s", step.status, step.raw)
	}
	in := browserSubmit(t, c2, step, map[string]any{"method": "webauthn", "webauthn_login": key.assert(t, nodeValue(t, step, "webauthn_login_trigger"))})
	if in.status != 200 || in.body["session"].(map[string]any)["identity"] == nil {
		t.Fatalf("passwordless login: %d %s", in.status, in.raw)
	}
	if m := sessionMethods(in.body["session"].(map[string]any)); strings.Join(m, ",") != "webauthn" {
		t.Fatalf("methods %v", m)
	}
}
