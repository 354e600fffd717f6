package e2e

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ory "github.com/ory/client-go"
	"github.com/pquerna/otp/totp"
)

// Second factors and the assurance rule (issue 11, items 3, 14, 15, 16),
// against the built binary with real mail.

// wantAAL2Required fails unless err carries 403 session_aal2_required.
func wantAAL2Required(t *testing.T, what string, resp *http.Response, err error) {
	t.Helper()
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%s: %v %v, want 403 session_aal2_required", what, resp, err)
	}
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); e.Error.ID != "session_aal2_required" {
		t.Fatalf("%s: error id %q, want session_aal2_required", what, e.Error.ID)
	}
}

// wantNoStrategy fails unless the answer is the flow with 400 and message
// 4010002, Kratos's answer for a method it does not offer.
func wantNoStrategy(t *testing.T, what string, resp *http.Response, err error) {
	t.Helper()
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s: %v %v, want 400 with 4010002", what, resp, err)
	}
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(f.messageIDs(), 4010002) {
		t.Fatalf("%s: messages %v, want 4010002", what, f.messageIDs())
	}
}

// linkTOTP links a new authenticator app through a native settings flow
// of token and returns its secret.
func linkTOTP(t *testing.T, in *instance, token string) string {
	t.Helper()
	c := in.api()
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	sec := mfaNode(s.Ui.Nodes, "totp_secret_key")
	if sec == nil {
		t.Fatal("no totp_secret_key node")
	}
	secret, _ := sec.Attributes.UiNodeTextAttributes.Text.Context["secret"].(string)
	code, _ := totp.GenerateCode(secret, time.Now())
	body := ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(code)}
	linked, resp, err := c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(token).
		UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if linked.State != "success" || mfaNode(linked.Ui.Nodes, "totp_unlink") == nil {
		t.Fatalf("linking TOTP: state %v", linked.State)
	}
	return secret
}

