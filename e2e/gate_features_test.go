package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	ory "github.com/ory/client-go"
	"github.com/pquerna/otp/totp"
)

// The gate's production features through a real Caddy: identity headers
// and placeholders, per-route AAL policy, pass-through methods, forced
// unauthenticated answers, the signed assertion with its JWKS, whoami as
// a forward_auth target, sliding sessions and revocation under load.

// gfSites are the extra sites of the gate-features instance.
type gfSites struct {
	headers string // kratos_gate with header/assertion/methods → echo
	respond string // kratos_gate → respond with placeholders
	policy  string // handle blocks with per-route policies → echo
	forward string // forward_auth to the API's whoami → echo
}

var (
	gfOnce  sync.Once
	gfInst  *instance
	gfSite  gfSites
	gfErr   error
	gfSlide struct {
		once sync.Once
		in   *instance
		err  error
	}
)

// gfInstance is shared by this file's tests: TOTP on (for aal2), and four
// extra sites built on the instance's own ports and echo upstream.
func gfInstance(t *testing.T) (*instance, gfSites) {
	t.Helper()
	gfOnce.Do(func() {
		gfInst, gfSite, gfErr = startGFInstance()
	})
	if gfErr != nil {
		t.Fatalf("gate-features instance did not start: %v", gfErr)
	}
	return gfInst, gfSite
}

