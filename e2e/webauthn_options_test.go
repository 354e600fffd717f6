package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	ory "github.com/ory/client-go"
)

// Issue 12: WebAuthn on an IP public URL (item 6), WebAuthn in unified
// registration (item 14) and the passkey options (item 19).

// creationOptions decodes the publicKey of a webauthn trigger's value.
type creationOptions struct {
	PublicKey struct {
		RP struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		AuthenticatorSelection struct {
			AuthenticatorAttachment string `json:"authenticatorAttachment"`
			RequireResidentKey      *bool  `json:"requireResidentKey"`
			ResidentKey             string `json:"residentKey"`
			UserVerification        string `json:"userVerification"`
		} `json:"authenticatorSelection"`
	} `json:"publicKey"`
}

func decodeCreationOptions(t *testing.T, what, raw string) creationOptions {
	t.Helper()
	var o creationOptions
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatalf("%s: options are not JSON: %v: %s", what, err, raw)
	}
	return o
}

// wantWebAuthnScript wants the webauthn_script node Kratos renders.
func wantWebAuthnScript(t *testing.T, what string, in *instance, nodes []ory.UiNode) {
	t.Helper()
	s := mfaNode(nodes, "webauthn_script")
	if s == nil || s.Type != "script" || s.Group != "webauthn" || s.Attributes.UiNodeScriptAttributes == nil {
		t.Fatalf("%s: no webauthn_script node (type script, group webauthn); nodes %v", what, sdkNodeSpecs(nodes))
	}
	if src := s.Attributes.UiNodeScriptAttributes.Src; src != in.publicURL+".well-known/ory/webauthn.js" || !strings.HasSuffix(src, "/.well-known/ory/webauthn.js") {
		t.Errorf("%s: script src %q, want %s.well-known/ory/webauthn.js", what, src, in.publicURL)
	}
}

// TestWebAuthnOnAnIPPublicURL: with public_url http://127.0.0.1:… and no
// rp_id, a browser settings flow offers the WebAuthn nodes with the
// script, as Kratos does; the relying party id is localhost (browsers and
// go-webauthn refuse an IP address).
func TestWebAuthnOnAnIPPublicURL(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"methods webauthn", "rate_limits off"}})
	if !strings.HasPrefix(in.publicURL, "http://127.0.0.1:") {
		t.Fatalf("public URL %s is not an IP address", in.publicURL)
	}
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantWebAuthnScript(t, "settings", in, f.Ui.Nodes)
	for _, name := range []string{"webauthn_register_trigger", "webauthn_register", "webauthn_register_displayname"} {
		n := sdkNode(f.Ui.Nodes, name)
		if n == nil || n.Group != "webauthn" {
			t.Errorf("settings: no %s node in group webauthn; nodes %v", name, sdkNodeSpecs(f.Ui.Nodes))
		}
	}
	trig := sdkNode(f.Ui.Nodes, "webauthn_register_trigger")
	if trig == nil {
		return
	}
	if a := trig.Attributes.UiNodeInputAttributes; a.Type != "button" || a.OnclickTrigger == nil || *a.OnclickTrigger != "oryWebAuthnRegistration" || labelID(trig) != 1050012 {
		t.Errorf("webauthn_register_trigger: %+v, label %d", a, labelID(trig))
	}
	v, _ := trig.Attributes.UiNodeInputAttributes.Value.(string)
	if o := decodeCreationOptions(t, "settings", v); o.PublicKey.RP.ID != "localhost" {
		t.Errorf("relying party id %q, want localhost", o.PublicKey.RP.ID)
	}
}