// TestMailboxAloneNeverReachesAAL2 replays the two attacks of item 3: with
// `methods totp lookup_secret code` and `code { passwordless mfa }`,
// someone who controls only the victim's mailbox (a) recovers by code and
// (b) signs in with a mailed code, then answers the aal2 step with another
// mailed code. Before the fix both reached aal2 (methods code_recovery,code
// and code,code) and could change the password and unlink TOTP. Now the
// mailed code is not offered and refused as second factor, whoami stays
// 403 session_aal2_required, and settings refuse both changes.
func TestMailboxAloneNeverReachesAAL2(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "methods totp lookup_secret code",
		"code {\n\t\t\tpasswordless\n\t\t\tmfa\n\t\t}", "recovery")
	c := in.api()

	// The victim: password, the mailed code as second factor (legitimate:
	// password + mailbox), then an authenticator app.
	u := registerNative(t, in)
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	send := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	send.SetAddress(u.Email)
	_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(u.Token).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("victim: send second-factor code: %v", resp)
	}
	up := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
	up.SetCode(mails.last(t, u.Email, subjectLoginCode, 1).code(t))
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(u.Token).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(up)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" || methodsOf(&res.Session) != "password,code" {
		t.Fatalf("victim: password + mailed code: %s %s", res.Session.GetAuthenticatorAssuranceLevel(), methodsOf(&res.Session))
	}
	linkTOTP(t, in, u.Token)

	t.Run("recovery by code", func(t *testing.T) {
		b := newBrowser(t, in)
		flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		csrf := sdkCSRF(t, flow.Ui.Nodes)
		_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, csrf)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
		_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, csrf)).Execute()
		if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("recovery: %v %v, want 422", resp, err)
		}
		settingsFlow := flowIDFrom(t, decodeError(t, 422, sdkErrBody(t, err)).RedirectBrowserTo)

		_, resp, err = b.sdk.FrontendAPI.ToSession(ctx).Execute()
		wantAAL2Required(t, "whoami after recovery", resp, err)

		alf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if sdkNode(alf.Ui.Nodes, "address") != nil {
			t.Error("the aal2 flow of a recovered session offers a mailed code")
		}
		if sdkNode(alf.Ui.Nodes, "totp_code") == nil {
			t.Error("the aal2 flow does not offer the authenticator app")
		}
		send := ory.NewUpdateLoginFlowWithCodeMethod(sdkCSRF(t, alf.Ui.Nodes), "code")
		send.SetAddress(u.Email)
		_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(alf.Id).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
		wantNoStrategy(t, "mailed code as second factor after recovery", resp, err)

		_, resp, err = b.sdk.FrontendAPI.ToSession(ctx).Execute()
		wantAAL2Required(t, "whoami after the refused step", resp, err)
		_, resp, err = b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
		wantAAL2Required(t, "new settings flow", resp, err)
		// The browser's CSRF token (one per browser, as in Kratos).
		pw := ory.NewUpdateSettingsFlowWithPasswordMethod("password", randPassword())
		pw.SetCsrfToken(csrf)
		_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(settingsFlow).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithPasswordMethodAsUpdateSettingsFlowBody(pw)).Execute()
		wantAAL2Required(t, "password change", resp, err)
		unlink := ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpUnlink: ptr(true), CsrfToken: ptr(csrf)}
		_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(settingsFlow).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&unlink)).Execute()
		wantAAL2Required(t, "TOTP unlink", resp, err)
	})

	t.Run("passwordless code login", func(t *testing.T) {
		lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		ask := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		ask.SetIdentifier(u.Email)
		_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(ask)).Execute()
		if resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("send login code: %v", resp)
		}
		in1 := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		in1.SetCode(mails.last(t, u.Email, subjectLoginCode, 2).code(t))
		res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(in1)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		tok := res.GetSessionToken()
		if res.Session.GetAuthenticatorAssuranceLevel() != "aal1" || methodsOf(&res.Session) != "code" {
			t.Fatalf("code login: %s %s", res.Session.GetAuthenticatorAssuranceLevel(), methodsOf(&res.Session))
		}
		_, resp, err = c.FrontendAPI.ToSession(ctx).XSessionToken(tok).Execute()
		wantAAL2Required(t, "whoami after code login", resp, err)

		alf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if sdkNode(alf.Ui.Nodes, "address") != nil {
			t.Error("the aal2 flow of a code session offers a mailed code")
		}
		send := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		send.SetAddress(u.Email)
		_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(alf.Id).XSessionToken(tok).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
		wantNoStrategy(t, "mailed code as second factor after code login", resp, err)

		_, resp, err = c.FrontendAPI.ToSession(ctx).XSessionToken(tok).Execute()
		wantAAL2Required(t, "whoami after the refused step", resp, err)
		_, resp, err = c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok).Execute()
		wantAAL2Required(t, "settings", resp, err)
	})

	// No second-factor code went out to the attacker's requests, and the
	// victim's password and authenticator app are as they were.
	if n := len(mails.to(u.Email, subjectLoginCode)); n != 2 {
		t.Errorf("%d login-code mails, want 2 (the victim's and the code sign-in)", n)
	}
	tok, sess := loginNative(t, in, u.Email, u.Password)
	if sess.GetAuthenticatorAssuranceLevel() != "aal1" {
		t.Fatalf("password login: %s", sess.GetAuthenticatorAssuranceLevel())
	}
	alf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(alf.Ui.Nodes, "totp_code") == nil {
		t.Error("TOTP is no longer linked")
	}
}

