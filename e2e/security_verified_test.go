package e2e

import (
	"net/http"
	"testing"

	ory "github.com/ory/client-go"
)

// Issue 11, item 4: require_verified_address was parsed and copied into the
// engine and nothing read it: an unverified address signed in with its
// password. Now every first-factor sign-in is refused with message 4000010
// until an address is verified, and sign-up issues no session before that.

// TestSecurityRequireVerifiedAddress: with the option on, registration
// answers the identity without a session, a password login is 400 with
// 4000010 on the flow (no token), a code sign-in of an unverified address
// succeeds (the code proves the address), and after verification by the
// mailed link the password works.
func TestSecurityRequireVerifiedAddress(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "verification", "require_verified_address", "methods code", "code {\n\t\t\tpasswordless\n\t\t}", "rate_limits off")
	c := in.api()

	register := func() user {
		t.Helper()
		flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		u := user{Email: randEmail(), Password: randPassword()}
		body := ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", u.Password, map[string]any{"email": u.Email}))
		reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(body).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if reg.Identity == nil || reg.Identity.Id == "" {
			t.Fatalf("registration answer has no identity: %+v", reg)
		}
		if reg.Session != nil || reg.SessionToken != nil {
			t.Fatalf("registration of an unverified address issued a session (token %v)", reg.SessionToken)
		}
		u.IdentityID = reg.Identity.Id
		return u
	}
	refused := func(u user) {
		t.Helper()
		flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		body := ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(
			ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password))
		_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).UpdateLoginFlowBody(body).Execute()
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("password login of an unverified address: %v %v, want 400", resp, err)
		}
		f := decodeFlow(t, sdkErrBody(t, err))
		if !containsID(f.messageIDs(), 4000010) {
			t.Fatalf("messages %v, want 4000010", f.messageIDs())
		}
	}

	t.Run("password login waits for verification", func(t *testing.T) {
		t.Parallel()
		u := register()
		refused(u)
		link := mails.last(t, u.Email, subjectVerification, 1).link(t)
		r, body := do(t, plainHTTP(), "GET", link, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		token, s := loginNative(t, in, u.Email, u.Password)
		if token == "" || s.Identity == nil || s.Identity.Id != u.IdentityID {
			t.Fatalf("login after verification: token %q session %+v", token, s)
		}
	})

	t.Run("code sign-in proves the address", func(t *testing.T) {
		t.Parallel()
		u := register()
		refused(u)
		flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		send := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		send.SetIdentifier(u.Email)
		_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
		if resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("asking for a login code: %v %v", resp, err)
		}
		code := mails.last(t, u.Email, subjectLoginCode, 1).code(t)
		submit := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		submit.SetIdentifier(u.Email)
		submit.SetCode(code)
		res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(submit)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if res.SessionToken == nil || res.Session.Identity == nil || res.Session.Identity.Id != u.IdentityID {
			t.Fatalf("code sign-in: %+v", res)
		}
	})
}

// TestSecurityRequireVerifiedAddressOff: without the option an unverified
// address signs in with its password (Kratos's default).
func TestSecurityRequireVerifiedAddressOff(t *testing.T) {
	t.Parallel()
	in, _ := sharedMail(t)
	u, _ := registerNativeVerify(t, in)
	if token, s := loginNative(t, in, u.Email, u.Password); token == "" || s.Identity.Id != u.IdentityID {
		t.Fatalf("login without require_verified_address: %q %+v", token, s)
	}
}
