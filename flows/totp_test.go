package flows

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	totpmethod "github.com/caddy-kratos/caddy-kratos/flows/method/totp"
)

func totpEngine(t *testing.T) (*Engine, string) {
	e, srv := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"totp": true, "lookup_secret": true}
		c.TOTPIssuer = "Example Inc"
		c.FlowLifespan = 3 * time.Hour // outlives the clock jump below
	})
	return e, srv.URL
}

// totpSecret reads the secret shown by a settings flow.
func totpSecret(t *testing.T, r resp) string {
	t.Helper()
	n := mustNode(t, r, "totp_secret_key")
	text := attrsOf(n)["text"].(map[string]any)
	secret := text["context"].(map[string]any)["secret"].(string)
	if text["text"] != secret || int(text["id"].(float64)) != 1050006 || labelIDOf(n) != 1050017 {
		t.Fatalf("secret node: %v", n)
	}
	return secret
}

func wrongTOTP(secret string) string {
	good, _ := totp.GenerateCode(secret, time.Now())
	for _, c := range []string{"000000", "111111", "222222"} {
		ok, _ := totp.ValidateCustom(c, secret, time.Now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: 6})
		if c != good && !ok {
			return c
		}
	}
	return "333333"
}

func TestTOTPLinkLoginUnlink(t *testing.T) {
	e, base := totpEngine(t)
	token := registerNative(t, base, "totp@example.com")

	s := nativeSettings(t, base, token)
	// Kratos's order: profile, password, lookup_secret, totp.
	if got := strings.Join(mfaGroupOrder(s.body), ","); got != "default,profile,password,lookup_secret,totp" {
		t.Fatalf("group order %s: %s", got, joinKeys(s.body))
	}
	qr := mustNode(t, s, "totp_qr")
	qa := attrsOf(qr)
	if qr["type"] != "img" || !strings.HasPrefix(qa["src"].(string), "data:image/png;base64,") ||
		qa["width"].(float64) != 256 || qa["height"].(float64) != 256 || labelIDOf(qr) != 1050005 {
		t.Fatalf("qr node: %v", qa["width"])
	}
	secret := totpSecret(t, s)
	if len(secret) != 32 {
		t.Fatalf("secret %q", secret)
	}
	code := mustNode(t, s, "totp_code")
	if attrsOf(code)["required"] != true || labelIDOf(code) != 1070006 || attrsOf(code)["type"] != "text" {
		t.Fatalf("totp_code node: %v", code)
	}
	if n := mustNode(t, s, "method", "totp"); labelIDOf(n) != 1070003 {
		t.Fatalf("submit: %v", n)
	}
	// The key stays the same for the flow, and is not stored in plain text.
	g := do(t, nil, "GET", base+"/self-service/settings/flows?id="+s.body["id"].(string), nil, tokenHeader(token))
	if totpSecret(t, g) != secret {
		t.Fatal("secret changed between renders")
	}
	raw, err := e.store.GetRecord(t.Context(), flow.FlowNS, s.body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ReplaceAll(string(raw), `"`+secret+`"`, ""), "otpauth://") {
		t.Fatalf("flow stores the key URL in plain text: %s", raw)
	}

	action := actionOf(t, s)
	bad := do(t, nil, "POST", action, map[string]any{"method": "totp", "totp_code": wrongTOTP(secret)}, tokenHeader(token))
	if bad.status != 400 || bad.body["state"] != "show_form" || !contains(nodeMessageIDs(mustNode(t, bad, "totp_code")), 4000008) {
		t.Fatalf("wrong code: %d %s", bad.status, bad.raw)
	}
	if totpSecret(t, bad) != secret {
		t.Fatal("secret changed after a wrong code")
	}
	good, _ := totp.GenerateCode(secret, time.Now())
	ok := do(t, nil, "POST", action, map[string]any{"method": "totp", "totp_code": good}, tokenHeader(token))
	if ok.status != 200 || ok.body["state"] != "success" || !contains(messageIDs(ok.body), 1050001) {
		t.Fatalf("link: %d %s", ok.status, ok.raw)
	}
	unlink := mustNode(t, ok, "totp_unlink", "true")
	if attrsOf(unlink)["required"] != true || labelIDOf(unlink) != 1050004 || findUINode(ok.body, "totp_qr") != nil {
		t.Fatalf("linked nodes: %s", joinKeys(ok.body))
	}
	ident, err := e.store.GetIdentity(t.Context(), ok.body["identity"].(map[string]any)["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	cred := ident.Credentials["totp"]
	if len(cred.Identifiers) != 1 || cred.Identifiers[0] != ident.ID || strings.Contains(string(cred.Config), "otpauth") || strings.Contains(string(cred.Config), secret) {
		t.Fatalf("credential: %+v %s", cred, cred.Config)
	}
	// Linking upgraded the session.
	who := whoamiStatus(t, base, token)
	if who.status != 200 || who.body["authenticator_assurance_level"] != "aal2" || strings.Join(sessionMethods(who.body), ",") != "password,totp" {
		t.Fatalf("whoami after link: %d %s", who.status, who.raw)
	}

	// A password login is only aal1 now: the identity is withheld and
	// whoami/settings ask for the second factor.
	l := nativeLogin(t, base, "totp@example.com")
	sess := l.body["session"].(map[string]any)
	if sess["identity"] != nil || sess["authenticator_assurance_level"] != "aal1" {
		t.Fatalf("password login with totp: %s", l.raw)
	}
	tok1 := l.body["session_token"].(string)
	if r := whoamiStatus(t, base, tok1); r.status != 403 || errorID(r.body) != "session_aal2_required" {
		t.Fatalf("whoami aal1: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "GET", base+"/self-service/settings/api", nil, tokenHeader(tok1)); r.status != 403 || errorID(r.body) != "session_aal2_required" {
		t.Fatalf("settings aal1: %d %s", r.status, r.raw)
	}
	f2 := do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok1))
	if f2.status != 200 || !contains(messageIDs(f2.body), 1010004) {
		t.Fatalf("aal2 flow: %d %s", f2.status, f2.raw)
	}
	tc := mustNode(t, f2, "totp_code")
	if labelIDOf(tc) != 1010006 || attrsOf(tc)["value"] != "" || attrsOf(tc)["required"] != true {
		t.Fatalf("login totp_code: %v", tc)
	}
	if n := mustNode(t, f2, "method", "totp"); labelIDOf(n) != 1010009 {
		t.Fatalf("login submit: %v", n)
	}
	// lookup_secret is enabled but not set up: no nodes for it.
	if findUINode(f2.body, "lookup_secret") != nil {
		t.Fatalf("lookup nodes without codes: %s", joinKeys(f2.body))
	}
	a2 := actionOf(t, f2)
	if r := do(t, nil, "POST", a2, map[string]any{"method": "totp", "totp_code": wrongTOTP(secret)}, tokenHeader(tok1)); r.status != 400 ||
		!contains(nodeMessageIDs(mustNode(t, r, "totp_code")), 4000008) {
		t.Fatalf("wrong login code: %d %s", r.status, r.raw)
	}
	good, _ = totp.GenerateCode(secret, time.Now())
	in := do(t, nil, "POST", a2, map[string]any{"method": "totp", "totp_code": good}, tokenHeader(tok1))
	if in.status != 200 || in.body["session_token"] != tok1 {
		t.Fatalf("aal2 login: %d %s", in.status, in.raw)
	}
	s2 := in.body["session"].(map[string]any)
	if s2["authenticator_assurance_level"] != "aal2" || s2["identity"] == nil || strings.Join(sessionMethods(s2), ",") != "password,totp" {
		t.Fatalf("aal2 session: %s", in.raw)
	}
	if r := whoamiStatus(t, base, tok1); r.status != 200 || r.body["authenticator_assurance_level"] != "aal2" {
		t.Fatalf("whoami aal2: %d %s", r.status, r.raw)
	}
	// Already aal2.
	if r := do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok1)); r.status != 400 {
		t.Fatalf("aal2 again: %d %s", r.status, r.raw)
	}

	// Unlinking needs a recent login.
	s3 := nativeSettings(t, base, tok1)
	realNow := e.now
	e.now = func() time.Time { return realNow().Add(2 * time.Hour) }
	old := do(t, nil, "POST", actionOf(t, s3), map[string]any{"method": "totp", "totp_unlink": true}, tokenHeader(tok1))
	e.now = realNow
	if old.status != 403 || errorID(old.body) != "session_refresh_required" {
		t.Fatalf("unlink with an old session: %d %s", old.status, old.raw)
	}
	un := do(t, nil, "POST", actionOf(t, s3), map[string]any{"method": "totp", "totp_unlink": true}, tokenHeader(tok1))
	if un.status != 200 || un.body["state"] != "success" || findUINode(un.body, "totp_unlink") != nil || findUINode(un.body, "totp_qr") == nil {
		t.Fatalf("unlink: %d %s", un.status, un.raw)
	}
	// A new key is offered, different from the old one.
	if totpSecret(t, un) == secret {
		t.Fatal("the unlinked key is offered again")
	}
	l3 := nativeLogin(t, base, "totp@example.com")
	if l3.body["session"].(map[string]any)["identity"] == nil {
		t.Fatalf("login after unlink still withholds the identity: %s", l3.raw)
	}
}

