package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

func passwordLoginBody(identifier, password, csrf string) ory.UpdateLoginFlowBody {
	b := ory.NewUpdateLoginFlowWithPasswordMethod(identifier, "password", password)
	if csrf != "" {
		b.SetCsrfToken(csrf)
	}
	return ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(b)
}

func TestLoginNativeFlowShape(t *testing.T) {
	t.Parallel()
	in := shared(t)
	flow, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(resp.Cookies()) != 0 {
		t.Errorf("native login flow creation set cookies: %v", resp.Header.Values("Set-Cookie"))
	}
	if got := resp.Header.Get("Cache-Control"); got != "private, no-cache, no-store, must-revalidate" {
		t.Errorf("Cache-Control = %q", got)
	}
	if !isUUID(flow.Id) || flow.Type != "api" || flow.State != "choose_method" {
		t.Errorf("id/type/state = %q/%q/%q", flow.Id, flow.Type, flow.State)
	}
	if flow.Refresh == nil || *flow.Refresh {
		t.Errorf("refresh = %v, want false", flow.Refresh)
	}
	if flow.RequestedAal == nil || *flow.RequestedAal != "aal1" {
		t.Errorf("requested_aal = %v, want aal1", flow.RequestedAal)
	}
	if want := in.apiBase + "/self-service/login?flow=" + flow.Id; flow.Ui.Action != want {
		t.Errorf("ui.action = %q, want %q", flow.Ui.Action, want)
	}
	if want := in.apiBase + "/self-service/login/api"; flow.RequestUrl != want {
		t.Errorf("request_url = %q, want %q", flow.RequestUrl, want)
	}
	if flow.SessionTokenExchangeCode != nil {
		t.Error("session_token_exchange_code must be absent unless requested")
	}
	want := []nodeSpec{
		{"default", "csrf_token", "hidden"},
		{"default", "identifier", "text"},
		{"password", "password", "password"},
		{"password", "method", "submit"},
	}
	if got := sdkNodeSpecs(flow.Ui.Nodes); !equalSpecs(got, want) {
		t.Fatalf("login nodes = %v, want %v", got, want)
	}
	if v := sdkCSRF(t, flow.Ui.Nodes); v != "" {
		t.Errorf("native csrf_token value = %q, want empty", v)
	}
	idn := sdkNode(flow.Ui.Nodes, "identifier")
	if l := idn.Meta.Label; l == nil || l.Id != 1070002 || l.Text != "E-Mail" {
		t.Errorf("identifier label = %+v, want 1070002 E-Mail", l)
	}
	if r := idn.Attributes.UiNodeInputAttributes.Required; r == nil || !*r {
		t.Error("identifier not required")
	}
	pw := sdkNode(flow.Ui.Nodes, "password")
	if a := pw.Attributes.UiNodeInputAttributes; a.Autocomplete == nil || *a.Autocomplete != "current-password" || labelID(pw) != 1070001 {
		t.Errorf("password node = %+v, want autocomplete current-password label 1070001", a)
	}
	m := sdkNode(flow.Ui.Nodes, "method")
	if m.Attributes.UiNodeInputAttributes.Value != "password" || labelID(m) != 1010022 {
		t.Errorf("method node value %v label %d, want password / 1010022", m.Attributes.UiNodeInputAttributes.Value, labelID(m))
	}

	// getLoginFlow of an API flow needs no cookie.
	got, resp, err := in.api().FrontendAPI.GetLoginFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.Id != flow.Id {
		t.Errorf("getLoginFlow id = %s", got.Id)
	}
}

func TestLoginNativeSuccess(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	tok, s := loginNative(t, in, u.Email, u.Password)
	assertSessionToken(t, tok)
	if tok == u.Token || s.Id == u.SessionID {
		t.Error("login must create a new session and token")
	}
	assertFreshPasswordSession(t, s, u.IdentityID)
	ws, code := whoamiToken(t, in, tok)
	if code != http.StatusOK || ws.Id != s.Id {
		t.Errorf("whoami with the login token: %d %+v", code, ws)
	}
}

