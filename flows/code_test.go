package flows

import (
	"context"
	"regexp"
	"sync"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
)

// memMailer records mails (the courier has its own SMTP tests; here the
// flows' side of the contract is checked).
type memMailer struct {
	mu   sync.Mutex
	sent []flow.Mail
}

func (m *memMailer) Send(_ context.Context, mail flow.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, mail)
	return nil
}

func (m *memMailer) last(t *testing.T) flow.Mail {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sent) == 0 {
		t.Fatal("no mail sent")
	}
	return m.sent[len(m.sent)-1]
}

func actionOf(t *testing.T, r resp) string {
	t.Helper()
	ui, ok := r.body["ui"].(map[string]any)
	if !ok {
		t.Fatalf("no ui in %d %s", r.status, r.raw)
	}
	return ui["action"].(string)
}

func TestCodeRegistrationAndLogin(t *testing.T) {
	mailer := &memMailer{}
	_, srv := testEngine(t, func(c *Config) {
		c.CodePasswordless, c.Mailer, c.Methods = true, mailer, map[string]bool{"code": true}
		c.RegistrationStyle = "unified"
	})
	f := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	if !regexp.MustCompile(`"value":"code"`).Match(f.raw) {
		t.Fatalf("no code method node: %s", f.raw)
	}
	a := actionOf(t, f)
	sent := do(t, nil, "POST", a, map[string]any{"method": "code", "traits": map[string]any{"email": "c@example.com"}}, nil)
	if sent.status != 200 || sent.body["state"] != "sent_email" || !contains(messageIDs(sent.body), 1040005) {
		t.Fatalf("send code: %d %s", sent.status, sent.raw)
	}
	m := mailer.last(t)
	if m.Template != "registration_code_valid" || len(m.RegistrationCode) != 6 || m.To != "c@example.com" {
		t.Fatalf("mail: %+v", m)
	}
	wrong := "000000"
	if m.RegistrationCode == wrong {
		wrong = "111111"
	}
	if r := do(t, nil, "POST", a, map[string]any{"method": "code", "code": wrong}, nil); r.status != 400 || !contains(messageIDs(r.body), 4040003) {
		t.Fatalf("wrong code: %d %s", r.status, r.raw)
	}
	ok := do(t, nil, "POST", a, map[string]any{"method": "code", "code": m.RegistrationCode}, nil)
	if ok.status != 200 || ok.body["session_token"] == nil {
		t.Fatalf("register: %d %s", ok.status, ok.raw)
	}
	addr := ok.body["identity"].(map[string]any)["verifiable_addresses"].([]any)[0].(map[string]any)
	if addr["verified"] != true || addr["status"] != "completed" {
		t.Fatalf("address not verified by the code: %v", addr)
	}
	// Passwordless login.
	l := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
	la := actionOf(t, l)
	unknown := do(t, nil, "POST", la, map[string]any{"method": "code", "identifier": "nobody@example.com"}, nil)
	if unknown.status != 400 || !contains(messageIDs(unknown.body), 4000035) {
		t.Fatalf("unknown: %d %s", unknown.status, unknown.raw)
	}
	s := do(t, nil, "POST", la, map[string]any{"method": "code", "identifier": "C@example.com"}, nil)
	if s.status != 200 || !contains(messageIDs(s.body), 1010014) {
		t.Fatalf("login code sent: %d %s", s.status, s.raw)
	}
	lm := mailer.last(t)
	if lm.Template != "login_code_valid" || len(lm.LoginCode) != 6 {
		t.Fatalf("login mail: %+v", lm)
	}
	in := do(t, nil, "POST", la, map[string]any{"method": "code", "code": lm.LoginCode}, nil)
	if in.status != 200 || in.body["session_token"] == nil {
		t.Fatalf("code login: %d %s", in.status, in.raw)
	}
	// The code is single use.
	again := do(t, nil, "POST", la, map[string]any{"method": "code", "code": lm.LoginCode}, nil)
	if again.status == 200 {
		t.Fatalf("code reused: %s", again.raw)
	}
}

func TestCodeMFA(t *testing.T) {
	mailer := &memMailer{}
	_, srv := testEngine(t, func(c *Config) {
		c.CodeMFA, c.Mailer, c.Methods = true, mailer, map[string]bool{"code": true}
		c.RegistrationStyle = "unified"
	})
	f := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	reg := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "m@example.com"}}, nil)
	if reg.status != 200 {
		t.Fatalf("register: %d %s", reg.status, reg.raw)
	}
	tok := reg.body["session_token"].(string)
	if r := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tok}); r.status != 403 || errorID(r.body) != "session_aal2_required" {
		t.Fatalf("whoami aal1 with code mfa: %d %s", r.status, r.raw)
	}
	l := do(t, nil, "GET", srv.URL+"/self-service/login/api?aal=aal2", nil, map[string]string{"X-Session-Token": tok})
	if l.status != 200 || !contains(messageIDs(l.body), 1010004) {
		t.Fatalf("aal2 flow: %d %s", l.status, l.raw)
	}
	la := actionOf(t, l)
	s := do(t, nil, "POST", la, map[string]any{"method": "code", "address": "m@example.com"}, map[string]string{"X-Session-Token": tok})
	if s.status != 200 || s.body["state"] != "sent_email" {
		t.Fatalf("send: %d %s", s.status, s.raw)
	}
	code := mailer.last(t).LoginCode
	up := do(t, nil, "POST", la, map[string]any{"method": "code", "code": code}, map[string]string{"X-Session-Token": tok})
	if up.status != 200 || up.body["session"].(map[string]any)["authenticator_assurance_level"] != "aal2" || up.body["session_token"] != tok {
		t.Fatalf("aal2 upgrade: %d %s", up.status, up.raw)
	}
	if r := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tok}); r.status != 200 {
		t.Fatalf("whoami aal2: %d %s", r.status, r.raw)
	}
}