// TestWebAuthnUnifiedRegistration: with registration_style unified and
// passwordless webauthn, the registration form offers the webauthn group
// beside password, code and passkey, as Kratos does, and a security key
// signs up and then in without a password (issue 12, item 14).
func TestWebAuthnUnifiedRegistration(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{
		"registration_style unified", "rate_limits off",
		"methods webauthn passkey code",
		"code {\n\t\t\tpasswordless\n\t\t}",
		"webauthn {\n\t\t\trp_id " + mfaRPID + "\n\t\t\trp_origins " + mfaOrigin + "\n\t\t\tpasswordless\n\t\t}",
	}})
	b := newBrowser(t, in)
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	groups := map[string]bool{}
	for _, n := range f.Ui.Nodes {
		groups[n.Group] = true
	}
	for _, g := range []string{"password", "code", "passkey", "webauthn"} {
		if !groups[g] {
			t.Errorf("unified registration lacks the %s group; nodes %v", g, sdkNodeSpecs(f.Ui.Nodes))
		}
	}
	wantWebAuthnScript(t, "registration", in, f.Ui.Nodes)
	name := sdkNode(f.Ui.Nodes, "webauthn_register_displayname")
	if name == nil || name.Group != "webauthn" || name.Attributes.UiNodeInputAttributes.Type != "text" || labelID(name) != 1050013 {
		t.Fatalf("webauthn_register_displayname: %+v", name)
	}
	if n := sdkNode(f.Ui.Nodes, "webauthn_register"); n == nil || n.Group != "webauthn" || n.Attributes.UiNodeInputAttributes.Type != "hidden" {
		t.Fatalf("webauthn_register: %+v", n)
	}
	trig := sdkNode(f.Ui.Nodes, "webauthn_register_trigger")
	if trig == nil || trig.Group != "webauthn" || trig.Attributes.UiNodeInputAttributes.Type != "button" ||
		trig.Attributes.UiNodeInputAttributes.OnclickTrigger == nil || *trig.Attributes.UiNodeInputAttributes.OnclickTrigger != "oryWebAuthnRegistration" ||
		labelID(trig) != 1040004 {
		t.Fatalf("webauthn_register_trigger: %+v", trig)
	}
	opts, _ := trig.Attributes.UiNodeInputAttributes.Value.(string)
	if o := decodeCreationOptions(t, "registration", opts); o.PublicKey.RP.ID != mfaRPID {
		t.Errorf("relying party id %q, want %s", o.PublicKey.RP.ID, mfaRPID)
	}

	// Sign up with the key.
	email := randEmail()
	key := newMFAKey(t)
	wa := ory.NewUpdateRegistrationFlowWithWebAuthnMethod("webauthn", map[string]any{"email": email})
	wa.SetCsrfToken(sdkCSRF(t, f.Ui.Nodes))
	wa.SetWebauthnRegister(key.attest(t, opts))
	wa.SetWebauthnRegisterDisplayname("my key")
	reg, resp, err := b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithWebAuthnMethodAsUpdateRegistrationFlowBody(wa)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if reg.Session == nil || methodsOf(reg.Session) != "webauthn" || reg.Identity.Id == "" {
		t.Fatalf("security key sign-up: session %+v", reg.Session)
	}
	// The same attestation cannot sign up twice (the ceremony is used up).
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithWebAuthnMethodAsUpdateRegistrationFlowBody(wa)).Execute()
	if resp == nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("the used attestation signed up again: %v", err)
	}

	// Sign in with the key alone: identifier, then the assertion.
	b2 := newBrowser(t, in)
	lf, resp, err := b2.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	step := ory.NewUpdateLoginFlowWithWebAuthnMethod(email, "webauthn")
	step.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	_, resp, err = b2.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithWebAuthnMethodAsUpdateLoginFlowBody(step)).Execute()
	ch := sdkFlowError(t, "passwordless step one", resp, err, http.StatusBadRequest)
	lt := ch.node("webauthn_login_trigger")
	if lt == nil {
		t.Fatalf("no webauthn_login_trigger after the identifier: %v", rawNodeSpecs(ch.UI.Nodes))
	}
	key.cred.Counter = 1
	step.SetWebauthnLogin(key.assert(t, lt.Attributes["value"].(string), mfaOrigin))
	res, resp, err := b2.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithWebAuthnMethodAsUpdateLoginFlowBody(step)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.Identity == nil || res.Session.Identity.Id != reg.Identity.Id || methodsOf(&res.Session) != "webauthn" {
		t.Fatalf("security key sign-in: %+v", res.Session)
	}
}

// passkeyStep returns the credential step of a browser registration
// (profile_first) and the creation options of its passkey_create_data.
func passkeyStep(t *testing.T, b *browser, traits map[string]any) (*ory.RegistrationFlow, flowJSON, string) {
	t.Helper()
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	profile := ory.UpdateRegistrationFlowWithProfileMethod{Method: "profile", Traits: traits, CsrfToken: ptr(sdkCSRF(t, f.Ui.Nodes))}
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithProfileMethodAsUpdateRegistrationFlowBody(&profile)).Execute()
	sel := sdkFlowError(t, "profile step", resp, err, http.StatusBadRequest)
	n := sel.node("passkey_create_data")
	if n == nil {
		t.Fatalf("no passkey_create_data on the credential step: %v", rawNodeSpecs(sel.UI.Nodes))
	}
	var data struct {
		CredentialOptions json.RawMessage `json:"credentialOptions"`
	}
	raw, _ := n.Attributes["value"].(string)
	if err := json.Unmarshal([]byte(raw), &data); err != nil || len(data.CredentialOptions) == 0 {
		t.Fatalf("passkey_create_data %q: %v", raw, err)
	}
	return f, sel, string(data.CredentialOptions)
}

