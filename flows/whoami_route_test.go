package flows

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestWhoamiDirectRouteMatchesMux: GET and HEAD /sessions/whoami skip the
// mux (routes.go) and answer exactly as the mux route does (reached here
// through an escaped spelling of the path, which the direct route leaves
// to the mux): status, every header, body; with and without a session,
// with a session cookie, with and without CORS.
func TestWhoamiDirectRouteMatchesMux(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.CORSAllowedOrigins = []string{"https://spa.example.com"} })
	_, sess, tok := gateFixture(t, e, `{"email":"route@example.com"}`, nil, "aal1")
	cookie := e.cookies.Seal(tok, sess.ExpiresAt)
	for _, tc := range []struct {
		name, method string
		hdr          map[string]string
		status       int
	}{
		{"token", http.MethodGet, map[string]string{"X-Session-Token": tok}, http.StatusOK},
		{"cookie", http.MethodGet, map[string]string{"Cookie": "ory_kratos_session=" + cookie}, http.StatusOK},
		{"head", http.MethodHead, map[string]string{"X-Session-Token": tok}, http.StatusOK},
		{"cors", http.MethodGet, map[string]string{"X-Session-Token": tok, "Origin": "https://spa.example.com"}, http.StatusOK},
		{"no session", http.MethodGet, nil, http.StatusUnauthorized},
		{"unknown token", http.MethodGet, map[string]string{"X-Session-Token": "ory_st_unknown"}, http.StatusUnauthorized},
		{"cors no session", http.MethodGet, map[string]string{"Origin": "https://spa.example.com"}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serve := func(target string) (*httptest.ResponseRecorder, *http.Request) {
				r := httptest.NewRequest(tc.method, target, nil)
				r.Header.Set("Accept", "application/json")
				for k, v := range tc.hdr {
					r.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				e.ServeHTTP(w, r)
				return w, r
			}
			direct, dr := serve(srv.URL + "/sessions/whoami")
			viaMux, mr := serve(srv.URL + "/sessions/whoam%69")
			if dr.Pattern != "" || mr.Pattern != tc.method+" /sessions/whoami" {
				t.Fatalf("patterns %q (direct) and %q (mux): the requests did not take the two routes", dr.Pattern, mr.Pattern)
			}
			if direct.Code != tc.status || viaMux.Code != tc.status {
				t.Fatalf("status %d direct, %d via the mux, want %d", direct.Code, viaMux.Code, tc.status)
			}
			if !bytes.Equal(direct.Body.Bytes(), viaMux.Body.Bytes()) {
				t.Errorf("bodies differ:\n direct %s\nmux    %s", direct.Body, viaMux.Body)
			}
			dh, mh := direct.Result().Header, viaMux.Result().Header
			for k := range mh {
				if !slices.Equal(dh[k], mh[k]) {
					t.Errorf("%s: %q direct, %q via the mux", k, dh[k], mh[k])
				}
			}
			for k := range dh {
				if _, ok := mh[k]; !ok {
					t.Errorf("%s: %q direct, absent via the mux", k, dh[k])
				}
			}
			if tc.method == http.MethodGet && dh.Get("Cache-Control") == "" {
				t.Error("no Cache-Control")
			}
		})
	}
}
