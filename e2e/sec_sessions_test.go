package e2e

import (
	"net/http"
	"testing"
	"time"

	ory "github.com/ory/client-go"
	"github.com/pquerna/otp/totp"
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

// secTOTPCode is the TOTP code of secret for the time step offset steps
// from now. Near the end of a step it first waits for the next one, so a
// code for the previous step (offset -1) is still inside the server's
// one-step skew when it arrives. Codes asked for later in a test never
// belong to an earlier step, so a replay guard (refusing steps at or
// before the last accepted one) accepts each of them.
func secTOTPCode(t *testing.T, secret string, offset int) string {
	t.Helper()
	now := time.Now()
	if rem := 30 - now.Unix()%30; rem < 4 {
		time.Sleep(time.Duration(rem)*time.Second + 200*time.Millisecond)
		now = time.Now()
	}
	code, err := totp.GenerateCode(secret, now.Add(time.Duration(offset)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// secLinkTOTP links TOTP to the identity of the native token with the code
// of the previous time step (leaving the current and next ones for logins)
// and returns the secret.
func secLinkTOTP(t *testing.T, in *instance, token string) string {
	t.Helper()
	c := in.api()
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	sec := mfaNode(s.Ui.Nodes, "totp_secret_key")
	if sec == nil {
		t.Fatal("no totp_secret_key node")
	}
	secret, _ := sec.Attributes.UiNodeTextAttributes.Text.Context["secret"].(string)
	body := ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(secTOTPCode(t, secret, -1))}
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(token).
		UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return secret
}

// secCookieStatus asks whoami (JSON) and the gate (JSON) with only the
// session cookie value v and returns both status codes.
func secCookieStatus(t *testing.T, in *instance, v string) (whoami, gate int) {
	t.Helper()
	h := hdr{"Accept": "application/json", "Cookie": "ory_kratos_session=" + v}
	r, _ := do(t, plainHTTP(), "GET", in.apiBase+"/sessions/whoami", h, nil)
	g, _, echo := gateGet(t, in, plainHTTP(), "/private/rotation", h)
	if echo != nil && g.StatusCode != http.StatusOK {
		t.Fatalf("gate: upstream answered %d", g.StatusCode)
	}
	return r.StatusCode, g.StatusCode
}

// TestSessionTokenRotation (issue 11 item 21): a browser session gets a
// new token and cookie when its AAL rises (aal2 step) or it is refreshed;
// the old cookie value stops working at once, at whoami and at a gate that
// had already cached the session. Linking TOTP in browser settings rotates
// too. Native tokens are kept, as in Kratos.
func TestSessionTokenRotation(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	u := registerNative(t, in)
	secret := secLinkTOTP(t, in, u.Token)

	b := newBrowser(t, in)
	b.loginExpectingAAL2(t, u.Email, u.Password)
	aal1 := b.cookie("ory_kratos_session").Value
	// The aal1 cookie is known to whoami and to the gate (cached there).
	if w, g := secCookieStatus(t, in, aal1); w != http.StatusForbidden || g != http.StatusForbidden {
		t.Fatalf("aal1 cookie before the second factor: whoami %d gate %d, want 403 and 403", w, g)
	}
	before, _, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	if err == nil || before != nil {
		t.Fatal("aal1 browser session passed whoami")
	}

	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	step := ory.NewUpdateLoginFlowWithTotpMethod("totp", secTOTPCode(t, secret, 0))
	step.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	res, resp, err := b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(step)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	set := cookieFrom(resp, "ory_kratos_session")
	if set == nil || set.Value == "" || set.Value == aal1 {
		t.Fatalf("aal2 step: Set-Cookie %v, want a new session cookie", set)
	}
	assertCookieAttrs(t, set)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("aal2 step: aal %s", res.Session.GetAuthenticatorAssuranceLevel())
	}
	sessionID := res.Session.Id
	if w, g := secCookieStatus(t, in, aal1); w != http.StatusUnauthorized || g != http.StatusUnauthorized {
		t.Errorf("the aal1 cookie after the aal2 step: whoami %d gate %d, want 401 and 401", w, g)
	}
	aal2 := set.Value
	if w, g := secCookieStatus(t, in, aal2); w != http.StatusOK || g != http.StatusOK {
		t.Fatalf("the new cookie: whoami %d gate %d, want 200 and 200", w, g)
	}
	if s, _, err := b.sdk.FrontendAPI.ToSession(ctx).Execute(); err != nil || s.Id != sessionID || s.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("browser whoami after the aal2 step: %v %v", s, err)
	}

	// refresh=true re-authenticates the same session under a new token.
	rf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Refresh(true).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password)
	pw.SetCsrfToken(sdkCSRF(t, rf.Ui.Nodes))
	res, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(rf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	set = cookieFrom(resp, "ory_kratos_session")
	if set == nil || set.Value == "" || set.Value == aal2 || set.Value == aal1 {
		t.Fatalf("refresh: Set-Cookie %v, want a new session cookie", set)
	}
	if res.Session.Id != sessionID || res.Session.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("refresh: session %s aal %s, want the same session at aal2", res.Session.Id, res.Session.GetAuthenticatorAssuranceLevel())
	}
	if w, g := secCookieStatus(t, in, aal2); w != http.StatusUnauthorized || g != http.StatusUnauthorized {
		t.Errorf("the cookie from before the refresh: whoami %d gate %d, want 401 and 401", w, g)
	}
	if w, g := secCookieStatus(t, in, set.Value); w != http.StatusOK || g != http.StatusOK {
		t.Errorf("the cookie after the refresh: whoami %d gate %d, want 200 and 200", w, g)
	}

	// Native: the aal2 step and a refresh keep the token.
	c := in.api()
	tok, _ := loginNative(t, in, u.Email, u.Password)
	nf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	nres, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(nf.Id).XSessionToken(tok).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithTotpMethod("totp", secTOTPCode(t, secret, 1)))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if nres.GetSessionToken() != tok || cookieFrom(resp, "ory_kratos_session") != nil {
		t.Errorf("native aal2 step: token kept %v, cookie set %v; want the same token and no cookie", nres.GetSessionToken() == tok, cookieFrom(resp, "ory_kratos_session") != nil)
	}
	nf, resp, err = c.FrontendAPI.CreateNativeLoginFlow(ctx).Refresh(true).XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	nres, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(nf.Id).XSessionToken(tok).
		UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if nres.GetSessionToken() != tok {
		t.Error("native refresh changed the session token")
	}
	if _, st := whoamiToken(t, in, tok); st != http.StatusOK {
		t.Errorf("native token after aal2 step and refresh: whoami %d, want 200", st)
	}
}

