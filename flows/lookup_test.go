package flows

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
)

// lookupCodesOf reads the codes of a lookup_secret_codes node (used ones
// as "used").
func lookupCodesOf(t *testing.T, r resp) ([]string, []map[string]any) {
	t.Helper()
	n := mustNode(t, r, "lookup_secret_codes")
	if n["type"] != "text" || labelIDOf(n) != 1050010 {
		t.Fatalf("codes node: %v", n)
	}
	text := attrsOf(n)["text"].(map[string]any)
	if int(text["id"].(float64)) != 1050015 {
		t.Fatalf("codes text: %v", text)
	}
	var secrets []map[string]any
	for _, s := range text["context"].(map[string]any)["secrets"].([]any) {
		secrets = append(secrets, s.(map[string]any))
	}
	return strings.Split(text["text"].(string), ", "), secrets
}

func TestLookupSecrets(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.Methods = map[string]bool{"lookup_secret": true} })
	base := srv.URL
	token := registerNative(t, base, "lookup@example.com")
	s := nativeSettings(t, base, token)
	mustNode(t, s, "lookup_secret_regenerate", "true")
	action := actionOf(t, s)

	// Nothing to reveal or confirm yet.
	if r := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_reveal": true}, tokenHeader(token)); r.status != 400 {
		t.Fatalf("reveal without codes: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_confirm": true}, tokenHeader(token)); r.status != 400 {
		t.Fatalf("confirm without codes: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret"}, tokenHeader(token)); r.status != 400 || !contains(messageIDs(r.body), 4010004) {
		t.Fatalf("no action: %d %s", r.status, r.raw)
	}

	gen := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_regenerate": true}, tokenHeader(token))
	if gen.status != 200 || gen.body["state"] != "show_form" {
		t.Fatalf("regenerate: %d %s", gen.status, gen.raw)
	}
	codes, secrets := lookupCodesOf(t, gen)
	if len(codes) != 12 || len(secrets) != 12 {
		t.Fatalf("codes: %v", codes)
	}
	re := regexp.MustCompile(`^[a-z0-9]{8}$`)
	for i, c := range codes {
		if !re.MatchString(c) || secrets[i]["text"] != c || int(secrets[i]["id"].(float64)) != 1050009 ||
			secrets[i]["context"].(map[string]any)["secret"] != c {
			t.Fatalf("code %d: %q %v", i, c, secrets[i])
		}
	}
	if n := mustNode(t, gen, "lookup_secret_confirm", "true"); labelIDOf(n) != 1050011 {
		t.Fatalf("confirm node: %v", n)
	}
	if findUINode(gen.body, "lookup_secret_regenerate") != nil {
		t.Fatalf("regenerate still shown: %s", joinKeys(gen.body))
	}
	// Not saved before confirming.
	id := gen.body["identity"].(map[string]any)["id"].(string)
	if ident, _ := e.store.GetIdentity(t.Context(), id); identity.HasCredential(ident, "lookup_secret") {
		t.Fatal("codes saved before confirm")
	}
	conf := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_confirm": true}, tokenHeader(token))
	if conf.status != 200 || conf.body["state"] != "success" {
		t.Fatalf("confirm: %d %s", conf.status, conf.raw)
	}
	mustNode(t, conf, "lookup_secret_reveal", "true")
	mustNode(t, conf, "lookup_secret_disable", "true")
	if findUINode(conf.body, "lookup_secret_codes") != nil {
		t.Fatalf("codes still shown after confirm: %s", joinKeys(conf.body))
	}
	ident, _ := e.store.GetIdentity(t.Context(), id)
	cfg := string(ident.Credentials["lookup_secret"].Config)
	for _, c := range codes {
		if strings.Contains(cfg, c) {
			t.Fatalf("code %s stored in plain text: %s", c, cfg)
		}
	}
	if who := whoamiStatus(t, base, token); who.body["authenticator_assurance_level"] != "aal2" {
		t.Fatalf("confirm did not upgrade the session: %s", who.raw)
	}
	rev := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_reveal": true}, tokenHeader(token))
	if rev.status != 200 {
		t.Fatalf("reveal: %d %s", rev.status, rev.raw)
	}
	shown, _ := lookupCodesOf(t, rev)
	if strings.Join(shown, ",") != strings.Join(codes, ",") {
		t.Fatalf("revealed %v, generated %v", shown, codes)
	}
	keys := joinKeys(rev.body)
	if !strings.HasSuffix(keys, "lookup_secret:lookup_secret_codes lookup_secret:lookup_secret_disable lookup_secret:lookup_secret_regenerate") {
		t.Fatalf("reveal nodes: %s", keys)
	}

	// Second factor at sign-in.
	l := nativeLogin(t, base, "lookup@example.com")
	tok1 := l.body["session_token"].(string)
	f := do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok1))
	ln := mustNode(t, f, "lookup_secret")
	if labelIDOf(ln) != 1010007 || attrsOf(ln)["required"] != true {
		t.Fatalf("login node: %v", ln)
	}
	if n := mustNode(t, f, "method", "lookup_secret"); labelIDOf(n) != 1010010 {
		t.Fatalf("login submit: %v", n)
	}
	a := actionOf(t, f)
	if r := do(t, nil, "POST", a, map[string]any{"method": "lookup_secret", "lookup_secret": "zzzzzzzz"}, tokenHeader(tok1)); r.status != 400 || !contains(messageIDs(r.body), 4000016) {
		t.Fatalf("wrong code: %d %s", r.status, r.raw)
	}
	in := do(t, nil, "POST", a, map[string]any{"method": "lookup_secret", "lookup_secret": codes[0]}, tokenHeader(tok1))
	if in.status != 200 || in.body["session"].(map[string]any)["authenticator_assurance_level"] != "aal2" {
		t.Fatalf("lookup login: %d %s", in.status, in.raw)
	}
	if m := sessionMethods(in.body["session"].(map[string]any)); strings.Join(m, ",") != "password,lookup_secret" {
		t.Fatalf("methods %v", m)
	}
	// The same code again, on another session.
	tok2 := nativeLogin(t, base, "lookup@example.com").body["session_token"].(string)
	f2 := do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok2))
	again := do(t, nil, "POST", actionOf(t, f2), map[string]any{"method": "lookup_secret", "lookup_secret": codes[0]}, tokenHeader(tok2))
	if again.status != 400 || !contains(messageIDs(again.body), 4000012) {
		t.Fatalf("used code: %d %s", again.status, again.raw)
	}
	// Reveal marks it used.
	s2 := nativeSettings(t, base, tok1)
	rev2 := do(t, nil, "POST", actionOf(t, s2), map[string]any{"method": "lookup_secret", "lookup_secret_reveal": true}, tokenHeader(tok1))
	shown2, secrets2 := lookupCodesOf(t, rev2)
	if shown2[0] != "used" || int(secrets2[0]["id"].(float64)) != 1050014 || !strings.HasPrefix(secrets2[0]["text"].(string), "Secret was used at ") ||
		secrets2[0]["context"].(map[string]any)["used_at_unix"] == nil || shown2[1] != codes[1] {
		t.Fatalf("reveal after use: %v %v", shown2, secrets2[0])
	}

	// Concurrent uses of one code: at most one succeeds.
	const n = 8
	tokens := make([]string, n)
	actions := make([]string, n)
	for i := range tokens {
		tokens[i] = nativeLogin(t, base, "lookup@example.com").body["session_token"].(string)
		actions[i] = actionOf(t, do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tokens[i])))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range tokens {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := do(t, nil, "POST", actions[i], map[string]any{"method": "lookup_secret", "lookup_secret": codes[5]}, tokenHeader(tokens[i]))
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if statuses[200] != 1 || statuses[400] != n-1 {
		t.Fatalf("concurrent use of one code: %v", statuses)
	}

	// Disable removes the codes.
	dis := do(t, nil, "POST", actionOf(t, s2), map[string]any{"method": "lookup_secret", "lookup_secret_disable": true}, tokenHeader(tok1))
	if dis.status != 200 || findUINode(dis.body, "lookup_secret_regenerate") == nil || findUINode(dis.body, "lookup_secret_reveal") != nil {
		t.Fatalf("disable: %d %s", dis.status, dis.raw)
	}
	if ident, _ := e.store.GetIdentity(t.Context(), id); identity.HasCredential(ident, "lookup_secret") {
		t.Fatal("credential kept after disable")
	}
}

