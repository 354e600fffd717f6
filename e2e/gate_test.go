package e2e

import (
	"net/http"
	"net/url"
	"testing"

	ory "github.com/ory/client-go"
)

const identityHeader = "X-Kratos-Authenticated-Identity-Id"

// gateGet requests the gated app and returns the response, the body and,
// when the upstream answered, what it saw.
func gateGet(t *testing.T, in *instance, hc *http.Client, path string, h hdr) (*http.Response, []byte, *echoResponse) {
	t.Helper()
	h, probe := withProbe(h)
	r, body := do(t, hc, "GET", in.appBase+path, h, nil)
	if r.Header.Get("X-Echo-Upstream") == "" {
		if in.upstream.saw(probe) {
			t.Errorf("GET %s: the upstream was reached but its answer was not returned", path)
		}
		return r, body, nil
	}
	e := decodeJSON[echoResponse](t, body)
	return r, body, &e
}

// withProbe returns a copy of h with a fresh probe header (see
// echoUpstream.saw) and the probe.
func withProbe(h hdr) (hdr, string) {
	probe := randHex(8)
	out := hdr{probeHeader: probe}
	for k, v := range h {
		out[k] = v
	}
	return out, probe
}

func seenIdentity(e *echoResponse) []string {
	return http.Header(e.Headers).Values(identityHeader)
}

// TestGate covers kratos_gate in front of reverse_proxy.
func TestGate(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)

	t.Run("browser without session is sent to login", func(t *testing.T) {
		r, body, echo := gateGet(t, in, plainHTTP(), "/private/page?x=1", hdr{"Accept": "text/html,application/xhtml+xml"})
		if echo != nil {
			t.Fatal("unauthenticated browser request reached the upstream")
		}
		wantStatus(t, r, body, http.StatusSeeOther)
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			t.Fatalf("Location %q: %v", r.Header.Get("Location"), err)
		}
		if loc.Host != "" && loc.Scheme+"://"+loc.Host+"/" != in.publicURL {
			t.Errorf("Location %q points to %s, want the public URL %s (or a relative path)", loc, loc.Host, in.publicURL)
		}
		if loc.Path != "/self-service/login/browser" {
			t.Errorf("Location path = %q, want /self-service/login/browser", loc.Path)
		}
		if rt := loc.Query().Get("return_to"); rt != in.appBase+"/private/page?x=1" {
			t.Errorf("return_to = %q, want %q", rt, in.appBase+"/private/page?x=1")
		}
	})

	t.Run("API client without session gets 401", func(t *testing.T) {
		for _, h := range []hdr{
			{"Accept": "application/json"},
			{"Accept": "application/json", "X-Session-Token": "ory_st_" + randHex(16)},
			{"Accept": "application/json", "Authorization": "Bearer garbage"},
		} {
			r, body, echo := gateGet(t, in, plainHTTP(), "/private/api", h)
			if echo != nil {
				t.Fatalf("unauthenticated API request (%v) reached the upstream", h)
			}
			wantStatus(t, r, body, http.StatusUnauthorized)
			decodeError(t, 401, body)
		}
	})

	t.Run("session by token, bearer and cookie", func(t *testing.T) {
		for name, tc := range map[string]struct {
			hc *http.Client
			h  hdr
		}{
			"X-Session-Token": {plainHTTP(), hdr{"Accept": "application/json", "X-Session-Token": u.Token}},
			"Bearer":          {plainHTTP(), hdr{"Accept": "application/json", "Authorization": "Bearer " + u.Token}},
			"cookie":          {b.hc, hdr{"Accept": "text/html"}},
		} {
			r, body, echo := gateGet(t, in, tc.hc, "/private/page?y=2", tc.h)
			if echo == nil {
				t.Errorf("%s: upstream not reached: %d %s", name, r.StatusCode, clip(body))
				continue
			}
			if r.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d", name, r.StatusCode)
			}
			if got := seenIdentity(echo); len(got) != 1 || got[0] != u.IdentityID {
				t.Errorf("%s: upstream saw %s = %v, want [%s]", name, identityHeader, got, u.IdentityID)
			}
			if echo.Path != "/private/page" || echo.Query != "y=2" {
				t.Errorf("%s: upstream saw %s?%s", name, echo.Path, echo.Query)
			}
		}
	})

	t.Run("client-sent identity header is overwritten with a session", func(t *testing.T) {
		_, _, echo := gateGet(t, in, plainHTTP(), "/private/x", hdr{"Accept": "application/json", "X-Session-Token": u.Token, identityHeader: "forged-" + randHex(4)})
		if echo == nil {
			t.Fatal("upstream not reached")
		}
		if got := seenIdentity(echo); len(got) != 1 || got[0] != u.IdentityID {
			t.Errorf("upstream saw %s = %v, want only [%s]", identityHeader, got, u.IdentityID)
		}
	})

	t.Run("client-sent identity header is stripped on allowed paths", func(t *testing.T) {
		r, body, echo := gateGet(t, in, plainHTTP(), "/public/readme.txt", hdr{"Accept": "text/html", identityHeader: u.IdentityID})
		if echo == nil {
			t.Fatalf("allowed path did not reach the upstream: %d %s", r.StatusCode, clip(body))
		}
		if got := seenIdentity(echo); len(got) != 0 {
			t.Errorf("upstream saw a client-forged %s = %v", identityHeader, got)
		}
	})

	t.Run("client-sent identity header without session is not let through", func(t *testing.T) {
		r, body, echo := gateGet(t, in, plainHTTP(), "/private/x", hdr{"Accept": "application/json", identityHeader: u.IdentityID})
		if echo != nil {
			t.Fatal("a forged identity header opened the gate")
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	})

	t.Run("allow paths pass without session", func(t *testing.T) {
		for _, p := range []string{"/public/a", "/public/deep/b.css"} {
			r, body, echo := gateGet(t, in, plainHTTP(), p, hdr{"Accept": "text/html"})
			if echo == nil || r.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d, upstream reached %v; body %s", p, r.StatusCode, echo != nil, clip(body))
				continue
			}
			if echo.Path != p {
				t.Errorf("upstream saw path %q, want %q", echo.Path, p)
			}
		}
		// A path that merely starts like the allowed prefix is still gated.
		r, body, echo := gateGet(t, in, plainHTTP(), "/publicity", hdr{"Accept": "application/json"})
		if echo != nil {
			t.Error("/publicity is not under /public/ but passed the gate")
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	})

	t.Run("revoked session is refused", func(t *testing.T) {
		tok, _ := loginNative(t, in, u.Email, u.Password)
		_, _, echo := gateGet(t, in, plainHTTP(), "/private/x", hdr{"Accept": "application/json", "X-Session-Token": tok})
		if echo == nil {
			t.Fatal("fresh session refused by the gate")
		}
		resp, err := in.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(performLogoutBody(tok)).Execute()
		wantSDKStatus(t, resp, err, http.StatusNoContent)
		r, body, echo := gateGet(t, in, plainHTTP(), "/private/x", hdr{"Accept": "application/json", "X-Session-Token": tok})
		if echo != nil {
			t.Fatal("revoked session passed the gate")
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
	})
}

func performLogoutBody(token string) ory.PerformNativeLogoutBody {
	return *ory.NewPerformNativeLogoutBody(token)
}
