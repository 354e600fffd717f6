package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// Recovery by code and by link, with the codes and links read from the
// mails delivered to the SMTP server in this process (mail_test.go).

// settingsUIPrefix is the built-in settings page of in with ?flow=.
func settingsUIPrefix(in *instance) string { return in.publicURL + "ui/settings?flow=" }

// recoveryUIPrefix is the built-in recovery page of in with ?flow=.
func recoveryUIPrefix(in *instance) string { return in.publicURL + "ui/recovery?flow=" }

// flowIDFrom returns the flow query parameter of a URL.
func flowIDFrom(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("bad URL %q: %v", u, err)
	}
	id := p.Query().Get("flow")
	if !isUUID(id) {
		t.Fatalf("URL %q has no flow id", u)
	}
	return id
}

// wantRecoveryMessages fails unless f carries the message id.
func wantRecoveryMessage(t *testing.T, f *ory.RecoveryFlow, state string, id int64) {
	t.Helper()
	if string(f.State) != state {
		t.Errorf("recovery flow state = %q, want %q", f.State, state)
	}
	if ids := sdkMessageIDs(f.Ui.Messages); !containsID(ids, id) {
		t.Errorf("recovery flow messages = %v, want %d", ids, id)
	}
}

// TestRecoveryNativeCode walks a native recovery flow: create, get, an
// unknown and a known address, a wrong code, the mailed code, and a replay.
func TestRecoveryNativeCode(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u := registerNative(t, in)
	c := in.api()

	flow, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.Type != "api" || flow.State != "choose_method" || flow.GetActive() != "code" {
		t.Errorf("new flow: type %q state %q active %q, want api choose_method code", flow.Type, flow.State, flow.GetActive())
	}
	if sdkNode(flow.Ui.Nodes, "email") == nil {
		t.Error("choose_method screen has no email input")
	}
	got, resp, err := c.FrontendAPI.GetRecoveryFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.Id != flow.Id {
		t.Errorf("getRecoveryFlow id = %q, want %q", got.Id, flow.Id)
	}

	f, resp, err := c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoveryMessage(t, f, "sent_email", 1060003)
	if sdkNode(f.Ui.Nodes, "code") == nil {
		t.Error("sent_email screen has no code input")
	}
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)

	f, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(wrongCode(code), "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoveryMessage(t, f, "sent_email", 4060006)

	// Kratos's default: even a native client must continue in a browser;
	// no session token is handed out.
	_, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, "")).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("correct code: %v %v, want 422", resp, err)
	}
	body := sdkErrBody(t, err)
	e := decodeError(t, 422, body)
	if e.Error.ID != "browser_location_change_required" {
		t.Errorf("error.id = %q, want browser_location_change_required", e.Error.ID)
	}
	if !strings.HasPrefix(e.RedirectBrowserTo, settingsUIPrefix(in)) {
		t.Errorf("redirect_browser_to = %q, want %s<id>", e.RedirectBrowserTo, settingsUIPrefix(in))
	} else {
		flowIDFrom(t, e.RedirectBrowserTo)
	}
	if strings.Contains(string(body), "ory_st_") {
		t.Errorf("the 422 answer hands out a session token: %s", clip(body))
	}
	got, resp, err = c.FrontendAPI.GetRecoveryFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.State != "passed_challenge" {
		t.Errorf("after success the flow state = %q, want passed_challenge", got.State)
	}

	// The code and the flow are used up: a replay starts over (observed:
	// 303 to a new flow, also for API flows).
	_, resp, _ = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, "")).Execute()
	if resp == nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("replaying the code: %v, want 303", resp)
	}
	loc := resp.Header.Get("Location")
	if prefix := in.publicURL + "self-service/recovery/flows?id="; !strings.HasPrefix(loc, prefix) || strings.HasSuffix(loc, flow.Id) {
		t.Errorf("replay Location = %q, want %s<new flow id>", loc, prefix)
	}
	if n := len(mails.to(u.Email, subjectRecovery)); n != 1 {
		t.Errorf("%d recovery mails, want 1", n)
	}
}

