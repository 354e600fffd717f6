package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// flowKinds are the browser flows in this scope.
var flowKinds = []struct {
	name  string // login | registration
	uiURL string
}{
	{"login", "http://127.0.0.1:4455/login"},
	{"registration", "http://127.0.0.1:4455/registration"},
}

func TestBrowserFlowContentNegotiation(t *testing.T) {
	t.Parallel()
	in := shared(t)
	for _, k := range flowKinds {
		t.Run(k.name, func(t *testing.T) {
			initURL := in.apiBase + "/self-service/" + k.name + "/browser"

			for _, accept := range []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "*/*", ""} {
				b := newBrowser(t, in)
				h := hdr{}
				if accept != "" {
					h["Accept"] = accept
				}
				r, body := do(t, b.hc, "GET", initURL, h, nil)
				if r.StatusCode != http.StatusSeeOther {
					t.Errorf("Accept %q: status %d, want 303; body %s", accept, r.StatusCode, clip(body))
					continue
				}
				loc, err := url.Parse(r.Header.Get("Location"))
				if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != k.uiURL || !isUUID(loc.Query().Get("flow")) {
					t.Errorf("Accept %q: Location = %q, want %s?flow=<uuid>", accept, r.Header.Get("Location"), k.uiURL)
					continue
				}
				c := cookieFrom(r, in.csrfCookieName())
				if c == nil {
					t.Errorf("Accept %q: no %s cookie; Set-Cookie: %v", accept, in.csrfCookieName(), r.Header.Values("Set-Cookie"))
					continue
				}
				assertCookieAttrs(t, c)
				if c.MaxAge != 31536000 {
					t.Errorf("csrf cookie Max-Age = %d, want 31536000", c.MaxAge)
				}
				if raw, err := base64.StdEncoding.DecodeString(c.Value); err != nil || len(raw) != 32 {
					t.Errorf("csrf cookie value %q is not base64 of 32 bytes", c.Value)
				}

				// The UI fetches the flow with the browser's cookie.
				id := loc.Query().Get("flow")
				r1, b1 := do(t, b.hc, "GET", in.apiBase+"/self-service/"+k.name+"/flows?id="+id, hdr{"Accept": "application/json"}, nil)
				wantStatus(t, r1, b1, http.StatusOK)
				f1 := decodeFlow(t, b1)
				r2, b2 := do(t, b.hc, "GET", in.apiBase+"/self-service/"+k.name+"/flows?id="+id, hdr{"Accept": "application/json"}, nil)
				wantStatus(t, r2, b2, http.StatusOK)
				f2 := decodeFlow(t, b2)
				if f1.ID != id || f1.Type != "browser" {
					t.Errorf("flow id/type = %s/%s", f1.ID, f1.Type)
				}
				t1, _ := f1.node("csrf_token").Attributes["value"].(string)
				t2, _ := f2.node("csrf_token").Attributes["value"].(string)
				if len(t1) != 88 || len(t2) != 88 {
					t.Errorf("masked csrf tokens have lengths %d/%d, want 88", len(t1), len(t2))
				}
				if t1 != t2 {
					// Kratos stores the flow's token: every read shows it
					// (issue 12, item 1).
					t.Errorf("csrf_token changed between two reads of the flow: %q, %q", t1, t2)
				}
			}

			for _, accept := range []string{"application/json", "application/json, text/plain, */*"} {
				b := newBrowser(t, in)
				r, body := do(t, b.hc, "GET", initURL, hdr{"Accept": accept}, nil)
				if r.StatusCode != http.StatusOK {
					t.Errorf("Accept %q: status %d, want 200; body %s", accept, r.StatusCode, clip(body))
					continue
				}
				f := decodeFlow(t, body)
				if f.Type != "browser" {
					t.Errorf("type = %q", f.Type)
				}
				if c := cookieFrom(r, in.csrfCookieName()); c == nil {
					t.Errorf("Accept %q: no csrf cookie", accept)
				} else {
					assertCookieAttrs(t, c)
				}
				if v, _ := f.node("csrf_token").Attributes["value"].(string); len(v) != 88 {
					t.Errorf("csrf_token node value length %d, want 88", len(v))
				}
			}
		})
	}
}

func TestBrowserFlowGetRequiresCSRFCookie(t *testing.T) {
	t.Parallel()
	in := shared(t)
	for _, k := range flowKinds {
		t.Run(k.name, func(t *testing.T) {
			b := newBrowser(t, in)
			r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/"+k.name+"/browser", hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusOK)
			id := decodeFlow(t, body).ID

			get := in.apiBase + "/self-service/" + k.name + "/flows?id=" + id
			r, body = do(t, plainHTTP(), "GET", get, hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusForbidden)
			if e := decodeError(t, 403, body); e.Error.ID != "security_csrf_violation" {
				t.Errorf("without cookie: error.id = %q, want security_csrf_violation", e.Error.ID)
			}

			other := newBrowser(t, in)
			do(t, other.hc, "GET", in.apiBase+"/self-service/"+k.name+"/browser", hdr{"Accept": "application/json"}, nil)
			r, body = do(t, other.hc, "GET", get, hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusForbidden)
			if e := decodeError(t, 403, body); e.Error.ID != "security_csrf_violation" {
				t.Errorf("with another browser's cookie: error.id = %q", e.Error.ID)
			}

			// The owner still gets it.
			r, body = do(t, b.hc, "GET", get, hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusOK)
		})
	}
}

