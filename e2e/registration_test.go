package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// nodeSpec is the (group, name, input type) triple of an input node.
type nodeSpec struct{ group, name, typ string }

func sdkNodeSpecs(nodes []ory.UiNode) []nodeSpec {
	var out []nodeSpec
	for _, n := range nodes {
		if a := n.Attributes.UiNodeInputAttributes; a != nil {
			out = append(out, nodeSpec{n.Group, a.Name, a.Type})
		} else {
			out = append(out, nodeSpec{n.Group, "<" + n.Type + ">", ""})
		}
	}
	return out
}

func rawNodeSpecs(nodes []uiNode) []nodeSpec {
	var out []nodeSpec
	for _, n := range nodes {
		typ, _ := n.Attributes["type"].(string)
		out = append(out, nodeSpec{n.Group, n.name(), typ})
	}
	return out
}

func equalSpecs(a, b []nodeSpec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameSpecSet compares ignoring order.
func sameSpecSet(a, b []nodeSpec) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[nodeSpec]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, v := range seen {
		if v != 0 {
			return false
		}
	}
	return true
}

func labelID(n *ory.UiNode) int64 {
	if n == nil || n.Meta.Label == nil {
		return 0
	}
	return n.Meta.Label.Id
}

// assertFreshRegistrationNodes checks the profile_first step-1 nodes
// (sample 01 / 06).
func assertFreshRegistrationNodes(t *testing.T, nodes []ory.UiNode, wantCSRFLen int) {
	t.Helper()
	want := []nodeSpec{
		{"default", "csrf_token", "hidden"},
		{"default", "traits.email", "email"},
		{"default", "traits.name.first", "text"},
		{"default", "traits.name.last", "text"},
		{"profile", "method", "submit"},
	}
	if got := sdkNodeSpecs(nodes); !equalSpecs(got, want) {
		t.Fatalf("registration step-1 nodes = %v, want %v", got, want)
	}
	csrf := sdkNode(nodes, "csrf_token").Attributes.UiNodeInputAttributes
	if v, _ := csrf.Value.(string); len(v) != wantCSRFLen {
		t.Errorf("csrf_token value length = %d, want %d (%q)", len(v), wantCSRFLen, v)
	}
	if csrf.Required == nil || !*csrf.Required {
		t.Error("csrf_token node is not required")
	}
	email := sdkNode(nodes, "traits.email")
	ea := email.Attributes.UiNodeInputAttributes
	if ea.Required == nil || !*ea.Required {
		t.Error("traits.email is not required")
	}
	if ea.Autocomplete == nil || *ea.Autocomplete != "email" {
		t.Errorf("traits.email autocomplete = %v, want email", ea.Autocomplete)
	}
	if email.Meta.Label == nil || email.Meta.Label.Id != 1070002 || email.Meta.Label.Text != "E-Mail" {
		t.Errorf("traits.email label = %+v, want 1070002 E-Mail", email.Meta.Label)
	} else if email.Meta.Label.Context["title"] != "E-Mail" || email.Meta.Label.Context["name"] != "traits.email" {
		t.Errorf("traits.email label context = %v, want title E-Mail, name traits.email", email.Meta.Label.Context)
	}
	if l := sdkNode(nodes, "traits.name.first").Meta.Label; l == nil || l.Id != 1070002 || l.Text != "First Name" {
		t.Errorf("traits.name.first label = %+v, want 1070002 First Name", l)
	}
	m := sdkNode(nodes, "method")
	if m.Attributes.UiNodeInputAttributes.Value != "profile" || labelID(m) != 1040001 {
		t.Errorf("method node = value %v label %d, want profile / 1040001", m.Attributes.UiNodeInputAttributes.Value, labelID(m))
	}
}

