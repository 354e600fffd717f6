package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

func assertLogoutToken(t *testing.T, tok string) {
	t.Helper()
	if !strings.HasPrefix(tok, "ory_lo_") || len(tok) != 39 || !isAlnum(tok[7:]) {
		t.Errorf("logout token %q is not ory_lo_ + 32 alphanumerics", tok)
	}
}

// assertCookieCleared checks that resp deletes the cookie named name.
func assertCookieCleared(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	c := cookieFrom(resp, name)
	if c == nil {
		t.Errorf("no Set-Cookie for %s; Set-Cookie: %v", name, resp.Header.Values("Set-Cookie"))
		return
	}
	expired := c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now()))
	if !expired {
		t.Errorf("Set-Cookie %s does not delete the cookie: %s", name, c.Raw)
	}
	if c.Path != "/" {
		t.Errorf("deleting Set-Cookie %s has Path %q, want / (else the browser keeps the original)", name, c.Path)
	}
}

func TestLogoutBrowserJSON(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	oldCookie := b.cookieHeader()

	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	assertLogoutToken(t, lf.LogoutToken)
	if want := in.apiBase + "/self-service/logout?token=" + lf.LogoutToken; lf.LogoutUrl != want {
		t.Errorf("logout_url = %q, want %q", lf.LogoutUrl, want)
	}
	oldCSRF := b.cookie(in.csrfCookieName())
	if oldCSRF == nil {
		t.Fatal("browser has no csrf cookie after login")
	}

	resp, err = b.sdk.FrontendAPI.UpdateLogoutFlow(ctx).Token(lf.LogoutToken).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	assertCookieCleared(t, resp, "ory_kratos_session")
	// Logout regenerates the CSRF cookie.
	if c := cookieFrom(resp, in.csrfCookieName()); c == nil {
		t.Errorf("logout did not re-issue the csrf cookie; Set-Cookie: %v", resp.Header.Values("Set-Cookie"))
	} else {
		assertCookieAttrs(t, c)
		if c.Value == oldCSRF.Value {
			t.Error("logout re-sent the same csrf token instead of regenerating it")
		}
	}

	if b.cookie("ory_kratos_session") != nil {
		t.Error("the browser still holds a session cookie after logout")
	}
	_, resp, err = b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	// The old cookie value must be dead server-side, too.
	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/sessions/whoami", hdr{"Accept": "application/json", "Cookie": oldCookie}, nil)
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("whoami with the pre-logout cookie = %d, want 401; body %s", r.StatusCode, clip(body))
	}
	// The registration session of the same identity is unaffected.
	if _, code := whoamiToken(t, in, u.Token); code != http.StatusOK {
		t.Errorf("browser logout revoked another session of the identity: %d", code)
	}
}

