package flows

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
)

// TestSeveralSessionCookies: browsers send every cookie of one name that
// matches (host-only and parent-domain ones, longest path first), so a
// cookie tossed from a sibling subdomain can come before the real one. A
// planted cookie must never win over a valid one: one that does not open
// is skipped, an inactive one is ignored, and two active sessions of
// different identities give no session at all. Before: the first cookie
// decided.
func TestSeveralSessionCookies(t *testing.T) {
	e, _ := testEngine(t, nil)
	victim, _, victimTok := gateFixture(t, e, `{"email":"victim@example.com"}`, nil, "aal1")
	_, _, attackerTok := gateFixture(t, e, `{"email":"attacker@example.com"}`, nil, "aal1")
	_, _, revokedTok := gateFixture(t, e, `{"email":"old@example.com"}`, nil, "aal1")
	exp := time.Now().Add(time.Hour)
	seal := func(tok string) string { return e.cookies.Seal(tok, exp) }
	// A second session of the victim.
	victim2 := e.sessions.NewSession(httptest.NewRequest("GET", "/", nil), victim.ID, "password", "aal1")
	if err := e.store.CreateSession(context.Background(), victim2.Session); err != nil {
		t.Fatal(err)
	}
	// The "revoked" cookie is of an identity whose session is revoked.
	if s, err := e.sessions.ByToken(context.Background(), revokedTok); err != nil {
		t.Fatal(err)
	} else if err := e.store.RevokeSession(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}

	name := e.cfg.CookieName
	for _, tc := range []struct {
		name    string
		cookies []string
		want    string // identity id, or "" for no session
	}{
		{"garbage before the real one", []string{"garbage-value", seal(victimTok)}, victim.ID},
		{"a cookie sealed with another key before the real one", []string{strings.Repeat("A", 80), seal(victimTok)}, victim.ID},
		{"a revoked session before the real one", []string{seal(revokedTok), seal(victimTok)}, victim.ID},
		{"another identity's active session before the real one", []string{seal(attackerTok), seal(victimTok)}, ""},
		{"the real one before another identity's", []string{seal(victimTok), seal(attackerTok)}, ""},
		{"two sessions of one identity", []string{seal(victim2.Token), seal(victimTok)}, victim.ID},
		{"the same cookie twice", []string{seal(victimTok), seal(victimTok)}, victim.ID},
		{"many cookies, another identity among them", []string{"a", seal(victimTok), seal(victim2.Token), seal(revokedTok), seal(victimTok), seal(attackerTok)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts []string
			for _, c := range tc.cookies {
				parts = append(parts, name+"="+c)
			}
			header := strings.Join(parts, "; ")
			for _, split := range []bool{false, true} {
				r := httptest.NewRequest("GET", "/sessions/whoami", nil)
				r.Header.Set("Accept", "application/json")
				if split { // one Cookie line per cookie (HTTP/2 sends them so)
					for _, p := range parts {
						r.Header.Add("Cookie", p)
					}
				} else {
					r.Header.Set("Cookie", header)
				}
				var gs session.GateSession
				err := e.CheckGate(nil, r, session.GatePolicy{}, &gs)
				switch {
				case tc.want == "" && err == nil:
					t.Fatalf("split %v: the gate let %q in as %s", split, header, gs.IdentityID)
				case tc.want != "" && (err != nil || gs.IdentityID != tc.want):
					t.Fatalf("split %v: gate: %v %q, want %s", split, err, gs.IdentityID, tc.want)
				}
				s, err := e.sessions.Current(r)
				switch {
				case tc.want == "" && err == nil:
					t.Fatalf("split %v: currentSession gave %s", split, s.IdentityID)
				case tc.want != "" && (err != nil || s.IdentityID != tc.want):
					t.Fatalf("split %v: currentSession: %v, want %s", split, err, tc.want)
				}
				w := httptest.NewRecorder()
				e.ServeHTTP(w, r)
				if wantCode := map[bool]int{true: 200, false: 401}[tc.want != ""]; w.Code != wantCode {
					t.Fatalf("split %v: whoami %d, want %d", split, w.Code, wantCode)
				}
			}
		})
	}
}

// TestSeveralCSRFCookies: a CSRF cookie tossed from a sibling subdomain in
// front of the real one does not make the real one's submit fail, and a
// submit whose token matches only the planted cookie (not the flow's) is
// still refused.
func TestSeveralCSRFCookies(t *testing.T) {
	e, srv := testEngine(t, nil)
	get := func() (flowID, csrfCookie, csrfToken string) {
		r := httptest.NewRequest("GET", srv.URL+"/self-service/login/browser", nil)
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("create flow: %d %s", w.Code, w.Body)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == token.CSRFCookieName(e.urls.Base()) {
				csrfCookie = c.Value
			}
		}
		body := decodeTestJSON(t, w.Body.Bytes())
		return body["id"].(string), csrfCookie, csrfNodeValue(t, body)
	}
	id, real, realTok := get()
	_, planted, plantedTok := get() // the attacker's own browser
	submit := func(cookies []string, csrf string) int {
		var parts []string
		for _, c := range cookies {
			parts = append(parts, token.CSRFCookieName(e.urls.Base())+"="+c)
		}
		r := httptest.NewRequest("POST", srv.URL+"/self-service/login?flow="+id,
			strings.NewReader(`{"method":"password","identifier":"nobody@example.com","password":"x-x-x-x-x","csrf_token":"`+csrf+`"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Cookie", strings.Join(parts, "; "))
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		return w.Code
	}
	if c := submit([]string{planted, real}, realTok); c != http.StatusBadRequest {
		t.Fatalf("planted CSRF cookie in front of the real one: %d, want 400 (the login itself failing, CSRF passed)", c)
	}
	if c := submit([]string{planted, real}, plantedTok); c != http.StatusForbidden {
		t.Fatalf("the planted cookie's own token on the victim's flow: %d, want 403", c)
	}
}

func decodeTestJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// csrfNodeValue is the masked token of a flow's csrf_token node.
func csrfNodeValue(t *testing.T, body map[string]any) string {
	t.Helper()
	for _, n := range body["ui"].(map[string]any)["nodes"].([]any) {
		a := n.(map[string]any)["attributes"].(map[string]any)
		if a["name"] == "csrf_token" {
			return a["value"].(string)
		}
	}
	t.Fatal("no csrf_token node")
	return ""
}