func TestRegistrationNativeProfileFirst(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()

	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("native flow creation set cookies: %v", resp.Header.Values("Set-Cookie"))
	}
	if !isUUID(flow.Id) || flow.Type != "api" || flow.State != "choose_method" {
		t.Errorf("flow id/type/state = %q/%q/%q", flow.Id, flow.Type, flow.State)
	}
	if want := in.apiBase + "/self-service/registration?flow=" + flow.Id; flow.Ui.Action != want {
		t.Errorf("ui.action = %q, want %q", flow.Ui.Action, want)
	}
	if flow.Ui.Method != "POST" {
		t.Errorf("ui.method = %q", flow.Ui.Method)
	}
	if want := in.apiBase + "/self-service/registration/api"; flow.RequestUrl != want {
		t.Errorf("request_url = %q, want %q", flow.RequestUrl, want)
	}
	if d := flow.ExpiresAt.Sub(flow.IssuedAt); d < time.Hour-time.Second || d > time.Hour+time.Second {
		t.Errorf("expires_at - issued_at = %v, want 1h", d)
	}
	assertFreshRegistrationNodes(t, flow.Ui.Nodes, 0)

	// Step 1: method=profile → 400 with the same flow in choose_method,
	// 1040009 and the credential choices.
	email := randEmail()
	traits := map[string]any{"email": email, "name": map[string]any{"first": "Sam", "last": "Ple"}}
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithProfileMethodAsUpdateRegistrationFlowBody(ory.NewUpdateRegistrationFlowWithProfileMethod("profile", traits))).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	step2 := decodeFlow(t, sdkErrBody(t, err))
	if step2.ID != flow.Id {
		t.Errorf("profile step answered flow %s, want the same flow %s", step2.ID, flow.Id)
	}
	if step2.State != "choose_method" {
		t.Errorf("state after profile step = %v, want choose_method", step2.State)
	}
	if !containsID(step2.messageIDs(), 1040009) {
		t.Errorf("ui.messages = %v, want 1040009", step2.messageIDs())
	}
	wantStep2 := []nodeSpec{
		{"default", "csrf_token", "hidden"},
		{"default", "traits.email", "hidden"},
		{"default", "traits.name.first", "hidden"},
		{"default", "traits.name.last", "hidden"},
		{"password", "password", "password"},
		{"password", "method", "submit"},
		{"profile", "screen", "submit"},
	}
	if got := rawNodeSpecs(step2.UI.Nodes); !sameSpecSet(got, wantStep2) {
		t.Errorf("step-2 nodes = %v, want (any order) %v", got, wantStep2)
	}
	if n := step2.node("traits.email"); n == nil || n.Attributes["value"] != email {
		t.Errorf("traits.email node should carry the submitted value %q: %+v", email, n)
	}
	if n := step2.node("traits.name.first"); n == nil || n.Attributes["value"] != "Sam" {
		t.Errorf("traits.name.first node should carry Sam: %+v", n)
	}
	if n := step2.node("password"); n == nil || n.Attributes["autocomplete"] != "new-password" || n.Attributes["required"] != true {
		t.Errorf("password node should be required with autocomplete new-password: %+v", n)
	}
	for _, n := range step2.UI.Nodes {
		switch {
		case n.name() == "method" && n.Group == "password":
			if n.Attributes["value"] != "password" || n.Meta.Label == nil || n.Meta.Label.ID != 1040001 {
				t.Errorf("password submit node = %+v, want value password label 1040001", n)
			}
		case n.name() == "screen":
			if n.Attributes["value"] != "previous" || n.Meta.Label == nil || n.Meta.Label.ID != 1040008 {
				t.Errorf("screen node = %+v, want value previous label 1040008", n)
			}
		}
	}

	// Step 2: method=password with the traits → 200 with identity, session
	// and token.
	pw := randPassword()
	reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(ory.NewUpdateRegistrationFlowWithPasswordMethod("password", pw, traits))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(resp.Cookies()) != 0 {
		t.Errorf("native registration set cookies: %v", resp.Header.Values("Set-Cookie"))
	}
	id := reg.Identity
	if id == nil || !isUUID(id.Id) {
		t.Fatalf("identity missing or without uuid: %+v", id)
	}
	if id.SchemaId != "default" {
		t.Errorf("schema_id = %q, want default", id.SchemaId)
	}
	if want := in.apiBase + "/schemas/ZGVmYXVsdA"; id.SchemaUrl != want {
		t.Errorf("schema_url = %q, want %q", id.SchemaUrl, want)
	}
	if id.State == nil || *id.State != "active" {
		t.Errorf("identity state = %v, want active", id.State)
	}
	tr, _ := id.Traits.(map[string]any)
	if tr["email"] != email {
		t.Errorf("traits = %v, want email %s", id.Traits, email)
	}
	if name, _ := tr["name"].(map[string]any); name["first"] != "Sam" || name["last"] != "Ple" {
		t.Errorf("traits.name = %v, want Sam Ple", tr["name"])
	}
	if id.Credentials != nil || id.MetadataAdmin != nil {
		t.Error("identity on the frontend API must not carry credentials or metadata_admin")
	}
	if len(id.VerifiableAddresses) != 1 || id.VerifiableAddresses[0].Value != email || id.VerifiableAddresses[0].Via != "email" || id.VerifiableAddresses[0].Verified {
		t.Errorf("verifiable_addresses = %+v, want one unverified email %s", id.VerifiableAddresses, email)
	}
	if len(id.RecoveryAddresses) != 1 || id.RecoveryAddresses[0].Value != email || id.RecoveryAddresses[0].Via != "email" {
		t.Errorf("recovery_addresses = %+v, want one email %s", id.RecoveryAddresses, email)
	}
	if reg.Session == nil || reg.SessionToken == nil {
		t.Fatal("registration with the session hook must return session and session_token")
	}
	assertSessionToken(t, *reg.SessionToken)
	assertFreshPasswordSession(t, reg.Session, id.Id)
	if len(reg.ContinueWith) != 1 || reg.ContinueWith[0].ContinueWithSetOrySessionToken == nil {
		t.Fatalf("continue_with = %+v, want exactly [set_ory_session_token]", reg.ContinueWith)
	}
	if cw := reg.ContinueWith[0].ContinueWithSetOrySessionToken; cw.Action != "set_ory_session_token" || cw.OrySessionToken != *reg.SessionToken {
		t.Errorf("continue_with[0] = %+v, want set_ory_session_token with the session token", cw)
	}

	s, code := whoamiToken(t, in, *reg.SessionToken)
	if code != http.StatusOK || s.Id != reg.Session.Id || s.Identity == nil || s.Identity.Id != id.Id {
		t.Errorf("whoami with the registration token: status %d session %+v", code, s)
	}
}

