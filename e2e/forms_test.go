package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ory "github.com/ory/client-go"
)

// Issue 12: what Kratos answers to password submits with a missing, short
// or huge password, and to forms as Ory's UI posts them.

// sdkFlowError wants an SDK call answered with status and a flow body.
func sdkFlowError(t *testing.T, what string, resp *http.Response, err error, status int) flowJSON {
	t.Helper()
	if resp == nil {
		t.Fatalf("%s: no HTTP response: %v", what, err)
	}
	body := sdkErrBody(t, err)
	if resp.StatusCode != status {
		t.Fatalf("%s: status = %d, want %d; body %s", what, resp.StatusCode, status, clip(body))
	}
	return decodeFlow(t, body)
}

// wantNodeMessage wants exactly one message on node name, with id, type
// and context.
func wantNodeMessage(t *testing.T, what string, f flowJSON, name string, id int64, typ string, ctx map[string]any) {
	t.Helper()
	n := f.node(name)
	if n == nil {
		t.Fatalf("%s: no %s node; nodes %v, flow messages %v", what, name, rawNodeSpecs(f.UI.Nodes), f.messageIDs())
	}
	if len(n.Messages) != 1 || n.Messages[0].ID != id || n.Messages[0].Type != typ {
		t.Fatalf("%s: %s node messages = %+v, want one %d (%s); flow messages %v", what, name, n.Messages, id, typ, f.messageIDs())
	}
	for k, v := range ctx {
		if got := n.Messages[0].Context[k]; got != v {
			t.Errorf("%s: %s message context[%s] = %v (%T), want %v", what, name, k, got, got, v)
		}
	}
	if len(f.UI.Messages) != 0 {
		t.Errorf("%s: flow messages %v, want none (the message belongs to the %s node)", what, f.messageIDs(), name)
	}
}

// TestRegistrationPasswordMessagesOnTheNode: a one-step password submit
// without a password, or with a short one, answers 400 with 4000002 /
// 4000032 on the password node (issue 12, item 2).
func TestRegistrationPasswordMessagesOnTheNode(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()
	for _, tc := range []struct {
		name, password string
		id             int64
		text           string
		ctx            map[string]any
	}{
		{"no password", "", 4000002, "Property password is missing.", map[string]any{"property": "password"}},
		{"two characters", "a1", 4000032, "The password must be at least 8 characters long, but got 2.",
			map[string]any{"min_length": float64(8), "actual_length": float64(2)}},
	} {
		flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		email := randEmail()
		body := ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", tc.password, map[string]any{"email": email}))
		_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(body).Execute()
		f := sdkFlowError(t, tc.name, resp, err, http.StatusBadRequest)
		wantNodeMessage(t, tc.name, f, "password", tc.id, "error", tc.ctx)
		if got := f.node("password").Messages[0].Text; got != tc.text {
			t.Errorf("%s: text %q, want %q", tc.name, got, tc.text)
		}
		if v, _ := f.node("traits.email").Attributes["value"].(string); v != email {
			t.Errorf("%s: traits.email value %q, want the submitted %q", tc.name, v, email)
		}
	}
}

// TestLargePasswords: a 1 MB password is answered as Kratos answers it
// (login 4000006 on the flow; registration and settings 4000033 on the
// password node), not as a body too large (issue 12, item 3).
func TestLargePasswords(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()
	u := registerNative(t, in)
	huge := strings.Repeat("p", 1<<20)

	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(
		ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", huge))).Execute()
	f := sdkFlowError(t, "login", resp, err, http.StatusBadRequest)
	if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4000006 {
		t.Errorf("login with a 1 MB password: flow messages %v, want [4000006]", ids)
	}
	// The account still signs in: the huge guess was only a wrong password.
	loginNative(t, in, u.Email, u.Password)

	tooLong := map[string]any{"max_length": float64(72), "actual_length": float64(1 << 20)}
	rf, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", huge, map[string]any{"email": randEmail()}))).Execute()
	f = sdkFlowError(t, "registration", resp, err, http.StatusBadRequest)
	wantNodeMessage(t, "registration", f, "password", 4000033, "error", tooLong)

	sf, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(sf.Id).XSessionToken(u.Token).UpdateSettingsFlowBody(
		ory.UpdateSettingsFlowWithPasswordMethodAsUpdateSettingsFlowBody(ory.NewUpdateSettingsFlowWithPasswordMethod("password", huge))).Execute()
	f = sdkFlowError(t, "settings", resp, err, http.StatusBadRequest)
	wantNodeMessage(t, "settings", f, "password", 4000033, "error", tooLong)
	// The password did not change.
	loginNative(t, in, u.Email, u.Password)
}

// TestOversizedSubmitBodies: bodies above the 4 MiB cap are refused with
// Kratos's 400 and 4000001 on the flow, whether announced by
// Content-Length or sent chunked.
func TestOversizedSubmitBodies(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()
	for _, chunked := range []bool{false, true} {
		lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		body := `{"method":"password","identifier":"a@example.com","password":"` + strings.Repeat("p", 5<<20) + `"}`
		req, err := http.NewRequest("POST", in.apiBase+"/self-service/login?flow="+lf.Id, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		r, err := plainHTTP().Do(req)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		wantFlowMessage(t, "5 MiB body", r, b, http.StatusBadRequest, 4000001)
	}
}

// TestLargeSubmitsStoreLittle: the 4 MiB body cap does not turn into 4 MiB
// flows or identities: a huge submitted value is not written back into
// the stored flow, and traits over 64 KiB are refused.
func TestLargeSubmitsStoreLittle(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()
	huge := strings.Repeat("i", 1<<20)

	lf, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).UpdateLoginFlowBody(
		ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(huge, "password", "x"+randPassword()))).Execute()
	f := sdkFlowError(t, "login with a 1 MB identifier", resp, err, http.StatusBadRequest)
	if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4000006 {
		t.Errorf("login with a 1 MB identifier: messages %v, want [4000006]", ids)
	}
	if v, _ := f.node("identifier").Attributes["value"].(string); v != "" {
		t.Errorf("the 1 MB identifier was written back into the flow (%d bytes)", len(v))
	}
	// The stored flow holds no copy either.
	got, resp, err := c.FrontendAPI.GetLoginFlow(ctx).Id(lf.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if v, _ := sdkNode(got.Ui.Nodes, "identifier").Attributes.UiNodeInputAttributes.Value.(string); v != "" {
		t.Errorf("the stored flow keeps the 1 MB identifier (%d bytes)", len(v))
	}

	rf, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(ory.NewUpdateRegistrationFlowWithPasswordMethod("password", randPassword(),
			map[string]any{"email": randEmail(), "name": map[string]any{"first": strings.Repeat("n", 70<<10)}}))).Execute()
	f = sdkFlowError(t, "registration with 70 KiB of traits", resp, err, http.StatusBadRequest)
	if ids := f.messageIDs(); len(ids) != 1 || ids[0] != 4000001 || !strings.Contains(f.UI.Messages[0].Text, "traits are too large") {
		t.Errorf("registration with 70 KiB of traits: messages %+v, want 4000001 traits are too large", f.UI.Messages)
	}
}