func startGFInstance() (*instance, gfSites, error) {
	var s gfSites
	dir, err := os.MkdirTemp("", "caddy-kratos-gatefeatures-")
	if err != nil {
		return nil, s, err
	}
	in, err := newInstance(dir, instanceOptions{GlobalKratos: []string{"methods totp lookup_secret"}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, s, err
	}
	ports, err := freePorts(4)
	if err != nil {
		os.RemoveAll(dir)
		return nil, s, err
	}
	for i, p := range []*string{&s.headers, &s.respond, &s.policy, &s.forward} {
		*p = fmt.Sprintf("http://127.0.0.1:%d", ports[i])
	}
	echo := in.upstream.hostPort()
	in.opts.ExtraSites = fmt.Sprintf(`%s {
	kratos_gate {
		methods OPTIONS
		header X-User-Email {kratos.identity.traits.email}
		header X-AAL {kratos.session.aal}
		header X-Session-Id {kratos.session.id}
		header X-Methods {kratos.session.methods}
		header X-Greeting "hello {kratos.identity.traits.email} on {http.request.host}"
		assertion {
			ttl 60s
			traits email
		}
	}
	reverse_proxy %s {
		header_up X-Expires {kratos.session.expires_at}
		header_up X-Auth-User {http.auth.user.id}
	}
}

%s {
	kratos_gate
	respond "{http.auth.user.id}|{kratos.identity.traits.email}|{kratos.session.aal}|{kratos.session.methods}|{kratos.identity.traits.nope}"
}

%s {
	handle /admin/* {
		kratos_gate {
			required_aal aal2
		}
		reverse_proxy %s
	}
	handle /api/* {
		kratos_gate {
			required_aal aal1
			on_unauthenticated 401
		}
		reverse_proxy %s
	}
	handle {
		kratos_gate {
			on_unauthenticated redirect
		}
		reverse_proxy %s
	}
}

%s {
	forward_auth 127.0.0.1:%d {
		uri /sessions/whoami
		copy_headers X-Kratos-Authenticated-Identity-Id
	}
	reverse_proxy %s
}
`, s.headers, echo, s.respond, s.policy, echo, echo, echo, s.forward, in.apiPort, echo)
	atExit(func(failed bool) {
		if failed {
			fmt.Fprintf(os.Stderr, "\n===== gate-features instance output (tail) =====\n%s\n", in.logs.tail(24<<10))
		}
		in.stop()
		os.RemoveAll(dir)
	})
	return in, s, in.start()
}

// gfGet requests url and reports what the echo upstream saw (nil when
// the request did not reach it).
func gfGet(t *testing.T, in *instance, hc *http.Client, method, u string, h hdr) (*http.Response, []byte, *echoResponse) {
	t.Helper()
	h, probe := withProbe(h)
	r, body := do(t, hc, method, u, h, nil)
	if r.Header.Get("X-Echo-Upstream") == "" {
		if in.upstream.saw(probe) {
			t.Errorf("%s %s: the upstream was reached but its answer was not returned", method, u)
		}
		return r, body, nil
	}
	e := decodeJSON[echoResponse](t, body)
	return r, body, &e
}

func echoHeader(e *echoResponse, name string) []string {
	return http.Header(e.Headers).Values(name)
}

func TestGateIdentityHeadersAndPlaceholders(t *testing.T) {
	t.Parallel()
	in, s := gfInstance(t)
	u := registerNative(t, in)
	tok := hdr{"Accept": "application/json", "X-Session-Token": u.Token}

	t.Run("mapped headers, placeholders in header_up, forged copies dropped", func(t *testing.T) {
		h := hdr{"Accept": "application/json", "X-Session-Token": u.Token,
			"X-User-Email": "forged@example.com", "X_Aal": "aal2", "X-Kratos-Assertion": "forged",
			"X-Kratos-Authenticated-Identity-Id": "forged"}
		r, body, echo := gfGet(t, in, plainHTTP(), "GET", s.headers+"/p", h)
		if echo == nil {
			t.Fatalf("upstream not reached: %d %s", r.StatusCode, clip(body))
		}
		host := mustURL(s.headers).Hostname() // {http.request.host} has no port
		for name, want := range map[string]string{
			identityHeader: u.IdentityID,
			"X-User-Email": u.Email,
			"X-Aal":        "aal1",
			"X-Session-Id": u.SessionID,
			"X-Methods":    "password",
			"X-Greeting":   "hello " + u.Email + " on " + host,
			"X-Auth-User":  u.IdentityID,
		} {
			if got := echoHeader(echo, name); len(got) != 1 || got[0] != want {
				t.Errorf("upstream saw %s = %q, want [%q]", name, got, want)
			}
		}
		if _, ok := echo.Headers["X_Aal"]; ok {
			t.Error("the underscore spelling of a mapped header reached the upstream")
		}
		exp, err := time.Parse(time.RFC3339, strings.Join(echoHeader(echo, "X-Expires"), ""))
		if err != nil || time.Until(exp) < 23*time.Hour {
			t.Errorf("X-Expires = %q (%v)", echoHeader(echo, "X-Expires"), err)
		}
		if got := echoHeader(echo, "X-Kratos-Assertion"); len(got) != 1 || got[0] == "forged" {
			t.Errorf("assertion header %q", got)
		}
	})

	t.Run("placeholders in respond", func(t *testing.T) {
		r, body := do(t, plainHTTP(), "GET", s.respond+"/", tok, nil)
		want := u.IdentityID + "|" + u.Email + "|aal1|password|"
		if r.StatusCode != 200 || string(body) != want {
			t.Errorf("respond: %d %q, want %q", r.StatusCode, body, want)
		}
	})

	t.Run("methods pass without a session, stripped all the same", func(t *testing.T) {
		// A CORS preflight: a plain OPTIONS is gated (TestGateMethodsOptionsOnlyForPreflights).
		r, body, echo := gfGet(t, in, plainHTTP(), "OPTIONS", s.headers+"/cors", hdr{"Origin": "https://spa.example.com",
			"Access-Control-Request-Method": "GET", "X-User-Email": "forged@example.com", identityHeader: "forged"})
		if echo == nil {
			t.Fatalf("OPTIONS without a session did not reach the upstream: %d %s", r.StatusCode, clip(body))
		}
		if len(echoHeader(echo, "X-User-Email"))+len(echoHeader(echo, identityHeader)) != 0 {
			t.Errorf("client-sent headers reached the upstream on a pass-through method: %v", echo.Headers)
		}
		r, body, echo = gfGet(t, in, plainHTTP(), "GET", s.headers+"/cors", hdr{"Accept": "application/json"})
		if echo != nil {
			t.Fatal("GET without a session passed")
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	})
}

func TestGateAssertionVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	in, s := gfInstance(t)
	u := registerNative(t, in)
	_, _, echo := gfGet(t, in, plainHTTP(), "GET", s.headers+"/jwt", hdr{"Accept": "application/json", "X-Session-Token": u.Token})
	if echo == nil {
		t.Fatal("upstream not reached")
	}
	raw := strings.Join(echoHeader(echo, "X-Kratos-Assertion"), "")

	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/.well-known/jwks.json", nil, nil)
	wantStatus(t, r, body, http.StatusOK)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %s: %v", clip(body), err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("assertion %q: %v", raw, err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", tok.Headers[0].KeyID)
	}
	var c struct {
		jwt.Claims
		SID    string         `json:"sid"`
		AAL    string         `json:"aal"`
		AMR    []string       `json:"amr"`
		Traits map[string]any `json:"traits"`
	}
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := c.Claims.Validate(jwt.Expected{Issuer: in.publicURL, Subject: u.IdentityID, Time: time.Now()}); err != nil {
		t.Errorf("claims: %v (%+v)", err, c)
	}
	if ttl := c.Expiry.Time().Sub(c.IssuedAt.Time()); ttl != time.Minute {
		t.Errorf("exp - iat = %v, want 1m", ttl)
	}
	if c.SID != u.SessionID || c.AAL != "aal1" || strings.Join(c.AMR, ",") != "password" || c.Traits["email"] != u.Email || len(c.Traits) != 1 {
		t.Errorf("claims %+v", c)
	}
	// The next request reuses the token (signed once per ttl/4).
	_, _, echo = gfGet(t, in, plainHTTP(), "GET", s.headers+"/jwt", hdr{"Accept": "application/json", "X-Session-Token": u.Token})
	if echo == nil || strings.Join(echoHeader(echo, "X-Kratos-Assertion"), "") != raw {
		t.Error("assertion re-signed on the next request")
	}
}