// assertFreshPasswordSession checks a session created by a password step.
func assertFreshPasswordSession(t *testing.T, s *ory.Session, identityID string) {
	t.Helper()
	if !isUUID(s.Id) {
		t.Errorf("session id %q is not a uuid", s.Id)
	}
	if s.Active == nil || !*s.Active {
		t.Error("session is not active")
	}
	if s.AuthenticatorAssuranceLevel == nil || *s.AuthenticatorAssuranceLevel != "aal1" {
		t.Errorf("aal = %v, want aal1", s.AuthenticatorAssuranceLevel)
	}
	if len(s.AuthenticationMethods) != 1 || s.AuthenticationMethods[0].Method == nil || *s.AuthenticationMethods[0].Method != "password" ||
		s.AuthenticationMethods[0].Aal == nil || *s.AuthenticationMethods[0].Aal != "aal1" {
		t.Errorf("authentication_methods = %+v, want [password aal1]", s.AuthenticationMethods)
	}
	if s.Identity == nil || s.Identity.Id != identityID {
		t.Errorf("session identity = %+v, want %s", s.Identity, identityID)
	}
	if s.ExpiresAt == nil || s.AuthenticatedAt == nil || s.IssuedAt == nil {
		t.Fatalf("session lacks expires_at/authenticated_at/issued_at: %+v", s)
	}
	if d := s.ExpiresAt.Sub(*s.AuthenticatedAt); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
		t.Errorf("session lifetime = %v, want 24h (default session_lifespan)", d)
	}
	if time.Since(*s.AuthenticatedAt) > time.Minute || time.Until(*s.AuthenticatedAt) > 5*time.Second {
		t.Errorf("authenticated_at %v is not now", s.AuthenticatedAt)
	}
}

func TestRegistrationNativeOneStepPassword(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	assertSessionToken(t, u.Token)
	s, code := whoamiToken(t, in, u.Token)
	if code != http.StatusOK {
		t.Fatalf("whoami = %d", code)
	}
	assertFreshPasswordSession(t, s, u.IdentityID)
}