// loginUserVerification is the userVerification of a browser login
// flow's passkey_challenge.
func loginUserVerification(t *testing.T, b *browser) (string, *ory.LoginFlow) {
	t.Helper()
	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	var ch struct {
		PublicKey struct {
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(mfaInputValue(t, lf.Ui.Nodes, "passkey_challenge")), &ch); err != nil {
		t.Fatal(err)
	}
	return ch.PublicKey.UserVerification, lf
}

// TestPasskeyOptions: the passkey block sets the relying party and the
// authenticator selection the passkey ceremonies send; without it they
// are Kratos's (a discoverable credential, user verification preferred, a
// platform authenticator) (issue 12, item 19).
func TestPasskeyOptions(t *testing.T) {
	t.Parallel()
	webauthnRP := "webauthn {\n\t\t\trp_id " + mfaRPID + "\n\t\t\trp_display_name \"Acme Keys\"\n\t\t\trp_origins " + mfaOrigin + "\n\t\t}"

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		in := startInstance(t, instanceOptions{GlobalKratos: []string{"methods passkey", webauthnRP, "rate_limits off"}})
		b := newBrowser(t, in)
		_, _, opts := passkeyStep(t, b, map[string]any{"email": randEmail()})
		o := decodeCreationOptions(t, "defaults", opts)
		s := o.PublicKey.AuthenticatorSelection
		if o.PublicKey.RP.ID != mfaRPID || o.PublicKey.RP.Name != "Acme Keys" {
			t.Errorf("relying party %+v, want the webauthn one (%s, Acme Keys)", o.PublicKey.RP, mfaRPID)
		}
		if s.AuthenticatorAttachment != "platform" || s.ResidentKey != "required" || s.RequireResidentKey == nil || !*s.RequireResidentKey || s.UserVerification != "preferred" {
			t.Errorf("authenticatorSelection %+v, want Kratos's platform / required / preferred", s)
		}
		if uv, _ := loginUserVerification(t, newBrowser(t, in)); uv != "preferred" {
			t.Errorf("login userVerification %q, want preferred", uv)
		}
	})

	t.Run("configured", func(t *testing.T) {
		t.Parallel()
		in := startInstance(t, instanceOptions{GlobalKratos: []string{"methods webauthn passkey", webauthnRP, "rate_limits off",
			"passkey {\n\t\t\trp_id " + mfaRPID + "\n\t\t\trp_display_name \"Acme Passkeys\"\n\t\t\trp_origins " + mfaOrigin +
				"\n\t\t\tauthenticator_selection {\n\t\t\t\tresident_key preferred\n\t\t\t\tuser_verification required\n\t\t\t\tattachment cross-platform\n\t\t\t}\n\t\t}"}})
		b := newBrowser(t, in)
		traits := map[string]any{"email": randEmail()}
		f, _, opts := passkeyStep(t, b, traits)
		o := decodeCreationOptions(t, "configured", opts)
		s := o.PublicKey.AuthenticatorSelection
		if o.PublicKey.RP.ID != mfaRPID || o.PublicKey.RP.Name != "Acme Passkeys" {
			t.Errorf("relying party %+v, want %s, Acme Passkeys", o.PublicKey.RP, mfaRPID)
		}
		if s.AuthenticatorAttachment != "cross-platform" || s.ResidentKey != "preferred" || s.RequireResidentKey == nil || *s.RequireResidentKey || s.UserVerification != "required" {
			t.Errorf("authenticatorSelection %+v, want cross-platform / preferred / required", s)
		}

		// The options work: sign up with a passkey, then sign in with it.
		key := newMFAKey(t)
		pk := ory.UpdateRegistrationFlowWithPasskeyMethod{Method: "passkey", Traits: traits, CsrfToken: ptr(sdkCSRF(t, f.Ui.Nodes)),
			PasskeyRegister: ptr(key.attest(t, opts))}
		reg, resp, err := b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
			UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithPasskeyMethodAsUpdateRegistrationFlowBody(&pk)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)

		// Settings: the passkey options; the security keys keep the
		// WebAuthn relying party.
		sf, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		var data struct {
			CredentialOptions json.RawMessage `json:"credentialOptions"`
		}
		if err := json.Unmarshal([]byte(mfaInputValue(t, sf.Ui.Nodes, "passkey_create_data")), &data); err != nil {
			t.Fatal(err)
		}
		if so := decodeCreationOptions(t, "settings passkey", string(data.CredentialOptions)); so.PublicKey.RP.Name != "Acme Passkeys" ||
			so.PublicKey.AuthenticatorSelection.AuthenticatorAttachment != "cross-platform" || so.PublicKey.AuthenticatorSelection.UserVerification != "required" {
			t.Errorf("settings passkey options %+v", so.PublicKey)
		}
		if wo := decodeCreationOptions(t, "settings webauthn", mfaInputValue(t, sf.Ui.Nodes, "webauthn_register_trigger")); wo.PublicKey.RP.Name != "Acme Keys" ||
			wo.PublicKey.AuthenticatorSelection.AuthenticatorAttachment != "" {
			t.Errorf("settings security key options %+v, want the WebAuthn relying party Acme Keys and any attachment", wo.PublicKey)
		}

		b2 := newBrowser(t, in)
		uv, lf := loginUserVerification(t, b2)
		if uv != "required" {
			t.Errorf("login userVerification %q, want required", uv)
		}
		key.cred.Counter = 1
		body := ory.UpdateLoginFlowWithPasskeyMethod{Method: "passkey", CsrfToken: ptr(sdkCSRF(t, lf.Ui.Nodes)),
			PasskeyLogin: ptr(key.assert(t, mfaInputValue(t, lf.Ui.Nodes, "passkey_challenge"), mfaOrigin))}
		res, resp, err := b2.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasskeyMethodAsUpdateLoginFlowBody(&body)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if res.Session.Identity == nil || res.Session.Identity.Id != reg.Identity.Id {
			t.Fatalf("passkey sign-in: %+v", res.Session)
		}
	})
}