// TestSessionTokenRotationOnLinking: linking TOTP in a browser settings
// flow raises the session to aal2; the settings answer carries a new
// cookie and the old value no longer works.
func TestSessionTokenRotationOnLinking(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	old := b.cookie("ory_kratos_session").Value
	sf, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	secret, _ := mfaNode(sf.Ui.Nodes, "totp_secret_key").Attributes.UiNodeTextAttributes.Text.Context["secret"].(string)
	body := ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(secTOTPCode(t, secret, 0)), CsrfToken: ptr(sdkCSRF(t, sf.Ui.Nodes))}
	_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(sf.Id).
		UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	set := cookieFrom(resp, "ory_kratos_session")
	if set == nil || set.Value == "" || set.Value == old {
		t.Fatalf("linking TOTP: Set-Cookie %v, want a new session cookie", set)
	}
	if w, g := secCookieStatus(t, in, old); w != http.StatusUnauthorized || g != http.StatusUnauthorized {
		t.Errorf("the cookie from before linking: whoami %d gate %d, want 401 and 401", w, g)
	}
	s, _, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	if err != nil || s.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("browser session after linking: %v %v", s, err)
	}
}

// secTOTPBase returns the current time once at least margin is left in
// the current 30 s TOTP step (waiting for the next step if not), so codes
// computed from it stay valid for margin.
func secTOTPBase(margin time.Duration) time.Time {
	now := time.Now()
	step := 30 * time.Second
	if left := step - time.Duration(now.UnixNano()%int64(step)); left < margin {
		time.Sleep(left + 200*time.Millisecond)
		now = time.Now()
	}
	return now
}

