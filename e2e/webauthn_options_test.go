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
