package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
)

// eventLog is a sink that keeps every event.
type eventLog struct {
	mu  sync.Mutex
	all []event.Event
}

func (l *eventLog) Record(_ context.Context, ev *event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, *ev)
}

// find returns the events of type typ.
func (l *eventLog) find(typ event.Type) []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event.Event
	for _, ev := range l.all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// TestEventsOfAJourney: sign-up, a wrong password, sign-in, a password
// change that revokes the other session, logout and the admin API's
// changes each record their event with the identity, method, reason and
// actor; and no event carries a password or a session token.
func TestEventsOfAJourney(t *testing.T) {
	log := &eventLog{}
	e, pub, adm := admEngine(t, func(c *Config) {
		c.Events = []event.Sink{log}
		c.RevokeSessionsAfterPasswordChange = true
		c.ClientIP = func(*http.Request) string { return "203.0.113.7" }
	})
	_ = e
	const email = "events@example.com"
	const password = "Gx7!qVt2#pLr9$wZk4"
	first := registerNative(t, pub.URL, email)
	reg := log.find(event.RegistrationSucceeded)
	if len(reg) != 1 || reg[0].Method != "password" || reg[0].IdentityID == "" || reg[0].SessionID == "" ||
		reg[0].IP != "203.0.113.7" || reg[0].Actor != event.ActorSelf || reg[0].Time.IsZero() {
		t.Fatalf("registration events: %+v", reg)
	}
	id := reg[0].IdentityID

	if r := admLogin(t, pub, email, "wrong-password-1234"); r.status != 400 {
		t.Fatalf("wrong password: %d %s", r.status, r.raw)
	}
	if r := admLogin(t, pub, "nobody@example.com", "wrong-password-1234"); r.status != 400 {
		t.Fatalf("unknown identifier: %d %s", r.status, r.raw)
	}
	failed := log.find(event.LoginFailed)
	if len(failed) != 2 || failed[0].Reason != "4000006" || failed[0].Method != "password" || failed[0].Identifier == "" ||
		failed[0].IdentityID != "" || failed[1].Identifier == failed[0].Identifier {
		t.Fatalf("failed logins: %+v", failed)
	}
	if failed[0].Identifier != e.kernel.Events().HashIdentifier(" EVENTS@example.com") {
		t.Fatalf("identifier hash %q is not the recorder's hash of the identifier", failed[0].Identifier)
	}
	ok := admLogin(t, pub, email, password)
	if ok.status != 200 {
		t.Fatalf("login: %d %s", ok.status, ok.raw)
	}
	second := ok.body["session_token"].(string)
	in := log.find(event.LoginSucceeded)
	if len(in) != 1 || in[0].IdentityID != id || in[0].Method != "password" || in[0].AAL != "aal1" || in[0].SessionID == "" {
		t.Fatalf("login events: %+v", in)
	}

	s := nativeSettings(t, pub.URL, second)
	if r := do(t, nil, "POST", actionOf(t, s), map[string]any{"method": "password", "password": "N3w!pass-phrase-42"},
		tokenHeader(second)); r.status != 200 {
		t.Fatalf("password change: %d %s", r.status, r.raw)
	}
	if ch := log.find(event.PasswordChanged); len(ch) != 1 || ch[0].IdentityID != id || ch[0].Flow != "settings" {
		t.Fatalf("password change events: %+v", ch)
	}
	if rv := log.find(event.SessionRevoked); len(rv) != 1 || rv[0].Count != 1 || rv[0].Actor != event.ActorSystem ||
		rv[0].Reason != "password_changed" {
		t.Fatalf("revocation events: %+v", rv)
	}
	if r := do(t, nil, "DELETE", pub.URL+"/self-service/logout/api", map[string]any{"session_token": second}, nil); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.raw)
	}
	if out := log.find(event.Logout); len(out) != 1 || out[0].IdentityID != id {
		t.Fatalf("logout events: %+v", out)
	}

	if r := do(t, nil, "PATCH", adm.URL+"/admin/identities/"+id,
		[]map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, nil); r.status != 200 {
		t.Fatalf("deactivate: %d %s", r.status, r.raw)
	}
	up := log.find(event.IdentityUpdated)
	if len(up) != 1 || up[0].Actor != event.ActorAdmin || up[0].Changes["state"].Before != "active" ||
		up[0].Changes["state"].After != "inactive" || len(up[0].Changes) != 1 {
		t.Fatalf("admin update events: %+v", up)
	}
	if r := do(t, nil, "DELETE", adm.URL+"/admin/identities/"+id, nil, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if del := log.find(event.IdentityDeleted); len(del) != 1 || del[0].IdentityID != id || del[0].Actor != event.ActorAdmin {
		t.Fatalf("admin delete events: %+v", del)
	}

	raw, _ := json.Marshal(log.all)
	for _, secret := range []string{password, "N3w!pass-phrase-42", "wrong-password-1234", first, second, email, "nobody@example.com"} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("an event carries %q: %s", secret, raw)
		}
	}
}

