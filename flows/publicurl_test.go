package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// TestNewRequiresPublicURL: there is no per-request default for the public
// URL, so an engine without one does not start.
func TestNewRequiresPublicURL(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(Config{RecoveryEnabled: true}, st, nil); !errors.Is(err, ErrNoPublicURL) {
		t.Fatalf("New without PublicURL: err = %v, want ErrNoPublicURL", err)
	}
}

// TestSpoofedHostChangesNoURL sends every request with a forged Host and
// forwarding headers: form actions, request URLs, the CSRF cookie name and
// the recovery link and code mailed to the user all stay on the configured
// public URL (issue 11, item 2: a recovery link mailed to evil.example was
// an account takeover).
func TestSpoofedHostChangesNoURL(t *testing.T) {
	mailer := &memMailer{}
	e, srv := testEngine(t, func(c *Config) {
		c.RecoveryEnabled, c.RecoveryUse, c.Mailer, c.RegistrationStyle = true, "link", mailer, "unified"
	})
	public := srv.URL + "/"
	registerNative(t, srv.URL, "victim@example.com")

	serve := func(method, target string, body any) *httptest.ResponseRecorder {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		r := httptest.NewRequest(method, target, bytes.NewReader(b))
		r.Host = "evil.example"
		r.Header.Set("X-Forwarded-Host", "evil.example")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Forwarded", "host=evil.example;proto=https")
		r.Header.Set("Accept", "application/json")
		if body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		return w
	}

	// A browser flow: its action, request_url and CSRF cookie.
	w := serve("GET", "/self-service/login/browser", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("create browser login flow: %d %s", w.Code, w.Body)
	}
	var lf map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &lf)
	if a := lf["ui"].(map[string]any)["action"].(string); !strings.HasPrefix(a, public) {
		t.Errorf("ui.action = %q, want it under %s", a, public)
	}
	if u := lf["request_url"].(string); !strings.HasPrefix(u, public) {
		t.Errorf("request_url = %q, want it under %s", u, public)
	}
	cookies := w.Result().Cookies()
	if len(cookies) == 0 || cookies[0].Name != token.CSRFCookieName(public) {
		t.Errorf("CSRF cookie = %v, want the name derived from %s", cookies, public)
	}

	// Recovery by link: the mailed URL points at the public URL.
	w = serve("GET", "/self-service/recovery/api", nil)
	var rf map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &rf)
	id, _ := rf["id"].(string)
	if w.Code != http.StatusOK || id == "" {
		t.Fatalf("create recovery flow: %d %s", w.Code, w.Body)
	}
	if w = serve("POST", "/self-service/recovery?flow="+id, map[string]any{"method": "link", "email": "victim@example.com"}); w.Code != http.StatusOK {
		t.Fatalf("recovery submit: %d %s", w.Code, w.Body)
	}
	m := mailer.last(t)
	if !strings.HasPrefix(m.RecoveryURL, public+"self-service/recovery?") || strings.Contains(m.RecoveryURL, "evil.example") {
		t.Fatalf("mailed recovery URL = %q, want it under %s", m.RecoveryURL, public)
	}
	if strings.Contains(m.RequestURL, "evil.example") {
		t.Errorf("mail's request URL = %q names the forged host", m.RequestURL)
	}
}

// TestCookieHostPrefix: with CookieHostPrefix the session and CSRF cookies
// are __Host- cookies (Secure even in dev, Path=/, no Domain), and settings
// a browser would refuse for such cookies stop the engine.
func TestCookieHostPrefix(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{SiteOptions: SiteOptions{PublicURL: "https://auth.example.com/"}, CookieOptions: CookieOptions{CookieDomain: "example.com"}}, "cookie_domain"},
		{Config{SiteOptions: SiteOptions{PublicURL: "https://auth.example.com/"}, CookieOptions: CookieOptions{CookiePath: "/auth/"}}, "cookie_path"},
		{Config{SiteOptions: SiteOptions{PublicURL: "http://auth.example.com/"}, BrowserOptions: BrowserOptions{Dev: true}}, "https"},
	} {
		tc.cfg.CookieHostPrefix = true
		if _, err := New(tc.cfg, st, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
	e, err := New(Config{
		SiteOptions:    SiteOptions{PublicURL: "http://127.0.0.1:4433/"},
		BrowserOptions: BrowserOptions{Dev: true},
		SecretOptions:  SecretOptions{CookieHostPrefix: true},
	}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.CookieName != "__Host-ory_kratos_session" || e.csrfName != "__Host-"+token.CSRFCookieName("http://127.0.0.1:4433/") {
		t.Fatalf("cookie names %q %q", e.cfg.CookieName, e.csrfName)
	}
	r := httptest.NewRequest("GET", "http://127.0.0.1:4433/self-service/login/browser", nil)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != e.csrfName || !cs[0].Secure || cs[0].Path != "/" || cs[0].Domain != "" {
		t.Fatalf("CSRF cookie %+v, want a Secure host-only __Host- cookie with Path=/", cs)
	}
	w = httptest.NewRecorder()
	e.sessions.SetCookie(w, r, "ory_st_x", time.Now().Add(time.Hour))
	cs = w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != "__Host-ory_kratos_session" || !cs[0].Secure || cs[0].Path != "/" || cs[0].Domain != "" {
		t.Fatalf("session cookie %+v", cs)
	}
}