// TestPrivilegedWindowOnlyFromFirstFactor (issue 11, privilege renews
// itself): privileged_session_max_age counts from the last first-factor
// authentication. Linking TOTP or an aal2 step does not renew it (a
// password change stays 403 session_refresh_required); a refresh with the
// password does.
func TestPrivilegedWindowOnlyFromFirstFactor(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"methods totp", "privileged_session_max_age 3s", "rate_limits off"}})
	c := in.api()
	u := registerNative(t, in)
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	secret, _ := mfaNode(s.Ui.Nodes, "totp_secret_key").Attributes.UiNodeTextAttributes.Text.Context["secret"].(string)
	base := secTOTPBase(15 * time.Second)
	code := func(offset int) string {
		c, err := totp.GenerateCode(secret, base.Add(time.Duration(offset)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	changePassword := func(tok string) (*http.Response, error) {
		f, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(tok).
			UpdateSettingsFlowBody(settingsPasswordBody(randPassword(), nil)).Execute()
		return resp, err
	}
	wantRefreshRequired := func(what, tok string) {
		t.Helper()
		resp, err := changePassword(tok)
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: password change answered %d (%v), want 403", what, statusOf(resp), err)
		}
		if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); e.Error.ID != "session_refresh_required" {
			t.Fatalf("%s: error id %q, want session_refresh_required", what, e.Error.ID)
		}
	}

	tok, _ := loginNative(t, in, u.Email, u.Password) // the window opens
	time.Sleep(2 * time.Second)
	body := ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(code(-1))}
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(tok).
		UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	time.Sleep(1500 * time.Millisecond) // 3.5 s after the login, 1.5 s after linking
	if sess, st := whoamiToken(t, in, tok); st != http.StatusOK || sess.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("session after linking TOTP: whoami %d", st)
	}
	wantRefreshRequired("after linking TOTP", tok)

	// An aal2 step alone (refresh=true&aal=aal2) does not renew it either.
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").Refresh(true).XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithTotpMethod("totp", code(0)))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRefreshRequired("after an aal2 step", tok)

	// Re-authenticating with the password does.
	lf, resp, err = c.FrontendAPI.CreateNativeLoginFlow(ctx).Refresh(true).XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).
		UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	resp, err = changePassword(tok)
	wantSDKStatus(t, resp, err, http.StatusOK)
}

