package e2e

import (
	"net/http"
	"testing"

	ory "github.com/ory/client-go"
)

// Regression tests of issue 11 for sessions, privilege and recovery: the
// AAL rule of every /sessions handler, token rotation on AAL upgrade and
// refresh, the privileged window, completed recovery flows, mailbox
// sign-in on unverified addresses and revoke_active_sessions.

// secUpgradeWithLookup answers the aal2 step of the native session token
// with a backup code (single use, so no clock dependency) and expects aal2.
func secUpgradeWithLookup(t *testing.T, in *instance, token, code string) *ory.SuccessfulNativeLogin {
	t.Helper()
	c := in.api()
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	body := ory.NewUpdateLoginFlowWithLookupSecretMethod(code, "lookup_secret")
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(token).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithLookupSecretMethodAsUpdateLoginFlowBody(body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("backup code step: aal %s, want aal2", res.Session.GetAuthenticatorAssuranceLevel())
	}
	return res
}

// wantAAL2Required checks an SDK answer is 403 session_aal2_required.
func wantAAL2Required(t *testing.T, what string, resp *http.Response, err error) {
	t.Helper()
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%s with an aal1 session: %v (want 403)", what, err)
	}
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); e.Error.ID != "session_aal2_required" {
		t.Fatalf("%s: error id %q, want session_aal2_required", what, e.Error.ID)
	}
}

// TestSessionsEndpointsRequireAAL2 (issue 11 item 5): an identity with
// TOTP has several aal2 sessions; a session with only the password (aal1,
// second factor due) can neither list nor revoke them — every /sessions
// handler answers 403 session_aal2_required — and the aal2 sessions still
// pass whoami. An aal2 session can.
func TestSessionsEndpointsRequireAAL2(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	c := in.api()
	u := registerNative(t, in)
	gfEnableTOTP(t, in, u.Token) // u.Token is aal2 now
	codes := hcLookupSetup(t, in, u)
	victim := []string{u.Token}
	var victimIDs []string
	for i := 0; i < 4; i++ {
		tok, _ := loginNative(t, in, u.Email, u.Password)
		res := secUpgradeWithLookup(t, in, tok, codes[i])
		victim = append(victim, tok)
		victimIDs = append(victimIDs, res.Session.Id)
	}

	// The attacker knows the password only.
	atk, atkSess := loginNative(t, in, u.Email, u.Password)
	if atkSess.GetAuthenticatorAssuranceLevel() != "aal1" {
		t.Fatalf("password login: aal %s", atkSess.GetAuthenticatorAssuranceLevel())
	}
	_, resp, err := c.FrontendAPI.ListMySessions(ctx).XSessionToken(atk).Execute()
	wantAAL2Required(t, "listMySessions", resp, err)
	_, resp, err = c.FrontendAPI.DisableMyOtherSessions(ctx).XSessionToken(atk).Execute()
	wantAAL2Required(t, "disableMyOtherSessions", resp, err)
	for _, id := range victimIDs {
		resp, err = c.FrontendAPI.DisableMySession(ctx, id).XSessionToken(atk).Execute()
		wantAAL2Required(t, "disableMySession", resp, err)
	}
	for i, tok := range victim {
		if _, st := whoamiToken(t, in, tok); st != http.StatusOK {
			t.Errorf("aal2 session %d after the aal1 attempts: whoami %d, want 200", i, st)
		}
	}

	// With the second factor the same calls work.
	resp, err = c.FrontendAPI.DisableMySession(ctx, victimIDs[0]).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	if _, st := whoamiToken(t, in, victim[1]); st != http.StatusUnauthorized {
		t.Errorf("session revoked by an aal2 session: whoami %d, want 401", st)
	}
	n, resp, err := c.FrontendAPI.DisableMyOtherSessions(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if n.GetCount() != 4 { // three aal2 sessions left and the attacker's
		t.Errorf("disableMyOtherSessions count %d, want 4", n.GetCount())
	}
	if _, st := whoamiToken(t, in, atk); st != http.StatusUnauthorized {
		t.Errorf("attacker's session after disableMyOtherSessions: whoami %d, want 401", st)
	}
}
