package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	ory "github.com/ory/client-go"
)

// Identifier-first login (login_style identifier_first, Kratos's
// selfservice.flows.login.style) through the official SDK: the first
// screen asks only for the identifier, the second shows it hidden with the
// methods of that account (ui-nodes.md, "Step 1 … Step 2").

const codePasswordless = "code {\n\t\t\tpasswordless\n\t\t}"

// nodeSig describes a node as group/name/type[=value] (scripts as
// group/script:id), for comparing node lists in order.
func nodeSig(n uiNode) string {
	if n.Type == "script" {
		return n.Group + "/script:" + fmt.Sprint(n.Attributes["id"])
	}
	s := n.Group + "/" + n.name() + "/" + fmt.Sprint(n.Attributes["type"])
	if t, _ := n.Attributes["type"].(string); t == "submit" {
		s += "=" + fmt.Sprint(n.Attributes["value"])
	}
	return s
}

func nodeSigs(f flowJSON) []string {
	var out []string
	for _, n := range f.UI.Nodes {
		out = append(out, nodeSig(n))
	}
	return out
}

func wantNodeSigs(t *testing.T, what string, f flowJSON, want ...string) {
	t.Helper()
	if got := nodeSigs(f); !slices.Equal(got, want) {
		t.Fatalf("%s: nodes\n got %q\nwant %q", what, got, want)
	}
}

func wantLabel(t *testing.T, what string, n *uiNode, id int64, text string) {
	t.Helper()
	if n == nil || n.Meta.Label == nil || n.Meta.Label.ID != id || n.Meta.Label.Text != text || n.Meta.Label.Type != "info" {
		t.Fatalf("%s: label %+v, want %d %q", what, n, id, text)
	}
}

