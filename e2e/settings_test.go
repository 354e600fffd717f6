package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// Settings endpoints (createNativeSettingsFlow, createBrowserSettingsFlow,
// getSettingsFlow, updateSettingsFlow) through the official SDK.

func settingsProfileBody(email, first string, csrf *string) ory.UpdateSettingsFlowBody {
	b := ory.NewUpdateSettingsFlowWithProfileMethod("profile", map[string]any{"email": email, "name": map[string]any{"first": first}})
	if csrf != nil {
		b.SetCsrfToken(*csrf)
	}
	return ory.UpdateSettingsFlowWithProfileMethodAsUpdateSettingsFlowBody(b)
}

func settingsPasswordBody(password string, csrf *string) ory.UpdateSettingsFlowBody {
	b := ory.NewUpdateSettingsFlowWithPasswordMethod("password", password)
	if csrf != nil {
		b.SetCsrfToken(*csrf)
	}
	return ory.UpdateSettingsFlowWithPasswordMethodAsUpdateSettingsFlowBody(b)
}

func TestSettingsNative(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()
	u := registerNative(t, in)

	// No session: 401 session_inactive.
	_, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).Execute()
	if e := decodeError(t, http.StatusUnauthorized, sdkErrBody(t, err)); resp == nil || e.Error.ID != "session_inactive" {
		t.Fatalf("settings without session: %+v", e)
	}

	f, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if f.Type != "api" || f.State != "show_form" || f.Identity.Id != u.IdentityID {
		t.Fatalf("flow: type %s state %v identity %s", f.Type, f.State, f.Identity.Id)
	}
	if n := sdkNode(f.Ui.Nodes, "traits.email"); n == nil || n.Group != "profile" {
		t.Fatalf("no profile traits.email node")
	}
	if n := sdkNode(f.Ui.Nodes, "password"); n == nil || n.Group != "password" {
		t.Fatalf("no password node")
	}
	got, resp, err := c.FrontendAPI.GetSettingsFlow(ctx).Id(f.Id).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.Id != f.Id {
		t.Fatalf("get flow: %s", got.Id)
	}

	// Profile update.
	res, resp, err := c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsProfileBody(u.Email, "Grace", nil)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.State != "success" || !containsID(sdkMessageIDs(res.Ui.Messages), 1050001) {
		t.Fatalf("profile: state %v messages %v", res.State, sdkMessageIDs(res.Ui.Messages))
	}
	s, st := whoamiToken(t, in, u.Token)
	if st != 200 || s.Identity.Traits.(map[string]any)["name"].(map[string]any)["first"] != "Grace" {
		t.Fatalf("whoami after profile: %d %v", st, s.Identity.Traits)
	}

	// Invalid traits: 400 with the message on the node, nothing stored.
	f2, _, _ := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f2.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsProfileBody("not-an-email", "X", nil)).Execute()
	bad := decodeFlow(t, sdkErrBody(t, err))
	if resp.StatusCode != 400 || bad.node("traits.email") == nil || !containsID(nodeMessageIDs(bad.node("traits.email")), 4000040) {
		t.Fatalf("invalid email: %d %+v", resp.StatusCode, bad.node("traits.email"))
	}

	// Password change within the privileged window works and the new
	// password logs in; the old one no longer does.
	newPw := randPassword()
	f3, _, _ := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	res, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f3.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsPasswordBody(newPw, nil)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.State != "success" {
		t.Fatalf("password: state %v", res.State)
	}
	loginNative(t, in, u.Email, newPw)
	lf, _, _ := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(
		ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password))).Execute()
	if resp.StatusCode != 400 {
		t.Fatalf("old password still works: %d", resp.StatusCode)
	}

	// Same as the old password and weak passwords are refused.
	f4, _, _ := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f4.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsPasswordBody(newPw, nil)).Execute()
	same := decodeFlow(t, sdkErrBody(t, err))
	if resp.StatusCode != 400 || !containsID(nodeMessageIDs(same.node("password")), 4000039) {
		t.Fatalf("same password: %d %+v", resp.StatusCode, same.node("password"))
	}
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f4.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsPasswordBody("password123", nil)).Execute()
	weak := decodeFlow(t, sdkErrBody(t, err))
	if resp.StatusCode != 400 || !containsID(nodeMessageIDs(weak.node("password")), 4000034) {
		t.Fatalf("breached password: %d %+v", resp.StatusCode, weak.node("password"))
	}

	// Someone else's flow: 403 security_identity_mismatch.
	other := registerNative(t, in)
	_, resp, err = c.FrontendAPI.GetSettingsFlow(ctx).Id(f.Id).XSessionToken(other.Token).Execute()
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); resp == nil || e.Error.ID != "security_identity_mismatch" {
		t.Fatalf("foreign flow: %+v", e)
	}
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f3.Id).XSessionToken(other.Token).
		UpdateSettingsFlowBody(settingsPasswordBody(randPassword(), nil)).Execute()
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); resp == nil || e.Error.ID != "security_identity_mismatch" {
		t.Fatalf("foreign submit: %+v", e)
	}
}