func TestLookupSecretsSurviveSecretRotation(t *testing.T) {
	old := "0123456789abcdef-old-secret"
	e, srv := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"lookup_secret": true}
		c.CookieSecrets = []string{old}
	})
	sessTok := registerNative(t, srv.URL, "rot@example.com")
	s := nativeSettings(t, srv.URL, sessTok)
	a := actionOf(t, s)
	gen := do(t, nil, "POST", a, map[string]any{"method": "lookup_secret", "lookup_secret_regenerate": true}, tokenHeader(sessTok))
	codes, _ := lookupCodesOf(t, gen)
	if r := do(t, nil, "POST", a, map[string]any{"method": "lookup_secret", "lookup_secret_confirm": true}, tokenHeader(sessTok)); r.status != 200 {
		t.Fatalf("confirm: %d %s", r.status, r.raw)
	}
	// A new secret first, the old one kept for reading.
	e.cfg.CookieSecrets = []string{"fedcba9876543210-new-secret", old}
	e.sealer = token.NewSealer(e.cfg.CipherSecrets, e.cfg.CookieSecrets, nil)
	s2 := nativeSettings(t, srv.URL, sessTok)
	rev := do(t, nil, "POST", actionOf(t, s2), map[string]any{"method": "lookup_secret", "lookup_secret_reveal": true}, tokenHeader(sessTok))
	shown, _ := lookupCodesOf(t, rev)
	if strings.Join(shown, ",") != strings.Join(codes, ",") {
		t.Fatalf("reveal after rotation: %v", shown)
	}
	tok := nativeLogin(t, srv.URL, "rot@example.com").body["session_token"].(string)
	f := do(t, nil, "GET", srv.URL+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok))
	if r := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "lookup_secret", "lookup_secret": codes[3]}, tokenHeader(tok)); r.status != 200 {
		t.Fatalf("code after rotation: %d %s", r.status, r.raw)
	}
}