// TestCompletedFlowRefusesEarlierTokens (issue 11, recovery link from an
// earlier send): every send on one flow mails a new token; once the flow
// is completed with the latest, the earlier ones sign nobody in. The same
// holds for recovery codes and verification links.
func TestCompletedFlowRefusesEarlierTokens(t *testing.T) {
	t.Parallel()

	t.Run("recovery link", func(t *testing.T) {
		t.Parallel()
		in, mails := sharedLinkMail(t)
		u := registerNative(t, in)
		c := in.api()
		flow, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		send := ory.UpdateRecoveryFlowWithLinkMethodAsUpdateRecoveryFlowBody(ory.NewUpdateRecoveryFlowWithLinkMethod(u.Email, "link"))
		for i := 0; i < 2; i++ {
			_, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(send).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
		}
		links := mails.wait(t, u.Email, subjectRecovery, 2)
		first, second := links[0].link(t), links[1].link(t)
		if first == second {
			t.Fatal("two sends mailed the same link")
		}
		r, rb := do(t, newBrowser(t, in).hc, "GET", second, hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, rb, http.StatusSeeOther)
		if cookieFrom(r, "ory_kratos_session") == nil {
			t.Fatal("the latest link did not sign in")
		}
		sessions := hbActiveSessions(t, in, u.IdentityID)
		r, rb = do(t, newBrowser(t, in).hc, "GET", first, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, rb, http.StatusOK)
		if f := decodeFlow(t, rb); cookieFrom(r, "ory_kratos_session") != nil || !containsID(f.messageIDs(), 4060004) || f.State != "passed_challenge" {
			t.Fatalf("earlier link of the completed flow: state %v messages %v, want passed_challenge with 4060004 and no session", f.State, f.messageIDs())
		}
		r, rb = do(t, newBrowser(t, in).hc, "GET", first, hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, rb, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); cookieFrom(r, "ory_kratos_session") != nil || loc != recoveryUIPrefix(in)+flow.Id {
			t.Fatalf("earlier link in a browser: Location %q, cookie %v; want the recovery UI of the flow and no session", loc, cookieFrom(r, "ory_kratos_session") != nil)
		}
		got, resp, err := c.FrontendAPI.GetRecoveryFlow(ctx).Id(flow.Id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if got.State != "passed_challenge" {
			t.Errorf("flow state after the refused link: %q, want passed_challenge", got.State)
		}
		if n := hbActiveSessions(t, in, u.IdentityID); n != sessions {
			t.Errorf("%d active sessions after the earlier link, want %d", n, sessions)
		}
	})

	t.Run("recovery code", func(t *testing.T) {
		t.Parallel()
		in, mails := sharedMail(t)
		u := registerNative(t, in)
		c := in.api()
		flowID := startRecovery(t, in, u.Email)
		_, resp, err := c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, "")).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		codes := mails.wait(t, u.Email, subjectRecovery, 2)
		first, second := codes[0].code(t), codes[1].code(t)
		wantRecovered(t, in, flowID, second)
		sessions := hbActiveSessions(t, in, u.IdentityID)
		if first != second {
			_, resp, _ = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryCodeBody(first, "")).Execute()
			if resp == nil || resp.StatusCode != http.StatusSeeOther || cookieFrom(resp, "ory_kratos_session") != nil {
				t.Fatalf("earlier code on the completed flow: %d, want 303 to a new flow without a session", statusOf(resp))
			}
		}
		if n := hbActiveSessions(t, in, u.IdentityID); n != sessions {
			t.Errorf("%d active sessions after the earlier code, want %d", n, sessions)
		}
	})

	t.Run("verification link", func(t *testing.T) {
		t.Parallel()
		in, mails := sharedLinkMail(t)
		u, _ := registerNativeVerify(t, in)
		mails.last(t, u.Email, subjectVerification, 1)
		c := in.api()
		flow, resp, err := c.FrontendAPI.CreateNativeVerificationFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		body := ory.UpdateVerificationFlowWithLinkMethodAsUpdateVerificationFlowBody(ory.NewUpdateVerificationFlowWithLinkMethod(u.Email, "link"))
		for i := 0; i < 2; i++ {
			_, resp, err = c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(flow.Id).UpdateVerificationFlowBody(body).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
		}
		links := mails.wait(t, u.Email, subjectVerification, 3)
		r, rb := do(t, plainHTTP(), "GET", links[2].link(t), hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, rb, http.StatusOK)
		if f := decodeFlow(t, rb); f.State != "passed_challenge" || !containsID(f.messageIDs(), 1080002) {
			t.Fatalf("latest link: state %v messages %v", f.State, f.messageIDs())
		}
		r, rb = do(t, plainHTTP(), "GET", links[1].link(t), hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, rb, http.StatusOK)
		if f := decodeFlow(t, rb); f.State != "passed_challenge" || containsID(f.messageIDs(), 1080002) {
			t.Errorf("earlier link of the completed flow: state %v messages %v, want the passed flow without a new success", f.State, f.messageIDs())
		}
	})
}

// secVerifiedUser creates an identity with a password and a verified
// address through the admin API and signs it in (native).
func secVerifiedUser(t *testing.T, in *instance) user {
	t.Helper()
	u := user{Email: randEmail(), Password: randPassword()}
	id := admJSON[admIdentity](t, in, "POST", "/admin/identities", map[string]any{
		"schema_id":            "default",
		"traits":               map[string]any{"email": u.Email},
		"credentials":          map[string]any{"password": map[string]any{"config": map[string]any{"password": u.Password}}},
		"verifiable_addresses": []map[string]any{{"value": u.Email, "via": "email", "verified": true, "status": "completed"}},
	}, http.StatusCreated)
	if len(id.VerifiableAddresses) != 1 || !id.VerifiableAddresses[0].Verified {
		t.Fatalf("admin-created identity: addresses %+v, want one verified", id.VerifiableAddresses)
	}
	u.IdentityID = id.ID
	var s *ory.Session
	u.Token, s = loginNative(t, in, u.Email, u.Password)
	u.SessionID = s.Id
	return u
}