func TestLoginWrongPasswordAndUnknownIdentifier(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	for _, tc := range []struct{ name, identifier, password string }{
		{"wrong password", u.Email, "wrong-" + u.Password},
		{"unknown identifier", randEmail(), u.Password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := in.api()
			flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).UpdateLoginFlowBody(passwordLoginBody(tc.identifier, tc.password, "")).Execute()
			wantSDKStatus(t, resp, err, http.StatusBadRequest)
			f := decodeFlow(t, sdkErrBody(t, err))
			if f.ID != flow.Id {
				t.Errorf("answered flow %s, want %s", f.ID, flow.Id)
			}
			if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4000006 {
				t.Errorf("ui.messages = %v, want exactly [4000006]", ids)
			}
			if f.UI.Messages[0].Type != "error" {
				t.Errorf("4000006 type = %q", f.UI.Messages[0].Type)
			}
			if n := f.node("identifier"); n == nil || n.Attributes["value"] != tc.identifier {
				t.Errorf("identifier should be re-rendered with %q: %+v", tc.identifier, n)
			}
			if n := f.node("password"); n == nil {
				t.Error("password node missing")
			} else if v, ok := n.Attributes["value"]; ok && v != "" {
				t.Errorf("password echoed: %v", v)
			}
		})
	}
}

func TestLoginRefresh(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	before, code := whoamiToken(t, in, u.Token)
	if code != http.StatusOK {
		t.Fatalf("whoami = %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // authenticated_at must move

	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Refresh(true).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.Refresh == nil || !*flow.Refresh {
		t.Errorf("refresh = %v, want true", flow.Refresh)
	}
	if !containsID(sdkMessageIDs(flow.Ui.Messages), 1010003) {
		t.Errorf("ui.messages = %v, want 1010003", sdkMessageIDs(flow.Ui.Messages))
	}
	idn := sdkNode(flow.Ui.Nodes, "identifier")
	if idn == nil || idn.Attributes.UiNodeInputAttributes.Type != "hidden" || idn.Attributes.UiNodeInputAttributes.Value != u.Email {
		t.Errorf("identifier should be hidden and prefilled with %s: %+v", u.Email, idn)
	}

	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).XSessionToken(u.Token).
		UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.Identity == nil || res.Session.Identity.Id != u.IdentityID {
		t.Errorf("refresh login identity = %+v", res.Session.Identity)
	}
	if res.Session.AuthenticatedAt == nil || !res.Session.AuthenticatedAt.After(*before.AuthenticatedAt) {
		t.Errorf("authenticated_at %v not after the previous %v", res.Session.AuthenticatedAt, before.AuthenticatedAt)
	}

	// Browser: refresh=true with a session cookie creates a flow (no 400).
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	bf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Refresh(true).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if bf.Refresh == nil || !*bf.Refresh || !containsID(sdkMessageIDs(bf.Ui.Messages), 1010003) {
		t.Errorf("browser refresh flow: refresh %v messages %v", bf.Refresh, sdkMessageIDs(bf.Ui.Messages))
	}
}

func TestLoginSessionAlreadyAvailable(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)

	t.Run("native create", func(t *testing.T) {
		_, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).XSessionToken(u.Token).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "session_already_available" {
			t.Errorf("error.id = %q, want session_already_available", e.Error.ID)
		}
		if h := resp.Header.Get("Ory-Error-Id"); h != "session_already_available" {
			t.Errorf("Ory-Error-Id = %q", h)
		}
	})
	t.Run("native submit with token", func(t *testing.T) {
		c := in.api()
		flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).XSessionToken(u.Token).
			UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, "")).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		f := decodeFlow(t, sdkErrBody(t, err))
		if !containsID(f.messageIDs(), 4000001) {
			t.Errorf("ui.messages = %v, want 4000001", f.messageIDs())
		}
	})

	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	t.Run("browser JSON", func(t *testing.T) {
		_, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "session_already_available" {
			t.Errorf("error.id = %q, want session_already_available", e.Error.ID)
		}
		wantErrorHeaders(t, resp, "session_already_available")
	})
	t.Run("browser HTML", func(t *testing.T) {
		r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/login/browser", hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		if r.Header.Get("Location") != in.publicURL {
			t.Errorf("Location = %q, want default return URL %q", r.Header.Get("Location"), in.publicURL)
		}
	})
}

