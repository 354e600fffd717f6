package flows

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
)

// createOptions extracts credentialOptions from passkey_create_data.
func createOptions(t *testing.T, r resp) string {
	t.Helper()
	var data struct {
		CredentialOptions    json.RawMessage `json:"credentialOptions"`
		DisplayNameFieldName string          `json:"displayNameFieldName"`
	}
	raw := nodeValue(t, r, "passkey_create_data")
	if err := json.Unmarshal([]byte(raw), &data); err != nil || len(data.CredentialOptions) == 0 {
		t.Fatalf("passkey_create_data %q: %v", raw, err)
	}
	if data.DisplayNameFieldName != "traits.email" {
		t.Fatalf("displayNameFieldName %q", data.DisplayNameFieldName)
	}
	return string(data.CredentialOptions)
}

func TestPasskeySignUpSignInSettings(t *testing.T) {
	e, srv := testEngine(t, webauthnTestConfig("passkey"))
	base := srv.URL

	// Sign-up, profile first: the credential step offers a passkey.
	c := newBrowserClient(t)
	f := do(t, c, "GET", base+"/self-service/registration/browser", nil, nil)
	traits := map[string]any{"email": "pk@example.com"}
	sel := browserSubmit(t, c, f, map[string]any{"method": "profile", "traits": traits})
	if sel.status != 400 || sel.body["state"] != "choose_method" {
		t.Fatalf("profile step: %d %s", sel.status, sel.raw)
	}
	trig := mustNode(t, sel, "passkey_register_trigger")
	if attrsOf(trig)["onclickTrigger"] != "oryPasskeyRegistration" || attrsOf(trig)["type"] != "button" || labelIDOf(trig) != 1040007 || trig["group"] != "passkey" {
		t.Fatalf("trigger: %v", trig)
	}
	if n := mustNode(t, sel, "passkey_register"); attrsOf(n)["type"] != "hidden" {
		t.Fatalf("passkey_register: %v", n)
	}
	checkScriptNode(t, sel, base)
	opts := createOptions(t, sel)
	if !strings.Contains(opts, `"residentKey":"required"`) || !strings.Contains(opts, `"name":"pk@example.com"`) {
		t.Fatalf("creation options: %s", opts)
	}
	key := newVKey()
	bad := browserSubmit(t, c, sel, map[string]any{"method": "passkey", "traits": traits, "passkey_register": key.at("https://evil.example").attest(t, opts)})
	if bad.status != 400 || !contains(messageIDs(bad.body), 4000001) {
		t.Fatalf("wrong origin sign-up: %d %s", bad.status, bad.raw)
	}
	// The spent challenge does not work either.
	if r := browserSubmit(t, c, bad, map[string]any{"method": "passkey", "traits": traits, "passkey_register": key.attest(t, opts)}); r.status != 400 {
		t.Fatalf("spent sign-up challenge: %d %s", r.status, r.raw)
	}
	fresh := do(t, c, "GET", base+"/self-service/registration/flows?id="+sel.body["id"].(string), nil, nil)
	reg := browserSubmit(t, c, fresh, map[string]any{"method": "passkey", "traits": traits, "passkey_register": key.attest(t, createOptions(t, fresh))})
	if reg.status != 200 || reg.body["session"] == nil {
		t.Fatalf("passkey sign-up: %d %s", reg.status, reg.raw)
	}
	identityID := reg.body["identity"].(map[string]any)["id"].(string)
	ident, _ := e.store.GetIdentity(t.Context(), identityID)
	pcfg, _ := ceremony.KeysOf(ident, "passkey")
	if pcfg == nil || len(pcfg.Credentials) != 1 || !pcfg.Credentials[0].IsPasswordless || identity.HasCredential(ident, "password") ||
		ident.Credentials["passkey"].Identifiers[0] != string(pcfg.UserHandle) {
		t.Fatalf("passkey credential: %+v", ident.Credentials)
	}
	if m := sessionMethods(reg.body["session"].(map[string]any)); strings.Join(m, ",") != "passkey" {
		t.Fatalf("sign-up methods %v", m)
	}

	// Sign-in without an identifier.
	login := func(k *vKey) resp {
		b := newBrowserClient(t)
		lf := do(t, b, "GET", base+"/self-service/login/browser", nil, nil)
		return browserSubmit(t, b, lf, map[string]any{"method": "passkey", "passkey_login": k.assert(t, nodeValue(t, lf, "passkey_challenge"))})
	}
	b := newBrowserClient(t)
	lf := do(t, b, "GET", base+"/self-service/login/browser", nil, nil)
	if attrsOf(mustNode(t, lf, "identifier"))["autocomplete"] != "username webauthn" {
		t.Fatalf("identifier autocomplete: %s", lf.raw)
	}
	pl := mustNode(t, lf, "passkey_login")
	if attrsOf(pl)["onloadTrigger"] != "oryPasskeyLoginAutocompleteInit" || attrsOf(pl)["type"] != "hidden" {
		t.Fatalf("passkey_login: %v", pl)
	}
	pt := mustNode(t, lf, "passkey_login_trigger")
	if attrsOf(pt)["onclickTrigger"] != "oryPasskeyLogin" || labelIDOf(pt) != 1010021 {
		t.Fatalf("passkey_login_trigger: %v", pt)
	}
	checkScriptNode(t, lf, base)
	if !strings.HasSuffix(joinKeys(lf.body), "passkey:passkey_challenge webauthn:webauthn_script passkey:passkey_login passkey:passkey_login_trigger") {
		t.Fatalf("login node order: %s", joinKeys(lf.body))
	}
	// API login flows have no passkey nodes.
	if api := do(t, nil, "GET", base+"/self-service/login/api", nil, nil); findUINode(api.body, "passkey_challenge") != nil {
		t.Fatalf("passkey in a native flow: %s", api.raw)
	}
	if r := browserSubmit(t, b, lf, map[string]any{"method": "passkey", "passkey_login": key.at("https://evil.example").assert(t, nodeValue(t, lf, "passkey_challenge"))}); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("wrong origin login: %d %s", r.status, r.raw)
	}
	key.cred.Counter = 10
	in := login(key)
	if in.status != 200 || in.body["session"].(map[string]any)["identity"].(map[string]any)["id"] != identityID {
		t.Fatalf("passkey login: %d %s", in.status, in.raw)
	}
	// Replaying the same assertion on another flow fails (other challenge).
	b2 := newBrowserClient(t)
	lf2 := do(t, b2, "GET", base+"/self-service/login/browser", nil, nil)
	lf3 := do(t, b2, "GET", base+"/self-service/login/browser", nil, nil)
	key.cred.Counter = 11
	assertion := key.assert(t, nodeValue(t, lf2, "passkey_challenge"))
	if r := browserSubmit(t, b2, lf3, map[string]any{"method": "passkey", "passkey_login": assertion}); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("other flow's challenge: %d %s", r.status, r.raw)
	}
	if r := browserSubmit(t, b2, lf2, map[string]any{"method": "passkey", "passkey_login": assertion}); r.status != 200 {
		t.Fatalf("own challenge: %d %s", r.status, r.raw)
	}
	if r := browserSubmit(t, b2, lf2, map[string]any{"method": "passkey", "passkey_login": assertion}); r.status == 200 {
		t.Fatalf("replayed assertion accepted: %s", r.raw)
	}
	// A counter going backwards is refused.
	key.cred.Counter = 4
	if r := login(key); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("backwards counter: %d %s", r.status, r.raw)
	}
	// An unknown passkey (its user handle names nobody) is refused.
	stranger := newVKey()
	stranger.auth.Options.UserHandle = []byte("nobody-handle")
	if r := login(stranger); r.status != 400 || !contains(messageIDs(r.body), 4000043) {
		t.Fatalf("unknown passkey: %d %s", r.status, r.raw)
	}

	// Settings: the only sign-in method cannot be removed; add a second.
	s := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	rm := mustNode(t, s, "passkey_remove", hex.EncodeToString(key.cred.ID))
	if attrsOf(rm)["disabled"] != true || labelIDOf(rm) != 1050020 {
		t.Fatalf("remove node: %v", rm)
	}
	st := mustNode(t, s, "passkey_register_trigger")
	if attrsOf(st)["onclickTrigger"] != "oryPasskeySettingsRegistration" || labelIDOf(st) != 1050019 {
		t.Fatalf("settings trigger: %v", st)
	}
	mustNode(t, s, "passkey_settings_register")
	checkScriptNode(t, s, base)
	if r := browserSubmit(t, c, s, map[string]any{"method": "passkey", "passkey_remove": hex.EncodeToString(key.cred.ID)}); r.status != 400 {
		t.Fatalf("removing the last passkey: %d %s", r.status, r.raw)
	}
	s = do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	key2 := newVKey()
	add := browserSubmit(t, c, s, map[string]any{"method": "passkey", "passkey_settings_register": key2.attest(t, createOptions(t, s))})
	if add.status != 200 || add.body["state"] != "success" {
		t.Fatalf("add passkey: %d %s", add.status, add.raw)
	}
	if string(key2.auth.Options.UserHandle) != string(pcfg.UserHandle) {
		t.Fatal("the second passkey got another user handle")
	}
	if r := login(key2); r.status != 200 {
		t.Fatalf("login with the second passkey: %d %s", r.status, r.raw)
	}
	s = do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if attrsOf(mustNode(t, s, "passkey_remove", hex.EncodeToString(key.cred.ID)))["disabled"] != false {
		t.Fatal("remove disabled with two passkeys")
	}
	if r := browserSubmit(t, c, s, map[string]any{"method": "passkey", "passkey_remove": hex.EncodeToString(key.cred.ID)}); r.status != 200 {
		t.Fatalf("remove passkey: %d %s", r.status, r.raw)
	}
	key.cred.Counter = 50
	if r := login(key); r.status != 400 {
		t.Fatalf("removed passkey still signs in: %d %s", r.status, r.raw)
	}
}

