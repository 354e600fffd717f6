package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Security headers, cookie attributes and open redirects ("Hardening"):
// the session and CSRF cookies are HttpOnly, SameSite=Lax and Secure unless
// `dev` (over http and over https); GET answers are not cacheable; the
// built-in pages send a strict CSP and refuse framing; no return_to sends
// a browser to another host.

const kratosNoCache = "private, no-cache, no-store, must-revalidate"

var (
	hhOnce sync.Once
	hhInst *instance
	hhErr  error
)

// hhInstance has every flow on (recovery, verification) and no abuse
// limits; tests on it use their own identities.
func hhInstance(t *testing.T) *instance {
	t.Helper()
	hhOnce.Do(func() {
		hhInst, hhErr = newSharedInstance("caddy-kratos-hh-", instanceOptions{GlobalKratos: []string{"rate_limits off", "recovery", "verification"}})
	})
	if hhErr != nil {
		t.Fatalf("headers instance did not start: %v", hhErr)
	}
	return hhInst
}

// hhLoadWithoutDev loads the harness configuration of in with opts but
// without the `dev` line.
func hhLoadWithoutDev(t *testing.T, in *instance, opts instanceOptions) {
	t.Helper()
	cfg := in.caddyfile(opts)
	if !strings.Contains(cfg, "\t\tdev\n") {
		t.Fatal("the harness Caddyfile has no dev line to remove")
	}
	cfg = strings.Replace(cfg, "\t\tdev\n", "", 1)
	r, body := do(t, plainHTTP(), "POST", in.adminBase+"/load", hdr{"Content-Type": "text/caddyfile"}, []byte(cfg))
	wantStatus(t, r, body, http.StatusOK)
}

// hhWantCookie checks the attributes of a Set-Cookie.
func hhWantCookie(t *testing.T, what string, c *http.Cookie, secure bool, same http.SameSite) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no Set-Cookie", what)
		return
	}
	if !c.HttpOnly {
		t.Errorf("%s: HttpOnly missing: %s", what, c.Raw)
	}
	if c.Secure != secure {
		t.Errorf("%s: Secure = %v, want %v: %s", what, c.Secure, secure, c.Raw)
	}
	if c.SameSite != same {
		t.Errorf("%s: SameSite = %v, want %v: %s", what, c.SameSite, same, c.Raw)
	}
	if c.Path != "/" || c.Domain != "" {
		t.Errorf("%s: Path %q Domain %q, want / and host-only: %s", what, c.Path, c.Domain, c.Raw)
	}
}

