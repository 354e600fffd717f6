package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Attacks on kratos_gate as published against other gateways, sent the
// way an attacker sends them: raw request targets (no client-side path
// cleaning), hop-by-hop tricks, spoofed routing headers, health-check
// paths and agents. The echo upstream shows what got through.

var (
	gsOnce sync.Once
	gsInst *instance
	gsSite string // kratos_gate { allow /static/* *.css; methods OPTIONS; header; assertion } → echo
	gsErr  error
)

// gsInstance is shared by this file's tests: the instance's own app site
// (kratos + kratos_gate { allow /public/* }) and one more gated site.
func gsInstance(t *testing.T) (*instance, string) {
	t.Helper()
	gsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-kratos-gatesec-")
		if err != nil {
			gsErr = err
			return
		}
		in, err := newInstance(dir, instanceOptions{GlobalKratos: []string{"rate_limits off", "cors_allowed_origins * https://spa.example.com"}})
		if err != nil {
			os.RemoveAll(dir)
			gsErr = err
			return
		}
		ports, err := freePorts(1)
		if err != nil {
			os.RemoveAll(dir)
			gsErr = err
			return
		}
		gsSite = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		in.opts.ExtraSites = fmt.Sprintf(`%s {
	kratos_gate {
		allow /static/* *.css
		methods OPTIONS
		header X-User-Email {kratos.identity.traits.email}
		assertion
	}
	reverse_proxy %s
}
`, gsSite, in.upstream.hostPort())
		atExit(func(failed bool) {
			if failed {
				fmt.Fprintf(os.Stderr, "\n===== gate-security instance output (tail) =====\n%s\n", in.logs.tail(24<<10))
			}
			in.stop()
			os.RemoveAll(dir)
		})
		gsInst, gsErr = in, in.start()
	})
	if gsErr != nil {
		t.Fatalf("gate-security instance did not start: %v", gsErr)
	}
	return gsInst, gsSite
}

// rawHTTP writes head (request line and header lines, each ending in
// \r\n, without the blank line) to base's host exactly as given and reads
// the answer. Go's client would clean or re-encode the target; an
// attacker's does not.
func rawHTTP(t *testing.T, base, head string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: reading the answer: %v", strings.SplitN(head, "\r\n", 2)[0], err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

// rawGet sends GET target with the given extra header lines.
func rawGet(t *testing.T, base, target string, lines ...string) (*http.Response, []byte, *echoResponse) {
	t.Helper()
	head := "GET " + target + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(base, "http://") + "\r\nConnection: close\r\n"
	for _, l := range lines {
		head += l + "\r\n"
	}
	r, body := rawHTTP(t, base, head)
	// The echo upstream marks its answers; the hit counter is shared by
	// the parallel tests of the instance.
	if r.Header.Get("X-Echo-Upstream") == "" {
		return r, body, nil
	}
	e := decodeJSON[echoResponse](t, body)
	return r, body, &e
}

// echoDo is gfGet for instances whose echo upstream is shared by parallel
// tests: it tells an upstream answer by its marker header only.
func echoDo(t *testing.T, hc *http.Client, method, u string, h hdr) (*http.Response, []byte, *echoResponse) {
	t.Helper()
	r, body := do(t, hc, method, u, h, nil)
	if r.Header.Get("X-Echo-Upstream") == "" {
		return r, body, nil
	}
	e := decodeJSON[echoResponse](t, body)
	return r, body, &e
}

// TestGateAllowMatchesTheForwardedPath: an allow pattern lets a request
// through only when the path the upstream receives matches it; dot
// segments, encoded separators, NUL, '?', '#', '%' and ';' never match.
func TestGateAllowMatchesTheForwardedPath(t *testing.T) {
	t.Parallel()
	in, site := gsInstance(t)
	for _, target := range []string{
		"/admin/../static/x",
		"/admin/..%2fstatic/x",
		"/admin/..%2Fstatic/x",
		"/admin/%2e%2e/static/x",
		"/admin/%2E%2E/static/x",
		"/admin/.%2e/static/x",
		"/admin/%2e./static/x",
		"/admin/..%5cstatic/x",
		"/admin/..%5Cstatic/x",
		"/admin/..\\static/x",
		"/static/..%252fadmin/secret",
		"/static/%2e%2e%252fadmin",
		"/static/..%c0%afadmin",
		"/static/./../admin/secret",
		"/static/x/..",
		"/admin/secret;.css",
		"/admin/secret;x=/static/y",
		"/static;/../admin",
		"/admin/secret%3b.css",
		"/admin/secret%3f.css",
		"/admin/secret%3F.css",
		"/admin/secret%23.css",
		"/admin/secret%00.css",
		"/admin/secret%2500.css",
		"/admin/secret%2ecss",
		"/admin./secret.css",
		"/admin/secret.css/.",
		"/admin/secret%20/x.css",
	} {
		r, body, echo := rawGet(t, site, target, "Accept: application/json")
		if echo != nil {
			t.Errorf("GET %s without a session reached the upstream as %q", target, echo.URI)
			continue
		}
		if r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 401 (or 400 from the server): %s", target, r.StatusCode, clip(body))
		}
	}

	// Plain paths still pass, with their escapes as sent.
	for target, uri := range map[string]string{
		"/static/app.js":          "/static/app.js",
		"/static/deep/logo.png":   "/static/deep/logo.png",
		"/STATIC/App.js":          "/STATIC/App.js",
		"/theme/site.css":         "/theme/site.css",
		"/static/a%20b.js":        "/static/a%20b.js",
		"/static/%E2%9C%93.png":   "/static/%E2%9C%93.png",
		"/static/x.js?next=/../a": "/static/x.js?next=/../a",
	} {
		r, body, echo := rawGet(t, site, target, "Accept: application/json")
		if echo == nil {
			t.Errorf("GET %s: allowed path did not reach the upstream: %d %s", target, r.StatusCode, clip(body))
			continue
		}
		if echo.URI != uri || len(seenIdentity(echo)) != 0 {
			t.Errorf("GET %s: upstream saw %q with identity %v, want %q and none", target, echo.URI, seenIdentity(echo), uri)
		}
	}

	// Gated means a session is needed, not that the path is refused.
	u := registerNative(t, in)
	_, body, echo := rawGet(t, site, "/admin/..%2fstatic/x", "Accept: application/json", "X-Session-Token: "+u.Token)
	if echo == nil {
		t.Fatalf("with a session: upstream not reached: %s", clip(body))
	}
	if echo.URI != "/admin/..%2fstatic/x" || strings.Join(seenIdentity(echo), ",") != u.IdentityID {
		t.Errorf("with a session: upstream saw %q, identity %v", echo.URI, seenIdentity(echo))
	}
}