// TestEventsOfRateLimits: a blocked attempt records the rule that
// refused it and the client address of a per-IP rule.
func TestEventsOfRateLimits(t *testing.T) {
	log := &eventLog{}
	_, pub, _ := admEngine(t, func(c *Config) {
		c.Events = []event.Sink{log}
		c.ClientIP = func(*http.Request) string { return "198.51.100.9" }
	})
	registerNative(t, pub.URL, "limited@example.com")
	var limited bool
	for i := 0; i < 15 && !limited; i++ {
		limited = admLogin(t, pub, "limited@example.com", "wrong-password-1234").status == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("15 wrong passwords were never refused")
	}
	rl := log.find(event.RateLimited)
	if len(rl) == 0 || rl[0].Reason == "" || (rl[0].IP == "" && rl[0].Identifier == "") {
		t.Fatalf("rate-limit events: %+v", rl)
	}
	if strings.Contains(rl[0].Identifier, "limited@") {
		t.Fatalf("a rate-limit event keeps the identifier in clear: %+v", rl[0])
	}
}

// fakeAuditLog answers GET /admin/audit with canned pages and keeps the
// query it was asked.
type fakeAuditLog struct {
	mu   sync.Mutex
	last event.Query
}

func (f *fakeAuditLog) Query(_ context.Context, q event.Query) ([]event.Record, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = q
	if q.PageToken == "bad" {
		return nil, "", fmt.Errorf("%w: page_token", event.ErrInvalidQuery)
	}
	if q.PageToken == "" {
		return []event.Record{{ID: "k1", Event: event.Event{Type: event.Logout}}}, "k1", nil
	}
	return nil, "", nil
}

