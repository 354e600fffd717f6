package e2e

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
	"github.com/pquerna/otp/totp"
)

// Issue 12's flow items, each as real Kratos v26.2 answers it, through the
// official SDK: a flow keeps its CSRF token, an aal2 upgrade keeps the CSRF
// cookie, step-up keeps the way back to the settings flow, recovery by a
// form-posted code, listMySessions page tokens, and double slashes.

// totpMail is an instance with recovery and verification by code and TOTP.
func totpMail(t *testing.T) (*instance, *mailServer) {
	t.Helper()
	return sharedMailWith(t, "totp", "recovery", "verification", "methods totp")
}

// recoverInBrowser recovers email's account in b by the mailed code (the
// SPA path: JSON) and returns the settings flow id it hands over to.
func recoverInBrowser(t *testing.T, in *instance, mails *mailServer, b *browser, email string) string {
	t.Helper()
	flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	csrf := sdkCSRF(t, flow.Ui.Nodes)
	_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(email, csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	code := mails.last(t, email, subjectRecovery, 1).code(t)
	_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnprocessableEntity)
	e := decodeError(t, http.StatusUnprocessableEntity, sdkErrBody(t, err))
	if !strings.HasPrefix(e.RedirectBrowserTo, settingsUIPrefix(in)) {
		t.Fatalf("recovery handed over to %q, want %s<id>", e.RedirectBrowserTo, settingsUIPrefix(in))
	}
	return flowIDFrom(t, e.RedirectBrowserTo)
}

