package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	ory "github.com/ory/client-go"
	"github.com/pquerna/otp/totp"
)

// Strong authentication through the official SDK against the running
// binary: TOTP and lookup secrets on native flows, WebAuthn (second factor)
// and passkeys on browser flows with a software authenticator.

const (
	mfaRPID   = "localhost"
	mfaOrigin = "https://localhost"
)

var (
	mfaOnce sync.Once
	mfaInst *instance
	mfaErr  error
)

// mfaInstance is shared by the tests of this file: all four methods on,
// the relying party at https://localhost (the public URL is an IP address,
// which WebAuthn does not accept as an RP id).
func mfaInstance(t *testing.T) *instance {
	t.Helper()
	mfaOnce.Do(func() {
		mfaInst, mfaErr = newSharedInstance("caddy-kratos-mfa-", instanceOptions{GlobalKratos: []string{
			"methods totp lookup_secret webauthn passkey",
			"totp_issuer caddy-kratos-e2e",
			"webauthn {\n\t\t\trp_id " + mfaRPID + "\n\t\t\trp_origins " + mfaOrigin + "\n\t\t}",
		}})
	})
	if mfaErr != nil {
		t.Fatalf("mfa instance did not start: %v", mfaErr)
	}
	return mfaInst
}

func ptr[T any](v T) *T { return &v }

// sriOf is the sha512 subresource-integrity value of b.
func sriOf(b []byte) string {
	h := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(h[:])
}

// mfaNode finds a node by input name or by id (img, text, script).
func mfaNode(nodes []ory.UiNode, key string) *ory.UiNode {
	for i := range nodes {
		a := nodes[i].Attributes
		switch {
		case a.UiNodeInputAttributes != nil && a.UiNodeInputAttributes.Name == key,
			a.UiNodeTextAttributes != nil && a.UiNodeTextAttributes.Id == key,
			a.UiNodeImageAttributes != nil && a.UiNodeImageAttributes.Id == key,
			a.UiNodeScriptAttributes != nil && a.UiNodeScriptAttributes.Id == key:
			return &nodes[i]
		}
	}
	return nil
}

func mfaInputValue(t *testing.T, nodes []ory.UiNode, name string) string {
	t.Helper()
	n := mfaNode(nodes, name)
	if n == nil || n.Attributes.UiNodeInputAttributes == nil {
		t.Fatalf("no input node %s", name)
	}
	s, _ := n.Attributes.UiNodeInputAttributes.Value.(string)
	return s
}

// flowNodeMessages are the message ids on the node named name of a raw flow.
func flowNodeMessages(f flowJSON, name string) []int64 {
	var out []int64
	if n := f.node(name); n != nil {
		for _, m := range n.Messages {
			out = append(out, m.ID)
		}
	}
	return out
}

func methodsOf(s *ory.Session) string {
	var out []string
	for _, m := range s.AuthenticationMethods {
		out = append(out, m.GetMethod())
	}
	return strings.Join(out, ",")
}