// TestGateMethodsOptionsOnlyForPreflights: `methods OPTIONS` lets a real
// CORS preflight through without a session, not any OPTIONS request.
func TestGateMethodsOptionsOnlyForPreflights(t *testing.T) {
	t.Parallel()
	_, site := gsInstance(t)
	for _, h := range []hdr{
		{"Accept": "application/json"},
		{"Accept": "application/json", "Origin": "https://spa.example.com"},
		{"Accept": "application/json", "Access-Control-Request-Method": "DELETE"},
		{"Accept": "application/json", "Origin": "", "Access-Control-Request-Method": "DELETE"},
	} {
		r, body, echo := echoDo(t, plainHTTP(), "OPTIONS", site+"/admin/users", h)
		if echo != nil {
			t.Errorf("OPTIONS with %v reached the upstream without a session", h)
			continue
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
		decodeError(t, http.StatusUnauthorized, body)
	}
	// A preflight that asks the app to run it as another method, or has a
	// body, is not a preflight.
	pre := hdr{"Accept": "application/json", "Origin": "https://spa.example.com", "Access-Control-Request-Method": "DELETE"}
	for _, extra := range []hdr{{"X-HTTP-Method-Override": "DELETE"}, {"X-Http-Method": "DELETE"}, {"x-method-override": "DELETE"}} {
		h := hdr{}
		for k, v := range pre {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		r, body, echo := echoDo(t, plainHTTP(), "OPTIONS", site+"/admin/users", h)
		if echo != nil {
			t.Errorf("preflight with %v reached the upstream without a session", extra)
			continue
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	}
	for _, target := range []string{"/admin/users?_method=DELETE", "/admin/users?x=1&_method=PUT"} {
		r, body, echo := echoDo(t, plainHTTP(), "OPTIONS", site+target, pre)
		if echo != nil {
			t.Errorf("preflight %s reached the upstream without a session", target)
			continue
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	}
	withBody := "OPTIONS /admin/users HTTP/1.1\r\nHost: " + strings.TrimPrefix(site, "http://") + "\r\nConnection: close\r\n" +
		"Accept: application/json\r\nOrigin: https://spa.example.com\r\nAccess-Control-Request-Method: DELETE\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nconfirm=1"
	if r, body := rawHTTP(t, site, withBody); r.Header.Get("X-Echo-Upstream") != "" || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("preflight with a body: %d %s", r.StatusCode, clip(body))
	}

	r, body, echo := echoDo(t, plainHTTP(), "OPTIONS", site+"/admin/users", hdr{
		"Origin": "https://spa.example.com", "Access-Control-Request-Method": "DELETE",
		identityHeader: "forged", "X-User-Email": "forged@example.com",
	})
	if echo == nil {
		t.Fatalf("a CORS preflight did not reach the upstream: %d %s", r.StatusCode, clip(body))
	}
	if len(seenIdentity(echo))+len(echoHeader(echo, "X-User-Email")) != 0 {
		t.Errorf("client-sent identity headers reached the upstream on a preflight: %v", echo.Headers)
	}
}

// TestGateConnectionCannotDropGateHeaders: naming the gate's headers in
// Connection must not make the proxy drop them as hop-by-hop.
func TestGateConnectionCannotDropGateHeaders(t *testing.T) {
	t.Parallel()
	in, site := gsInstance(t)
	u := registerNative(t, in)
	for name, lines := range map[string][]string{
		"one header":      {"Connection: X-Kratos-Authenticated-Identity-Id, X-User-Email, X-Kratos-Assertion, X-Drop-Me"},
		"case and spaces": {"Connection: x-kratos-authenticated-identity-id ,X-USER-EMAIL,\tx-kratos-assertion , X-Drop-Me"},
		"several lines": {"Connection: keep-alive, X-Kratos-Authenticated-Identity-Id", "Connection: X-User-Email",
			"Connection: X-Drop-Me, X-Kratos-Assertion"},
		"underscores": {"Connection: X_Kratos_Authenticated_Identity_Id, x_user_email, X_Kratos_Assertion, X-Drop-Me"},
	} {
		lines := append([]string{"Accept: application/json", "X-Session-Token: " + u.Token, "X-Drop-Me: 1"}, lines...)
		r, body, echo := rawGet(t, site, "/private", lines...)
		if echo == nil {
			t.Errorf("%s: upstream not reached: %d %s", name, r.StatusCode, clip(body))
			continue
		}
		if got := seenIdentity(echo); len(got) != 1 || got[0] != u.IdentityID {
			t.Errorf("%s: upstream saw %s = %v, want [%s]", name, identityHeader, got, u.IdentityID)
		}
		if got := echoHeader(echo, "X-User-Email"); len(got) != 1 || got[0] != u.Email {
			t.Errorf("%s: upstream saw X-User-Email = %v, want [%s]", name, got, u.Email)
		}
		if got := echoHeader(echo, "X-Kratos-Assertion"); len(got) != 1 || strings.Count(got[0], ".") != 2 {
			t.Errorf("%s: upstream saw X-Kratos-Assertion = %v, want one JWT", name, got)
		}
		// The client's other Connection tokens keep their meaning.
		if got := echoHeader(echo, "X-Drop-Me"); len(got) != 0 {
			t.Errorf("%s: X-Drop-Me was named in Connection but reached the upstream", name)
		}
	}
}

// TestGateIgnoresSpoofedRoutingHeaders: the gate decides from the request
// Caddy routed, never from headers that name another path or host.
func TestGateIgnoresSpoofedRoutingHeaders(t *testing.T) {
	t.Parallel()
	in, _ := gsInstance(t)
	u := registerNative(t, in)
	spoof := func(path string) hdr {
		return hdr{"Accept": "application/json",
			"X-Original-URL": path, "X-Rewrite-URL": path, "X-Forwarded-Uri": path,
			"X-Forwarded-Prefix": "/public", "X-Forwarded-Path": path, "X-Original-URI": path,
			"X-Forwarded-Host": "public.example.com", "X-Forwarded-Proto": "https",
			"X-Forwarded-User": u.IdentityID, "X-Remote-User": u.IdentityID, "X-Auth-Request-User": u.IdentityID,
			"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1",
		}
	}
	// A protected path that claims to be an allowed one stays gated.
	for _, p := range []string{"/private/x", "/admin"} {
		r, body, echo := gateGet(t, in, plainHTTP(), p, spoof("/public/x"))
		if echo != nil {
			t.Errorf("GET %s with spoofed routing headers reached the upstream", p)
			continue
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	}
	// An allowed path that claims to be a protected one, or a user, gets
	// no identity.
	_, _, echo := gateGet(t, in, plainHTTP(), "/public/x", spoof("/private/x"))
	if echo == nil {
		t.Fatal("allowed path did not reach the upstream")
	}
	if got := seenIdentity(echo); len(got) != 0 {
		t.Errorf("allowed path with spoofed headers got identity %v", got)
	}
	// With a session the identity is the session's, whatever the headers say.
	other := registerNative(t, in)
	h := spoof("/public/x")
	h["X-Session-Token"] = other.Token
	_, _, echo = gateGet(t, in, plainHTTP(), "/private/x", h)
	if echo == nil {
		t.Fatal("session not accepted with spoofed headers")
	}
	if got := seenIdentity(echo); len(got) != 1 || got[0] != other.IdentityID {
		t.Errorf("identity = %v, want [%s] (the session's)", got, other.IdentityID)
	}
}

// TestGateNoHealthCheckBypass: no path that looks like a probe and no
// probe or crawler User-Agent passes the gate without a session.
func TestGateNoHealthCheckBypass(t *testing.T) {
	t.Parallel()
	in, _ := gsInstance(t)
	for _, p := range []string{
		"/healthz", "/health", "/healthcheck", "/ping", "/ready", "/livez", "/readyz", "/status", "/metrics",
		"/health/alive/../../private", "/health/alive/x", "/health/ready/../../private",
		"/.well-known/acme-challenge/x", "/.well-known/security.txt", "/.well-known/jwks.json/x",
		"/robots.txt", "/favicon.ico",
	} {
		r, body, echo := rawGet(t, in.appBase, p, "Accept: application/json")
		if echo != nil {
			t.Errorf("GET %s reached the upstream without a session", p)
			continue
		}
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s: status %d, want 401: %s", p, r.StatusCode, clip(body))
		}
	}
	// Under the API's prefix the API answers (here 404), never the upstream.
	r, body, echo := rawGet(t, in.appBase, "/.well-known/ory/../../private", "Accept: application/json")
	if echo != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /.well-known/ory/../../private: %d %s (upstream reached: %v)", r.StatusCode, clip(body), echo != nil)
	}
	// The API's own probes answer on the app site without touching the
	// upstream.
	for _, p := range []string{"/health/alive", "/health/ready"} {
		r, body, echo := rawGet(t, in.appBase, p)
		if echo != nil || r.StatusCode != http.StatusOK || string(body) != `{"status":"ok"}` {
			t.Errorf("GET %s: %d %s (upstream reached: %v)", p, r.StatusCode, clip(body), echo != nil)
		}
	}
	for _, ua := range []string{
		"kube-probe/1.30", "ELB-HealthChecker/2.0", "GoogleHC/1.0", "Consul Health Check", "Pingdom.com_bot_version_1.4",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "UptimeRobot/2.0", "",
	} {
		r, body, echo := gateGet(t, in, plainHTTP(), "/private/x", hdr{"Accept": "application/json", "User-Agent": ua})
		if echo != nil {
			t.Errorf("User-Agent %q reached the upstream without a session", ua)
			continue
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	}
}

// startGateSites starts a dedicated instance with extra sites rendered by
// sites from the instance (its echo upstream) and n more free ports.
func startGateSites(t *testing.T, opts instanceOptions, n int, sites func(in *instance, bases []string) string) (*instance, []string) {
	t.Helper()
	in, err := newInstance(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	bases := make([]string, n)
	for i, p := range ports {
		bases[i] = fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	in.opts.ExtraSites = sites(in, bases)
	t.Cleanup(func() {
		in.stop()
		if t.Failed() {
			t.Logf("--- caddy-kratos output (tail) ---\n%s", in.logs.tail(24<<10))
		}
	})
	if err := in.start(); err != nil {
		t.Fatalf("caddy-kratos did not start: %v\n--- output ---\n%s", err, in.logs.tail(24<<10))
	}
	return in, bases
}

// TestGateStripCredentials: with strip_credentials the upstream never
// sees the session token, the session cookie or a session bearer token
// (the app's own cookies and Authorization stay); without it, it does.
func TestGateStripCredentials(t *testing.T) {
	t.Parallel()
	in, bases := startGateSites(t, instanceOptions{GlobalKratos: []string{"rate_limits off"}}, 1, func(in *instance, bases []string) string {
		return fmt.Sprintf(`%s {
	kratos_gate {
		strip_credentials
		allow /public/*
		methods OPTIONS
	}
	reverse_proxy %s
}
`, bases[0], in.upstream.hostPort())
	})
	strip := bases[0]
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	sessionCookie := b.cookie("ory_kratos_session")
	cookies := "theme=dark; ory_kratos_session=" + sessionCookie.Value + "; lang=en"

	for name, tc := range map[string]struct {
		target string
		lines  []string
		ident  bool
		auth   string // Authorization the upstream must see
		cookie string // Cookie the upstream must see
	}{
		"X-Session-Token": {"/private", []string{"X-Session-Token: " + u.Token, "Authorization: Bearer app-token.jwt"}, true, "Bearer app-token.jwt", ""},
		"bearer":          {"/private", []string{"Authorization: Bearer " + u.Token, "Cookie: theme=dark"}, true, "", "theme=dark"},
		"cookie":          {"/private", []string{"Cookie: " + cookies, "Authorization: Basic dXNlcjpwdw=="}, true, "Basic dXNlcjpwdw==", "theme=dark; lang=en"},
		"cookie lines":    {"/private", []string{"Cookie: theme=dark", "Cookie: ory_kratos_session=" + sessionCookie.Value}, true, "", "theme=dark"},
		"allowed path":    {"/public/x", []string{"X-Session-Token: " + u.Token, "Authorization: bearer " + u.Token, "Cookie: " + cookies}, false, "", "theme=dark; lang=en"},
		"preflight": {"/private", []string{"Origin: https://spa.example.com", "Access-Control-Request-Method: GET",
			"X-Session-Token: " + u.Token, "X_Session_Token: " + u.Token, "Cookie: " + cookies}, false, "", "theme=dark; lang=en"},
	} {
		method := "GET"
		if name == "preflight" {
			method = "OPTIONS"
		}
		head := method + " " + tc.target + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(strip, "http://") + "\r\nConnection: close\r\nAccept: application/json\r\n"
		for _, l := range tc.lines {
			head += l + "\r\n"
		}
		r, body := rawHTTP(t, strip, head)
		if r.Header.Get("X-Echo-Upstream") == "" {
			t.Errorf("%s: upstream not reached: %d %s", name, r.StatusCode, clip(body))
			continue
		}
		echo := decodeJSON[echoResponse](t, body)
		h := http.Header(echo.Headers)
		if got := seenIdentity(&echo); (len(got) == 1 && got[0] == u.IdentityID) != tc.ident {
			t.Errorf("%s: identity %v, want set: %v", name, got, tc.ident)
		}
		for k := range h {
			if sameName := strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Session-Token"); sameName {
				t.Errorf("%s: upstream saw %s", name, k)
			}
		}
		if got := strings.Join(h.Values("Authorization"), " | "); got != tc.auth {
			t.Errorf("%s: upstream saw Authorization %q, want %q", name, got, tc.auth)
		}
		if got := strings.Join(h.Values("Cookie"), " | "); got != tc.cookie {
			t.Errorf("%s: upstream saw Cookie %q, want %q", name, got, tc.cookie)
		}
		if strings.Contains(string(body), u.Token) || strings.Contains(string(body), sessionCookie.Value) {
			t.Errorf("%s: a session credential reached the upstream: %s", name, clip(body))
		}
	}

	// Without strip_credentials (the instance's app site) the upstream
	// gets them: apps written for Kratos call whoami with them.
	_, _, echo := gateGet(t, in, plainHTTP(), "/private", hdr{"Accept": "application/json", "X-Session-Token": u.Token, "Cookie": cookies})
	if echo == nil {
		t.Fatal("default gate: upstream not reached")
	}
	if got := echoHeader(echo, "X-Session-Token"); len(got) != 1 || got[0] != u.Token {
		t.Errorf("default gate: upstream saw X-Session-Token %v", got)
	}
	if got := echoHeader(echo, "Cookie"); len(got) != 1 || got[0] != cookies {
		t.Errorf("default gate: upstream saw Cookie %v", got)
	}
}

// TestGateAssertionIssuerAndAudience: the assertion's iss is the public
// URL whatever Host and X-Forwarded-Host say, and aud is the gate's
// audience (absent when none is set).
func TestGateAssertionIssuerAndAudience(t *testing.T) {
	t.Parallel()
	in, bases := startGateSites(t, instanceOptions{GlobalKratos: []string{"rate_limits off"}}, 2, func(in *instance, bases []string) string {
		// Sites without a host, so a spoofed Host still reaches the gate.
		return fmt.Sprintf(`http://:%s {
	kratos_gate {
		assertion {
			audience https://app.example.com billing
		}
	}
	reverse_proxy %s
}

http://:%s {
	kratos_gate {
		assertion
	}
	reverse_proxy %s
}
`, portOf(bases[0]), in.upstream.hostPort(), portOf(bases[1]), in.upstream.hostPort())
	})
	u := registerNative(t, in)
	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/.well-known/jwks.json", nil, nil)
	wantStatus(t, r, body, http.StatusOK)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %s: %v", clip(body), err)
	}
	claims := func(base, host string) map[string]any {
		t.Helper()
		head := "GET /x HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\nAccept: application/json\r\n" +
			"X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Session-Token: " + u.Token + "\r\n"
		r, body := rawHTTP(t, base, head)
		if r.Header.Get("X-Echo-Upstream") == "" {
			t.Fatalf("Host %s: upstream not reached: %d %s", host, r.StatusCode, clip(body))
		}
		echo := decodeJSON[echoResponse](t, body)
		tok, err := jwt.ParseSigned(strings.Join(echoHeader(&echo, "X-Kratos-Assertion"), ""), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(tok.Headers[0].KeyID)
		if len(keys) != 1 {
			t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
		}
		var c jwt.Claims
		var m map[string]any
		if err := tok.Claims(keys[0].Key, &c, &m); err != nil {
			t.Fatalf("signature: %v", err)
		}
		if err := c.Validate(jwt.Expected{Issuer: in.publicURL, Subject: u.IdentityID, Time: time.Now()}); err != nil {
			t.Errorf("Host %s: %v (iss %q, want %q)", host, err, c.Issuer, in.publicURL)
		}
		return m
	}
	for _, host := range []string{"evil.example", "evil.example:" + portOf(bases[0]), strings.TrimPrefix(bases[0], "http://")} {
		m := claims(bases[0], host)
		if !jsonEqualAny(m["aud"], []any{"https://app.example.com", "billing"}) {
			t.Errorf("Host %s: aud %#v, want [https://app.example.com billing]", host, m["aud"])
		}
	}
	if m := claims(bases[1], "evil.example"); m["aud"] != nil {
		t.Errorf("aud %#v without an audience", m["aud"])
	}
}

func portOf(base string) string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	return p
}

func jsonEqualAny(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestCORSStarWithoutCredentials: cors_allowed_origins * answers a literal
// "*" without Access-Control-Allow-Credentials (rs/cors's behaviour), so
// no other site can read answers made with the user's cookie; a listed
// origin keeps credentials.
func TestCORSStarWithoutCredentials(t *testing.T) {
	t.Parallel()
	in, _ := gsInstance(t)
	b := newBrowser(t, in)
	u := registerNative(t, in)
	b.login(t, u.Email, u.Password)
	for _, tc := range []struct{ origin, acao, acac string }{
		{"https://evil.example", "*", ""},
		{"https://spa.example.com", "https://spa.example.com", "true"},
	} {
		r, body := do(t, b.hc, "OPTIONS", in.apiBase+"/sessions/whoami", hdr{"Origin": tc.origin,
			"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "Content-Type"}, nil)
		wantStatus(t, r, body, http.StatusNoContent)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != tc.acao {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want %q", tc.origin, got, tc.acao)
		}
		if got := r.Header.Values("Access-Control-Allow-Credentials"); strings.Join(got, ",") != tc.acac {
			t.Errorf("preflight from %s: Access-Control-Allow-Credentials %q, want %q", tc.origin, got, tc.acac)
		}
		if got := r.Header.Get("Access-Control-Allow-Methods"); got != "GET" {
			t.Errorf("preflight from %s: Access-Control-Allow-Methods %q", tc.origin, got)
		}
		// The actual request, with the session cookie as a browser sends it.
		r, body = do(t, b.hc, "GET", in.apiBase+"/sessions/whoami", hdr{"Origin": tc.origin, "Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != tc.acao {
			t.Errorf("whoami from %s: Access-Control-Allow-Origin %q, want %q", tc.origin, got, tc.acao)
		}
		if got := r.Header.Values("Access-Control-Allow-Credentials"); strings.Join(got, ",") != tc.acac {
			t.Errorf("whoami from %s: Access-Control-Allow-Credentials %q, want %q", tc.origin, got, tc.acac)
		}
	}
}