// TestKratos12FlowKeepsCSRFToken (item 1): getLoginFlow, getRegistrationFlow,
// getRecoveryFlow, getVerificationFlow and getSettingsFlow with the CSRF
// cookie answer the csrf_token the flow was created with, every time; that
// token still passes the double-submit check.
func TestKratos12FlowKeepsCSRFToken(t *testing.T) {
	t.Parallel()
	in, _ := sharedMail(t)
	b := newBrowser(t, in)
	fe := b.sdk.FrontendAPI
	check := func(kind, created string, get func() ([]ory.UiNode, *http.Response, error)) {
		t.Helper()
		if len(created) != 88 {
			t.Fatalf("%s: created csrf_token %q is not a masked token", kind, created)
		}
		for i := 1; i <= 2; i++ {
			nodes, resp, err := get()
			wantSDKStatus(t, resp, err, http.StatusOK)
			if got := sdkCSRF(t, nodes); got != created {
				t.Errorf("%s: read %d answers csrf_token %q, want the created %q", kind, i, got, created)
			}
		}
	}

	lf, resp, err := fe.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	check("login", sdkCSRF(t, lf.Ui.Nodes), func() ([]ory.UiNode, *http.Response, error) {
		f, r, err := fe.GetLoginFlow(ctx).Id(lf.Id).Execute()
		return nodesOf(f, func(f *ory.LoginFlow) []ory.UiNode { return f.Ui.Nodes }), r, err
	})
	rf, resp, err := fe.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	check("registration", sdkCSRF(t, rf.Ui.Nodes), func() ([]ory.UiNode, *http.Response, error) {
		f, r, err := fe.GetRegistrationFlow(ctx).Id(rf.Id).Execute()
		return nodesOf(f, func(f *ory.RegistrationFlow) []ory.UiNode { return f.Ui.Nodes }), r, err
	})
	cf, resp, err := fe.CreateBrowserRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	check("recovery", sdkCSRF(t, cf.Ui.Nodes), func() ([]ory.UiNode, *http.Response, error) {
		f, r, err := fe.GetRecoveryFlow(ctx).Id(cf.Id).Execute()
		return nodesOf(f, func(f *ory.RecoveryFlow) []ory.UiNode { return f.Ui.Nodes }), r, err
	})
	vf, resp, err := fe.CreateBrowserVerificationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	check("verification", sdkCSRF(t, vf.Ui.Nodes), func() ([]ory.UiNode, *http.Response, error) {
		f, r, err := fe.GetVerificationFlow(ctx).Id(vf.Id).Execute()
		return nodesOf(f, func(f *ory.VerificationFlow) []ory.UiNode { return f.Ui.Nodes }), r, err
	})

	// The kept token is a working double-submit token: a wrong password
	// is a 400 with the flow, not a 403.
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(randEmail(), "password", randPassword())
	pw.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	_, resp, err = fe.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(f.messageIDs(), 4000006) {
		t.Errorf("wrong password with the kept token: messages %v, want 4000006", f.messageIDs())
	}

	u := registerNative(t, in)
	b.login(t, u.Email, u.Password)
	sf, resp, err := fe.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	created := sdkCSRF(t, sf.Ui.Nodes)
	check("settings", created, func() ([]ory.UiNode, *http.Response, error) {
		f, r, err := fe.GetSettingsFlow(ctx).Id(sf.Id).Execute()
		return nodesOf(f, func(f *ory.SettingsFlow) []ory.UiNode { return f.Ui.Nodes }), r, err
	})
	done, resp, err := fe.UpdateSettingsFlow(ctx).Flow(sf.Id).UpdateSettingsFlowBody(settingsProfileBody(u.Email, "Kept", &created)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if done.State != "success" {
		t.Errorf("settings with the kept token: state %q", done.State)
	}
}

func nodesOf[F any](f *F, nodes func(*F) []ory.UiNode) []ory.UiNode {
	if f == nil {
		return nil
	}
	return nodes(f)
}

// TestKratos12AAL2UpgradeKeepsCSRFCookie (item 9): the second factor of
// the same identity keeps the browser's CSRF cookie (Kratos regenerates
// it only for a new session or another identity), so a flow created
// before it is still the browser's; the session token is rotated.
func TestKratos12AAL2UpgradeKeepsCSRFCookie(t *testing.T) {
	t.Parallel()
	in, _ := totpMail(t)
	u := registerNative(t, in)
	secret := linkTOTP(t, in, u.Token)
	b := newBrowser(t, in)
	csrfName := in.csrfCookieName()

	// A new session (the password step) gets a new CSRF cookie.
	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	before := b.cookie(csrfName).Value
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password)
	pw.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusUnprocessableEntity)
	if c := cookieFrom(resp, csrfName); c == nil || c.Value == before {
		t.Fatalf("the password step (a new session) did not set a new CSRF cookie: %v", c)
	}
	csrfCookie := b.cookie(csrfName).Value
	aal1Session := b.cookie("ory_kratos_session").Value

	// A flow bound to this browser's CSRF cookie, before the second factor.
	vf, resp, err := b.sdk.FrontendAPI.CreateBrowserVerificationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	af, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	code, _ := totp.GenerateCode(secret, time.Now())
	tb := ory.NewUpdateLoginFlowWithTotpMethod("totp", code)
	tb.SetCsrfToken(sdkCSRF(t, af.Ui.Nodes))
	res, resp, err := b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(af.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(tb)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("after TOTP: aal %s", res.Session.GetAuthenticatorAssuranceLevel())
	}
	if c := cookieFrom(resp, csrfName); c != nil {
		t.Errorf("the aal2 step replaced the CSRF cookie (Set-Cookie %s)", c.Raw)
	}
	if got := b.cookie(csrfName).Value; got != csrfCookie {
		t.Errorf("CSRF cookie changed by the aal2 step")
	}
	if c := cookieFrom(resp, "ory_kratos_session"); c == nil || c.Value == aal1Session {
		t.Errorf("the aal2 step did not rotate the session cookie: %v", c)
	}

	// The flow created before the second factor is still this browser's.
	_, resp, err = b.sdk.FrontendAPI.GetVerificationFlow(ctx).Id(vf.Id).Execute()
	if resp != nil && resp.StatusCode == http.StatusForbidden {
		t.Fatalf("getVerificationFlow after the aal2 step: 403 %s", sdkErrBody(t, err))
	}
	wantSDKStatus(t, resp, err, http.StatusOK)

	// So is a re-authentication of the same session (refresh=true, what a
	// settings flow asks for when the session is too old).
	rf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Refresh(true).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	rp := ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password)
	rp.SetCsrfToken(sdkCSRF(t, rf.Ui.Nodes))
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(rf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(rp)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if c := cookieFrom(resp, csrfName); c != nil {
		t.Errorf("the refresh replaced the CSRF cookie (Set-Cookie %s)", c.Raw)
	}
	_, resp, err = b.sdk.FrontendAPI.GetVerificationFlow(ctx).Id(vf.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
}

// TestKratos12StepUpKeepsWayBack (item 8): a browser recovered with a
// password+TOTP identity has an aal1 session; its settings flow asks for
// the second factor with a way back to that flow (Kratos's
// login/browser?aal=aal2&return_to=<settings UI>?flow=<id>), from the API
// (JSON 403 on get and update, 303 for a form post) and from the built-in
// page. After the TOTP step the browser is back at the same flow and
// changes the password.
func TestKratos12StepUpKeepsWayBack(t *testing.T) {
	t.Parallel()
	in, mails := totpMail(t)
	u := registerNative(t, in)
	secret := linkTOTP(t, in, u.Token)
	b := newBrowser(t, in)
	fe := b.sdk.FrontendAPI

	sid := recoverInBrowser(t, in, mails, b, u.Email)
	back := settingsUIPrefix(in) + sid
	want := in.publicURL + "self-service/login/browser?aal=aal2&return_to=" + url.QueryEscape(back)

	_, resp, err := fe.GetSettingsFlow(ctx).Id(sid).Execute()
	wantSDKStatus(t, resp, err, http.StatusForbidden)
	e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err))
	if e.Error.ID != "session_aal2_required" {
		t.Fatalf("getSettingsFlow: error.id %q, want session_aal2_required", e.Error.ID)
	}
	if e.RedirectBrowserTo != want || e.Error.Details["redirect_browser_to"] != want {
		t.Errorf("getSettingsFlow: redirect_browser_to %q (details %v),\nwant %q", e.RedirectBrowserTo, e.Error.Details["redirect_browser_to"], want)
	}

	// The flow is not readable yet: the submits carry the cookie's token
	// (a raw token passes the double-submit check like a masked one).
	newPassword := randPassword()
	csrf := b.cookie(in.csrfCookieName())
	if csrf == nil {
		t.Fatal("no CSRF cookie after recovery")
	}
	_, resp, err = fe.UpdateSettingsFlow(ctx).Flow(sid).UpdateSettingsFlowBody(settingsPasswordBody(newPassword, ptr(csrf.Value))).Execute()
	wantSDKStatus(t, resp, err, http.StatusForbidden)
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); e.Error.ID != "session_aal2_required" || e.RedirectBrowserTo != want {
		t.Errorf("updateSettingsFlow (JSON): %q to %q, want session_aal2_required to %q", e.Error.ID, e.RedirectBrowserTo, want)
	}
	form := url.Values{"method": {"password"}, "password": {newPassword}, "csrf_token": {csrf.Value}}
	r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/settings?flow="+sid,
		hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	if got := r.Header.Get("Location"); got != want {
		t.Errorf("updateSettingsFlow (form post): Location %q, want %q", got, want)
	}
	r, body = do(t, b.hc, "GET", back, hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	if got := r.Header.Get("Location"); got != want {
		t.Errorf("built-in settings page: Location %q, want %q", got, want)
	}

	// The second factor, the way a UI follows redirect_browser_to.
	r, body = do(t, b.hc, "GET", want, hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	lf := decodeFlow(t, body)
	if lf.ReturnTo != back || lf.RequestedAAL != "aal2" {
		t.Fatalf("aal2 login flow: return_to %q aal %q, want %q aal2", lf.ReturnTo, lf.RequestedAAL, back)
	}
	lcsrf, _ := lf.node("csrf_token").Attributes["value"].(string)
	code, _ := totp.GenerateCode(secret, time.Now())
	tb := ory.NewUpdateLoginFlowWithTotpMethod("totp", code)
	tb.SetCsrfToken(lcsrf)
	res, resp, err := fe.UpdateLoginFlow(ctx).Flow(lf.ID).UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(tb)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(res.ContinueWith) != 1 || res.ContinueWith[0].ContinueWithRedirectBrowserTo == nil ||
		res.ContinueWith[0].ContinueWithRedirectBrowserTo.RedirectBrowserTo != back {
		t.Fatalf("aal2 login: continue_with %+v, want redirect_browser_to %s", res.ContinueWith, back)
	}

	// Back at the same settings flow: it is this browser's, and the
	// recovery's privileged session changes the password.
	sf, resp, err := fe.GetSettingsFlow(ctx).Id(sid).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	done, resp, err := fe.UpdateSettingsFlow(ctx).Flow(sid).UpdateSettingsFlowBody(settingsPasswordBody(newPassword, ptr(sdkCSRF(t, sf.Ui.Nodes)))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if done.State != "success" {
		t.Fatalf("password change: state %q", done.State)
	}
	loginNative(t, in, u.Email, newPassword)
}

// TestKratos12RecoveryCodeFormPost (item 4): after the code was mailed, a
// form post of the code (Accept: text/html) answers 303 to the settings
// UI with the session cookie, also without a method field (Kratos reads a
// submit without an address as the code); with an address it sends a new
// code instead (the resend button), whatever else the form holds.
func TestKratos12RecoveryCodeFormPost(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	// start opens a browser recovery flow as a browser does and returns a
	// form poster for it.
	start := func(b *browser) (string, func(url.Values) (*http.Response, []byte)) {
		r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/recovery/browser", hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		flowID := flowIDFrom(t, r.Header.Get("Location"))
		flow, resp, err := b.sdk.FrontendAPI.GetRecoveryFlow(ctx).Id(flowID).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		csrf := sdkCSRF(t, flow.Ui.Nodes)
		return flowID, func(form url.Values) (*http.Response, []byte) {
			form.Set("csrf_token", csrf)
			return do(t, b.hc, "POST", in.apiBase+"/self-service/recovery?flow="+flowID,
				hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
		}
	}

	u := registerNative(t, in)
	b := newBrowser(t, in)
	_, post := start(b)
	r, body := post(url.Values{"method": {"code"}, "email": {u.Email}})
	wantStatus(t, r, body, http.StatusSeeOther)
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
	r, body = post(url.Values{"code": {code}})
	wantStatus(t, r, body, http.StatusSeeOther)
	if got := r.Header.Get("Location"); !strings.HasPrefix(got, settingsUIPrefix(in)) || !isUUID(strings.TrimPrefix(got, settingsUIPrefix(in))) {
		t.Fatalf("the code without a method: Location %q, want %s<uuid>", got, settingsUIPrefix(in))
	}
	if cookieFrom(r, "ory_kratos_session") == nil {
		t.Fatal("recovery by form post did not set the session cookie")
	}
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoverySession(t, s, u.IdentityID, "code_recovery")
	// The settings flow it hands over to belongs to this browser.
	_, resp, err = b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(flowIDFrom(t, r.Header.Get("Location"))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	// The resend button: an address with a code asks for a new code.
	v := registerNative(t, in)
	b2 := newBrowser(t, in)
	flowID, post2 := start(b2)
	r, body = post2(url.Values{"method": {"code"}, "email": {v.Email}})
	wantStatus(t, r, body, http.StatusSeeOther)
	first := mails.last(t, v.Email, subjectRecovery, 1).code(t)
	r, body = post2(url.Values{"method": {"code"}, "email": {v.Email}, "code": {first}})
	wantStatus(t, r, body, http.StatusSeeOther)
	if got := r.Header.Get("Location"); got != recoveryUIPrefix(in)+flowID {
		t.Errorf("resend: Location %q, want %s%s", got, recoveryUIPrefix(in), flowID)
	}
	if cookieFrom(r, "ory_kratos_session") != nil {
		t.Fatal("a resend signed the browser in")
	}
	mails.last(t, v.Email, subjectRecovery, 2)
}

// TestKratos12ListMySessionsPageToken (item 5): three sessions of one
// identity, page_size=1: one of the two other sessions per page, a Link
// with page_token to the next, X-Total-Count 2; following the token gives
// the other one.
func TestKratos12ListMySessionsPageToken(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	_, sb := loginNative(t, in, u.Email, u.Password)
	_, sc := loginNative(t, in, u.Email, u.Password)
	fe := in.api().FrontendAPI

	page1, resp, err := fe.ListMySessions(ctx).XSessionToken(u.Token).PageSize(1).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(page1) != 1 {
		t.Fatalf("page_size=1 answered %d sessions", len(page1))
	}
	if h := resp.Header.Get("X-Total-Count"); h != "2" {
		t.Errorf("X-Total-Count = %q, want 2", h)
	}
	next := linkRel(resp.Header.Get("Link"), "next")
	if next == nil || next.Path != "/sessions" || next.Query().Get("page_token") == "" || next.Query().Get("page_size") != "1" {
		t.Fatalf("Link = %q, want a rel=next link with page_size=1 and page_token", resp.Header.Get("Link"))
	}
	page2, resp, err := fe.ListMySessions(ctx).XSessionToken(u.Token).PageSize(1).PageToken(next.Query().Get("page_token")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(page2) != 1 {
		t.Fatalf("second page answered %d sessions", len(page2))
	}
	if linkRel(resp.Header.Get("Link"), "next") != nil || linkRel(resp.Header.Get("Link"), "first") == nil {
		t.Errorf("last page Link = %q, want first (and prev) only", resp.Header.Get("Link"))
	}
	got := []string{page1[0].Id, page2[0].Id}
	wantIDs := []string{sb.Id, sc.Id}
	sort.Strings(got)
	sort.Strings(wantIDs)
	if strings.Join(got, ",") != strings.Join(wantIDs, ",") {
		t.Errorf("pages listed %v, want the two other sessions %v (not the current %s)", got, wantIDs, u.SessionID)
	}

	_, resp, err = fe.ListMySessions(ctx).XSessionToken(u.Token).PageToken("not a token").Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	decodeError(t, http.StatusBadRequest, sdkErrBody(t, err))
}

// linkRel returns the URL of the Link header's rel, or nil.
func linkRel(h, rel string) *url.URL {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(params, `rel="`+rel+`"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err == nil {
			return u
		}
	}
	return nil
}

// TestKratos12DoubleSlash (item 17): //self-service/login/flows?id=… (Ory's
// UI with KRATOS_PUBLIC_URL ending in /) is redirected with 307 to the
// clean path, query kept, on this host; the SDK with such a base URL
// works. Paths that only look like ours stay refused.
func TestKratos12DoubleSlash(t *testing.T) {
	t.Parallel()
	in := shared(t)
	b := newBrowser(t, in)
	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	for _, m := range []string{"GET", "POST"} {
		res, _ := rawHTTP(t, in.apiBase, m+" //self-service/login/flows?id="+lf.Id+" HTTP/1.1\r\nHost: "+strings.TrimPrefix(in.apiBase, "http://")+"\r\nContent-Length: 0\r\nConnection: close\r\n")
		if res.StatusCode != http.StatusTemporaryRedirect || res.Header.Get("Location") != "/self-service/login/flows?id="+lf.Id {
			t.Errorf("%s //self-service/login/flows: %d Location %q, want 307 /self-service/login/flows?id=%s", m, res.StatusCode, res.Header.Get("Location"), lf.Id)
		}
	}

	// The SDK pointed at the public URL with its trailing slash follows it.
	cfg := ory.NewConfiguration()
	cfg.Servers = ory.ServerConfigurations{{URL: in.publicURL}}
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Jar: b.jar}
	f, resp, err := ory.NewAPIClient(cfg).FrontendAPI.GetLoginFlow(ctx).Id(lf.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if f == nil || f.Id != lf.Id || resp.Request.URL.Path != "/self-service/login/flows" {
		t.Errorf("SDK with base %s: flow %+v at %s", in.publicURL, f, resp.Request.URL.Path)
	}

	// Never a redirect off this host, never an empty 200 for our paths.
	for _, target := range []string{"//evil.example/self-service/login/browser", "//evil.example", "/\\evil.example/self-service/login/browser"} {
		res, _, _ := rawGet(t, in.apiBase, target)
		if loc := res.Header.Get("Location"); loc != "" {
			t.Errorf("GET %s: redirected to %q", target, loc)
		}
	}
}