// TestRevokeActiveSessions (issue 11, revoke_active_sessions): by default
// a recovery signs out every other session of the identity and a password
// change keeps them (Kratos's defaults need the hook; ours is on for
// recovery); `revoke_active_sessions password` turns it around.
func TestRevokeActiveSessions(t *testing.T) {
	t.Parallel()
	changePassword := func(t *testing.T, in *instance, u *user) {
		t.Helper()
		c := in.api()
		f, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		u.Password = randPassword()
		_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(u.Token).
			UpdateSettingsFlowBody(settingsPasswordBody(u.Password, nil)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
	}
	wantWhoami := func(t *testing.T, in *instance, what, tok string, want int) {
		t.Helper()
		if _, st := whoamiToken(t, in, tok); st != want {
			t.Errorf("%s: whoami %d, want %d", what, st, want)
		}
	}
	recoverAccount := func(t *testing.T, in *instance, mails *mailServer, u user, n int) {
		t.Helper()
		flowID := startRecovery(t, in, u.Email)
		wantRecovered(t, in, flowID, mails.last(t, u.Email, subjectRecovery, n).code(t))
	}

	// Identities with a verified address: a recovery then claims nothing
	// (TestMailboxSignInClaimsUnverifiedAddress), so what it revokes is
	// revoke_active_sessions' doing.
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		in, mails := sharedMail(t)
		u := secVerifiedUser(t, in)
		other, _ := loginNative(t, in, u.Email, u.Password)
		b := newBrowser(t, in)
		b.login(t, u.Email, u.Password)
		changePassword(t, in, &u)
		wantWhoami(t, in, "other session after a password change", other, http.StatusOK)
		recoverAccount(t, in, mails, u, 1)
		wantWhoami(t, in, "session of the password change after recovery", u.Token, http.StatusUnauthorized)
		wantWhoami(t, in, "other native session after recovery", other, http.StatusUnauthorized)
		if _, _, err := b.sdk.FrontendAPI.ToSession(ctx).Execute(); err == nil {
			t.Error("browser session still valid after recovery")
		}
		if n := hbActiveSessions(t, in, u.IdentityID); n != 1 {
			t.Errorf("%d active sessions after recovery, want 1 (the recovery's own)", n)
		}
	})

	t.Run("password", func(t *testing.T) {
		t.Parallel()
		in, mails := startMailInstance(t, "recovery", "rate_limits off", "revoke_active_sessions password")
		u := secVerifiedUser(t, in)
		other, _ := loginNative(t, in, u.Email, u.Password)
		recoverAccount(t, in, mails, u, 1)
		wantWhoami(t, in, "session after recovery (recovery not listed)", u.Token, http.StatusOK)
		wantWhoami(t, in, "other session after recovery (recovery not listed)", other, http.StatusOK)
		changePassword(t, in, &u)
		wantWhoami(t, in, "the session that changed the password", u.Token, http.StatusOK)
		wantWhoami(t, in, "other session after a password change", other, http.StatusUnauthorized)
		if n := hbActiveSessions(t, in, u.IdentityID); n != 1 {
			t.Errorf("%d active sessions after the password change, want 1", n)
		}
	})
}

// secSessionsWithMethod counts the sessions of an identity, active or not,
// that completed method.
func secSessionsWithMethod(t *testing.T, in *instance, identityID, method string) int {
	t.Helper()
	type session struct {
		Methods []struct {
			Method string `json:"method"`
		} `json:"authentication_methods"`
	}
	n := 0
	for _, s := range admJSON[[]session](t, in, "GET", "/admin/identities/"+identityID+"/sessions", nil, http.StatusOK) {
		for _, m := range s.Methods {
			if m.Method == method {
				n++
				break
			}
		}
	}
	return n
}

// secCodeSignIn signs email in with a mailed code (the n-th login code
// mail to it) on a native flow and returns the answer.
func secCodeSignIn(t *testing.T, in *instance, mails *mailServer, email string, n int) *ory.SuccessfulNativeLogin {
	t.Helper()
	c := in.api()
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	send := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	send.SetIdentifier(email)
	_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sending the login code: %d", statusOf(resp))
	}
	code := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	code.SetCode(mails.last(t, email, subjectLoginCode, n).code(t))
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(code)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.GetSessionToken() == "" {
		t.Fatal("code sign-in returned no session token")
	}
	return res
}