// TestRecoveryUnknownAddress: an address without account gets the same
// answer and no mail (notify_unknown_recipients is off).
func TestRecoveryUnknownAddress(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	unknown := randEmail()
	for _, native := range []bool{true, false} {
		var f *ory.RecoveryFlow
		if native {
			c := in.api()
			flow, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			f, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(unknown, "")).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
		} else {
			b := newBrowser(t, in)
			flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			f, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).
				UpdateRecoveryFlowBody(recoveryEmailBody(unknown, sdkCSRF(t, flow.Ui.Nodes))).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
		}
		wantRecoveryMessage(t, f, "sent_email", 1060003)
	}
	// A known address afterwards: once its mail is there, an unknown one
	// queued earlier would have been sent too.
	u := registerNative(t, in)
	startRecovery(t, in, u.Email)
	mails.last(t, u.Email, subjectRecovery, 1)
	mails.none(t, unknown, "")
}

// TestRecoveryBrowserJSON is the SPA path: JSON requests with the CSRF
// cookie and token; success is 422 with the settings UI and the session
// cookie.
func TestRecoveryBrowserJSON(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)

	flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.Type != "browser" || flow.State != "choose_method" {
		t.Errorf("new flow: type %q state %q", flow.Type, flow.State)
	}
	csrf := sdkCSRF(t, flow.Ui.Nodes)

	// Without the CSRF cookie the flow is not handed out.
	_, resp, err = in.api().FrontendAPI.GetRecoveryFlow(ctx).Id(flow.Id).Execute()
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("getRecoveryFlow without cookie: %v, want 403", resp)
	}
	if e := decodeError(t, 403, sdkErrBody(t, err)); e.Error.ID != "security_csrf_violation" {
		t.Errorf("error.id = %q, want security_csrf_violation", e.Error.ID)
	}
	_, resp, err = b.sdk.FrontendAPI.GetRecoveryFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	f, resp, err := b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoveryMessage(t, f, "sent_email", 1060003)
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)

	f, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(wrongCode(code), csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoveryMessage(t, f, "sent_email", 4060006)
	if b.cookie("ory_kratos_session") != nil {
		t.Fatal("a wrong code set a session cookie")
	}

	_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, csrf)).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("correct code: %v %v, want 422", resp, err)
	}
	e := decodeError(t, 422, sdkErrBody(t, err))
	if e.Error.ID != "browser_location_change_required" || !strings.HasPrefix(e.RedirectBrowserTo, settingsUIPrefix(in)) {
		t.Errorf("422 answer: id %q redirect_browser_to %q, want browser_location_change_required to %s<id>", e.Error.ID, e.RedirectBrowserTo, settingsUIPrefix(in))
	}
	if c := cookieFrom(resp, "ory_kratos_session"); c == nil {
		t.Fatal("recovery success did not set the session cookie")
	} else {
		assertCookieAttrs(t, c)
	}
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoverySession(t, s, u.IdentityID, "code_recovery")

	// The settings flow it points to belongs to the browser and is open.
	sf, resp, err := b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(flowIDFrom(t, e.RedirectBrowserTo)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sf.Identity.Id != u.IdentityID {
		t.Errorf("settings flow identity = %q, want %q", sf.Identity.Id, u.IdentityID)
	}
}

// wantRecoverySession checks that s is the recovered identity's session,
// authenticated by method.
func wantRecoverySession(t *testing.T, s *ory.Session, identityID, method string) {
	t.Helper()
	if s == nil || s.Identity == nil || s.Identity.Id != identityID {
		t.Fatalf("whoami after recovery: %+v, want identity %s", s, identityID)
	}
	if len(s.AuthenticationMethods) == 0 || s.AuthenticationMethods[0].GetMethod() != method {
		t.Errorf("authentication_methods = %+v, want %s", s.AuthenticationMethods, method)
	}
}