func TestPasskeyAddedInSettingsUsesIdentityID(t *testing.T) {
	e, srv := testEngine(t, webauthnTestConfig("passkey"))
	base := srv.URL
	c := newBrowserClient(t)
	reg := browserRegister(t, c, base, "pk2@example.com")
	id := reg.body["identity"].(map[string]any)["id"].(string)
	s := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	key := newVKey()
	// A synced passkey: its backup flags must survive storage, or the
	// sign-in fails go-webauthn's consistency check.
	key.auth.Options.BackupEligible, key.auth.Options.BackupState = true, true
	if r := browserSubmit(t, c, s, map[string]any{"method": "passkey", "passkey_settings_register": key.attest(t, createOptions(t, s))}); r.status != 200 {
		t.Fatalf("add passkey: %d %s", r.status, r.raw)
	}
	if string(key.auth.Options.UserHandle) != id {
		t.Fatalf("user handle %q, identity %s", key.auth.Options.UserHandle, id)
	}
	ident, _ := e.store.GetIdentity(t.Context(), id)
	if e.sessions.IdentityAAL(ident) != "aal1" {
		t.Fatal("a passkey made the identity aal2-capable")
	}
	b := newBrowserClient(t)
	lf := do(t, b, "GET", base+"/self-service/login/browser", nil, nil)
	in := browserSubmit(t, b, lf, map[string]any{"method": "passkey", "passkey_login": key.assert(t, nodeValue(t, lf, "passkey_challenge"))})
	if in.status != 200 {
		t.Fatalf("login: %d %s", in.status, in.raw)
	}
}