func TestTOTPAccountNameAndIssuer(t *testing.T) {
	schema := `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"traits":{"type":"object","properties":{
		"email":{"type":"string","format":"email","title":"E-Mail","ory.sh/kratos":{"credentials":{"password":{"identifier":true}}}},
		"username":{"type":"string","ory.sh/kratos":{"credentials":{"totp":{"account_name":true}}}}},"required":["email"]}}}`
	e, srv := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"totp": true}
		c.IdentitySchema = []byte(schema)
	})
	f := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	reg := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "password": mfaPassword,
		"traits": map[string]any{"email": "acct@example.com", "username": "alice"}}, nil)
	if reg.status != 200 {
		t.Fatalf("register: %d %s", reg.status, reg.raw)
	}
	s := nativeSettings(t, srv.URL, reg.body["session_token"].(string))
	raw, _ := e.store.GetRecord(t.Context(), flow.FlowNS, s.body["id"].(string))
	var fl flow.Flow
	if err := identity.DecodeConfig(raw, &fl); err != nil {
		t.Fatal(err)
	}
	plain, _, err := e.sealer.Open(t.Context(), totpmethod.Purpose, fl.ID, fl.InternalString(totpmethod.InternalKey))
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.Contains(string(plain), "alice") || !strings.Contains(string(plain), "issuer="+host) {
		t.Fatalf("key URL %s", plain)
	}
}