func TestMFATOTPNative(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	c := in.api()
	u := registerNative(t, in)

	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	qr := mfaNode(s.Ui.Nodes, "totp_qr")
	if qr == nil || !strings.HasPrefix(qr.Attributes.UiNodeImageAttributes.Src, "data:image/png;base64,") || qr.Attributes.UiNodeImageAttributes.Width != 256 {
		t.Fatalf("totp_qr node missing or wrong")
	}
	sec := mfaNode(s.Ui.Nodes, "totp_secret_key")
	if sec == nil || sec.Attributes.UiNodeTextAttributes.Text.Id != 1050006 {
		t.Fatalf("totp_secret_key node missing")
	}
	secret, _ := sec.Attributes.UiNodeTextAttributes.Text.Context["secret"].(string)
	if len(secret) != 32 {
		t.Fatalf("secret %q", secret)
	}
	if n := mfaNode(s.Ui.Nodes, "lookup_secret_regenerate"); n == nil {
		t.Fatal("no lookup_secret_regenerate node")
	}
	// WebAuthn and passkey are browser-only.
	if mfaNode(s.Ui.Nodes, "webauthn_register_trigger") != nil || mfaNode(s.Ui.Nodes, "passkey_create_data") != nil {
		t.Fatal("webauthn nodes in a native settings flow")
	}

	update := func(flowID, token string, body ory.UpdateSettingsFlowWithTotpMethod) (*ory.SettingsFlow, *http.Response, error) {
		return c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(flowID).XSessionToken(token).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithTotpMethodAsUpdateSettingsFlowBody(&body)).Execute()
	}
	wrong := "000000"
	if good, _ := totp.GenerateCode(secret, time.Now()); good == wrong {
		wrong = "111111"
	}
	_, resp, err = update(s.Id, u.Token, ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(wrong)})
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(flowNodeMessages(f, "totp_code"), 4000008) {
		t.Fatalf("wrong code: messages %v", flowNodeMessages(f, "totp_code"))
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	linked, resp, err := update(s.Id, u.Token, ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpCode: ptr(code)})
	wantSDKStatus(t, resp, err, http.StatusOK)
	if linked.State != "success" || mfaNode(linked.Ui.Nodes, "totp_unlink") == nil || !containsID(sdkMessageIDs(linked.Ui.Messages), 1050001) {
		t.Fatalf("link: state %v", linked.State)
	}
	if sess, status := whoamiToken(t, in, u.Token); status != 200 || sess.GetAuthenticatorAssuranceLevel() != "aal2" || methodsOf(sess) != "password,totp" {
		t.Fatalf("whoami after linking: %d", status)
	}

	// Password alone: aal1, identity withheld, whoami asks for more.
	tok, sess := loginNative(t, in, u.Email, u.Password)
	if sess.Identity != nil || sess.GetAuthenticatorAssuranceLevel() != "aal1" {
		t.Fatalf("password login: identity %v aal %s", sess.Identity, sess.GetAuthenticatorAssuranceLevel())
	}
	if _, status := whoamiToken(t, in, tok); status != http.StatusForbidden {
		t.Fatalf("whoami aal1: %d", status)
	}
	_, resp, err = c.FrontendAPI.ToSession(ctx).XSessionToken(tok).Execute()
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("whoami aal1 via SDK: %v", err)
	}
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); e.Error.ID != "session_aal2_required" {
		t.Fatalf("whoami error %+v", e)
	}
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if mfaNode(lf.Ui.Nodes, "totp_code") == nil || !containsID(sdkMessageIDs(lf.Ui.Messages), 1010004) {
		t.Fatal("aal2 flow without totp_code")
	}
	login := func(code string) (*ory.SuccessfulNativeLogin, *http.Response, error) {
		return c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithTotpMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithTotpMethod("totp", code))).Execute()
	}
	_, resp, err = login(wrong)
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(flowNodeMessages(f, "totp_code"), 4000008) {
		t.Fatalf("wrong login code: %v", flowNodeMessages(f, "totp_code"))
	}
	code, _ = totp.GenerateCode(secret, time.Now())
	res, resp, err := login(code)
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.GetSessionToken() != tok || res.Session.GetAuthenticatorAssuranceLevel() != "aal2" || res.Session.Identity == nil || methodsOf(&res.Session) != "password,totp" {
		t.Fatalf("aal2 login: token same %v, aal %s", res.GetSessionToken() == tok, res.Session.GetAuthenticatorAssuranceLevel())
	}
	if _, status := whoamiToken(t, in, tok); status != 200 {
		t.Fatalf("whoami aal2: %d", status)
	}

	// Unlink.
	s2, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	un, resp, err := update(s2.Id, tok, ory.UpdateSettingsFlowWithTotpMethod{Method: "totp", TotpUnlink: ptr(true)})
	wantSDKStatus(t, resp, err, http.StatusOK)
	if un.State != "success" || mfaNode(un.Ui.Nodes, "totp_unlink") != nil || mfaNode(un.Ui.Nodes, "totp_qr") == nil {
		t.Fatalf("unlink: %v", un.State)
	}
	if _, sess := loginNative(t, in, u.Email, u.Password); sess.Identity == nil {
		t.Fatal("identity still withheld after unlinking")
	}
}