// TestRecoveryBrowserForm is the server-rendered path: HTML navigations and
// form posts, answered with 303s to the UI pages.
func TestRecoveryBrowserForm(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	html := hdr{"Accept": "text/html"}

	r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/recovery/browser", html, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, recoveryUIPrefix(in)) {
		t.Fatalf("Location = %q, want %s<id>", loc, recoveryUIPrefix(in))
	}
	flowID := flowIDFrom(t, loc)
	flow, resp, err := b.sdk.FrontendAPI.GetRecoveryFlow(ctx).Id(flowID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	csrf := sdkCSRF(t, flow.Ui.Nodes)

	post := func(form url.Values) (*http.Response, []byte) {
		form.Set("csrf_token", csrf)
		form.Set("method", "code")
		return do(t, b.hc, "POST", in.apiBase+"/self-service/recovery?flow="+flowID,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	}
	r, body = post(url.Values{"email": {u.Email}})
	wantStatus(t, r, body, http.StatusSeeOther)
	if got := r.Header.Get("Location"); got != recoveryUIPrefix(in)+flowID {
		t.Errorf("after the address: Location = %q, want %s%s", got, recoveryUIPrefix(in), flowID)
	}
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)

	r, body = post(url.Values{"code": {wrongCode(code)}})
	wantStatus(t, r, body, http.StatusSeeOther)
	f, resp, err := b.sdk.FrontendAPI.GetRecoveryFlow(ctx).Id(flowID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoveryMessage(t, f, "sent_email", 4060006)

	r, body = post(url.Values{"code": {code}})
	wantStatus(t, r, body, http.StatusSeeOther)
	if got := r.Header.Get("Location"); !strings.HasPrefix(got, settingsUIPrefix(in)) {
		t.Errorf("after the code: Location = %q, want %s<id>", got, settingsUIPrefix(in))
	}
	if cookieFrom(r, "ory_kratos_session") == nil {
		t.Fatal("recovery success did not set the session cookie")
	}
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoverySession(t, s, u.IdentityID, "code_recovery")
}

// TestRecoveryAttemptsLimit: after code_max_submissions (5) wrong codes the
// right one no longer works and the flow must be started again.
func TestRecoveryAttemptsLimit(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u := registerNative(t, in)
	c := in.api()
	flowID := startRecovery(t, in, u.Email)
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)

	for i := 1; i <= 5; i++ {
		f, resp, err := c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryCodeBody(wrongCode(code), "")).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		wantRecoveryMessage(t, f, "sent_email", 4060006)
	}
	f, resp, err := c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryCodeBody(code, "")).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the right code after 5 wrong ones: %v %v, want 200 (refused)", resp, err)
	}
	wantRecoveryMessage(t, f, "choose_method", 4060002)
	if sdkNode(f.Ui.Nodes, "email") == nil {
		t.Error("the flow did not return to choose_method (no email input)")
	}
	// Starting over on the same flow mails a new code, which works.
	f, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRecoveryMessage(t, f, "sent_email", 1060003)
	next := mails.last(t, u.Email, subjectRecovery, 2).code(t)
	wantRecovered(t, in, flowID, next)
}