// hhBrowserRegister runs a browser registration with raw requests (the
// cookies are passed by hand: a cookie jar keeps Secure cookies away from
// http URLs) and returns the answers of the flow creation and the submit.
func hhBrowserRegister(t *testing.T, hc *http.Client, in *instance, base string) (create, submit *http.Response, cookies string) {
	t.Helper()
	r, body := do(t, hc, "GET", base+"/self-service/registration/browser", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	f := decodeFlow(t, body)
	csrf, _ := f.node("csrf_token").Attributes["value"].(string)
	c := cookieFrom(r, in.csrfCookieName())
	if c == nil {
		t.Fatalf("registration flow without a CSRF cookie: %v", r.Header.Values("Set-Cookie"))
	}
	cookies = c.Name + "=" + c.Value
	b, _ := json.Marshal(map[string]any{"method": "password", "csrf_token": csrf, "password": randPassword(), "traits": map[string]any{"email": randEmail()}})
	r2, body := do(t, hc, "POST", base+"/self-service/registration?flow="+f.ID, hdr{"Accept": "application/json", "Content-Type": "application/json", "Cookie": cookies}, b)
	wantStatus(t, r2, body, http.StatusOK)
	return r, r2, cookies
}

// TestHardeningCookieAttributes: without `dev` the CSRF and session
// cookies are Secure even over plain http (the engine never relaxes them
// outside dev), HttpOnly, SameSite=Lax, host-only on /; cookie_same_site
// is honoured, and None is only ever sent with Secure.
func TestHardeningCookieAttributes(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	hc := plainHTTP()

	// With dev (the harness), the same requests give cookies without
	// Secure: the comparison below is not vacuous.
	create, submit, _ := hhBrowserRegister(t, hc, in, in.apiBase)
	hhWantCookie(t, "dev: CSRF cookie", cookieFrom(create, in.csrfCookieName()), false, http.SameSiteLaxMode)
	hhWantCookie(t, "dev: session cookie", cookieFrom(submit, "ory_kratos_session"), false, http.SameSiteLaxMode)

	hhLoadWithoutDev(t, in, instanceOptions{})
	create, submit, _ = hhBrowserRegister(t, hc, in, in.apiBase)
	csrf := cookieFrom(create, in.csrfCookieName())
	hhWantCookie(t, "CSRF cookie", csrf, true, http.SameSiteLaxMode)
	if csrf != nil && (csrf.MaxAge < 364*24*3600 || csrf.MaxAge > 366*24*3600) {
		t.Errorf("CSRF cookie Max-Age = %d, want a year", csrf.MaxAge)
	}
	sess := cookieFrom(submit, "ory_kratos_session")
	hhWantCookie(t, "session cookie", sess, true, http.SameSiteLaxMode)
	if sess != nil && (sess.MaxAge < 23*3600 || sess.MaxAge > 24*3600) {
		t.Errorf("session cookie Max-Age = %d, want the 24h session lifespan", sess.MaxAge)
	}
	// The other cookie-setting answers: login, whoami's re-issue aside,
	// and the CSRF cookie of a plain GET.
	r, body := do(t, hc, "GET", in.apiBase+"/schemas", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	hhWantCookie(t, "CSRF cookie of GET /schemas", cookieFrom(r, in.csrfCookieName()), true, http.SameSiteLaxMode)

	for _, tc := range []struct {
		opt  string
		same http.SameSite
	}{{"cookie_same_site strict", http.SameSiteStrictMode}, {"cookie_same_site none", http.SameSiteNoneMode}} {
		hhLoadWithoutDev(t, in, instanceOptions{GlobalKratos: []string{tc.opt}})
		create, submit, _ = hhBrowserRegister(t, hc, in, in.apiBase)
		hhWantCookie(t, tc.opt+": CSRF cookie", cookieFrom(create, in.csrfCookieName()), true, tc.same)
		hhWantCookie(t, tc.opt+": session cookie", cookieFrom(submit, "ory_kratos_session"), true, tc.same)
	}
	// SameSite=None without Secure is dropped by browsers: in dev over
	// http the CSRF cookie falls back to Lax.
	in.loadConfig(t, instanceOptions{GlobalKratos: []string{"cookie_same_site none"}})
	create, _, _ = hhBrowserRegister(t, hc, in, in.apiBase)
	if c := cookieFrom(create, in.csrfCookieName()); c == nil || (c.SameSite == http.SameSiteNoneMode && !c.Secure) {
		t.Errorf("dev + cookie_same_site none: CSRF cookie %v is SameSite=None without Secure", c)
	}
}

// TestHardeningHTTPSCookies: a production-like site over https (Caddy's
// internal CA), no `dev`: a browser signs up, its cookies are Secure,
// HttpOnly and SameSite=Lax, it is recognised by whoami, and logout
// deletes the session cookie with the same attributes.
func TestHardeningHTTPSCookies(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	public := fmt.Sprintf("https://127.0.0.1:%d/", ports[0])
	base := strings.TrimSuffix(public, "/")
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	skip_install_trust
	auto_https disable_redirects
	kratos {
		storage %s
		public_url %s
		bcrypt_cost 4
		rate_limits off
	}
}

%s {
	tls internal
	kratos
}
`, in.adminPort, in.storageRef(), public, base)
	r, body := do(t, plainHTTP(), "POST", in.adminBase+"/load", hdr{"Content-Type": "text/caddyfile"}, []byte(cfg))
	wantStatus(t, r, body, http.StatusOK)

	// Trust Caddy's local root, wait for the site.
	rootPath := filepath.Join(in.dir, "xdg-data", "caddy", "pki", "authorities", "local", "root.crt")
	var hc *http.Client
	deadline := time.Now().Add(15 * time.Second)
	for {
		if pem, err := os.ReadFile(rootPath); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
				hc = &http.Client{Timeout: 10 * time.Second, Transport: tr, CheckRedirect: noRedirect}
				if resp, err := hc.Get(base + "/health/ready"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the https site did not come up (root %s)", rootPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	jar, _ := cookiejar.New(nil)
	hc.Jar = jar
	https := &instance{publicURL: public, apiBase: base}
	csrfName := https.csrfCookieName()

	r, body = do(t, hc, "GET", base+"/self-service/registration/browser", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	hhWantCookie(t, "https CSRF cookie", cookieFrom(r, csrfName), true, http.SameSiteLaxMode)
	f := decodeFlow(t, body)
	csrf, _ := f.node("csrf_token").Attributes["value"].(string)
	b, _ := json.Marshal(map[string]any{"method": "password", "csrf_token": csrf, "password": randPassword(), "traits": map[string]any{"email": randEmail()}})
	r, body = do(t, hc, "POST", base+"/self-service/registration?flow="+f.ID, hdr{"Accept": "application/json", "Content-Type": "application/json"}, b)
	wantStatus(t, r, body, http.StatusOK)
	hhWantCookie(t, "https session cookie", cookieFrom(r, "ory_kratos_session"), true, http.SameSiteLaxMode)

	r, body = do(t, hc, "GET", base+"/sessions/whoami", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	r, body = do(t, hc, "GET", base+"/self-service/logout/browser", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	var lf struct {
		URL string `json:"logout_url"`
	}
	if err := json.Unmarshal(body, &lf); err != nil || !strings.HasPrefix(lf.URL, public) {
		t.Fatalf("logout flow %s", clip(body))
	}
	r, body = do(t, hc, "GET", lf.URL, hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusNoContent)
	assertCookieCleared(t, r, "ory_kratos_session")
	if c := cookieFrom(r, "ory_kratos_session"); c != nil && (!c.Secure || !c.HttpOnly) {
		t.Errorf("the deleting session cookie lacks Secure or HttpOnly (a browser keeps the Secure one): %s", c.Raw)
	}
	hhWantCookie(t, "https CSRF cookie after logout", cookieFrom(r, csrfName), true, http.SameSiteLaxMode)
	r, body = do(t, hc, "GET", base+"/sessions/whoami", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusUnauthorized)
}

// TestHardeningCacheControl: every GET answer of the API — flows, errors,
// redirects, whoami, sessions, schemas, webauthn.js — carries Kratos's
// Cache-Control (samples/*.json), so no cache keeps a flow, a CSRF token or
// a session.
func TestHardeningCacheControl(t *testing.T) {
	t.Parallel()
	in := hhInstance(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	anon := newBrowser(t, in)
	loginID, _ := hbFlowID(t, anon.hc, in, "login", "browser", nil)
	apiID, _ := hbFlowID(t, plainHTTP(), in, "registration", "api", nil)
	settingsID, _ := hbFlowID(t, plainHTTP(), in, "settings", "api", hdr{"X-Session-Token": u.Token})
	type req struct {
		name string
		hc   *http.Client
		url  string
		h    hdr
	}
	js := hdr{"Accept": "application/json"}
	html := hdr{"Accept": "text/html"}
	tok := hdr{"Accept": "application/json", "X-Session-Token": u.Token}
	var reqs []req
	for _, kind := range []string{"login", "registration", "recovery", "verification"} {
		reqs = append(reqs,
			req{kind + " browser (JSON)", plainHTTP(), "/self-service/" + kind + "/browser", js},
			req{kind + " browser (redirect)", plainHTTP(), "/self-service/" + kind + "/browser", html},
			req{kind + " api", plainHTTP(), "/self-service/" + kind + "/api", js},
			req{kind + " get unknown", plainHTTP(), "/self-service/" + kind + "/flows?id=" + admRandUUID(), js},
		)
	}
	reqs = append(reqs,
		req{"login flow", anon.hc, "/self-service/login/flows?id=" + loginID, js},
		req{"login flow without CSRF cookie", plainHTTP(), "/self-service/login/flows?id=" + loginID, js},
		req{"registration api flow", plainHTTP(), "/self-service/registration/flows?id=" + apiID, js},
		req{"settings api", plainHTTP(), "/self-service/settings/api", tok},
		req{"settings flow", plainHTTP(), "/self-service/settings/flows?id=" + settingsID, tok},
		req{"settings browser", b.hc, "/self-service/settings/browser", js},
		req{"settings without session", plainHTTP(), "/self-service/settings/browser", js},
		req{"login with a session", b.hc, "/self-service/login/browser", js},
		req{"invalid aal", plainHTTP(), "/self-service/login/api?aal=x", js},
		req{"logout browser", b.hc, "/self-service/logout/browser", js},
		req{"whoami", plainHTTP(), "/sessions/whoami", tok},
		req{"whoami by cookie", b.hc, "/sessions/whoami", js},
		req{"whoami without session", plainHTTP(), "/sessions/whoami", js},
		req{"sessions", plainHTTP(), "/sessions", tok},
		req{"sessions without session", plainHTTP(), "/sessions", js},
		req{"token exchange", plainHTTP(), "/sessions/token-exchange", js},
		req{"errors stub", plainHTTP(), "/self-service/errors?id=stub:500", js},
		req{"errors unknown", plainHTTP(), "/self-service/errors?id=" + admRandUUID(), js},
		req{"schemas", plainHTTP(), "/schemas", js},
		req{"schema", plainHTTP(), "/schemas/ZGVmYXVsdA", js},
		req{"webauthn.js", plainHTTP(), "/.well-known/ory/webauthn.js", nil},
		req{"return_to refused", plainHTTP(), "/self-service/login/api?return_to=https%3A%2F%2Fevil.example%2F", js},
	)
	for _, rq := range reqs {
		r, body := do(t, rq.hc, "GET", in.apiBase+rq.url, rq.h, nil)
		if r.StatusCode >= 500 {
			t.Errorf("%s: %d %s", rq.name, r.StatusCode, clip(body))
		}
		if got := r.Header.Get("Cache-Control"); got != kratosNoCache {
			t.Errorf("%s (%d): Cache-Control %q, want %q", rq.name, r.StatusCode, got, kratosNoCache)
		}
		if r.StatusCode >= 400 {
			wantNoLeak(t, rq.name, r, body)
		}
	}
}

// hhCSPDirectives parses a Content-Security-Policy header.
func hhCSPDirectives(csp string) map[string][]string {
	out := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			out[strings.ToLower(f[0])] = f[1:]
		}
	}
	return out
}

var (
	hhInlineScript  = regexp.MustCompile(`(?is)<script\b[^>]*>`)
	hhEventHandler  = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	hhStyleAttr     = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	hhDangerousHref = regexp.MustCompile(`(?i)(href|src|action|formaction)\s*=\s*"\s*(javascript|data|vbscript):`)
)

// hhWantPageHeaders checks the headers and markup of a built-in page.
func hhWantPageHeaders(t *testing.T, what string, r *http.Response, body []byte) {
	t.Helper()
	h := r.Header
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	csp := h.Get("Content-Security-Policy")
	d := hhCSPDirectives(csp)
	want := map[string]string{"default-src": "'none'", "frame-ancestors": "'none'", "base-uri": "'none'"}
	for k, v := range want {
		if len(d[k]) != 1 || d[k][0] != v {
			t.Errorf("%s: CSP %s = %v, want %s (CSP %q)", what, k, d[k], v, csp)
		}
	}
	for _, k := range []string{"script-src", "style-src", "form-action", "img-src"} {
		if len(d[k]) == 0 {
			t.Errorf("%s: CSP has no %s (falls back to default-src; want it explicit): %q", what, k, csp)
		}
		for _, src := range d[k] {
			if src == "*" || src == "'unsafe-inline'" || src == "'unsafe-eval'" || src == "http:" || src == "https:" || (src == "data:" && k != "img-src") {
				t.Errorf("%s: CSP %s allows %s: %q", what, k, src, csp)
			}
		}
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := h.Get(k); !strings.EqualFold(got, v) {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s: Cache-Control %q, want no-store", what, cc)
	}
	for _, tag := range hhInlineScript.FindAllString(string(body), -1) {
		if !strings.Contains(strings.ToLower(tag), "src=") {
			t.Errorf("%s: inline script %q (blocked by the CSP)", what, tag)
		}
	}
	if m := hhEventHandler.FindString(string(body)); m != "" {
		t.Errorf("%s: inline event handler %q", what, m)
	}
	if m := hhStyleAttr.FindString(string(body)); m != "" {
		t.Errorf("%s: inline style %q", what, m)
	}
	if m := hhDangerousHref.FindString(string(body)); m != "" {
		t.Errorf("%s: script URL in the markup %q", what, m)
	}
	wantNoLeak(t, what, r, body)
}

// TestHardeningUIHeaders: every built-in page — with and without a flow,
// errors and the 404 page — sends the CSP, refuses framing, and is not
// cached; its assets are served with nosniff.
func TestHardeningUIHeaders(t *testing.T) {
	t.Parallel()
	in := hhInstance(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	anon := newBrowser(t, in)
	flowOf := func(br *browser, kind string) string {
		id, _ := hbFlowID(t, br.hc, in, kind, "browser", nil)
		return id
	}
	// A stored flow error (a browser navigation with a forbidden return_to).
	r, body := do(t, anon.hc, "GET", in.apiBase+"/self-service/login/browser?return_to="+url.QueryEscape("https://evil.example/<script>alert(1)</script>"), hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	errID := mustURL(r.Header.Get("Location")).Query().Get("id")
	if errID == "" {
		t.Fatalf("the forbidden return_to did not go to the error UI: %s", r.Header.Get("Location"))
	}
	pages := []struct {
		name string
		br   *browser
		path string
	}{
		{"home (signed out)", anon, "/ui/"},
		{"home (signed in)", b, "/ui/"},
		{"login", anon, "/ui/login?flow=" + flowOf(anon, "login")},
		{"registration", anon, "/ui/registration?flow=" + flowOf(anon, "registration")},
		{"recovery", anon, "/ui/recovery?flow=" + flowOf(anon, "recovery")},
		{"verification", anon, "/ui/verification?flow=" + flowOf(anon, "verification")},
		{"settings", b, "/ui/settings?flow=" + flowOf(b, "settings")},
		{"sessions", b, "/ui/sessions"},
		{"error", anon, "/ui/error?id=" + errID},
		{"error stub", anon, "/ui/error?id=stub:500"},
		{"unknown error", anon, "/ui/error?id=" + admRandUUID()},
		{"unknown page", anon, "/ui/nope"},
		{"unknown page (HTML-looking)", anon, "/ui/nope.html"},
	}
	for _, p := range pages {
		r, body := do(t, p.br.hc, "GET", in.apiBase+p.path, hdr{"Accept": "text/html"}, nil)
		if r.StatusCode >= 300 && r.StatusCode < 400 {
			t.Errorf("%s: %d to %s, want the page", p.name, r.StatusCode, r.Header.Get("Location"))
			continue
		}
		if r.StatusCode >= 500 {
			t.Errorf("%s: %d", p.name, r.StatusCode)
		}
		if strings.HasPrefix(p.name, "unknown page") && !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			// Not a page: the API's JSON 404, which a browser does not render.
			assertKratosShaped4xx(t, p.name, r, body)
			continue
		}
		hhWantPageHeaders(t, p.name+" ("+fmt.Sprint(r.StatusCode)+")", r, body)
		if p.name == "error" && strings.Contains(string(body), "<script>alert(1)") {
			t.Errorf("the error page renders the return_to unescaped")
		}
	}
	// The assets the pages load.
	r, body = do(t, anon.hc, "GET", in.apiBase+"/ui/", hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	assets := regexp.MustCompile(`(?:href|src)="(/ui/[^"?]+)`).FindAllStringSubmatch(string(body), -1)
	if len(assets) == 0 {
		t.Fatalf("no assets on /ui/: %s", clip(body))
	}
	for _, a := range assets {
		r, body := do(t, plainHTTP(), "GET", in.apiBase+a[1], nil, nil)
		wantStatus(t, r, body, http.StatusOK)
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Content-Type") == "" {
			t.Errorf("asset %s: Content-Type %q, X-Content-Type-Options %q", a[1], r.Header.Get("Content-Type"), r.Header.Get("X-Content-Type-Options"))
		}
	}
}

// hhEvil are return_to values that point a browser somewhere else than
// the allowed origins (app is the allowed app's host:port, api the public
// API's).
func hhEvil(app, api string, otherPort int) []string {
	return []string{
		"https://evil.example/", "http://evil.example", "HTTP://EVIL.EXAMPLE/", "http://evil.example:80/",
		"//evil.example/", "///evil.example/", "////evil.example", "/\\evil.example/", "\\/evil.example/", "\\\\evil.example",
		"/\\/evil.example", "http:/\\evil.example", "http:\\\\evil.example", "http:evil.example", "https:evil.example",
		"http:/evil.example", "http:///evil.example",
		"javascript:alert(1)", "JaVaScRiPt:alert(document.domain)", "javascript://%0aalert(1)", " javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
		"vbscript:msgbox(1)", "file:///etc/passwd", "ftp://evil.example/",
		"http://" + app + "@evil.example/", "http://" + app + ":x@evil.example/", "https://" + app + "@evil.example/",
		"http://" + app + ".evil.example/", "http://evil.example/" + app + "/", "http://evil.example#@" + app + "/",
		"http://evil.example?@" + app + "/", "http://evil.example\\@" + app + "/", "http://" + app + "\\@evil.example/",
		"http://" + app + "%2F@evil.example/", "http://" + app + "%40evil.example/", "http://evil%2Eexample/",
		"%68ttp://evil.example/", "http%3A%2F%2Fevil.example%2F", "http://evil。example/", "http://evil．example/",
		"//evil。example/", "http://evil.example%00." + app + "/", "http://evil.example%E3%80%82" + app + "/",
		"\thttp://evil.example/", " http://evil.example/", "http://evil.example/\r\nX-Injected: 1", "/\r\nLocation: http://evil.example/",
		"http://127.0.0.1:" + fmt.Sprint(otherPort) + "/", "https://" + app + "/", "http://localhost:" + strings.Split(app, ":")[1] + "/",
		"http://" + api + ".evil.example/", "http://" + api + "@evil.example/",
		"http://[::ffff:a9fe:a9fe]/", "http://169.254.169.254/latest/meta-data/",
		"https://evil.example/" + strings.Repeat("a", 3000),
	}
}

// hhMaybeSafe are return_to values that may be accepted only if they
// resolve onto an allowed origin (encoded or relative forms).
var hhMaybeSafe = []string{"%2F%2Fevil.example", "%2f%2fevil.example%2f", "/%2F%2Fevil.example", "/.//evil.example", "/..//evil.example",
	"/%5Cevil.example", "/ /evil.example", "/%0d%0aLocation:%20http://evil.example", "/%09/evil.example"}

// hhSafeLocation fails unless loc keeps the browser on an allowed host.
func hhSafeLocation(t *testing.T, what, loc string, allowed map[string]bool) {
	t.Helper()
	if loc == "" {
		return
	}
	if strings.ContainsAny(loc, "\\\r\n\t\x00 ") {
		t.Errorf("%s: Location %q has a backslash, blank or control character", what, loc)
		return
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Errorf("%s: Location %q does not parse: %v", what, loc, err)
		return
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
			t.Errorf("%s: relative Location %q", what, loc)
		}
		return
	}
	if (u.Scheme != "http" && u.Scheme != "https") || !allowed[u.Host] || u.User != nil {
		t.Errorf("%s: Location %q leaves the allowed origins", what, loc)
	}
}

// TestHardeningOpenRedirect: return_to pointing elsewhere (other hosts,
// protocol-relative and backslash forms, script URLs, userinfo tricks,
// encoded and Unicode forms, other ports and schemes) is refused on every
// flow init and on logout: JSON clients get 400
// self_service_flow_return_to_forbidden, browsers are never redirected off
// the allowed origins (at init, when already signed in, at logout, after
// sign-in). Allowed values still work, so the refusals are not vacuous.
func TestHardeningOpenRedirect(t *testing.T) {
	t.Parallel()
	in := hhInstance(t)
	app := strings.TrimPrefix(in.appBase, "http://")
	api := strings.TrimPrefix(in.apiBase, "http://")
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	allowedHosts := map[string]bool{app: true, api: true, "127.0.0.1:4455": true} // 4455: the harness's login, registration and error UIs
	evil := hhEvil(app, api, ports[0])
	u := registerNative(t, in)
	signedIn := newBrowser(t, in)
	signedIn.login(t, u.Email, u.Password)
	sessCookies := signedIn.cookieHeader()

	type ep struct {
		name string
		path string
		h    hdr
	}
	eps := []ep{}
	for _, kind := range []string{"login", "registration", "recovery", "verification"} {
		eps = append(eps, ep{kind + " browser", "/self-service/" + kind + "/browser", nil}, ep{kind + " api", "/self-service/" + kind + "/api", nil})
	}
	eps = append(eps,
		ep{"settings browser", "/self-service/settings/browser", hdr{"Cookie": sessCookies}},
		ep{"settings api", "/self-service/settings/api", hdr{"X-Session-Token": u.Token}},
		ep{"logout browser", "/self-service/logout/browser", hdr{"Cookie": sessCookies}},
		ep{"login api (token exchange)", "/self-service/login/api?return_session_token_exchange_code=true", nil},
	)
	withQ := func(path, k, v string) string {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return path + sep + k + "=" + url.QueryEscape(v)
	}
	send := func(method, u string, h hdr) (*http.Response, []byte, error) {
		return hbSend(plainHTTP(), method, u, h, nil)
	}
	hh := func(base hdr, accept string) hdr {
		out := hdr{"Accept": accept}
		for k, v := range base {
			out[k] = v
		}
		return out
	}

	t.Run("allowed values work", func(t *testing.T) {
		for _, e := range eps {
			for _, ok := range []string{in.appBase + "/dashboard?x=1", in.publicURL + "ui/"} {
				r, body, err := send("GET", in.apiBase+withQ(e.path, "return_to", ok), hh(e.h, "application/json"))
				if err != nil || r.StatusCode != http.StatusOK {
					t.Errorf("%s with return_to %q: %v %d %s", e.name, ok, err, statusOf(r), clip(body))
				}
			}
		}
	})

	t.Run("init refuses", func(t *testing.T) {
		for _, e := range eps {
			for _, v := range evil {
				what := fmt.Sprintf("%s return_to=%q", e.name, v)
				r, body, err := send("GET", in.apiBase+withQ(e.path, "return_to", v), hh(e.h, "application/json"))
				hbCheck(t, hbCase{method: "GET", url: what, want: hbWant{status: 400, errID: "self_service_flow_return_to_forbidden"}}, r, body, err)
				if !strings.HasSuffix(e.name, "browser") || err != nil {
					continue
				}
				r, body, err = send("GET", in.apiBase+withQ(e.path, "return_to", v), hh(e.h, "text/html"))
				if err != nil || r.StatusCode >= 500 {
					t.Errorf("%s (HTML): %v %d %s", what, err, statusOf(r), clip(body))
					continue
				}
				hhSafeLocation(t, what+" (HTML)", r.Header.Get("Location"), allowedHosts)
				if r.StatusCode == http.StatusOK {
					t.Errorf("%s (HTML): 200, want an error", what)
				}
			}
			for _, v := range hhMaybeSafe {
				what := fmt.Sprintf("%s return_to=%q", e.name, v)
				r, body, err := send("GET", in.apiBase+withQ(e.path, "return_to", v), hh(e.h, "application/json"))
				if err != nil || r.StatusCode >= 500 {
					t.Errorf("%s: %v %d", what, err, statusOf(r))
					continue
				}
				if r.StatusCode == http.StatusOK {
					var f flowJSON
					_ = json.Unmarshal(body, &f)
					hhSafeLocation(t, what+" (stored return_to)", f.ReturnTo, allowedHosts)
				} else {
					hbCheck(t, hbCase{method: "GET", url: what, want: hbWant{status: 400, errID: "self_service_flow_return_to_forbidden"}}, r, body, err)
				}
			}
		}
	})

	t.Run("signed-in shortcut", func(t *testing.T) {
		// A signed-in browser opening login, registration or recovery is
		// sent to return_to at once (Kratos): never to a foreign one.
		for _, kind := range []string{"login", "registration", "recovery"} {
			for _, v := range append(append([]string{}, evil...), hhMaybeSafe...) {
				what := fmt.Sprintf("signed-in %s return_to=%q", kind, v)
				r, _, err := send("GET", in.apiBase+withQ("/self-service/"+kind+"/browser", "return_to", v), hdr{"Accept": "text/html", "Cookie": sessCookies})
				if err != nil || r.StatusCode >= 500 {
					t.Errorf("%s: %v %d", what, err, statusOf(r))
					continue
				}
				hhSafeLocation(t, what, r.Header.Get("Location"), allowedHosts)
			}
			// Control: an allowed value is followed.
			r, _, err := send("GET", in.apiBase+withQ("/self-service/"+kind+"/browser", "return_to", in.appBase+"/signed-in"), hdr{"Accept": "text/html", "Cookie": sessCookies})
			if err != nil || !strings.HasPrefix(r.Header.Get("Location"), in.appBase+"/signed-in") {
				t.Errorf("signed-in %s with an allowed return_to: %v %v", kind, err, r.Header.Get("Location"))
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		// A fresh session per attempt: the logout link with a foreign
		// return_to (HTML) must not redirect there.
		for i, v := range append(append([]string{}, evil...), append(hhMaybeSafe, in.appBase+"/bye")...) {
			b := newBrowser(t, in)
			b.login(t, u.Email, u.Password)
			lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			r, _, err := send("GET", withQ(lf.LogoutUrl, "return_to", v), hdr{"Accept": "text/html", "Cookie": b.cookieHeader()})
			what := fmt.Sprintf("logout return_to=%q", v)
			if err != nil || r.StatusCode >= 500 {
				t.Errorf("%s: %v %d", what, err, statusOf(r))
				continue
			}
			loc := r.Header.Get("Location")
			hhSafeLocation(t, what, loc, allowedHosts)
			if i == len(evil)+len(hhMaybeSafe) && loc != in.appBase+"/bye" {
				t.Errorf("logout with an allowed return_to went to %q, want %s/bye", loc, in.appBase)
			}
		}
	})

	t.Run("after sign-in", func(t *testing.T) {
		// Values that init accepts (allowed and encoded forms) end, after
		// a form-post sign-in, on an allowed origin.
		for _, v := range append([]string{in.appBase + "/after"}, hhMaybeSafe...) {
			b := newBrowser(t, in)
			r, body := do(t, b.hc, "GET", in.apiBase+withQ("/self-service/login/browser", "return_to", v), hdr{"Accept": "application/json"}, nil)
			if r.StatusCode != http.StatusOK {
				continue // refused at init
			}
			f := decodeFlow(t, body)
			csrf, _ := f.node("csrf_token").Attributes["value"].(string)
			form := url.Values{"method": {"password"}, "identifier": {u.Email}, "password": {u.Password}, "csrf_token": {csrf}}
			r, body = do(t, b.hc, "POST", in.apiBase+"/self-service/login?flow="+f.ID, hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
			what := fmt.Sprintf("sign-in with return_to=%q", v)
			if r.StatusCode != http.StatusSeeOther {
				t.Errorf("%s: %d %s", what, r.StatusCode, clip(body))
				continue
			}
			loc := r.Header.Get("Location")
			hhSafeLocation(t, what, loc, allowedHosts)
			if v == in.appBase+"/after" && loc != v {
				t.Errorf("%s went to %q", what, loc)
			}
		}
	})
}
