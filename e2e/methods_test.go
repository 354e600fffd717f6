package e2e

import (
	"net/http"
	"testing"

	ory "github.com/ory/client-go"
)

// Issue 12, item 7: `methods password profile …` is accepted, and
// `password disabled` turns the password method off for passwordless
// deployments (Kratos's selfservice.methods.password.enabled: false).

// noPasswordNodes fails when nodes hold a password field or a
// method=password submit.
func noPasswordNodes(t *testing.T, what string, nodes []ory.UiNode) {
	t.Helper()
	for _, n := range nodes {
		a := n.Attributes.UiNodeInputAttributes
		if n.Group == "password" || a != nil && (a.Name == "password" || a.Name == "method" && a.Value == "password") {
			t.Errorf("%s: password node %s/%v with the password method off; nodes %v", what, n.Group, a, sdkNodeSpecs(nodes))
		}
	}
}

func TestPasswordMethodDisabled(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "password disabled", "methods code passkey", "code {\n\t\t\tpasswordless\n\t\t}", "rate_limits off")
	c := in.api()

	// Sign up with a mailed code: the way in without a password.
	email := randEmail()
	rf, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	noPasswordNodes(t, "native registration", rf.Ui.Nodes)
	// profile_first: the credential step offers the code, no password.
	prof := ory.NewUpdateRegistrationFlowWithProfileMethod("profile", map[string]any{"email": email})
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithProfileMethodAsUpdateRegistrationFlowBody(prof)).Execute()
	step2 := sdkFlowError(t, "profile step", resp, err, http.StatusBadRequest)
	if n := step2.node("password"); n != nil {
		t.Errorf("credential step offers a password: %v", rawNodeSpecs(step2.UI.Nodes))
	}
	if n := step2.node("method"); n == nil {
		t.Errorf("credential step offers no method: %v", rawNodeSpecs(step2.UI.Nodes))
	}
	// A password sign-up is refused like a disabled method: no strategy.
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", randPassword(), map[string]any{"email": email}))).Execute()
	f := sdkFlowError(t, "password sign-up", resp, err, http.StatusBadRequest)
	if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4010003 {
		t.Errorf("password sign-up: messages %v, want [4010003]", ids)
	}
	r, body := do(t, plainHTTP(), "POST", in.apiBase+"/self-service/registration?flow="+rf.Id,
		hdr{"Accept": "application/json", "Content-Type": "application/json"}, []byte(`{"method":"code","traits":{"email":"`+email+`"}}`))
	wantStatus(t, r, body, http.StatusOK)
	good := ory.NewUpdateRegistrationFlowWithCodeMethod("code", map[string]any{"email": email})
	good.SetCode(mails.last(t, email, subjectRegistrationCode, 1).code(t))
	reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithCodeMethodAsUpdateRegistrationFlowBody(good)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	token := *reg.SessionToken

	// Login: no password field, and a password submit finds no strategy.
	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	noPasswordNodes(t, "native login", lf.Ui.Nodes)
	if sdkNode(lf.Ui.Nodes, "identifier") == nil {
		t.Errorf("native login without an identifier node: %v", sdkNodeSpecs(lf.Ui.Nodes))
	}
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(
		ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", randPassword()))).Execute()
	f = sdkFlowError(t, "password login", resp, err, http.StatusBadRequest)
	if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4010002 {
		t.Errorf("password login: messages %v, want [4010002]", ids)
	}

	// Settings: no password group, and a password change finds no strategy.
	sf, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	noPasswordNodes(t, "native settings", sf.Ui.Nodes)
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(sf.Id).XSessionToken(token).UpdateSettingsFlowBody(
		ory.UpdateSettingsFlowWithPasswordMethodAsUpdateSettingsFlowBody(ory.NewUpdateSettingsFlowWithPasswordMethod("password", randPassword()))).Execute()
	f = sdkFlowError(t, "password change", resp, err, http.StatusBadRequest)
	if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4010004 {
		t.Errorf("password change: messages %v, want [4010004]", ids)
	}

	// Browser flows: passkey and code, never a password.
	b := newBrowser(t, in)
	blf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	noPasswordNodes(t, "browser login", blf.Ui.Nodes)
	if sdkNode(blf.Ui.Nodes, "passkey_login_trigger") == nil || sdkNode(blf.Ui.Nodes, "identifier") == nil {
		t.Errorf("browser login: want passkey and identifier nodes, got %v", sdkNodeSpecs(blf.Ui.Nodes))
	}
	brf, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	noPasswordNodes(t, "browser registration", brf.Ui.Nodes)
}

// TestMethodsListPasswordAndProfile: Kratos users list password and
// profile among the methods; both are accepted and stay on.
func TestMethodsListPasswordAndProfile(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"methods password profile totp"}})
	u := registerNative(t, in)
	lf, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(lf.Ui.Nodes, "password") == nil {
		t.Errorf("login without a password node: %v", sdkNodeSpecs(lf.Ui.Nodes))
	}
	loginNative(t, in, u.Email, u.Password)
}