// TestRecoveryContinueWith: with use_continue_with_transitions a native
// client gets 200 with the session token and the settings flow, and a
// browser SPA gets 200 with the settings flow and the cookie.
func TestRecoveryContinueWith(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "recovery", "use_continue_with_transitions")

	t.Run("native", func(t *testing.T) {
		t.Parallel()
		u := registerNative(t, in)
		flowID := startRecovery(t, in, u.Email)
		code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
		f, resp, err := in.api().FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryCodeBody(code, "")).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if f.State != "passed_challenge" {
			t.Errorf("state = %q, want passed_challenge", f.State)
		}
		if len(f.ContinueWith) != 2 || f.ContinueWith[0].ContinueWithSetOrySessionToken == nil || f.ContinueWith[1].ContinueWithSettingsUi == nil {
			t.Fatalf("continue_with = %+v, want [set_ory_session_token, show_settings_ui]", f.ContinueWith)
		}
		tok := f.ContinueWith[0].ContinueWithSetOrySessionToken.OrySessionToken
		assertSessionToken(t, tok)
		if id := f.ContinueWith[1].ContinueWithSettingsUi.Flow.Id; !isUUID(id) {
			t.Errorf("show_settings_ui flow id = %q", id)
		}
		s, status := whoamiToken(t, in, tok)
		if status != http.StatusOK {
			t.Fatalf("whoami with the recovery token = %d", status)
		}
		wantRecoverySession(t, s, u.IdentityID, "code_recovery")
	})

	t.Run("browser", func(t *testing.T) {
		t.Parallel()
		u := registerNative(t, in)
		b := newBrowser(t, in)
		flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		csrf := sdkCSRF(t, flow.Ui.Nodes)
		_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, csrf)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
		f, resp, err := b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, csrf)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if len(f.ContinueWith) != 1 || f.ContinueWith[0].ContinueWithSettingsUi == nil {
			t.Fatalf("continue_with = %+v, want [show_settings_ui]", f.ContinueWith)
		}
		if u := f.ContinueWith[0].ContinueWithSettingsUi.Flow.GetUrl(); !strings.HasPrefix(u, settingsUIPrefix(in)) {
			t.Errorf("show_settings_ui url = %q, want %s<id>", u, settingsUIPrefix(in))
		}
		if cookieFrom(resp, "ory_kratos_session") == nil {
			t.Fatal("no session cookie")
		}
		s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		wantRecoverySession(t, s, u.IdentityID, "code_recovery")
	})
}

// TestRecoveryLink: `recovery link` mails a one-time link; opening it in a
// browser signs in (cookie) and leads to the settings UI; the link works
// once. Kratos issues the cookie and a browser settings flow also when the
// recovery flow was started by a native client: the link is always opened
// in a browser.
func TestRecoveryLink(t *testing.T) {
	t.Parallel()
	in, mails := sharedLinkMail(t)

	for _, native := range []bool{false, true} {
		name := map[bool]string{false: "browser flow", true: "native flow"}[native]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := registerNative(t, in)
			b := newBrowser(t, in)
			link := ory.NewUpdateRecoveryFlowWithLinkMethod(u.Email, "link")
			var flowID string
			var f *ory.RecoveryFlow
			if native {
				c := in.api()
				flow, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
				wantSDKStatus(t, resp, err, http.StatusOK)
				flowID = flow.Id
				f, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).
					UpdateRecoveryFlowBody(ory.UpdateRecoveryFlowWithLinkMethodAsUpdateRecoveryFlowBody(link)).Execute()
				wantSDKStatus(t, resp, err, http.StatusOK)
			} else {
				flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
				wantSDKStatus(t, resp, err, http.StatusOK)
				flowID = flow.Id
				link.SetCsrfToken(sdkCSRF(t, flow.Ui.Nodes))
				f, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).
					UpdateRecoveryFlowBody(ory.UpdateRecoveryFlowWithLinkMethodAsUpdateRecoveryFlowBody(link)).Execute()
				wantSDKStatus(t, resp, err, http.StatusOK)
			}
			if f.GetActive() != "link" {
				t.Errorf("active = %q, want link", f.GetActive())
			}
			wantRecoveryMessage(t, f, "sent_email", 1060002)

			mailed := mails.last(t, u.Email, subjectRecovery, 1).link(t)
			if prefix := in.publicURL + "self-service/recovery?flow=" + flowID + "&token="; !strings.HasPrefix(mailed, prefix) {
				t.Fatalf("mailed link = %q, want %s<token>", mailed, prefix)
			}

			r, rb := do(t, b.hc, "GET", mailed, hdr{"Accept": "text/html"}, nil)
			wantStatus(t, r, rb, http.StatusSeeOther)
			if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, settingsUIPrefix(in)) {
				t.Errorf("Location = %q, want %s<id>", loc, settingsUIPrefix(in))
			}
			if cookieFrom(r, "ory_kratos_session") == nil {
				t.Fatal("opening the recovery link did not set the session cookie")
			}
			s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			wantRecoverySession(t, s, u.IdentityID, "link_recovery")
			sf, resp, err := b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(flowIDFrom(t, r.Header.Get("Location"))).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			if sf.Type != "browser" {
				t.Errorf("settings flow type = %q, want browser", sf.Type)
			}

			// The token is single use.
			other := newBrowser(t, in)
			r, rb = do(t, other.hc, "GET", mailed, hdr{"Accept": "application/json"}, nil)
			if cookieFrom(r, "ory_kratos_session") != nil {
				t.Fatal("a used recovery link signed in again")
			}
			if r.StatusCode == http.StatusOK {
				if f := decodeFlow(t, rb); !containsID(f.messageIDs(), 4060004) {
					t.Errorf("used link: messages %v, want 4060004", f.messageIDs())
				}
			} else if r.StatusCode != http.StatusSeeOther {
				t.Errorf("used link: status %d, want 200 with 4060004 (or 303 to a new flow); body %s", r.StatusCode, clip(rb))
			}
		})
	}
}