// lookupCodes reads the codes of the lookup_secret_codes text node.
func lookupCodes(t *testing.T, nodes []ory.UiNode) []string {
	t.Helper()
	n := mfaNode(nodes, "lookup_secret_codes")
	if n == nil {
		t.Fatal("no lookup_secret_codes node")
	}
	txt := n.Attributes.UiNodeTextAttributes.Text
	if txt.Id != 1050015 {
		t.Fatalf("codes text id %d", txt.Id)
	}
	var out []string
	list, _ := txt.Context["secrets"].([]any)
	for _, s := range list {
		m := s.(map[string]any)
		if ctx, ok := m["context"].(map[string]any); ok {
			if c, ok := ctx["secret"].(string); ok {
				out = append(out, c)
				continue
			}
		}
		out = append(out, "used")
	}
	return out
}

func TestMFALookupSecretNative(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	c := in.api()
	u := registerNative(t, in)
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	update := func(flowID, token string, body ory.UpdateSettingsFlowWithLookupMethod) (*ory.SettingsFlow, *http.Response, error) {
		body.Method = "lookup_secret"
		return c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(flowID).XSessionToken(token).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithLookupMethodAsUpdateSettingsFlowBody(&body)).Execute()
	}
	gen, resp, err := update(s.Id, u.Token, ory.UpdateSettingsFlowWithLookupMethod{LookupSecretRegenerate: ptr(true)})
	wantSDKStatus(t, resp, err, http.StatusOK)
	codes := lookupCodes(t, gen.Ui.Nodes)
	if len(codes) != 12 || gen.State != "show_form" || mfaNode(gen.Ui.Nodes, "lookup_secret_confirm") == nil {
		t.Fatalf("regenerate: %v %v", codes, gen.State)
	}
	conf, resp, err := update(s.Id, u.Token, ory.UpdateSettingsFlowWithLookupMethod{LookupSecretConfirm: ptr(true)})
	wantSDKStatus(t, resp, err, http.StatusOK)
	if conf.State != "success" || mfaNode(conf.Ui.Nodes, "lookup_secret_reveal") == nil || mfaNode(conf.Ui.Nodes, "lookup_secret_disable") == nil {
		t.Fatalf("confirm: %v", conf.State)
	}
	rev, resp, err := update(s.Id, u.Token, ory.UpdateSettingsFlowWithLookupMethod{LookupSecretReveal: ptr(true)})
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got := lookupCodes(t, rev.Ui.Nodes); strings.Join(got, ",") != strings.Join(codes, ",") {
		t.Fatalf("revealed %v, generated %v", got, codes)
	}

	aal2 := func() (string, *ory.LoginFlow) {
		tok, _ := loginNative(t, in, u.Email, u.Password)
		lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Aal("aal2").XSessionToken(tok).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if mfaNode(lf.Ui.Nodes, "lookup_secret") == nil {
			t.Fatal("aal2 flow without lookup_secret")
		}
		return tok, lf
	}
	use := func(tok string, lf *ory.LoginFlow, code string) (*ory.SuccessfulNativeLogin, *http.Response, error) {
		return c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).XSessionToken(tok).UpdateLoginFlowBody(
			ory.UpdateLoginFlowWithLookupSecretMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithLookupSecretMethod(code, "lookup_secret"))).Execute()
	}
	tok, lf := aal2()
	_, resp, err = use(tok, lf, "zzzzzzzz")
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(f.messageIDs(), 4000016) {
		t.Fatalf("wrong code: %v", f.messageIDs())
	}
	res, resp, err := use(tok, lf, codes[0])
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" || methodsOf(&res.Session) != "password,lookup_secret" {
		t.Fatalf("lookup login: %s", methodsOf(&res.Session))
	}
	tok2, lf2 := aal2()
	_, resp, err = use(tok2, lf2, codes[0])
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(f.messageIDs(), 4000012) {
		t.Fatalf("used code: %v", f.messageIDs())
	}
	// Two sessions racing with one code: one wins.
	tokA, lfA := aal2()
	tokB, lfB := aal2()
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, p := range []struct {
		tok string
		lf  *ory.LoginFlow
	}{{tokA, lfA}, {tokB, lfB}} {
		wg.Add(1)
		go func(i int, tok string, lf *ory.LoginFlow) {
			defer wg.Done()
			_, resp, _ := use(tok, lf, codes[1])
			if resp != nil {
				statuses[i] = resp.StatusCode
			}
		}(i, p.tok, p.lf)
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 400 || statuses[0] == 400 && statuses[1] == 200) {
		t.Fatalf("concurrent use of one code: %v", statuses)
	}
}

