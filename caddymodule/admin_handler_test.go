package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
)

// kratos_admin refuses requests that arrived on a public address of the
// machine (unless mTLS-verified) and requests from browsers, before any
// engine sees them; other requests reach the engine (503 here: no app).
func TestAdminHandlerRefusals(t *testing.T) {
	h := &AdminHandler{logger: zap.NewNop()}
	serve := func(local net.Addr, mod func(*http.Request)) (int, string) {
		r := httptest.NewRequest("GET", "/admin/identities", nil)
		if local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, local))
		}
		if mod != nil {
			mod(r)
		}
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, r, nil); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != rec.Code {
			t.Fatalf("answer is not Kratos's error shape: %d %s", rec.Code, rec.Body)
		}
		return rec.Code, body.Error.Reason
	}
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, local := range []net.Addr{tcp("127.0.0.1:4434"), tcp("[::1]:4434"), tcp("10.1.2.3:4434"), tcp("192.168.0.2:4434"),
		tcp("172.17.0.2:4434"), tcp("100.100.1.1:4434"), tcp("[fd7a:115c:a1e0::1]:4434"), tcp("[fe80::1]:4434"),
		tcp("[::ffff:127.0.0.1]:4434"), &net.UnixAddr{Name: "/run/kratos-admin.sock", Net: "unix"}} {
		if code, reason := serve(local, nil); code != http.StatusServiceUnavailable {
			t.Errorf("local %s: %d %s, want 503 (served, no app)", local, code, reason)
		}
		for _, hdr := range []string{"Origin", "Sec-Fetch-Site"} {
			code, reason := serve(local, func(r *http.Request) { r.Header.Set(hdr, "https://evil.example") })
			if code != http.StatusForbidden || reason != "The Kratos admin API does not answer requests from web browsers." {
				t.Errorf("local %s with %s: %d %q, want 403", local, hdr, code, reason)
			}
		}
	}
	for _, local := range []net.Addr{tcp("203.0.113.7:4434"), tcp("[2001:db8::7]:4434"), tcp("[::ffff:198.51.100.1]:4434"), tcp("0.0.0.0:4434"), nil} {
		code, reason := serve(local, nil)
		if code != http.StatusForbidden || reason != "The Kratos admin API is not served on a public address of this machine." {
			t.Errorf("local %v: %d %q, want 403", local, code, reason)
		}
	}
	// A client certificate Caddy verified lets a public interface serve.
	code, _ := serve(tcp("203.0.113.7:4434"), func(r *http.Request) {
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	})
	if code != http.StatusServiceUnavailable {
		t.Errorf("public address with a verified client certificate: %d, want 503 (served)", code)
	}
}