func TestLoginReturnTo(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	returnTo := in.appBase + "/dashboard?tab=1"

	t.Run("browser JSON", func(t *testing.T) {
		b := newBrowser(t, in)
		flow, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).ReturnTo(returnTo).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if flow.ReturnTo == nil || *flow.ReturnTo != returnTo {
			t.Errorf("return_to = %v, want %s", flow.ReturnTo, returnTo)
		}
		res, resp, err := b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).
			UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, sdkCSRF(t, flow.Ui.Nodes))).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if res.SessionToken != nil {
			t.Error("browser login must not return a session_token")
		}
		if len(res.ContinueWith) != 1 || res.ContinueWith[0].ContinueWithRedirectBrowserTo == nil ||
			res.ContinueWith[0].ContinueWithRedirectBrowserTo.RedirectBrowserTo != returnTo {
			t.Errorf("continue_with = %+v, want [redirect_browser_to %s]", res.ContinueWith, returnTo)
		}
		sc := cookieFrom(resp, "ory_kratos_session")
		if sc == nil {
			t.Fatal("no session cookie")
		}
		assertCookieAttrs(t, sc)
		if sc.MaxAge < 86300 || sc.MaxAge > 86400 {
			t.Errorf("session cookie Max-Age = %d, want ~86400", sc.MaxAge)
		}
	})

	t.Run("browser form", func(t *testing.T) {
		b := newBrowser(t, in)
		r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/login/browser?return_to="+url.QueryEscape(returnTo), hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		loc := mustURL(r.Header.Get("Location"))
		flowID := loc.Query().Get("flow")
		flow, resp, err := b.sdk.FrontendAPI.GetLoginFlow(ctx).Id(flowID).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		v := url.Values{"method": {"password"}, "csrf_token": {sdkCSRF(t, flow.Ui.Nodes)}, "identifier": {u.Email}, "password": {u.Password}}
		r, body = do(t, b.hc, "POST", in.apiBase+"/self-service/login?flow="+flowID,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(v.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		if r.Header.Get("Location") != returnTo {
			t.Errorf("Location = %q, want %q", r.Header.Get("Location"), returnTo)
		}
		if cookieFrom(r, "ory_kratos_session") == nil {
			t.Error("no session cookie on form login")
		}
	})

	t.Run("browser form wrong password goes back to the UI", func(t *testing.T) {
		b := newBrowser(t, in)
		flow, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		v := url.Values{"method": {"password"}, "csrf_token": {sdkCSRF(t, flow.Ui.Nodes)}, "identifier": {u.Email}, "password": {"nope-" + u.Password}}
		r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/login?flow="+flow.Id,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(v.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		if want := "http://127.0.0.1:4455/login?flow=" + flow.Id; r.Header.Get("Location") != want {
			t.Errorf("Location = %q, want %q", r.Header.Get("Location"), want)
		}
		got, resp, err := b.sdk.FrontendAPI.GetLoginFlow(ctx).Id(flow.Id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if !containsID(sdkMessageIDs(got.Ui.Messages), 4000006) {
			t.Errorf("flow after failed form login: messages %v, want 4000006", sdkMessageIDs(got.Ui.Messages))
		}
	})

	t.Run("forbidden return_to", func(t *testing.T) {
		for _, rt := range []string{"https://evil.example.org/", "http://127.0.0.1:1/elsewhere"} {
			_, resp, err := newBrowser(t, in).sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).ReturnTo(rt).Execute()
			wantSDKStatus(t, resp, err, http.StatusBadRequest)
			if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "self_service_flow_return_to_forbidden" {
				t.Errorf("browser return_to %s: error.id = %q", rt, e.Error.ID)
			}
			_, resp, err = in.api().FrontendAPI.CreateNativeLoginFlow(ctx).ReturnTo(rt).Execute()
			wantSDKStatus(t, resp, err, http.StatusBadRequest)
			if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "self_service_flow_return_to_forbidden" {
				t.Errorf("native return_to %s: error.id = %q", rt, e.Error.ID)
			}
		}
	})
}

func TestLoginAALParameter(t *testing.T) {
	t.Parallel()
	in := shared(t)
	for _, aal := range []string{"aal3", "garbage", "AAL1x"} {
		_, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Aal(aal).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		decodeError(t, 400, sdkErrBody(t, err))

		_, resp, err = newBrowser(t, in).sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal(aal).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		decodeError(t, 400, sdkErrBody(t, err))
	}

	_, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	if e := decodeError(t, 401, sdkErrBody(t, err)); e.Error.ID != "session_aal1_required" {
		t.Errorf("native aal2 without session: error.id = %q, want session_aal1_required", e.Error.ID)
	}
	if h := resp.Header.Get("Ory-Error-Id"); h != "session_aal1_required" {
		t.Errorf("Ory-Error-Id = %q", h)
	}
	_, resp, err = newBrowser(t, in).sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusUnauthorized)
	if e := decodeError(t, 401, sdkErrBody(t, err)); e.Error.ID != "session_aal1_required" {
		t.Errorf("browser aal2 without session: error.id = %q, want session_aal1_required", e.Error.ID)
	}

	// aal1 explicitly is fine.
	flow, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal1").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.RequestedAal == nil || *flow.RequestedAal != "aal1" {
		t.Errorf("requested_aal = %v", flow.RequestedAal)
	}
}