// idFirstStep submits method=identifier_first through the SDK and
// returns the flow of the 400 answer.
func idFirstStep(t *testing.T, sdk *ory.APIClient, flowID, csrf, identifier string) flowJSON {
	t.Helper()
	body := ory.NewUpdateLoginFlowWithIdentifierFirstMethod(identifier, "identifier_first")
	if csrf != "" {
		body.SetCsrfToken(csrf)
	}
	_, resp, err := sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(flowID).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithIdentifierFirstMethodAsUpdateLoginFlowBody(body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	f := decodeFlow(t, sdkErrBody(t, err))
	if f.ID != flowID {
		t.Fatalf("identifier step answered flow %s, want the same flow %s", f.ID, flowID)
	}
	return f
}

// registerCodeOnly signs up email with a mailed code only (no password).
func registerCodeOnly(t *testing.T, in *instance, mails *mailServer, email string) {
	t.Helper()
	c := in.api()
	f, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	r, body := do(t, plainHTTP(), "POST", in.apiBase+"/self-service/registration?flow="+f.Id,
		hdr{"Accept": "application/json", "Content-Type": "application/json"},
		[]byte(`{"method":"code","traits":{"email":"`+email+`"}}`))
	wantStatus(t, r, body, http.StatusOK)
	reg := ory.NewUpdateRegistrationFlowWithCodeMethod("code", map[string]any{"email": email})
	reg.SetCode(mails.last(t, email, subjectRegistrationCode, 1).code(t))
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithCodeMethodAsUpdateRegistrationFlowBody(reg)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
}

func TestIdentifierFirstLoginNative(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "login_style identifier_first", "methods code", codePasswordless,
		"registration_style unified", "rate_limits off")
	c := in.api()
	u := registerNative(t, in)

	newFlow := func() flowJSON {
		t.Helper()
		r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/login/api", hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		return decodeFlow(t, body)
	}

	// Step 1: csrf_token, the identifier (label from the schema), and
	// Continue. The code method adds no second identifier input.
	f := newFlow()
	wantNodeSigs(t, "first screen", f, "default/csrf_token/hidden", "default/identifier/text", "identifier_first/method/submit=identifier_first")
	id := f.node("identifier")
	if id.Attributes["required"] != true || id.Attributes["value"] != "" {
		t.Errorf("identifier attributes %v", id.Attributes)
	}
	wantLabel(t, "identifier", id, 1070002, "E-Mail")
	if ctxName := id.Meta.Label.Context["name"]; ctxName != "traits.email" {
		t.Errorf("identifier label context %v", id.Meta.Label.Context)
	}
	wantLabel(t, "continue", f.node("method"), 1070009, "Continue")
	// The SDK reads it too.
	sf, resp, err := c.FrontendAPI.GetLoginFlow(ctx).Id(f.ID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if m := sdkNode(sf.Ui.Nodes, "method"); m == nil || m.Group != "identifier_first" || m.Attributes.UiNodeInputAttributes.Value != "identifier_first" {
		t.Fatalf("SDK: method node %+v", m)
	}

	t.Run("unknown identifier", func(t *testing.T) {
		f := newFlow()
		who := randEmail()
		got := idFirstStep(t, c, f.ID, "", who)
		wantNodeSigs(t, "unknown", got, "default/csrf_token/hidden", "default/identifier/text", "identifier_first/method/submit=identifier_first")
		if ids := nodeMessageIDs(got.node("identifier")); !slices.Equal(ids, []int64{4000037}) {
			t.Fatalf("identifier messages %v, want [4000037]", ids)
		}
		if v := got.node("identifier").Attributes["value"]; v != who {
			t.Errorf("identifier value %v, want %s", v, who)
		}
	})

	t.Run("empty identifier", func(t *testing.T) {
		got := idFirstStep(t, c, newFlow().ID, "", "")
		if ids := nodeMessageIDs(got.node("identifier")); !slices.Equal(ids, []int64{4000002}) {
			t.Fatalf("identifier messages %v, want [4000002]", ids)
		}
	})

	t.Run("password account", func(t *testing.T) {
		f := newFlow()
		got := idFirstStep(t, c, f.ID, "", u.Email)
		if got.State != "choose_method" || len(got.UI.Messages) != 0 {
			t.Errorf("second screen: state %v messages %v", got.State, got.messageIDs())
		}
		wantNodeSigs(t, "second screen", got, "default/csrf_token/hidden", "default/identifier/hidden",
			"password/password/password", "password/method/submit=password", "code/method/submit=code")
		if v := got.node("identifier").Attributes["value"]; v != u.Email {
			t.Errorf("hidden identifier %v, want %s", v, u.Email)
		}
		wantLabel(t, "password", got.node("password"), 1070001, "Password")
		for _, n := range got.UI.Nodes {
			if n.name() == "method" && n.Attributes["value"] == "password" {
				wantLabel(t, "password submit", &n, 1010022, "Sign in with password")
			}
			if n.name() == "method" && n.Attributes["value"] == "code" {
				wantLabel(t, "code submit", &n, 1010015, "Send sign in code")
			}
		}
		sfl, resp, err := c.FrontendAPI.GetLoginFlow(ctx).Id(f.ID).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if sfl.GetActive() != "identifier_first" {
			t.Errorf("active = %q, want identifier_first", sfl.GetActive())
		}
		// The password of the second screen signs in.
		pw := ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password)
		res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.ID).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if res.SessionToken == nil || res.Session.Identity == nil || res.Session.Identity.Id != u.IdentityID {
			t.Fatalf("password after identifier-first: %+v", res)
		}
	})

	t.Run("code button on the second screen", func(t *testing.T) {
		f := newFlow()
		idFirstStep(t, c, f.ID, "", u.Email)
		r, body := do(t, plainHTTP(), "POST", in.apiBase+"/self-service/login?flow="+f.ID,
			hdr{"Accept": "application/json", "Content-Type": "application/json"}, []byte(`{"method":"code","identifier":"`+u.Email+`"}`))
		wantStatus(t, r, body, http.StatusOK)
		sent := decodeFlow(t, body)
		if sent.State != "sent_email" || !slices.Equal(sent.messageIDs(), []int64{1010014}) {
			t.Fatalf("code sent: state %v messages %v", sent.State, sent.messageIDs())
		}
		if n := strings.Count(strings.Join(nodeSigs(sent), " "), "/identifier/"); n != 1 {
			t.Fatalf("%d identifier nodes after sending the code: %q", n, nodeSigs(sent))
		}
		lc := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		lc.SetCode(mails.last(t, u.Email, subjectLoginCode, 1).code(t))
		lc.SetIdentifier(u.Email)
		res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.ID).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(lc)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if res.Session.Identity.Id != u.IdentityID || methodsOf(&res.Session) != "code" {
			t.Fatalf("code sign-in after identifier-first: %+v", res.Session)
		}
	})

	t.Run("code-only account gets its code at once", func(t *testing.T) {
		email := randEmail()
		registerCodeOnly(t, in, mails, email)
		f := newFlow()
		r, body := do(t, plainHTTP(), "POST", in.apiBase+"/self-service/login?flow="+f.ID,
			hdr{"Accept": "application/json", "Content-Type": "application/json"},
			[]byte(`{"method":"identifier_first","identifier":"`+email+`"}`))
		wantStatus(t, r, body, http.StatusOK)
		sent := decodeFlow(t, body)
		if sent.State != "sent_email" || !slices.Equal(sent.messageIDs(), []int64{1010014}) {
			t.Fatalf("fast code: state %v messages %v", sent.State, sent.messageIDs())
		}
		lc := ory.NewUpdateLoginFlowWithCodeMethod("", "code")
		lc.SetCode(mails.last(t, email, subjectLoginCode, 1).code(t))
		res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.ID).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithCodeMethodAsUpdateLoginFlowBody(lc)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if res.SessionToken == nil {
			t.Fatal("no session token after the fast code")
		}
	})
}

