package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// Verification by code and by link, with the codes and links read from the
// mails delivered to the SMTP server in this process (mail_test.go).

// verificationUIPrefix is the built-in verification page of in with ?flow=.
func verificationUIPrefix(in *instance) string { return in.publicURL + "ui/verification?flow=" }

func verificationEmailBody(email, csrf string) ory.UpdateVerificationFlowBody {
	b := ory.NewUpdateVerificationFlowWithCodeMethod("code")
	b.SetEmail(email)
	if csrf != "" {
		b.SetCsrfToken(csrf)
	}
	return ory.UpdateVerificationFlowWithCodeMethodAsUpdateVerificationFlowBody(b)
}

func verificationCodeBody(code, csrf string) ory.UpdateVerificationFlowBody {
	b := ory.NewUpdateVerificationFlowWithCodeMethod("code")
	b.SetCode(code)
	if csrf != "" {
		b.SetCsrfToken(csrf)
	}
	return ory.UpdateVerificationFlowWithCodeMethodAsUpdateVerificationFlowBody(b)
}

func wantVerificationMessage(t *testing.T, f *ory.VerificationFlow, state string, id int64) {
	t.Helper()
	if string(f.State) != state {
		t.Errorf("verification flow state = %q, want %q", f.State, state)
	}
	if ids := sdkMessageIDs(f.Ui.Messages); !containsID(ids, id) {
		t.Errorf("verification flow messages = %v, want %d", ids, id)
	}
}

// wantPassed checks the passed_challenge screen: message 1080002 and the
// `continue` anchor.
func wantPassed(t *testing.T, f *ory.VerificationFlow) {
	t.Helper()
	wantVerificationMessage(t, f, "passed_challenge", 1080002)
	for _, n := range f.Ui.Nodes {
		if a := n.Attributes.UiNodeAnchorAttributes; a != nil && a.Id == "continue" {
			if a.Href == "" {
				t.Error("the continue anchor has no href")
			}
			return
		}
	}
	t.Errorf("passed_challenge without the continue anchor: %+v", f.Ui.Nodes)
}

// wantVerified checks whoami's first verifiable address.
func wantVerified(t *testing.T, in *instance, token, email string) {
	t.Helper()
	s, status := whoamiToken(t, in, token)
	if status != http.StatusOK {
		t.Fatalf("whoami = %d", status)
	}
	va := s.Identity.VerifiableAddresses
	if len(va) != 1 || va[0].Value != email {
		t.Fatalf("verifiable_addresses = %+v, want one for %s", va, email)
	}
	if !va[0].Verified || va[0].Status != "completed" || va[0].VerifiedAt == nil {
		t.Errorf("verifiable address after verification: verified %v status %q verified_at %v, want true completed set",
			va[0].Verified, va[0].Status, va[0].VerifiedAt)
	}
}

// registerNativeVerify registers natively and returns the user and the
// verification flow id from continue_with (show_verification_ui).
func registerNativeVerify(t *testing.T, in *instance) (user, string) {
	t.Helper()
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	u := user{Email: randEmail(), Password: randPassword()}
	body := ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
		ory.NewUpdateRegistrationFlowWithPasswordMethod("password", u.Password, map[string]any{"email": u.Email}))
	reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(body).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	u.IdentityID, u.Token = reg.Identity.Id, reg.GetSessionToken()
	var vf *ory.ContinueWithVerificationUiFlow
	for _, cw := range reg.ContinueWith {
		if cw.ContinueWithVerificationUi != nil {
			vf = &cw.ContinueWithVerificationUi.Flow
		}
	}
	if vf == nil {
		t.Fatalf("registration continue_with = %+v, want show_verification_ui", reg.ContinueWith)
	}
	if vf.VerifiableAddress != u.Email || !isUUID(vf.Id) {
		t.Errorf("show_verification_ui flow = %+v, want id and verifiable_address %s", vf, u.Email)
	}
	if va := reg.Identity.VerifiableAddresses; len(va) != 1 || va[0].Verified || va[0].Status != "sent" {
		t.Errorf("verifiable_addresses after registration = %+v, want one unverified with status sent", va)
	}
	return u, vf.Id
}