// TestSettingsPrivilegedSession: after privileged_session_max_age, a
// password change needs a fresh login: 403 session_refresh_required with
// redirect_browser_to (JSON) or a 303 to login with refresh=true (form).
func TestSettingsPrivilegedSession(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"privileged_session_max_age 1s", "registration_style unified"}})
	c := in.api()
	u := registerNative(t, in)
	time.Sleep(1200 * time.Millisecond)
	f, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsPasswordBody(randPassword(), nil)).Execute()
	e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err))
	if resp == nil || e.Error.ID != "session_refresh_required" || !strings.Contains(e.RedirectBrowserTo, "refresh=true") {
		t.Fatalf("stale session: %+v", e)
	}
	// A profile change that touches no identifier is not privileged.
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsProfileBody(u.Email, "Ada", nil)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	// Changing the email is.
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsProfileBody(randEmail(), "Ada", nil)).Execute()
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); resp == nil || e.Error.ID != "session_refresh_required" {
		t.Fatalf("email change on a stale session: %+v", e)
	}
	// refresh=true login re-authenticates the same session; then it works.
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Refresh(true).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(u.Token).UpdateLoginFlowBody(
		ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.Id != u.SessionID {
		t.Fatalf("refresh created a new session %s, want %s", res.Session.Id, u.SessionID)
	}
	f2, _, _ := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	u.Password = randPassword()
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f2.Id).XSessionToken(u.Token).
		UpdateSettingsFlowBody(settingsPasswordBody(u.Password, nil)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	// Browser form post on a stale session: 303 to login with refresh=true.
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	time.Sleep(1200 * time.Millisecond)
	bf, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	form := url.Values{"method": {"password"}, "password": {randPassword()}, "csrf_token": {sdkCSRF(t, bf.Ui.Nodes)}}
	r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/settings?flow="+bf.Id,
		hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	loc := mustURL(r.Header.Get("Location"))
	if loc.Path != "/self-service/login/browser" || loc.Query().Get("refresh") != "true" {
		t.Fatalf("stale browser settings: Location %s", loc)
	}
}

func TestSettingsBrowser(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)

	// No session: HTML 303 to login, JSON 401 session_inactive.
	r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/settings/browser", hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	if !strings.Contains(r.Header.Get("Location"), "/self-service/login/browser") {
		t.Fatalf("no session: Location %s", r.Header.Get("Location"))
	}
	r, body = do(t, b.hc, "GET", in.apiBase+"/self-service/settings/browser", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusUnauthorized)
	if e := decodeError(t, http.StatusUnauthorized, body); e.Error.ID != "session_inactive" {
		t.Fatalf("no session JSON: %s", clip(body))
	}

	b.login(t, u.Email, u.Password)
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if f.Type != "browser" {
		t.Fatalf("type %s", f.Type)
	}
	// HTML create: 303 to the settings UI.
	r, body = do(t, b.hc, "GET", in.apiBase+"/self-service/settings/browser", hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	if !strings.Contains(r.Header.Get("Location"), "flow=") {
		t.Fatalf("Location %s", r.Header.Get("Location"))
	}
	// Missing CSRF token: 403.
	_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(settingsProfileBody(u.Email, "Lin", nil)).Execute()
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); resp == nil || e.Error.ID != "security_csrf_violation" {
		t.Fatalf("no csrf: %+v", e)
	}
	csrf := sdkCSRF(t, f.Ui.Nodes)
	res, resp, err := b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(settingsProfileBody(u.Email, "Lin", &csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.State != "success" {
		t.Fatalf("browser profile: %v", res.State)
	}
	// Form post: 303 back to the settings UI with the same flow.
	form := url.Values{"method": {"profile"}, "traits.email": {u.Email}, "traits.name.first": {"Kay"}, "csrf_token": {csrf}}
	r, body = do(t, b.hc, "POST", in.apiBase+"/self-service/settings?flow="+f.Id,
		hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	if !strings.Contains(r.Header.Get("Location"), "flow="+f.Id) {
		t.Fatalf("form post: Location %s", r.Header.Get("Location"))
	}
}

func nodeMessageIDs(n *uiNode) []int64 {
	if n == nil {
		return nil
	}
	var ids []int64
	for _, m := range n.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}