func TestRegistrationDuplicateEmail(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", randPassword(), map[string]any{"email": u.Email}))).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	f := decodeFlow(t, sdkErrBody(t, err))
	if f.ID != flow.Id {
		t.Errorf("answered flow %s, want %s", f.ID, flow.Id)
	}
	if !containsID(f.messageIDs(), 4000007) {
		t.Errorf("ui.messages = %v, want 4000007", f.messageIDs())
	}
	for _, m := range f.UI.Messages {
		if m.ID == 4000007 && m.Type != "error" {
			t.Errorf("4000007 type = %q, want error", m.Type)
		}
	}
	if n := f.node("traits.email"); n == nil || n.Attributes["value"] != u.Email {
		t.Errorf("traits.email should be re-rendered with the submitted value: %+v", n)
	}
	if n := f.node("password"); n != nil && n.Attributes["value"] != nil && n.Attributes["value"] != "" {
		t.Errorf("password must never be echoed: %+v", n.Attributes)
	}
}

func TestRegistrationInvalidEmail(t *testing.T) {
	t.Parallel()
	in := shared(t)
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", randPassword(), map[string]any{"email": "not-an-email"}))).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	f := decodeFlow(t, sdkErrBody(t, err))
	n := f.node("traits.email")
	if n == nil {
		t.Fatal("no traits.email node in the answer")
	}
	var found bool
	for _, m := range n.Messages {
		if m.ID == 4000040 {
			found = true
			if m.Type != "error" {
				t.Errorf("4000040 type = %q", m.Type)
			}
			if m.Context["value"] != "not-an-email" {
				t.Errorf("4000040 context = %v, want value not-an-email", m.Context)
			}
		}
	}
	if !found {
		t.Errorf("traits.email messages = %+v, want 4000040", n.Messages)
	}
	if n.Attributes["value"] != "not-an-email" {
		t.Errorf("traits.email value = %v, want the submitted not-an-email", n.Attributes["value"])
	}
}

func TestRegistrationUnknownMethod(t *testing.T) {
	t.Parallel()
	in := shared(t)
	flow, resp, err := in.api().FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	r, body := do(t, plainHTTP(), "POST", in.apiBase+"/self-service/registration?flow="+flow.Id,
		hdr{"Accept": "application/json", "Content-Type": "application/json"},
		[]byte(`{"method":"foo","password":"`+randPassword()+`","traits":{"email":"`+randEmail()+`"}}`))
	wantStatus(t, r, body, http.StatusBadRequest)
	f := decodeFlow(t, body)
	if !containsID(f.messageIDs(), 4010003) {
		t.Errorf("ui.messages = %v, want 4010003", f.messageIDs())
	}
}

func TestRegistrationBrowserJSON(t *testing.T) {
	t.Parallel()
	in := shared(t)
	b := newBrowser(t, in)

	flow, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.Type != "browser" {
		t.Errorf("type = %q, want browser", flow.Type)
	}
	if want := in.apiBase + "/self-service/registration/browser"; flow.RequestUrl != want {
		t.Errorf("request_url = %q, want %q", flow.RequestUrl, want)
	}
	csrfCookie := cookieFrom(resp, in.csrfCookieName())
	if csrfCookie == nil {
		t.Fatalf("no %s cookie set; Set-Cookie: %v", in.csrfCookieName(), resp.Header.Values("Set-Cookie"))
	}
	assertCookieAttrs(t, csrfCookie)
	assertFreshRegistrationNodes(t, flow.Ui.Nodes, 88)

	got, resp, err := b.sdk.FrontendAPI.GetRegistrationFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.Id != flow.Id {
		t.Errorf("getRegistrationFlow id = %s", got.Id)
	}

	email, pw := randEmail(), randPassword()
	body := ory.NewUpdateRegistrationFlowWithPasswordMethod("password", pw, map[string]any{"email": email})
	body.SetCsrfToken(sdkCSRF(t, got.Ui.Nodes))
	reg, resp, err := b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(body)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	sc := cookieFrom(resp, "ory_kratos_session")
	if sc == nil {
		t.Fatalf("no ory_kratos_session cookie; Set-Cookie: %v", resp.Header.Values("Set-Cookie"))
	}
	assertCookieAttrs(t, sc)
	if sc.MaxAge < 86300 || sc.MaxAge > 86400 {
		t.Errorf("session cookie Max-Age = %d, want ~86400 (24h)", sc.MaxAge)
	}
	if reg.SessionToken != nil {
		t.Error("browser registration must not return a session_token")
	}
	if reg.Identity == nil || reg.Session == nil {
		t.Fatalf("browser registration answer lacks identity or session: %+v", reg)
	}
	if len(reg.ContinueWith) != 1 || reg.ContinueWith[0].ContinueWithRedirectBrowserTo == nil ||
		reg.ContinueWith[0].ContinueWithRedirectBrowserTo.RedirectBrowserTo != in.publicURL {
		t.Errorf("continue_with = %+v, want [redirect_browser_to %s]", reg.ContinueWith, in.publicURL)
	}

	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if s.Identity == nil || s.Identity.Id != reg.Identity.Id {
		t.Errorf("whoami by cookie returned %+v, want identity %s", s.Identity, reg.Identity.Id)
	}

	// With a session, a JSON browser registration init is refused.
	_, resp, err = b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "session_already_available" {
		t.Errorf("error.id = %q, want session_already_available", e.Error.ID)
	}
}

