package e2e

import (
	"net/http"
	"testing"

	ory "github.com/ory/client-go"
)

// The code method through the SDK with real mail: passwordless sign-up and
// sign-in, and a mailed code as second factor.

const (
	subjectLoginCode        = "Login to your account"
	subjectRegistrationCode = "Complete your account registration"
)

func TestCodePasswordlessRegistrationAndLogin(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "methods code", "code {\n\t\t\tpasswordless\n\t\t}", "registration_style unified")
	c := in.api()
	email := randEmail()

	f, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	// The "code sent" answer is the flow itself (200), which the SDK's
	// success type cannot hold: post it raw.
	r, body := do(t, plainHTTP(), "POST", in.apiBase+"/self-service/registration?flow="+f.Id,
		hdr{"Accept": "application/json", "Content-Type": "application/json"},
		[]byte(`{"method":"code","traits":{"email":"`+email+`"}}`))
	wantStatus(t, r, body, http.StatusOK)
	sentFlow := decodeFlow(t, body)
	if sentFlow.State != "sent_email" || !containsID(sentFlow.messageIDs(), 1040005) {
		t.Fatalf("sign-up code: state %q messages %v", sentFlow.State, sentFlow.messageIDs())
	}
	code := mails.last(t, email, subjectRegistrationCode, 1).code(t)

	bad := ory.NewUpdateRegistrationFlowWithCodeMethod("code", map[string]any{"email": email})
	bad.SetCode(wrongCode(code))
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithCodeMethodAsUpdateRegistrationFlowBody(bad)).Execute()
	if resp == nil || resp.StatusCode != 400 || !containsID(decodeFlow(t, sdkErrBody(t, err)).messageIDs(), 4040003) {
		t.Fatalf("wrong sign-up code accepted or wrong message: %v", err)
	}
	good := ory.NewUpdateRegistrationFlowWithCodeMethod("code", map[string]any{"email": email})
	good.SetCode(code)
	reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithCodeMethodAsUpdateRegistrationFlowBody(good)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if reg.SessionToken == nil || !reg.Identity.VerifiableAddresses[0].Verified {
		t.Fatalf("code sign-up: token %v, address %+v", reg.SessionToken, reg.Identity.VerifiableAddresses)
	}

	// Sign in with a mailed code.
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(lf.Ui.Nodes, "method") == nil {
		t.Fatal("no method nodes")
	}
	ls := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	ls.SetIdentifier(email)
	_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(ls)).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("send login code: %v", resp)
	}
	lcode := mails.last(t, email, subjectLoginCode, 1).code(t)
	lc := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	lc.SetCode(lcode)
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(lc)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.SessionToken == nil || res.Session.AuthenticationMethods[0].GetMethod() != "code" {
		t.Fatalf("code login: %+v", res.Session.AuthenticationMethods)
	}
	// The code is single use.
	_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(lc)).Execute()
	if resp == nil || resp.StatusCode == http.StatusOK {
		t.Fatal("a used login code was accepted again")
	}
}

func TestCodeAsSecondFactor(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "methods code", "code {\n\t\t\tmfa\n\t\t}", "registration_style unified")
	c := in.api()
	u := registerNative(t, in)
	if _, st := whoamiToken(t, in, u.Token); st != http.StatusForbidden {
		t.Fatalf("aal1 session with code MFA on: whoami %d, want 403", st)
	}
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(lf.Ui.Nodes, "address") == nil {
		t.Fatal("no address node on the aal2 flow")
	}
	send := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	send.SetAddress(u.Email)
	_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(u.Token).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("send second-factor code: %v", resp)
	}
	code := mails.last(t, u.Email, subjectLoginCode, 1).code(t)
	up := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	up.SetCode(code)
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(u.Token).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(up)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" || res.Session.Id != u.SessionID {
		t.Fatalf("aal2 upgrade: %s session %s", res.Session.GetAuthenticatorAssuranceLevel(), res.Session.Id)
	}
	if _, st := whoamiToken(t, in, u.Token); st != http.StatusOK {
		t.Fatalf("whoami after second factor: %d", st)
	}
}