// gfEnableTOTP links TOTP to the identity of token (that session becomes
// aal2) and returns the secret.
func gfEnableTOTP(t *testing.T, in *instance, token string) string {
	t.Helper()
	c := in.api()
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	sec := mfaNode(s.Ui.Nodes, "totp_secret_key")
	if sec == nil {
		t.Fatal("no totp_secret_key node")
	}
	secret, _ := sec.Attributes.UiNodeTextAttributes.Text.Context["secret"].(string)
	code, _ := totp.GenerateCode(secret, time.Now())
	body := ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(code)}
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(token).
		UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return secret
}

func TestGatePerRoutePolicy(t *testing.T) {
	t.Parallel()
	in, s := gfInstance(t)
	html := "text/html,application/xhtml+xml"

	t.Run("aal2 route, no second factor: settings", func(t *testing.T) {
		u := registerNative(t, in)
		r, body, echo := gfGet(t, in, plainHTTP(), "GET", s.policy+"/admin/x", hdr{"Accept": html, "X-Session-Token": u.Token})
		if echo != nil {
			t.Fatal("aal1 session passed an aal2 route")
		}
		wantStatus(t, r, body, http.StatusSeeOther)
		loc := mustURL(r.Header.Get("Location"))
		if loc.Path != "/self-service/settings/browser" || loc.Query().Get("return_to") != s.policy+"/admin/x" {
			t.Errorf("Location %s", loc)
		}
		r, body, _ = gfGet(t, in, plainHTTP(), "GET", s.policy+"/admin/x", hdr{"Accept": "application/json", "X-Session-Token": u.Token})
		wantStatus(t, r, body, http.StatusForbidden)
		e := decodeError(t, http.StatusForbidden, body)
		var extra struct {
			Redirect string `json:"redirect_browser_to"`
		}
		_ = json.Unmarshal(body, &extra)
		if e.Error.ID != "session_aal2_required" || !strings.Contains(extra.Redirect, "/self-service/settings/browser") {
			t.Errorf("403 body %s", clip(body))
		}
		// The rest of the site is fine with aal1 (highest_available, and
		// the identity has no second factor).
		if _, _, echo := gfGet(t, in, plainHTTP(), "GET", s.policy+"/home", hdr{"Accept": html, "X-Session-Token": u.Token}); echo == nil {
			t.Error("aal1 session refused on the default route")
		}
	})

	t.Run("second factor: aal2 session passes, aal1 session is sent to the aal2 login", func(t *testing.T) {
		u := registerNative(t, in)
		gfEnableTOTP(t, in, u.Token) // this session is now aal2
		if _, _, echo := gfGet(t, in, plainHTTP(), "GET", s.policy+"/admin/x", hdr{"Accept": "application/json", "X-Session-Token": u.Token}); echo == nil {
			t.Fatal("aal2 session refused on the aal2 route")
		} else if got := echoHeader(echo, identityHeader); len(got) != 1 || got[0] != u.IdentityID {
			t.Errorf("identity header %q", got)
		}
		tok, _ := loginNative(t, in, u.Email, u.Password) // aal1 only
		for _, p := range []string{"/admin/x", "/home"} {
			r, body, echo := gfGet(t, in, plainHTTP(), "GET", s.policy+p, hdr{"Accept": html, "X-Session-Token": tok})
			if echo != nil {
				t.Fatalf("%s: aal1 session of a TOTP identity passed", p)
			}
			wantStatus(t, r, body, http.StatusSeeOther)
			loc := mustURL(r.Header.Get("Location"))
			if loc.Path != "/self-service/login/browser" || loc.Query().Get("aal") != "aal2" || loc.Query().Get("return_to") != s.policy+p {
				t.Errorf("%s: Location %s", p, loc)
			}
		}
		// aal1 route: any session.
		if _, _, echo := gfGet(t, in, plainHTTP(), "GET", s.policy+"/api/x", hdr{"Accept": "application/json", "X-Session-Token": tok}); echo == nil {
			t.Error("aal1 session refused on the aal1 route")
		}
	})

	t.Run("on_unauthenticated overrides negotiation", func(t *testing.T) {
		r, body, _ := gfGet(t, in, plainHTTP(), "GET", s.policy+"/api/x", hdr{"Accept": html})
		wantStatus(t, r, body, http.StatusUnauthorized)
		decodeError(t, http.StatusUnauthorized, body)
		r, body, _ = gfGet(t, in, plainHTTP(), "GET", s.policy+"/page", hdr{"Accept": "application/json"})
		wantStatus(t, r, body, http.StatusSeeOther)
		if loc := mustURL(r.Header.Get("Location")); loc.Path != "/self-service/login/browser" {
			t.Errorf("Location %s", loc)
		}
	})
}