func TestLogoutBrowserHTML(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)

	t.Run("default return", func(t *testing.T) {
		b := newBrowser(t, in)
		b.login(t, u.Email, u.Password)
		lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		r, body := do(t, b.hc, "GET", lf.LogoutUrl, hdr{"Accept": "text/html,application/xhtml+xml"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		if r.Header.Get("Location") != in.publicURL {
			t.Errorf("Location = %q, want %q", r.Header.Get("Location"), in.publicURL)
		}
		assertCookieCleared(t, r, "ory_kratos_session")
		_, resp, err = b.sdk.FrontendAPI.ToSession(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	})

	t.Run("return_to", func(t *testing.T) {
		b := newBrowser(t, in)
		b.login(t, u.Email, u.Password)
		rt := in.appBase + "/bye"
		lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).ReturnTo(rt).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		lu, err := url.Parse(lf.LogoutUrl)
		if err != nil || lu.Query().Get("token") != lf.LogoutToken || lu.Query().Get("return_to") != rt {
			t.Fatalf("logout_url = %q, want token and return_to=%s", lf.LogoutUrl, rt)
		}
		r, body := do(t, b.hc, "GET", lf.LogoutUrl, hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		if r.Header.Get("Location") != rt {
			t.Errorf("Location = %q, want %q", r.Header.Get("Location"), rt)
		}
	})

	t.Run("forbidden return_to", func(t *testing.T) {
		b := newBrowser(t, in)
		b.login(t, u.Email, u.Password)
		_, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).ReturnTo("https://evil.example.org/").Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "self_service_flow_return_to_forbidden" {
			t.Errorf("error.id = %q", e.Error.ID)
		}
	})
}

func TestLogoutWrongToken(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	b1 := newBrowser(t, in)
	b1.login(t, u.Email, u.Password)
	b2 := newBrowser(t, in)
	b2.login(t, u.Email, u.Password)
	lf2, resp, err := b2.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	for name, tok := range map[string]string{
		"random token":             "ory_lo_" + randHex(16),
		"other browser's token":    lf2.LogoutToken,
		"session token not logout": u.Token,
	} {
		resp, err := b1.sdk.FrontendAPI.UpdateLogoutFlow(ctx).Token(tok).Execute()
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %v, want 403 (%v)", name, resp, err)
			continue
		}
		decodeError(t, 403, sdkErrBody(t, err))
	}
	for i, b := range []*browser{b1, b2} {
		if _, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute(); resp == nil || resp.StatusCode != http.StatusOK {
			t.Errorf("browser %d lost its session after refused logouts: %v %v", i+1, resp, err)
		}
	}

	// Missing token → 400.
	r, body := do(t, b1.hc, "GET", in.apiBase+"/self-service/logout", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusBadRequest)
	decodeError(t, 400, body)

	// No session at all → 401.
	resp, err = in.api().FrontendAPI.UpdateLogoutFlow(ctx).Token(lf2.LogoutToken).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
}

func TestCreateBrowserLogoutFlowWithoutSession(t *testing.T) {
	t.Parallel()
	in := shared(t)
	_, resp, err := newBrowser(t, in).sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	if e := decodeError(t, 401, sdkErrBody(t, err)); e.Error.ID != "session_inactive" {
		t.Errorf("error.id = %q, want session_inactive", e.Error.ID)
	}
	if h := resp.Header.Get("Ory-Error-Id"); h != "session_inactive" {
		t.Errorf("Ory-Error-Id = %q", h)
	}
}

func TestCreateBrowserLogoutFlowWithSessionToken(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/logout/browser", hdr{"Accept": "application/json", "X-Session-Token": u.Token}, nil)
	wantStatus(t, r, body, http.StatusOK)
	lf := decodeJSON[ory.LogoutFlow](t, body)
	assertLogoutToken(t, lf.LogoutToken)
}

func TestPerformNativeLogout(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	tok2, _ := loginNative(t, in, u.Email, u.Password)

	resp, err := in.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(*ory.NewPerformNativeLogoutBody(u.Token)).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	if _, code := whoamiToken(t, in, u.Token); code != http.StatusUnauthorized {
		t.Errorf("whoami after native logout = %d, want 401", code)
	}
	if _, code := whoamiToken(t, in, tok2); code != http.StatusOK {
		t.Errorf("native logout revoked another session of the identity: %d", code)
	}
	// Twice: still 204.
	resp, err = in.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(*ory.NewPerformNativeLogoutBody(u.Token)).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)

	// Unknown token → 403.
	resp, err = in.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(*ory.NewPerformNativeLogoutBody("bogus-" + randHex(8))).Execute()
	wantSDKStatus(t, resp, err, http.StatusForbidden)
	decodeError(t, 403, sdkErrBody(t, err))

	// Missing session_token → 403; malformed JSON → 400.
	r, body := do(t, plainHTTP(), "DELETE", in.apiBase+"/self-service/logout/api", hdr{"Accept": "application/json", "Content-Type": "application/json"}, []byte(`{}`))
	wantStatus(t, r, body, http.StatusForbidden)
	decodeError(t, 403, body)
	r, body = do(t, plainHTTP(), "DELETE", in.apiBase+"/self-service/logout/api", hdr{"Accept": "application/json", "Content-Type": "application/json"}, []byte(`{"session_token": `))
	wantStatus(t, r, body, http.StatusBadRequest)
	decodeError(t, 400, body)
	if _, code := whoamiToken(t, in, tok2); code != http.StatusOK {
		t.Errorf("bad native logouts revoked a session: %d", code)
	}
}