// mfaKey is a software authenticator with one EC2 credential.
type mfaKey struct {
	rp   virtualwebauthn.RelyingParty
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

func newMFAKey(t *testing.T) *mfaKey {
	t.Helper()
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		// virtualwebauthn drops leading zero bytes of the coordinates.
		if len(k.X.Bytes()) != 32 || len(k.Y.Bytes()) != 32 {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return &mfaKey{
			rp:   virtualwebauthn.RelyingParty{ID: mfaRPID, Name: mfaRPID, Origin: mfaOrigin},
			auth: virtualwebauthn.NewAuthenticator(),
			cred: virtualwebauthn.NewCredentialWithImportedKey(virtualwebauthn.KeyTypeEC2, der),
		}
	}
}

func (k *mfaKey) attest(t *testing.T, options string) string {
	t.Helper()
	o, err := virtualwebauthn.ParseAttestationOptions(options)
	if err != nil {
		t.Fatalf("attestation options %s: %v", options, err)
	}
	k.auth.Options.UserHandle = []byte(o.UserID)
	return virtualwebauthn.CreateAttestationResponse(k.rp, k.auth, k.cred, *o)
}

func (k *mfaKey) assert(t *testing.T, options string, origin string) string {
	t.Helper()
	o, err := virtualwebauthn.ParseAssertionOptions(options)
	if err != nil {
		t.Fatalf("assertion options %s: %v", options, err)
	}
	rp := k.rp
	rp.Origin = origin
	return virtualwebauthn.CreateAssertionResponse(rp, k.auth, k.cred, *o)
}

// browserRegister signs a new browser up with a password (SDK, JSON).
func mfaBrowserRegister(t *testing.T, b *browser) (email, password string) {
	t.Helper()
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	email, password = randEmail(), randPassword()
	pw := ory.NewUpdateRegistrationFlowWithPasswordMethod("password", password, map[string]any{"email": email})
	pw.SetCsrfToken(sdkCSRF(t, f.Ui.Nodes))
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return email, password
}

func TestMFAWebAuthnSecondFactor(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	b := newBrowser(t, in)
	email, password := mfaBrowserRegister(t, b)

	s, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	trig := mfaNode(s.Ui.Nodes, "webauthn_register_trigger")
	if trig == nil || trig.Attributes.UiNodeInputAttributes.OnclickTrigger == nil || *trig.Attributes.UiNodeInputAttributes.OnclickTrigger != "oryWebAuthnRegistration" {
		t.Fatal("no webauthn_register_trigger with onclickTrigger")
	}
	script := mfaNode(s.Ui.Nodes, "webauthn_script")
	if script == nil || script.Attributes.UiNodeScriptAttributes.Src != in.publicURL+".well-known/ory/webauthn.js" {
		t.Fatal("no webauthn_script node")
	}
	// The integrity attribute is the SRI hash of what the endpoint serves.
	js, resp, err := in.api().FrontendAPI.GetWebAuthnJavaScript(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if script.Attributes.UiNodeScriptAttributes.Integrity != sriOf([]byte(js)) {
		t.Fatal("script integrity does not match webauthn.js")
	}
	key := newMFAKey(t)
	register := func(flowID, csrf, att string) (*ory.SettingsFlow, *http.Response, error) {
		body := ory.UpdateSettingsFlowWithWebAuthnMethod{Method: "webauthn", CsrfToken: ptr(csrf), WebauthnRegister: ptr(att), WebauthnRegisterDisplayname: ptr("e2e key")}
		return b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(flowID).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithWebAuthnMethodAsUpdateSettingsFlowBody(&body)).Execute()
	}
	att := key.attest(t, mfaInputValue(t, s.Ui.Nodes, "webauthn_register_trigger"))
	ok, resp, err := register(s.Id, sdkCSRF(t, s.Ui.Nodes), att)
	wantSDKStatus(t, resp, err, http.StatusOK)
	if ok.State != "success" || mfaNode(ok.Ui.Nodes, "webauthn_remove") == nil {
		t.Fatalf("register key: %v", ok.State)
	}
	// Replaying the registration is refused.
	_, resp, err = register(s.Id, sdkCSRF(t, ok.Ui.Nodes), att)
	wantSDKStatus(t, resp, err, http.StatusBadRequest)

	// A new browser: password, then the key.
	b2 := newBrowser(t, in)
	lf, resp, err := b2.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", password)
	pw.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	_, resp, err = b2.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, 422)
	if e := decodeError(t, 422, sdkErrBody(t, err)); e.Error.ID != "browser_location_change_required" {
		t.Fatalf("password step: %+v", e)
	}
	af, resp, err := b2.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	opts := mfaInputValue(t, af.Ui.Nodes, "webauthn_login_trigger")
	loginWith := func(f *ory.LoginFlow, assertion string) (*ory.SuccessfulNativeLogin, *http.Response, error) {
		body := ory.UpdateLoginFlowWithWebAuthnMethod{Method: "webauthn", CsrfToken: ptr(sdkCSRF(t, f.Ui.Nodes)), WebauthnLogin: ptr(assertion)}
		return b2.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithWebAuthnMethodAsUpdateLoginFlowBody(&body)).Execute()
	}
	_, resp, err = loginWith(af, key.assert(t, opts, "https://evil.example"))
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	bad := decodeFlow(t, sdkErrBody(t, err))
	if !containsID(bad.messageIDs(), 4000043) {
		t.Fatalf("wrong origin: %v", bad.messageIDs())
	}
	// The refused attempt spent its challenge; the re-rendered flow has a new one.
	opts2, _ := bad.node("webauthn_login_trigger").Attributes["value"].(string)
	if opts2 == opts {
		t.Fatal("challenge reused after a failed attempt")
	}
	af2, resp, err := b2.sdk.FrontendAPI.GetLoginFlow(ctx).Id(af.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	key.cred.Counter = 3
	res, resp, err := loginWith(af2, key.assert(t, opts2, mfaOrigin))
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.GetAuthenticatorAssuranceLevel() != "aal2" || methodsOf(&res.Session) != "password,webauthn" {
		t.Fatalf("webauthn login: %s %s", res.Session.GetAuthenticatorAssuranceLevel(), methodsOf(&res.Session))
	}
	// A cloned key (counter going backwards) is refused.
	b3 := newBrowser(t, in)
	b3.loginExpectingAAL2(t, email, password)
	cf, resp, err := b3.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Aal("aal2").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	key.cred.Counter = 2
	body := ory.UpdateLoginFlowWithWebAuthnMethod{Method: "webauthn", CsrfToken: ptr(sdkCSRF(t, cf.Ui.Nodes)),
		WebauthnLogin: ptr(key.assert(t, mfaInputValue(t, cf.Ui.Nodes, "webauthn_login_trigger"), mfaOrigin))}
	_, resp, err = b3.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(cf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithWebAuthnMethodAsUpdateLoginFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
}

// loginExpectingAAL2 signs the browser in with a password where a second
// factor is due (422 browser_location_change_required).
func (b *browser) loginExpectingAAL2(t *testing.T, email, password string) {
	t.Helper()
	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", password)
	pw.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, 422)
}