// TestMailboxCodeAfterMailboxFirstFactor: without a strong second factor a
// mailed code still cannot be the second factor of a session that began
// with the mailbox (code_recovery); the session stays aal1, which is all
// highest_available asks of it (nothing it could add would count), so
// whoami answers 200 at aal1. Password + mailed code stays aal2.
func TestMailboxCodeAfterMailboxFirstFactor(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "methods code", "code {\n\t\t\tmfa\n\t\t}", "recovery")
	u := registerNative(t, in)
	b := newBrowser(t, in)
	flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	csrf := sdkCSRF(t, flow.Ui.Nodes)
	_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(u.Email, csrf)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
	_, resp, _ = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryCodeBody(code, csrf)).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("recovery: %v, want 422", resp)
	}
	alf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(alf.Ui.Nodes, "address") != nil {
		t.Error("the aal2 flow of a recovered session offers a mailed code")
	}
	send := ory.NewUpdateLoginFlowWithCodeMethod(sdkCSRF(t, alf.Ui.Nodes), "code")
	send.SetAddress(u.Email)
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(alf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(send)).Execute()
	wantNoStrategy(t, "mailed code after code_recovery", resp, err)
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if s.GetAuthenticatorAssuranceLevel() != "aal1" || methodsOf(s) != "code_recovery" {
		t.Fatalf("recovered session: %s %s, want aal1 code_recovery", s.GetAuthenticatorAssuranceLevel(), methodsOf(s))
	}
	mails.none(t, u.Email, subjectLoginCode)
}

// setUpLookup generates and confirms backup codes through a native
// settings flow of token and returns them.
func setUpLookup(t *testing.T, in *instance, token string) []string {
	t.Helper()
	c := in.api()
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	update := func(body ory.UpdateSettingsFlowWithLookupMethod) *ory.SettingsFlow {
		body.Method = "lookup_secret"
		f, resp, err := c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(token).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithLookupMethodAsUpdateSettingsFlowBody(&body)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		return f
	}
	codes := lookupCodes(t, update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretRegenerate: ptr(true)}).Ui.Nodes)
	if conf := update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretConfirm: ptr(true)}); conf.State != "success" {
		t.Fatalf("confirm: %v", conf.State)
	}
	return codes
}

// useLookup signs in with the password and completes the aal2 step with
// a backup code; it returns the session token.
func useLookup(t *testing.T, in *instance, u user, code string) string {
	t.Helper()
	c := in.api()
	tok, _ := loginNative(t, in, u.Email, u.Password)
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).UpdateLoginFlowBody(
		ory.UpdateLoginFlowWithLookupSecretMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithLookupSecretMethod(code, "lookup_secret"))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" {
		t.Fatalf("backup code: %s", res.Session.GetAuthenticatorAssuranceLevel())
	}
	return tok
}

// TestLookupExhaustedIsNoFactor (item 14): once every backup code of an
// identity whose only second factor they are is used, they no longer
// count. Before the fix the next password login was stuck at 403
// session_aal2_required with nothing left to use. Now whoami and settings
// pass at aal1 (highest_available), the aal2 flow offers no backup code,
// settings offer new codes, and confirming them makes aal2 due again.
func TestLookupExhaustedIsNoFactor(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	c := in.api()
	u := registerNative(t, in)
	codes := setUpLookup(t, in, u.Token)
	if len(codes) != 12 {
		t.Fatalf("%d codes", len(codes))
	}
	for _, code := range codes {
		useLookup(t, in, u, code)
	}

	tok, sess := loginNative(t, in, u.Email, u.Password)
	if sess.GetAuthenticatorAssuranceLevel() != "aal1" {
		t.Fatalf("password login: %s", sess.GetAuthenticatorAssuranceLevel())
	}
	if sess.Identity == nil {
		t.Error("the login answer withholds the identity: a second factor is still considered due")
	}
	if s, status := whoamiToken(t, in, tok); status != http.StatusOK || s.GetAuthenticatorAssuranceLevel() != "aal1" {
		t.Fatalf("whoami with every backup code used: %d, want 200 at aal1", status)
	}
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(lf.Ui.Nodes, "lookup_secret") != nil {
		t.Error("the aal2 flow offers used-up backup codes")
	}
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).UpdateLoginFlowBody(
		ory.UpdateLoginFlowWithLookupSecretMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithLookupSecretMethod(codes[0], "lookup_secret"))).Execute()
	if res != nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("used code on the aal2 flow: %v %v, want 400", resp, err)
	}
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if mfaNode(s.Ui.Nodes, "lookup_secret_regenerate") == nil {
		t.Error("settings do not offer new backup codes")
	}

	// New codes: a second factor again, due at the next login.
	setUpLookup(t, in, tok)
	tok2, _ := loginNative(t, in, u.Email, u.Password)
	_, resp, err = c.FrontendAPI.ToSession(ctx).XSessionToken(tok2).Execute()
	wantAAL2Required(t, "whoami with new backup codes", resp, err)
}