func TestIdentifierFirstLoginBrowser(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"login_style identifier_first", "rate_limits off"}})
	u := registerNative(t, in)

	// SPA: JSON through the SDK with the browser's cookies.
	b := newBrowser(t, in)
	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	csrf := sdkCSRF(t, lf.Ui.Nodes)
	if csrf == "" {
		t.Fatal("browser flow without a CSRF token")
	}
	got := idFirstStep(t, b.sdk, lf.Id, csrf, u.Email)
	wantNodeSigs(t, "browser second screen", got, "default/csrf_token/hidden", "default/identifier/hidden",
		"password/password/password", "password/method/submit=password")
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(u.Email, "password", u.Password)
	pw.SetCsrfToken(csrf)
	res, resp, err := b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.Identity == nil || res.Session.Identity.Id != u.IdentityID || b.cookie("ory_kratos_session") == nil {
		t.Fatalf("browser sign-in after identifier-first: %+v", res.Session)
	}

	// A server-rendered UI: form posts are answered 303 to the login UI
	// with the same flow, now on its second screen.
	b2 := newBrowser(t, in)
	r, _ := do(t, b2.hc, "GET", in.apiBase+"/self-service/login/browser", hdr{"Accept": "text/html"}, nil)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("init: %d", r.StatusCode)
	}
	flowID := mustURL(r.Header.Get("Location")).Query().Get("flow")
	_, body := do(t, b2.hc, "GET", in.apiBase+"/self-service/login/flows?id="+flowID, hdr{"Accept": "application/json"}, nil)
	f := decodeFlow(t, body)
	form := url.Values{"method": {"identifier_first"}, "identifier": {u.Email}, "csrf_token": {fmt.Sprint(f.node("csrf_token").Attributes["value"])}}
	r, _ = do(t, b2.hc, "POST", f.UI.Action, hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://127.0.0.1:4455/login?flow="+flowID {
		t.Fatalf("form post: %d → %s", r.StatusCode, r.Header.Get("Location"))
	}
	_, body = do(t, b2.hc, "GET", in.apiBase+"/self-service/login/flows?id="+flowID, hdr{"Accept": "application/json"}, nil)
	if s := decodeFlow(t, body); s.node("identifier").Attributes["type"] != "hidden" || s.node("password") == nil {
		t.Fatalf("second screen after the form post: %q", nodeSigs(s))
	}

	// A unified-style flow has no identifier_first step (Kratos: no
	// strategy responsible).
	sh := shared(t)
	uf, resp, err := sh.api().FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(uf.Ui.Nodes, "password") == nil {
		t.Fatal("unified login without a password field")
	}
	bad := idFirstStep(t, sh.api(), uf.Id, "", u.Email)
	if !slices.Equal(bad.messageIDs(), []int64{4010002}) {
		t.Fatalf("identifier_first on a unified flow: %v", bad.messageIDs())
	}
}