func TestRegistrationBrowserForm(t *testing.T) {
	t.Parallel()
	in := shared(t)
	b := newBrowser(t, in)

	// A navigation: 303 to the registration UI.
	r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/registration/browser", hdr{"Accept": "text/html,application/xhtml+xml"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "http://127.0.0.1:4455/registration" || !isUUID(loc.Query().Get("flow")) {
		t.Fatalf("Location = %q, want http://127.0.0.1:4455/registration?flow=<uuid>", r.Header.Get("Location"))
	}
	flowID := loc.Query().Get("flow")
	flow, resp, err := b.sdk.FrontendAPI.GetRegistrationFlow(ctx).Id(flowID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	csrf := sdkCSRF(t, flow.Ui.Nodes)

	email := randEmail()
	form := hdr{"Accept": "text/html,application/xhtml+xml", "Content-Type": "application/x-www-form-urlencoded"}
	action := in.apiBase + "/self-service/registration?flow=" + flowID

	// Two-step: the profile step goes back to the UI with the same flow.
	v := url.Values{"method": {"profile"}, "csrf_token": {csrf}, "traits.email": {email}}
	r, body = do(t, b.hc, "POST", action, form, []byte(v.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	if want := "http://127.0.0.1:4455/registration?flow=" + flowID; r.Header.Get("Location") != want {
		t.Errorf("profile step Location = %q, want %q", r.Header.Get("Location"), want)
	}

	v = url.Values{"method": {"password"}, "csrf_token": {csrf}, "traits.email": {email}, "password": {randPassword()}}
	r, body = do(t, b.hc, "POST", action, form, []byte(v.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	if r.Header.Get("Location") != in.publicURL {
		t.Errorf("Location = %q, want default_return_url %q", r.Header.Get("Location"), in.publicURL)
	}
	sc := cookieFrom(r, "ory_kratos_session")
	if sc == nil {
		t.Fatalf("no session cookie after form registration; Set-Cookie: %v", r.Header.Values("Set-Cookie"))
	}
	assertCookieAttrs(t, sc)
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if tr, _ := s.Identity.Traits.(map[string]any); tr["email"] != email {
		t.Errorf("whoami traits = %v, want email %s", s.Identity.Traits, email)
	}
}

func TestRegistrationUnifiedStyle(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"registration_style unified"}})
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	want := []nodeSpec{
		{"default", "csrf_token", "hidden"},
		{"default", "traits.email", "email"},
		{"default", "traits.name.first", "text"},
		{"default", "traits.name.last", "text"},
		{"password", "password", "password"},
		{"password", "method", "submit"},
	}
	if got := sdkNodeSpecs(flow.Ui.Nodes); !equalSpecs(got, want) {
		t.Errorf("unified registration nodes = %v, want %v", got, want)
	}
	if m := sdkNode(flow.Ui.Nodes, "method"); m == nil || m.Attributes.UiNodeInputAttributes.Value != "password" || labelID(m) != 1040001 {
		t.Errorf("method node should be value password, label 1040001: %+v", m)
	}
	if p := sdkNode(flow.Ui.Nodes, "password"); p == nil || p.Attributes.UiNodeInputAttributes.Autocomplete == nil ||
		*p.Attributes.UiNodeInputAttributes.Autocomplete != "new-password" || labelID(p) != 1070001 {
		t.Errorf("password node should have autocomplete new-password and label 1070001: %+v", p)
	}

	email, pw := randEmail(), randPassword()
	reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", pw, map[string]any{"email": email}))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if reg.SessionToken == nil || reg.Identity == nil {
		t.Fatalf("unified registration answer lacks token/identity: %+v", reg)
	}
	tok, _ := loginNative(t, in, email, pw)
	assertSessionToken(t, tok)
}