func TestWhoamiAsForwardAuthTarget(t *testing.T) {
	t.Parallel()
	in, s := gfInstance(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)

	for name, tc := range map[string]struct {
		hc *http.Client
		h  hdr
	}{
		"token":  {plainHTTP(), hdr{"Accept": "application/json", "X-Session-Token": u.Token, identityHeader: "forged"}},
		"cookie": {b.hc, hdr{"Accept": "text/html"}},
	} {
		_, body, echo := gfGet(t, in, tc.hc, "GET", s.forward+"/app?q=1", tc.h)
		if echo == nil {
			t.Errorf("%s: upstream not reached: %s", name, clip(body))
			continue
		}
		if got := echoHeader(echo, identityHeader); len(got) != 1 || got[0] != u.IdentityID {
			t.Errorf("%s: upstream saw %s = %q, want [%s]", name, identityHeader, got, u.IdentityID)
		}
		if echo.Path != "/app" || echo.Query != "q=1" {
			t.Errorf("%s: upstream saw %s?%s", name, echo.Path, echo.Query)
		}
	}
	r, body, echo := gfGet(t, in, plainHTTP(), "GET", s.forward+"/app", hdr{"Accept": "application/json", identityHeader: u.IdentityID})
	if echo != nil {
		t.Fatal("no session, but forward_auth let the request through")
	}
	wantStatus(t, r, body, http.StatusUnauthorized)
	decodeError(t, http.StatusUnauthorized, body)
}

// gfSlidingInstance has 5 s sessions that are always extendable.
func gfSlidingInstance(t *testing.T) *instance {
	t.Helper()
	gfSlide.once.Do(func() {
		gfSlide.in, gfSlide.err = newSharedInstance("caddy-kratos-sliding-", instanceOptions{GlobalKratos: []string{
			"session_lifespan 5s", "earliest_possible_extend 1h",
		}})
	})
	if gfSlide.err != nil {
		t.Fatalf("sliding instance did not start: %v", gfSlide.err)
	}
	return gfSlide.in
}

