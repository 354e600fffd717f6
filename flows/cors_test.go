package flows

import (
	"net/http"
	"testing"
)

func TestCORS(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) {
		c.CORSAllowedOrigins = []string{"https://spa.example.com", "https://*.example.org"}
	})
	pre := func(origin, method, headers string) resp {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			h["Access-Control-Request-Headers"] = headers
		}
		return do(t, nil, "OPTIONS", srv.URL+"/sessions/whoami", nil, h)
	}

	r := pre("https://spa.example.com", "GET", "x-session-token, content-type")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight: %d", r.status)
	}
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin":      "https://spa.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET",
		"Access-Control-Allow-Headers":     "X-Session-Token, Content-Type",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	if r := pre("https://a.b.example.org", "DELETE", "X-CSRF-Token"); r.header.Get("Access-Control-Allow-Origin") != "https://a.b.example.org" {
		t.Errorf("wildcard origin not allowed: %v", r.header)
	}
	for _, c := range []struct{ origin, method, headers string }{
		{"https://evil.example.com", "GET", ""},
		{"https://example.org", "GET", ""},
		{"https://spa.example.com", "TRACE", ""},
		{"https://spa.example.com", "GET", "X-Evil"},
		{"null", "GET", ""},
	} {
		r := pre(c.origin, c.method, c.headers)
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%+v: %d %v", c, r.status, r.header)
		}
	}

	// Actual requests.
	r = do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"Origin": "https://spa.example.com"})
	if r.status != http.StatusUnauthorized || r.header.Get("Access-Control-Allow-Origin") != "https://spa.example.com" ||
		r.header.Get("Access-Control-Allow-Credentials") != "true" || r.header.Get("Access-Control-Expose-Headers") != "Content-Type, Set-Cookie" {
		t.Errorf("actual request: %d %v", r.status, r.header)
	}
	r = do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"Origin": "https://evil.example.com"})
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin got CORS headers: %v", r.header)
	}
}

func TestCORSOffByDefault(t *testing.T) {
	_, srv := testEngine(t, nil)
	r := do(t, nil, "OPTIONS", srv.URL+"/sessions/whoami", nil, map[string]string{"Origin": "https://spa.example.com", "Access-Control-Request-Method": "GET"})
	if r.status == http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS answered without configuration: %d %v", r.status, r.header)
	}
	r = do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"Origin": "https://spa.example.com"})
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers without configuration: %v", r.header)
	}
}

func TestValidCORSOrigin(t *testing.T) {
	for s, want := range map[string]bool{
		"*": true, "https://a.example.com": true, "http://localhost:3000": true, "https://*.example.com": true,
		"https://a.example.com/": true, "https://a.example.com/path": false, "ftp://x": false, "example.com": false,
		"https://*.*.example.com": false, "https://a.example.com?x": false,
	} {
		if got := ValidCORSOrigin(s); got != want {
			t.Errorf("ValidCORSOrigin(%q) = %v", s, got)
		}
	}
}

// TestCORSWildcardWithoutCredentials: "*" answers a literal
// Access-Control-Allow-Origin: * and never allows credentials (as rs/cors,
// which Kratos uses); an origin listed besides "*" keeps credentials.
func TestCORSWildcardWithoutCredentials(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) {
		c.CORSAllowedOrigins = []string{"*", "https://spa.example.com"}
	})
	for _, tc := range []struct {
		origin, acao, acac string
	}{
		{"https://evil.example.com", "*", ""},
		{"http://localhost:3000", "*", ""},
		{"https://spa.example.com", "https://spa.example.com", "true"},
		{"null", "", ""},
	} {
		pre := do(t, nil, "OPTIONS", srv.URL+"/sessions/whoami", nil, map[string]string{
			"Origin": tc.origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Session-Token"})
		act := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"Origin": tc.origin})
		for name, r := range map[string]resp{"preflight": pre, "request": act} {
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tc.acao {
				t.Errorf("%s from %s: Access-Control-Allow-Origin %q, want %q", name, tc.origin, got, tc.acao)
			}
			if got, ok := r.header["Access-Control-Allow-Credentials"]; tc.acac == "" && ok || tc.acac != "" && (len(got) != 1 || got[0] != tc.acac) {
				t.Errorf("%s from %s: Access-Control-Allow-Credentials %q, want %q", name, tc.origin, got, tc.acac)
			}
		}
		if tc.acao != "" {
			if pre.header.Get("Access-Control-Allow-Methods") != "GET" || pre.header.Get("Access-Control-Allow-Headers") != "X-Session-Token" {
				t.Errorf("preflight from %s: %v", tc.origin, pre.header)
			}
			if act.header.Get("Access-Control-Expose-Headers") != "Content-Type, Set-Cookie" {
				t.Errorf("request from %s: %v", tc.origin, act.header)
			}
		}
	}
	// "*" alone: every origin gets "*", none gets credentials.
	_, srv = testEngine(t, func(c *Config) { c.CORSAllowedOrigins = []string{"*"} })
	r := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"Origin": "https://spa.example.com"})
	if r.header.Get("Access-Control-Allow-Origin") != "*" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("\"*\" only: %v", r.header)
	}
}
