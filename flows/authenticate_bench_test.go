package flows

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// benchEngine returns an engine with one signed-in identity and a request
// carrying its session cookie.
func benchEngine(b *testing.B, cacheSize int) (*Engine, *http.Request) {
	b.Helper()
	st, err := sessionstore.Open(b.TempDir(), sessionstore.Options{SessionCacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e, err := New(Config{
		SiteOptions:     SiteOptions{PublicURL: "http://127.0.0.1:4433/"},
		BrowserOptions:  BrowserOptions{Dev: true},
		PasswordOptions: PasswordOptions{BcryptCost: 4},
		FormOptions:     FormOptions{RegistrationStyle: "unified"},
	}, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(e)
	b.Cleanup(srv.Close)
	tok := registerNativeB(b, srv.URL)
	s, err := e.sessions.ByToken(b.Context(), tok)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://app.example/", nil)
	req.AddCookie(&http.Cookie{Name: "ory_kratos_session", Value: e.cookies.Seal(tok, s.ExpiresAt)})
	return e, req
}

func registerNativeB(b *testing.B, url string) string {
	f := do(b, nil, "GET", url+"/self-service/registration/api", nil, nil)
	action := strings.Replace(f.body["ui"].(map[string]any)["action"].(string), "http://127.0.0.1:4433", url, 1)
	reg := do(b, nil, "POST", action,
		map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "bench@example.com"}}, nil)
	if reg.status != 200 {
		b.Fatalf("register: %d %s", reg.status, reg.raw)
	}
	return reg.body["session_token"].(string)
}

// BenchmarkAuthenticateCookieCacheHit is the gate's check: cookie decode
// (AES-GCM), token hash, session and identity from the in-memory caches.
func BenchmarkAuthenticateCookieCacheHit(b *testing.B) {
	e, req := benchEngine(b, 0)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Authenticate(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthenticateCookieCacheMiss disables the caches: every check
// reads the session and the identity from Badger.
func BenchmarkAuthenticateCookieCacheMiss(b *testing.B) {
	e, req := benchEngine(b, -1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Authenticate(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheckGate is the gate's check as kratos_gate calls it: like
// BenchmarkAuthenticateCookieCacheHit, but into a caller's GateSession.
func BenchmarkCheckGate(b *testing.B) {
	e, req := benchEngine(b, 0)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var gs session.GateSession
		for pb.Next() {
			if err := e.CheckGate(nil, req, session.GatePolicy{}, &gs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWhoami is GET /sessions/whoami through the engine's ServeHTTP
// with the session cookie (caches warm), response discarded.
func BenchmarkWhoami(b *testing.B) {
	e, gateReq := benchEngine(b, 0)
	req := httptest.NewRequest("GET", "http://127.0.0.1:4433/sessions/whoami", nil)
	req.Header = gateReq.Header.Clone()
	req.Header.Set("Accept", "application/json")
	w := &discardWriter{h: http.Header{}}
	e.ServeHTTP(w, req)
	if w.status != http.StatusOK {
		b.Fatalf("whoami: %d", w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			e.ServeHTTP(w, req)
		}
	})
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