// formsSchema has the optional boolean, number and string traits Ory's UI
// renders as empty hidden inputs on the credential step, and a required
// boolean.
const formsSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "traits": {
      "type": "object",
      "properties": {
        "email": {"type": "string", "format": "email", "title": "E-Mail",
          "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
        "consent": {"type": "boolean", "title": "Newsletter"},
        "age": {"type": "integer", "title": "Age"},
        "nickname": {"type": "string", "title": "Nickname", "minLength": 2},
        "tos": {"type": "boolean", "title": "Terms"}
      },
      "required": ["email", "tos"],
      "additionalProperties": false
    }
  }
}`

// TestFormEmptyBooleans: a browser form post as Ory's reference UI sends
// it (unset traits as empty inputs, values as strings) completes the
// two-step registration: empty optional booleans, numbers and strings are
// dropped, an empty required boolean is false, set values are typed by
// the identity schema (issue 12, item 13).
func TestFormEmptyBooleans(t *testing.T) {
	t.Parallel()
	schema := filepath.Join(t.TempDir(), "identity.schema.json")
	if err := os.WriteFile(schema, []byte(formsSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"identity_schema " + schema, "rate_limits off"}})
	form := hdr{"Accept": "text/html,application/xhtml+xml", "Content-Type": "application/x-www-form-urlencoded"}

	register := func(step1 url.Values, wantTraits map[string]any) {
		t.Helper()
		b := newBrowser(t, in)
		flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		csrf := sdkCSRF(t, flow.Ui.Nodes)
		action := in.apiBase + "/self-service/registration?flow=" + flow.Id

		step1.Set("csrf_token", csrf)
		step1.Set("method", "profile")
		r, body := do(t, b.hc, "POST", action, form, []byte(step1.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		got, resp, err := b.sdk.FrontendAPI.GetRegistrationFlow(ctx).Id(flow.Id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		for _, n := range got.Ui.Nodes {
			if len(n.Messages) > 0 {
				t.Fatalf("profile step: node %s has messages %v", n.Attributes.UiNodeInputAttributes.Name, sdkMessageIDs(n.Messages))
			}
		}
		if ids := sdkMessageIDs(got.Ui.Messages); len(ids) != 1 || ids[0] != 1040009 || sdkNode(got.Ui.Nodes, "password") == nil {
			t.Fatalf("profile step: messages %v, want the credential step (1040009 and a password node)", ids)
		}

		// Step 2 posts the traits back as the hidden inputs render them:
		// an unset value is an empty string.
		step2 := url.Values{"csrf_token": {csrf}, "method": {"password"}, "password": {randPassword()}}
		for _, n := range got.Ui.Nodes {
			a := n.Attributes.UiNodeInputAttributes
			if a == nil || !strings.HasPrefix(a.Name, "traits.") {
				continue
			}
			if a.Type != "hidden" {
				t.Errorf("credential step: %s is %s, want hidden", a.Name, a.Type)
			}
			v := ""
			if a.Value != nil {
				v = fmt.Sprint(a.Value)
			}
			step2.Set(a.Name, v)
		}
		r, body = do(t, b.hc, "POST", action, form, []byte(step2.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		if cookieFrom(r, "ory_kratos_session") == nil {
			got, _, _ := b.sdk.FrontendAPI.GetRegistrationFlow(ctx).Id(flow.Id).Execute()
			t.Fatalf("credential step: no session; Location %s; flow %+v", r.Header.Get("Location"), got.Ui)
		}
		s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		traits, _ := s.Identity.Traits.(map[string]any)
		if !reflect.DeepEqual(traits, wantTraits) {
			t.Errorf("traits = %v, want %v", traits, wantTraits)
		}
	}

	email := randEmail()
	register(url.Values{"traits.email": {email}, "traits.consent": {""}, "traits.age": {""}, "traits.nickname": {""}, "traits.tos": {""}},
		map[string]any{"email": email, "tos": false})
	email = randEmail()
	register(url.Values{"traits.email": {email}, "traits.consent": {"true"}, "traits.age": {"42"}, "traits.nickname": {"Al"}, "traits.tos": {"false", "true"}},
		map[string]any{"email": email, "consent": true, "age": float64(42), "nickname": "Al", "tos": true})
}