func TestTOTPNotOfferedWhenDisabled(t *testing.T) {
	_, srv := testEngine(t, nil)
	token := registerNative(t, srv.URL, "plain@example.com")
	s := nativeSettings(t, srv.URL, token)
	if findUINode(s.body, "totp_qr") != nil || findUINode(s.body, "lookup_secret_regenerate") != nil {
		t.Fatalf("methods shown while disabled: %s", joinKeys(s.body))
	}
	r := do(t, nil, "POST", actionOf(t, s), map[string]any{"method": "totp", "totp_code": "123456"}, tokenHeader(token))
	if r.status != 400 || !contains(messageIDs(r.body), 4010004) {
		t.Fatalf("disabled method: %d %s", r.status, r.raw)
	}
}

func TestTOTPGuessingIsLimited(t *testing.T) {
	e, base := totpEngine(t)
	token := registerNative(t, base, "guess@example.com")
	s := nativeSettings(t, base, token)
	secret := totpSecret(t, s)
	code, _ := totp.GenerateCode(secret, time.Now())
	if r := do(t, nil, "POST", actionOf(t, s), map[string]any{"method": "totp", "totp_code": code}, tokenHeader(token)); r.status != 200 {
		t.Fatalf("link: %d %s", r.status, r.raw)
	}
	tok := nativeLogin(t, base, "guess@example.com").body["session_token"].(string)
	f := do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok))
	a := actionOf(t, f)
	wrong := wrongTOTP(secret)
	limited := 0
	for i := 1; i <= 14; i++ {
		r := do(t, nil, "POST", a, map[string]any{"method": "totp", "totp_code": wrong}, tokenHeader(tok))
		if r.status == 429 {
			limited = i
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("429 without Retry-After: %v", r.header)
			}
			break
		}
		if r.status != 400 {
			t.Fatalf("guess %d: %d %s", i, r.status, r.raw)
		}
	}
	if limited != 11 {
		t.Fatalf("10 wrong codes are evaluated, the 11th is refused: limited at %d", limited)
	}
	// While blocked even the right code is refused.
	good, _ := totp.GenerateCode(secret, time.Now())
	if r := do(t, nil, "POST", a, map[string]any{"method": "totp", "totp_code": good}, tokenHeader(tok)); r.status != 429 {
		t.Fatalf("right code while blocked: %d %s", r.status, r.raw)
	}
	// After the block the right code works.
	realNow := e.now
	e.now = func() time.Time { return realNow().Add(20 * time.Minute) }
	defer func() { e.now = realNow }()
	good, _ = totp.GenerateCode(secret, e.now())
	if r := do(t, nil, "POST", a, map[string]any{"method": "totp", "totp_code": good}, tokenHeader(tok)); r.status != 200 {
		t.Fatalf("right code after the block: %d %s", r.status, r.raw)
	}
}