func TestSlidingSessions(t *testing.T) {
	t.Parallel()
	in := gfSlidingInstance(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	first, _ := whoamiCookie(t, b)

	// The minimum step is a tenth of the lifespan (0.5 s): wait past it
	// (and past a second, the cookie's expiry resolution).
	time.Sleep(1500 * time.Millisecond)
	second, r := whoamiCookie(t, b)
	if !second.GetExpiresAt().After(first.GetExpiresAt().Add(time.Second)) {
		t.Fatalf("expires_at %v → %v: not extended", first.ExpiresAt, second.ExpiresAt)
	}
	c := cookieFrom(r, "ory_kratos_session")
	if c == nil {
		t.Fatal("whoami extended the session but did not re-issue the cookie")
	}
	if d := c.Expires.Sub(second.GetExpiresAt()); d > time.Second || d < -time.Second {
		t.Errorf("cookie expires %v, session %v", c.Expires, second.ExpiresAt)
	}
	// Right away again: no write, no cookie.
	third, r := whoamiCookie(t, b)
	if !third.GetExpiresAt().Equal(second.GetExpiresAt()) || cookieFrom(r, "ory_kratos_session") != nil {
		t.Errorf("extended again at once: %v → %v", second.ExpiresAt, third.ExpiresAt)
	}

	// Kept alive through the gate (token) past the original lifespan.
	deadline := time.Now().Add(6500 * time.Millisecond)
	for time.Now().Before(deadline) {
		_, _, echo := gateGet(t, in, plainHTTP(), "/private/alive", hdr{"Accept": "application/json", "X-Session-Token": u.Token})
		if echo == nil {
			t.Fatal("an active session expired although it was used")
		}
		time.Sleep(time.Second)
	}
	if s, status := whoamiToken(t, in, u.Token); status != 200 || time.Until(s.GetExpiresAt()) < 3*time.Second {
		t.Errorf("after 6.5 s of use: %d", status)
	}
}

// whoamiCookie calls whoami with the browser's cookies.
func whoamiCookie(t *testing.T, b *browser) (*ory.Session, *http.Response) {
	t.Helper()
	r, body := do(t, b.hc, "GET", b.in.apiBase+"/sessions/whoami", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	var s ory.Session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	return &s, r
}

// TestGateRevocationUnderLoad: while clients hammer the gate with a
// session, the session is revoked; no request sent after the revocation
// answered may pass.
func TestGateRevocationUnderLoad(t *testing.T) {
	t.Parallel()
	in, s := gfInstance(t)
	u := registerNative(t, in)
	other, _ := loginNative(t, in, u.Email, u.Password)

	for _, how := range []string{"logout", "revoke from another session"} {
		t.Run(how, func(t *testing.T) {
			tok, sess := loginNative(t, in, u.Email, u.Password)
			var revoked atomic.Bool
			var passedBefore, passedAfter, refusedAfter atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
					for {
						select {
						case <-stop:
							return
						default:
						}
						after := revoked.Load()
						req, _ := http.NewRequest("GET", s.headers+"/load", nil)
						req.Header.Set("Accept", "application/json")
						req.Header.Set("X-Session-Token", tok)
						r, err := hc.Do(req)
						if err != nil {
							continue
						}
						r.Body.Close()
						switch {
						case r.StatusCode == http.StatusOK && after:
							passedAfter.Add(1)
						case r.StatusCode == http.StatusOK:
							passedBefore.Add(1)
						case after:
							refusedAfter.Add(1)
						}
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			switch how {
			case "logout":
				resp, err := in.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(performLogoutBody(tok)).Execute()
				wantSDKStatus(t, resp, err, http.StatusNoContent)
			default:
				r, body := do(t, plainHTTP(), "DELETE", in.apiBase+"/sessions/"+url.PathEscape(sess.Id), hdr{"X-Session-Token": other}, nil)
				wantStatus(t, r, body, http.StatusNoContent)
			}
			revoked.Store(true)
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			if passedBefore.Load() == 0 || refusedAfter.Load() == 0 {
				t.Fatalf("load did not run: %d passed before, %d refused after", passedBefore.Load(), refusedAfter.Load())
			}
			if n := passedAfter.Load(); n > 0 {
				t.Errorf("%d requests sent after the revocation passed the gate (%d refused)", n, refusedAfter.Load())
			}
		})
	}
}