// TestMailboxSignInClaimsUnverifiedAddress (issue 11, code sign-in on
// unverified addresses): an attacker registers the victim's address with
// a password before the victim. When the victim signs in with a mailed
// code (or recovers the account), the address becomes verified, the
// attacker's password (and passkeys) are removed and the attacker's
// sessions revoked. A second factor the attacker set stays (a mailbox
// alone never removes one), and a verified address is never claimed again.
func TestMailboxSignInClaimsUnverifiedAddress(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "recovery", "methods code totp", "code {\n\t\t\tpasswordless\n\t\t}",
		"rate_limits off", "revoke_active_sessions off")
	wantClaimed := func(t *testing.T, atk user) {
		t.Helper()
		if _, st := whoamiToken(t, in, atk.Token); st != http.StatusUnauthorized {
			t.Errorf("the attacker's session after the victim's sign-in: whoami %d, want 401", st)
		}
		if f := admLoginFails(t, in, atk.Email, atk.Password); !containsID(sdkMessageIDs(f.Ui.Messages), 4000006) {
			t.Errorf("the attacker's password after the victim's sign-in: messages %v, want 4000006", sdkMessageIDs(f.Ui.Messages))
		}
		id := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+atk.IdentityID, nil, http.StatusOK)
		if _, ok := id.Credentials["password"]; ok {
			t.Error("the identity still has the attacker's password credential")
		}
		if len(id.VerifiableAddresses) != 1 || !id.VerifiableAddresses[0].Verified || id.VerifiableAddresses[0].Status != "completed" {
			t.Errorf("address after the mailbox sign-in: %+v, want verified", id.VerifiableAddresses)
		}
	}

	t.Run("code sign-in", func(t *testing.T) {
		t.Parallel()
		atk := registerNative(t, in) // the attacker, with the victim's address
		other, _ := loginNative(t, in, atk.Email, atk.Password)
		victim := secCodeSignIn(t, in, mails, atk.Email, 1)
		if victim.Session.Identity == nil || victim.Session.Identity.Id != atk.IdentityID {
			t.Fatalf("code sign-in: identity %v", victim.Session.Identity)
		}
		wantClaimed(t, atk)
		if _, st := whoamiToken(t, in, other); st != http.StatusUnauthorized {
			t.Errorf("the attacker's second session: whoami %d, want 401", st)
		}
		if _, st := whoamiToken(t, in, victim.GetSessionToken()); st != http.StatusOK {
			t.Fatalf("the victim's session: whoami %d, want 200", st)
		}
		// Verified now: the next code sign-in claims nothing.
		secCodeSignIn(t, in, mails, atk.Email, 2)
		if _, st := whoamiToken(t, in, victim.GetSessionToken()); st != http.StatusOK {
			t.Errorf("the first code session after a second code sign-in: whoami %d, want 200", st)
		}
	})

	t.Run("recovery", func(t *testing.T) {
		t.Parallel()
		atk := registerNative(t, in)
		wantRecovered(t, in, startRecovery(t, in, atk.Email), mails.last(t, atk.Email, subjectRecovery, 1).code(t))
		wantClaimed(t, atk)
	})

	t.Run("second factor stays", func(t *testing.T) {
		t.Parallel()
		atk := registerNative(t, in)
		secLinkTOTP(t, in, atk.Token)
		victim := secCodeSignIn(t, in, mails, atk.Email, 1)
		wantClaimed(t, atk)
		if victim.Session.GetAuthenticatorAssuranceLevel() != "aal1" {
			t.Errorf("mailbox sign-in: aal %s, want aal1", victim.Session.GetAuthenticatorAssuranceLevel())
		}
		if _, st := whoamiToken(t, in, victim.GetSessionToken()); st != http.StatusForbidden {
			t.Errorf("mailbox sign-in of an identity with TOTP: whoami %d, want 403 (TOTP still due)", st)
		}
		id := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+atk.IdentityID, nil, http.StatusOK)
		if _, ok := id.Credentials["totp"]; !ok {
			t.Error("the mailbox sign-in removed the TOTP credential")
		}
	})

	t.Run("verified address keeps its password", func(t *testing.T) {
		t.Parallel()
		u := registerNative(t, in)
		// The first code sign-in verifies the address (and claims the
		// account: the password goes); the owner sets a new password, which
		// later mailbox sign-ins keep.
		tok := secCodeSignIn(t, in, mails, u.Email, 1).GetSessionToken()
		c := in.api()
		f, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		u.Password = randPassword()
		_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).XSessionToken(tok).
			UpdateSettingsFlowBody(settingsPasswordBody(u.Password, nil)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		pwTok, _ := loginNative(t, in, u.Email, u.Password)
		secCodeSignIn(t, in, mails, u.Email, 2)
		loginNative(t, in, u.Email, u.Password)
		if _, st := whoamiToken(t, in, pwTok); st != http.StatusOK {
			t.Errorf("password session after a code sign-in on a verified address: whoami %d, want 200", st)
		}
	})
}