// totpAAL2Flow signs u in with the password and opens an aal2 flow.
func totpAAL2Flow(t *testing.T, in *instance, u user) (string, *ory.LoginFlow) {
	t.Helper()
	tok, _ := loginNative(t, in, u.Email, u.Password)
	lf, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return tok, lf
}

func submitTOTP(in *instance, tok string, lf *ory.LoginFlow, code string) (*ory.SuccessfulNativeLogin, *http.Response, error) {
	return in.api().FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithTotpMethod("totp", code))).Execute()
}

// TestTOTPCodeCountsOnce (item 15): a TOTP code brings one session to
// aal2. Before the fix one code, replayed within its window, brought every
// session that sent it to aal2. Now, of 20 sessions sending one code at
// once, exactly one passes; a later replay and the code of an earlier
// step (the one that linked the app) are refused with 4000008, and the
// replaying session stays aal1.
func TestTOTPCodeCountsOnce(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	u := registerNative(t, in)
	secret := linkTOTP(t, in, u.Token)
	linkCode, _ := totp.GenerateCode(secret, time.Now())

	const n = 20
	toks, flows := make([]string, n), make([]*ory.LoginFlow, n)
	for i := range n {
		toks[i], flows[i] = totpAAL2Flow(t, in, u)
	}
	// The app's next code (valid now with one period of skew).
	code, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, resp, _ := submitTOTP(in, toks[i], flows[i], code); resp != nil {
				statuses[i] = resp.StatusCode
			}
		}()
	}
	close(start)
	wg.Wait()
	ok, refused := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest, http.StatusTooManyRequests:
			// A replay (400) or over the per-identity code limit, which
			// counts attempts before they are evaluated (429).
			refused++
		}
	}
	if ok != 1 || refused != n-1 {
		t.Fatalf("%d sessions sending one code at once: %v (%d passed, %d refused), want exactly one 200", n, statuses, ok, refused)
	}
	aal2 := 0
	for _, tok := range toks {
		if _, status := whoamiToken(t, in, tok); status == http.StatusOK {
			aal2++
		}
	}
	if aal2 != 1 {
		t.Fatalf("%d sessions at aal2 after the burst, want 1", aal2)
	}

	for what, c := range map[string]string{"replayed code": code, "earlier step's code": linkCode} {
		tok, lf := totpAAL2Flow(t, in, u)
		_, resp, err := submitTOTP(in, tok, lf, c)
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %v %v, want 400", what, resp, err)
		}
		if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(flowNodeMessages(f, "totp_code"), 4000008) {
			t.Fatalf("%s: messages %v, want 4000008", what, flowNodeMessages(f, "totp_code"))
		}
		if _, status := whoamiToken(t, in, tok); status != http.StatusForbidden {
			t.Fatalf("%s: whoami of the replaying session %d, want 403", what, status)
		}
	}
}