// randomMaskedToken looks like a masked CSRF token but is random.
func randomMaskedToken() string {
	b := make([]byte, 64)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestBrowserSubmitCSRF(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)

	bodies := map[string]func(csrf string) map[string]any{
		"login": func(csrf string) map[string]any {
			m := map[string]any{"method": "password", "identifier": u.Email, "password": u.Password}
			if csrf != "-" {
				m["csrf_token"] = csrf
			}
			return m
		},
		"registration": func(csrf string) map[string]any {
			m := map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": randEmail()}}
			if csrf != "-" {
				m["csrf_token"] = csrf
			}
			return m
		},
	}

	for _, k := range flowKinds {
		t.Run(k.name, func(t *testing.T) {
			b := newBrowser(t, in)
			r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/"+k.name+"/browser", hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusOK)
			f := decodeFlow(t, body)
			good, _ := f.node("csrf_token").Attributes["value"].(string)

			other := newBrowser(t, in)
			r, body = do(t, other.hc, "GET", in.apiBase+"/self-service/"+k.name+"/browser", hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusOK)
			othersToken, _ := decodeFlow(t, body).node("csrf_token").Attributes["value"].(string)

			action := in.apiBase + "/self-service/" + k.name + "?flow=" + f.ID
			jsonHdr := hdr{"Accept": "application/json", "Content-Type": "application/json"}
			for _, tc := range []struct {
				name string
				hc   *http.Client
				csrf string
			}{
				{"missing token", b.hc, "-"},
				{"empty token", b.hc, ""},
				{"forged token", b.hc, randomMaskedToken()},
				{"another browser's token", b.hc, othersToken},
				{"valid token without cookie", plainHTTP(), good},
			} {
				payload, _ := json.Marshal(bodies[k.name](tc.csrf))
				r, body := do(t, tc.hc, "POST", action, jsonHdr, payload)
				if r.StatusCode != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403; body %s", tc.name, r.StatusCode, clip(body))
					continue
				}
				if e := decodeError(t, 403, body); e.Error.ID != "security_csrf_violation" {
					t.Errorf("%s: error.id = %q, want security_csrf_violation", tc.name, e.Error.ID)
				}
				if h := r.Header.Get("Ory-Error-Id"); h != "security_csrf_violation" {
					t.Errorf("%s: Ory-Error-Id = %q", tc.name, h)
				}
				if cookieFrom(r, "ory_kratos_session") != nil {
					t.Errorf("%s: a refused submit must not set a session cookie", tc.name)
				}
			}

			// The genuine submit still works afterwards.
			payload, _ := json.Marshal(bodies[k.name](good))
			r, body = do(t, b.hc, "POST", action, jsonHdr, payload)
			wantStatus(t, r, body, http.StatusOK)
			if cookieFrom(r, "ory_kratos_session") == nil {
				t.Error("successful browser submit did not set the session cookie")
			}
		})
	}
}

func TestNativeSubmitRejectsBrowserSignals(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	for _, kind := range []string{"login", "registration"} {
		t.Run(kind, func(t *testing.T) {
			for name, extra := range map[string]hdr{
				"cookie":              {"Cookie": "foo=bar"},
				"origin":              {"Origin": in.apiBase},
				"session cookie name": {"Cookie": "ory_kratos_session=" + randHex(20)},
			} {
				r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/"+kind+"/api", hdr{"Accept": "application/json"}, nil)
				wantStatus(t, r, body, http.StatusOK)
				id := decodeFlow(t, body).ID
				var payload string
				if kind == "login" {
					payload = `{"method":"password","identifier":"` + u.Email + `","password":"` + u.Password + `"}`
				} else {
					payload = `{"method":"password","password":"` + randPassword() + `","traits":{"email":"` + randEmail() + `"}}`
				}
				h := hdr{"Accept": "application/json", "Content-Type": "application/json"}
				for k, v := range extra {
					h[k] = v
				}
				r, body = do(t, plainHTTP(), "POST", in.apiBase+"/self-service/"+kind+"?flow="+id, h, []byte(payload))
				// Kratos's EnsureCSRF answers a 400 herodot error, which the
				// flow error handler renders into the flow as 4000001 with
				// the reason (like a malformed body).
				wantFlowMessage(t, name, r, body, http.StatusBadRequest, 4000001)
				if f := decodeFlow(t, body); f.ID != id {
					t.Errorf("%s: answered flow %s, want %s", name, f.ID, id)
				}
				if cookieFrom(r, "ory_kratos_session") != nil {
					t.Errorf("%s: refused native submit set a session cookie", name)
				}
			}
		})
	}

	// Cloudflare cookies are tolerated: the submit reaches the password check.
	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/login/api", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	id := decodeFlow(t, body).ID
	r, body = do(t, plainHTTP(), "POST", in.apiBase+"/self-service/login?flow="+id,
		hdr{"Accept": "application/json", "Content-Type": "application/json", "Cookie": "__cf_bm=abc123"},
		[]byte(`{"method":"password","identifier":"`+u.Email+`","password":"wrong-`+u.Password+`"}`))
	wantStatus(t, r, body, http.StatusBadRequest)
	if f := decodeFlow(t, body); !containsID(f.messageIDs(), 4000006) {
		t.Errorf("with a __cf_bm cookie: messages %v, want 4000006 (the cookie must be ignored)", f.messageIDs())
	}
}