func TestMFAPasskey(t *testing.T) {
	t.Parallel()
	in := mfaInstance(t)
	b := newBrowser(t, in)
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	traits := map[string]any{"email": randEmail()}
	profile := ory.UpdateRegistrationFlowWithProfileMethod{Method: "profile", Traits: traits, CsrfToken: ptr(sdkCSRF(t, f.Ui.Nodes))}
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithProfileMethodAsUpdateRegistrationFlowBody(&profile)).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	sel := decodeFlow(t, sdkErrBody(t, err))
	trig := sel.node("passkey_register_trigger")
	if trig == nil || trig.Attributes["onclickTrigger"] != "oryPasskeyRegistration" {
		t.Fatal("no passkey_register_trigger on the credential step")
	}
	var data struct {
		CredentialOptions json.RawMessage `json:"credentialOptions"`
	}
	raw, _ := sel.node("passkey_create_data").Attributes["value"].(string)
	if err := json.Unmarshal([]byte(raw), &data); err != nil || len(data.CredentialOptions) == 0 {
		t.Fatalf("passkey_create_data %q: %v", raw, err)
	}
	key := newMFAKey(t)
	pk := ory.UpdateRegistrationFlowWithPasskeyMethod{Method: "passkey", Traits: traits, CsrfToken: ptr(sdkCSRF(t, f.Ui.Nodes)),
		PasskeyRegister: ptr(key.attest(t, string(data.CredentialOptions)))}
	reg, resp, err := b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithPasskeyMethodAsUpdateRegistrationFlowBody(&pk)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if reg.Session == nil || methodsOf(reg.Session) != "passkey" {
		t.Fatal("passkey sign-up gave no passkey session")
	}

	// Sign in with no identifier.
	b2 := newBrowser(t, in)
	lf, resp, err := b2.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if n := mfaNode(lf.Ui.Nodes, "passkey_login_trigger"); n == nil || *n.Attributes.UiNodeInputAttributes.OnclickTrigger != "oryPasskeyLogin" {
		t.Fatal("no passkey_login_trigger")
	}
	challenge := mfaInputValue(t, lf.Ui.Nodes, "passkey_challenge")
	key.cred.Counter = 1
	body := ory.UpdateLoginFlowWithPasskeyMethod{Method: "passkey", CsrfToken: ptr(sdkCSRF(t, lf.Ui.Nodes)), PasskeyLogin: ptr(key.assert(t, challenge, mfaOrigin))}
	res, resp, err := b2.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasskeyMethodAsUpdateLoginFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.Identity == nil || res.Session.Identity.Id != reg.Identity.Id || methodsOf(&res.Session) != "passkey" {
		t.Fatal("passkey login signed in someone else")
	}
	if who, resp, err := b2.sdk.FrontendAPI.ToSession(ctx).Execute(); err != nil || resp.StatusCode != 200 || who.Identity.Id != reg.Identity.Id {
		t.Fatalf("whoami after passkey login: %v", err)
	}
	// The same assertion on another flow is refused.
	b3 := newBrowser(t, in)
	lf3, resp, err := b3.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	body.CsrfToken = ptr(sdkCSRF(t, lf3.Ui.Nodes))
	_, resp, err = b3.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf3.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasskeyMethodAsUpdateLoginFlowBody(&body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(f.messageIDs(), 4000043) {
		t.Fatalf("replayed assertion: %v", f.messageIDs())
	}
}
