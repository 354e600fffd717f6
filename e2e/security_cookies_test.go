package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Cookie tossing (issue 11, "checked by reading": session and CSRF cookies
// without the __Host- prefix can be planted from a sibling subdomain, and
// the first matching cookie won). cookie_host_prefix names both cookies
// __Host-…; several cookies of one name never let a planted one win.

// browserCookieLogin signs email in through a browser flow submitted as
// JSON, handling cookies by hand (Go's cookie jar keeps Secure cookies
// away from http://, which __Host- cookies need on loopback), and returns
// the Set-Cookie of the CSRF cookie and the session cookie.
func browserCookieLogin(t *testing.T, in *instance, email, password string) (csrf, session *http.Cookie) {
	t.Helper()
	hc := plainHTTP()
	r, body := do(t, hc, "GET", in.apiBase+"/self-service/login/browser", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	for _, c := range r.Cookies() {
		if strings.Contains(c.Name, "csrf_token_") {
			csrf = c
		}
	}
	if csrf == nil {
		t.Fatalf("no CSRF cookie in %v", r.Header["Set-Cookie"])
	}
	f := decodeFlow(t, body)
	var token string
	for _, n := range f.UI.Nodes {
		if n.name() == "csrf_token" {
			token, _ = n.Attributes["value"].(string)
		}
	}
	payload, _ := json.Marshal(map[string]string{"method": "password", "identifier": email, "password": password, "csrf_token": token})
	r, body = do(t, hc, "POST", f.UI.Action, hdr{"Accept": "application/json", "Content-Type": "application/json",
		"Cookie": csrf.Name + "=" + csrf.Value}, payload)
	wantStatus(t, r, body, http.StatusOK)
	for _, c := range r.Cookies() {
		if strings.Contains(c.Name, "kratos_session") {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("browser login set no session cookie: %v", r.Header["Set-Cookie"])
	}
	return csrf, session
}

// whoamiCookie calls whoami with a raw Cookie header and returns the
// status and the identity id.
func whoamiRawCookie(t *testing.T, in *instance, cookie string) (int, string) {
	t.Helper()
	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/sessions/whoami", hdr{"Accept": "application/json", "Cookie": cookie}, nil)
	var s struct {
		Identity struct {
			ID string `json:"id"`
		} `json:"identity"`
	}
	_ = json.Unmarshal(body, &s)
	return r.StatusCode, s.Identity.ID
}

// TestSecurityHostPrefixCookies: with cookie_host_prefix the CSRF and
// session cookies are __Host- cookies (Secure, Path=/, no Domain, also on
// a loopback http public URL); whoami and the gate read the prefixed
// cookie, and a cookie of the unprefixed name — what a sibling subdomain
// can set — is not a session.
func TestSecurityHostPrefixCookies(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"cookie_host_prefix"}})
	u := registerNative(t, in)
	csrf, sess := browserCookieLogin(t, in, u.Email, u.Password)
	for _, c := range []*http.Cookie{csrf, sess} {
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
			t.Errorf("cookie %s: Secure=%v Path=%q Domain=%q HttpOnly=%v, want a Secure host-only __Host- cookie with Path=/", c.Name, c.Secure, c.Path, c.Domain, c.HttpOnly)
		}
	}
	if sess.Name != "__Host-ory_kratos_session" {
		t.Errorf("session cookie %q, want __Host-ory_kratos_session", sess.Name)
	}
	if code, id := whoamiRawCookie(t, in, sess.Name+"="+sess.Value); code != http.StatusOK || id != u.IdentityID {
		t.Fatalf("whoami with the __Host- cookie: %d %q", code, id)
	}
	if code, _ := whoamiRawCookie(t, in, "ory_kratos_session="+sess.Value); code != http.StatusUnauthorized {
		t.Fatalf("whoami with the unprefixed name: %d, want 401", code)
	}
	_, _, seen := gateGet(t, in, plainHTTP(), "/private", hdr{"Accept": "application/json", "Cookie": sess.Name + "=" + sess.Value})
	if seen == nil || len(seenIdentity(seen)) != 1 || seenIdentity(seen)[0] != u.IdentityID {
		t.Fatalf("the gate with the __Host- cookie: upstream saw %+v", seen)
	}
}

// TestSecurityTossedSessionCookie: a session cookie planted in front of
// the real one (a cookie for the parent domain, or with a longer path,
// comes first) never wins: one that does not open is skipped, and an
// active session of another identity makes the request ambiguous, which
// whoami and the gate refuse. Before: the first cookie decided — garbage
// signed the victim out, the attacker's session signed them in as the
// attacker.
func TestSecurityTossedSessionCookie(t *testing.T) {
	t.Parallel()
	in := shared(t)
	victim, attacker := registerNative(t, in), registerNative(t, in)
	_, vs := browserCookieLogin(t, in, victim.Email, victim.Password)
	_, as := browserCookieLogin(t, in, attacker.Email, attacker.Password)
	for _, tc := range []struct {
		name, cookie, want string
	}{
		{"garbage first", "ory_kratos_session=planted-garbage; ory_kratos_session=" + vs.Value, victim.IdentityID},
		{"the attacker's session first", "ory_kratos_session=" + as.Value + "; ory_kratos_session=" + vs.Value, ""},
		{"the attacker's session second", "ory_kratos_session=" + vs.Value + "; ory_kratos_session=" + as.Value, ""},
	} {
		code, id := whoamiRawCookie(t, in, tc.cookie)
		switch {
		case tc.want == "" && code != http.StatusUnauthorized:
			t.Errorf("%s: whoami %d as %q, want 401", tc.name, code, id)
		case tc.want != "" && (code != http.StatusOK || id != tc.want):
			t.Errorf("%s: whoami %d as %q, want 200 as %s", tc.name, code, id, tc.want)
		}
		r, _, seen := gateGet(t, in, plainHTTP(), "/private", hdr{"Accept": "application/json", "Cookie": tc.cookie})
		switch {
		case tc.want == "" && seen != nil:
			t.Errorf("%s: the gate let the request through as %v", tc.name, seenIdentity(seen))
		case tc.want == "" && r.StatusCode != http.StatusUnauthorized:
			t.Errorf("%s: the gate answered %d, want 401", tc.name, r.StatusCode)
		case tc.want != "" && (seen == nil || len(seenIdentity(seen)) != 1 || seenIdentity(seen)[0] != tc.want):
			t.Errorf("%s: the gate passed %+v, want %s", tc.name, seen, tc.want)
		}
	}
}