// TestRecoveryExpiredCode: a code older than code_lifespan is refused and
// the client is moved to a new flow that says why (message 4060005).
func TestRecoveryExpiredCode(t *testing.T) {
	t.Parallel()
	in, mails := sharedShortCodeMail(t)
	u := registerNative(t, in)
	flowID := startRecovery(t, in, u.Email)
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
	time.Sleep(2500 * time.Millisecond) // code_lifespan 2s

	_, resp, err := in.api().FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryCodeBody(code, "")).Execute()
	if resp != nil && resp.StatusCode == http.StatusUnprocessableEntity {
		t.Fatal("an expired recovery code was accepted")
	}
	newID := wantExpiredCodeAnswer(t, in, "recovery", flowID, resp, err)
	nf, resp, err := in.api().FrontendAPI.GetRecoveryFlow(ctx).Id(newID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if ids := sdkMessageIDs(nf.Ui.Messages); !containsID(ids, 4060005) {
		t.Errorf("new flow messages = %v, want 4060005", ids)
	}
}

// wantExpiredCodeAnswer checks Kratos's answer to an expired code on an API
// flow and returns the id of the new flow it points to. Kratos versions
// differ: 410 self_service_flow_expired with use_flow_id, or 303 to
// /self-service/<kind>/flows?id=<new flow>.
func wantExpiredCodeAnswer(t *testing.T, in *instance, kind, oldID string, resp *http.Response, err error) string {
	t.Helper()
	if resp == nil {
		t.Fatal(err)
	}
	var newID string
	switch resp.StatusCode {
	case http.StatusGone:
		newID = decodeError(t, 410, sdkErrBody(t, err)).UseFlowID
	case http.StatusSeeOther:
		loc := resp.Header.Get("Location")
		prefix := in.publicURL + "self-service/" + kind + "/flows?id="
		if !strings.HasPrefix(loc, prefix) {
			t.Fatalf("expired code: Location = %q, want %s<new flow>", loc, prefix)
		}
		newID = strings.TrimPrefix(loc, prefix)
	default:
		t.Fatalf("expired code: status %d, want 410 with use_flow_id or 303 to a new flow (Kratos: flow expired); body %s",
			resp.StatusCode, clip(sdkErrBodyOrNil(err)))
	}
	if !isUUID(newID) || newID == oldID {
		t.Fatalf("expired code: new flow id %q (old %s)", newID, oldID)
	}
	return newID
}

// sdkErrBodyOrNil is the body of an SDK error, if any.
func sdkErrBodyOrNil(err error) []byte {
	var ge *ory.GenericOpenAPIError
	if errors.As(err, &ge) {
		return ge.Body()
	}
	return nil
}