// TestAdminAudit: GET /admin/audit hands its filters to the audit log,
// links the next page with the opaque token, and refuses bad parameters
// with 400 in Kratos's error shape.
func TestAdminAudit(t *testing.T) {
	fl := &fakeAuditLog{}
	_, _, adm := admEngine(t, func(c *Config) { c.AuditLog = fl })
	r := do(t, nil, "GET", adm.URL+"/admin/audit?identity=abc&type=login.failed,logout&type=gate.denied&since=2025-01-02T03:04:05Z&until=1h&page_size=3", nil, nil)
	if r.status != 200 || !strings.Contains(string(r.raw), `"id":"k1"`) || !strings.Contains(string(r.raw), `"type":"logout"`) {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	q := fl.last
	if q.IdentityID != "abc" || len(q.Types) != 3 || q.Types[2] != event.GateDenied || q.PageSize != 3 ||
		!q.Since.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) || time.Since(q.Until) < 59*time.Minute {
		t.Fatalf("query: %+v", q)
	}
	link := r.header.Get("Link")
	if !strings.Contains(link, "page_token=k1") || !strings.Contains(link, `rel="next"`) || !strings.Contains(link, "identity=abc") {
		t.Fatalf("Link: %s", link)
	}
	last := do(t, nil, "GET", adm.URL+"/admin/audit?page_token=k1", nil, nil)
	if last.status != 200 || strings.TrimSpace(string(last.raw)) != "[]" || strings.Contains(last.header.Get("Link"), "next") {
		t.Fatalf("last page: %d %s %s", last.status, last.raw, last.header.Get("Link"))
	}
	for _, bad := range []string{"type=nope", "since=yesterday", "until=-1h", "page_size=x", "page=2",
		"since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", "page_token=bad"} {
		r := do(t, nil, "GET", adm.URL+"/admin/audit?"+bad, nil, nil)
		e, _ := r.body["error"].(map[string]any)
		if r.status != 400 || e == nil || e["code"] != float64(400) || e["reason"] == "" {
			t.Errorf("%s: %d %s", bad, r.status, r.raw)
		}
	}
	_, _, off := admEngine(t, nil)
	if r := do(t, nil, "GET", off.URL+"/admin/audit", nil, nil); r.status != 404 {
		t.Fatalf("without an audit log: %d %s", r.status, r.raw)
	}
}

// TestEventsOfRefusals: a refused sign-up (a password the policy refuses,
// then a taken identifier), a refused settings change and a wrong
// verification code each record their failure with its message id.
func TestEventsOfRefusals(t *testing.T) {
	log := &eventLog{}
	mailer := &memMailer{}
	_, pub, _ := admEngine(t, func(c *Config) {
		c.Events = []event.Sink{log}
		c.Mailer = mailer
		c.VerificationEnabled = true
	})
	f := do(t, nil, "GET", pub.URL+"/self-service/registration/api", nil, nil)
	weak := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "password": "password",
		"traits": map[string]any{"email": "refused@example.com"}}, nil)
	if weak.status != 400 {
		t.Fatalf("weak password: %d %s", weak.status, weak.raw)
	}
	tok := registerNative(t, pub.URL, "refused@example.com")
	f = do(t, nil, "GET", pub.URL+"/self-service/registration/api", nil, nil)
	if dup := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4",
		"traits": map[string]any{"email": "refused@example.com"}}, nil); dup.status != 400 {
		t.Fatalf("taken identifier: %d %s", dup.status, dup.raw)
	}
	failed := log.find(event.RegistrationFailed)
	if len(failed) != 2 || failed[0].Method != "password" || failed[0].Reason == "" || failed[0].Reason == "4000007" ||
		failed[1].Reason != "4000007" {
		t.Fatalf("refused sign-ups: %+v", failed)
	}

	s := nativeSettings(t, pub.URL, tok)
	if r := do(t, nil, "POST", actionOf(t, s), map[string]any{"method": "password", "password": "password"},
		tokenHeader(tok)); r.status != 400 {
		t.Fatalf("weak new password: %d %s", r.status, r.raw)
	}
	if sf := log.find(event.SettingsFailed); len(sf) != 1 || sf[0].Method != "password" || sf[0].Reason == "" || sf[0].IdentityID == "" {
		t.Fatalf("refused settings change: %+v", log.find(event.SettingsFailed))
	}

	v := do(t, nil, "GET", pub.URL+"/self-service/verification/api", nil, nil)
	va := actionOf(t, v)
	if r := do(t, nil, "POST", va, map[string]any{"method": "code", "email": "refused@example.com"}, nil); r.status != 200 {
		t.Fatalf("verification mail: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "POST", va, map[string]any{"method": "code", "code": "000000"}, nil); r.status != 200 {
		t.Fatalf("wrong verification code: %d %s", r.status, r.raw)
	}
	if vf := log.find(event.VerificationFailed); len(vf) != 1 || vf[0].Reason != "4070006" || vf[0].Method != "code" {
		t.Fatalf("wrong verification code events: %+v", vf)
	}
}