// TestVerificationNativeCode: registration mails a code and points to a
// verification flow; a new native flow verifies the address with the
// code from its own mail.
func TestVerificationNativeCode(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u, regFlow := registerNativeVerify(t, in)
	first := mails.last(t, u.Email, subjectVerification, 1)
	if l := first.link(t); !strings.Contains(l, "flow="+regFlow) || !strings.Contains(l, "code="+first.code(t)) {
		t.Errorf("registration mail link %q does not carry flow %s and the code", l, regFlow)
	}
	c := in.api()

	flow, resp, err := c.FrontendAPI.CreateNativeVerificationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.Type != "api" || flow.State != "choose_method" {
		t.Errorf("new flow: type %q state %q", flow.Type, flow.State)
	}
	got, resp, err := c.FrontendAPI.GetVerificationFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.Id != flow.Id {
		t.Errorf("getVerificationFlow id = %q", got.Id)
	}

	f, resp, err := c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationEmailBody(u.Email, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantVerificationMessage(t, f, "sent_email", 1080003)
	msg := mails.last(t, u.Email, subjectVerification, 2)
	if !strings.Contains(msg.link(t), "flow="+flow.Id) {
		t.Fatalf("second mail is not for flow %s: %s", flow.Id, msg.link(t))
	}
	code := msg.code(t)

	f, resp, err = c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationCodeBody(wrongCode(code), "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantVerificationMessage(t, f, "sent_email", 4070006)

	// The registration flow's code does not work on this flow.
	if first.code(t) != code {
		f, resp, err = c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationCodeBody(first.code(t), "")).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		wantVerificationMessage(t, f, "sent_email", 4070006)
	}

	f, resp, err = c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationCodeBody(code, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantPassed(t, f)
	wantVerified(t, in, u.Token, u.Email)
}

// TestVerificationUnknownAddress: same answer, no mail.
func TestVerificationUnknownAddress(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	unknown := randEmail()
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeVerificationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	f, resp, err := c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationEmailBody(unknown, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantVerificationMessage(t, f, "sent_email", 1080003)
	u, _ := registerNativeVerify(t, in) // its mail is queued after the unknown one would have been
	mails.last(t, u.Email, subjectVerification, 1)
	mails.none(t, unknown, "")
}

// TestVerificationMailedLink: the link in the registration mail
// (GET /self-service/verification?flow=&code=) verifies the address, for
// a browser (303 to the UI) and for a JSON client (200 passed_challenge).
func TestVerificationMailedLink(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)

	t.Run("browser", func(t *testing.T) {
		t.Parallel()
		u, regFlow := registerNativeVerify(t, in)
		link := mails.last(t, u.Email, subjectVerification, 1).link(t)
		r, body := do(t, plainHTTP(), "GET", link, hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != verificationUIPrefix(in)+regFlow {
			t.Errorf("Location = %q, want %s%s", loc, verificationUIPrefix(in), regFlow)
		}
		wantVerified(t, in, u.Token, u.Email)
		f, resp, err := in.api().FrontendAPI.GetVerificationFlow(ctx).Id(regFlow).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		wantPassed(t, f)
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		u, _ := registerNativeVerify(t, in)
		link := mails.last(t, u.Email, subjectVerification, 1).link(t)
		r, body := do(t, plainHTTP(), "GET", link, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		if f := decodeFlow(t, body); f.State != "passed_challenge" || !containsID(f.messageIDs(), 1080002) {
			t.Errorf("link answer: state %v messages %v, want passed_challenge 1080002", f.State, f.messageIDs())
		}
		wantVerified(t, in, u.Token, u.Email)
	})
}

// TestVerificationBrowser: a browser registration points to the
// verification UI; a browser verification flow needs the CSRF cookie and
// verifies with the mailed code.
func TestVerificationBrowser(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	b := newBrowser(t, in)

	rf, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	email, password := randEmail(), randPassword()
	pw := ory.NewUpdateRegistrationFlowWithPasswordMethod("password", password, map[string]any{"email": email})
	pw.SetCsrfToken(sdkCSRF(t, rf.Ui.Nodes))
	reg, resp, err := b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	var shown bool
	for _, cw := range reg.ContinueWith {
		if v := cw.ContinueWithVerificationUi; v != nil {
			shown = true
			if got := v.Flow.GetUrl(); got != verificationUIPrefix(in)+v.Flow.Id {
				t.Errorf("show_verification_ui url = %q, want %s%s", got, verificationUIPrefix(in), v.Flow.Id)
			}
		}
	}
	if !shown {
		t.Errorf("browser registration continue_with = %+v, want show_verification_ui", reg.ContinueWith)
	}
	mails.last(t, email, subjectVerification, 1)

	flow, resp, err := b.sdk.FrontendAPI.CreateBrowserVerificationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.Type != "browser" || flow.State != "choose_method" {
		t.Errorf("new flow: type %q state %q", flow.Type, flow.State)
	}
	csrf := sdkCSRF(t, flow.Ui.Nodes)
	_, resp, err = in.api().FrontendAPI.GetVerificationFlow(ctx).Id(flow.Id).Execute()
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("getVerificationFlow without cookie: %v, want 403", resp)
	}
	if e := decodeError(t, 403, sdkErrBody(t, err)); e.Error.ID != "security_csrf_violation" {
		t.Errorf("error.id = %q, want security_csrf_violation", e.Error.ID)
	}
	_, resp, err = b.sdk.FrontendAPI.GetVerificationFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	f, resp, err := b.sdk.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationEmailBody(email, csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantVerificationMessage(t, f, "sent_email", 1080003)
	code := mails.last(t, email, subjectVerification, 2).code(t)

	f, resp, err = b.sdk.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationCodeBody(wrongCode(code), csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantVerificationMessage(t, f, "sent_email", 4070006)

	f, resp, err = b.sdk.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(verificationCodeBody(code, csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantPassed(t, f)
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if va := s.Identity.VerifiableAddresses; len(va) != 1 || !va[0].Verified || va[0].Status != "completed" {
		t.Errorf("verifiable_addresses = %+v, want verified and completed", va)
	}
}

// TestVerificationBrowserForm is the server-rendered path without a
// session: HTML navigation and form posts, each answered with a 303 to the
// verification UI.
func TestVerificationBrowserForm(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u, _ := registerNativeVerify(t, in)
	mails.last(t, u.Email, subjectVerification, 1)
	b := newBrowser(t, in)

	r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/verification/browser", hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, verificationUIPrefix(in)) {
		t.Fatalf("Location = %q, want %s<id>", loc, verificationUIPrefix(in))
	}
	flowID := flowIDFrom(t, loc)
	flow, resp, err := b.sdk.FrontendAPI.GetVerificationFlow(ctx).Id(flowID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	csrf := sdkCSRF(t, flow.Ui.Nodes)

	post := func(form url.Values) {
		t.Helper()
		form.Set("csrf_token", csrf)
		form.Set("method", "code")
		r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/verification?flow="+flowID,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != verificationUIPrefix(in)+flowID {
			t.Errorf("Location = %q, want %s%s", got, verificationUIPrefix(in), flowID)
		}
	}
	get := func() *ory.VerificationFlow {
		t.Helper()
		f, resp, err := b.sdk.FrontendAPI.GetVerificationFlow(ctx).Id(flowID).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		return f
	}
	post(url.Values{"email": {u.Email}})
	wantVerificationMessage(t, get(), "sent_email", 1080003)
	code := mails.last(t, u.Email, subjectVerification, 2).code(t)
	post(url.Values{"code": {wrongCode(code)}})
	wantVerificationMessage(t, get(), "sent_email", 4070006)
	post(url.Values{"code": {code}})
	wantPassed(t, get())
	wantVerified(t, in, u.Token, u.Email)
}

// TestVerificationLink: `verification link` mails a link with a token;
// following it verifies the address.
func TestVerificationLink(t *testing.T) {
	t.Parallel()
	in, mails := sharedLinkMail(t)
	u, _ := registerNativeVerify(t, in)
	mails.last(t, u.Email, subjectVerification, 1)
	c := in.api()

	flow, resp, err := c.FrontendAPI.CreateNativeVerificationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.GetActive() != "link" {
		t.Errorf("active = %q, want link", flow.GetActive())
	}
	body := ory.UpdateVerificationFlowWithLinkMethodAsUpdateVerificationFlowBody(ory.NewUpdateVerificationFlowWithLinkMethod(u.Email, "link"))
	f, resp, err := c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(body).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantVerificationMessage(t, f, "sent_email", 1080001)

	link := mails.last(t, u.Email, subjectVerification, 2).link(t)
	if prefix := in.publicURL + "self-service/verification?flow=" + flow.Id + "&token="; !strings.HasPrefix(link, prefix) {
		t.Fatalf("mailed link = %q, want %s<token>", link, prefix)
	}
	r, rb := do(t, plainHTTP(), "GET", link, hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, rb, http.StatusOK)
	if f := decodeFlow(t, rb); f.State != "passed_challenge" || !containsID(f.messageIDs(), 1080002) {
		t.Errorf("link answer: state %v messages %v, want passed_challenge 1080002", f.State, f.messageIDs())
	}
	wantVerified(t, in, u.Token, u.Email)
}

// TestVerificationExpiredCode: a code older than code_lifespan is refused
// and the client is moved to a new flow that says why (message 4070005).
func TestVerificationExpiredCode(t *testing.T) {
	t.Parallel()
	in, mails := sharedShortCodeMail(t)
	u, regFlow := registerNativeVerify(t, in)
	code := mails.last(t, u.Email, subjectVerification, 1).code(t)
	time.Sleep(2500 * time.Millisecond) // code_lifespan 2s

	f, resp, err := in.api().FrontendAPI.UpdateVerificationFlow(ctx).Flow(regFlow).UpdateVerificationFlowBody(verificationCodeBody(code, "")).Execute()
	if resp != nil && resp.StatusCode == http.StatusOK && f != nil && f.State == "passed_challenge" {
		t.Fatal("an expired verification code was accepted")
	}
	s, _ := whoamiToken(t, in, u.Token)
	if va := s.Identity.VerifiableAddresses; len(va) == 1 && va[0].Verified {
		t.Fatal("an expired verification code verified the address")
	}
	newID := wantExpiredCodeAnswer(t, in, "verification", regFlow, resp, err)
	nf, resp, err := in.api().FrontendAPI.GetVerificationFlow(ctx).Id(newID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if ids := sdkMessageIDs(nf.Ui.Messages); !containsID(ids, 4070005) {
		t.Errorf("new flow messages = %v, want 4070005", ids)
	}
}