// storageHolds reports which of needles occur in the bytes of the
// instance's Badger directory (write-ahead log, value log, tables) or, on
// PostgreSQL, in the stored rows (pgStorageHolds).
func storageHolds(t *testing.T, in *instance, needles ...string) map[string]bool {
	t.Helper()
	if in.onPostgres() {
		return pgStorageHolds(t, in, needles...)
	}
	found := map[string]bool{}
	err := filepath.WalkDir(in.storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				found[n] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// wantCodesNotStored fails if a code is in the storage directory; the
// flow id (stored in clear as the record key) proves the scan sees it.
func wantCodesNotStored(t *testing.T, in *instance, what, flowID string, codes []string) {
	t.Helper()
	found := storageHolds(t, in, append([]string{flowID}, codes...)...)
	if !found[flowID] {
		t.Fatalf("%s: the storage scan does not see flow %s", what, flowID)
	}
	for _, c := range codes {
		if found[c] {
			t.Fatalf("%s: backup code %s is in the storage directory in clear", what, c)
		}
	}
}

// TestLookupCodesNotAtRest (item 16): regenerated and revealed backup
// codes reach the user (API answer, getSettingsFlow, the built-in page
// after a form post) but never the storage directory in clear. Before the
// fix the settings flow record held them in a text node.
func TestLookupCodesNotAtRest(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	c := in.api()
	u := registerNative(t, in)

	t.Run("native", func(t *testing.T) {
		s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		update := func(body ory.UpdateSettingsFlowWithLookupMethod) *ory.SettingsFlow {
			body.Method = "lookup_secret"
			f, resp, err := c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(u.Token).
				UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithLookupMethodAsUpdateSettingsFlowBody(&body)).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			return f
		}
		shown := func() []string {
			f, resp, err := c.FrontendAPI.GetSettingsFlow(ctx).Id(s.Id).XSessionToken(u.Token).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			return lookupCodes(t, f.Ui.Nodes)
		}
		codes := lookupCodes(t, update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretRegenerate: ptr(true)}).Ui.Nodes)
		if len(codes) != 12 {
			t.Fatalf("regenerate: %v", codes)
		}
		wantCodesNotStored(t, in, "after regenerate", s.Id, codes)
		if got := shown(); strings.Join(got, ",") != strings.Join(codes, ",") {
			t.Fatalf("getSettingsFlow after regenerate: %v, want %v", got, codes)
		}
		update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretConfirm: ptr(true)})
		revealed := lookupCodes(t, update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretReveal: ptr(true)}).Ui.Nodes)
		if strings.Join(revealed, ",") != strings.Join(codes, ",") {
			t.Fatalf("reveal: %v, want %v", revealed, codes)
		}
		wantCodesNotStored(t, in, "after reveal", s.Id, codes)
		if got := shown(); strings.Join(got, ",") != strings.Join(codes, ",") {
			t.Fatalf("getSettingsFlow after reveal: %v, want %v", got, codes)
		}
	})

	t.Run("browser form and built-in page", func(t *testing.T) {
		u2 := registerNative(t, in) // no second factor yet
		b := newBrowser(t, in)
		b.login(t, u2.Email, u2.Password)
		s, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		form := url.Values{"method": {"lookup_secret"}, "lookup_secret_regenerate": {"true"}, "csrf_token": {sdkCSRF(t, s.Ui.Nodes)}}
		r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/settings?flow="+s.Id,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != settingsUIPrefix(in)+s.Id {
			t.Fatalf("Location %q, want %s%s", loc, settingsUIPrefix(in), s.Id)
		}
		f, resp, err := b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(s.Id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		codes := lookupCodes(t, f.Ui.Nodes)
		if len(codes) != 12 {
			t.Fatalf("codes %v", codes)
		}
		r, page := do(t, b.hc, "GET", settingsUIPrefix(in)+s.Id, hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, page, http.StatusOK)
		for _, code := range codes {
			if !strings.Contains(string(page), code) {
				t.Fatalf("the settings page does not show code %s", code)
			}
		}
		wantCodesNotStored(t, in, "after a form post", s.Id, codes)
	})
}
