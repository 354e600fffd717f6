package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	ory "github.com/ory/client-go"
)

// Several identity schemas (Kratos's identity.schemas): listed and served,
// chosen by registration flows (?identity_schema=, selectable ones only)
// and by the admin API (schema_id); identities keep their schema for
// settings validation and login identifiers.

func TestIdentitySchemasListedAndServed(t *testing.T) {
	t.Parallel()
	in := i12(t)
	// client-go has both calls in IdentityAPI; Kratos serves them on the
	// public and the admin port.
	for _, c := range []*ory.APIClient{in.api(), in.adminSDK()} {
		list, resp, err := c.IdentityAPI.ListIdentitySchemas(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		var ids []string
		for _, s := range list {
			ids = append(ids, s.Id)
		}
		if strings.Join(ids, ",") != "default,email,username,staff" {
			t.Errorf("listIdentitySchemas ids = %v, want default,email,username,staff", ids)
		}
		if resp.Header.Get("X-Total-Count") != "4" {
			t.Errorf("X-Total-Count = %q", resp.Header.Get("X-Total-Count"))
		}
		for _, s := range list {
			if s.Id == "username" && s.Schema["title"] != "Username" {
				t.Errorf("schema username = %v", s.Schema)
			}
		}
	}
	page, resp, err := in.api().IdentityAPI.ListIdentitySchemas(ctx).PerPage(2).Page(1).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(page) != 2 || page[0].Id != "username" || page[1].Id != "staff" {
		t.Errorf("page 1 of 2 per page = %+v", page)
	}
	for _, id := range []string{"email", base64.RawURLEncoding.EncodeToString([]byte("email"))} {
		s, resp, err := in.api().IdentityAPI.GetIdentitySchema(ctx, id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if s["title"] != "Email only" {
			t.Errorf("getIdentitySchema(%s) title = %v", id, s["title"])
		}
	}
	_, resp, err = in.api().IdentityAPI.GetIdentitySchema(ctx, "nope").Execute()
	wantSDKStatus(t, resp, err, http.StatusNotFound)
	if e := decodeError(t, 404, sdkErrBody(t, err)); e.Error.Reason != "Identity schema `nope` could not be found." {
		t.Errorf("unknown schema: %+v", e.Error)
	}
}

func TestRegistrationChoosesIdentitySchema(t *testing.T) {
	t.Parallel()
	in := i12(t)
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).IdentitySchema("username").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.GetIdentitySchema() != "username" {
		t.Errorf("flow identity_schema = %q, want username", flow.GetIdentitySchema())
	}
	if sdkNode(flow.Ui.Nodes, "traits.username") == nil || sdkNode(flow.Ui.Nodes, "traits.email") != nil {
		t.Fatalf("the flow's trait nodes are not the username schema's")
	}
	// Fetched again, the flow keeps its schema.
	again, resp, err := c.FrontendAPI.GetRegistrationFlow(ctx).Id(flow.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if again.GetIdentitySchema() != "username" || sdkNode(again.Ui.Nodes, "traits.username") == nil {
		t.Errorf("fetched flow lost its schema: %q", again.GetIdentitySchema())
	}

	// Traits are validated against the chosen schema.
	username, password := "u"+randHex(6), randPassword()
	submit := func(traits map[string]any) (*ory.SuccessfulNativeRegistration, *http.Response, error) {
		return c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
			ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
				ory.NewUpdateRegistrationFlowWithPasswordMethod("password", password, traits))).Execute()
	}
	_, resp, err = submit(map[string]any{"username": "Not Valid"})
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	f := decodeFlow(t, sdkErrBody(t, err))
	if n := f.node("traits.username"); n == nil || len(n.Messages) != 1 || n.Messages[0].ID != 4000004 {
		t.Errorf("invalid username: node messages %+v, want 4000004", n)
	}
	reg, resp, err := submit(map[string]any{"username": username})
	wantSDKStatus(t, resp, err, http.StatusOK)
	if reg.Identity.SchemaId != "username" {
		t.Errorf("identity schema_id = %q, want username", reg.Identity.SchemaId)
	}
	if want := in.publicURL + "schemas/" + base64.RawURLEncoding.EncodeToString([]byte("username")); reg.Identity.SchemaUrl != want {
		t.Errorf("schema_url = %q, want %q", reg.Identity.SchemaUrl, want)
	}

	// The login identifier comes from the identity's schema.
	token, sess := loginNative(t, in.instance, username, password)
	if sess.Identity == nil || sess.Identity.Id != reg.Identity.Id {
		t.Fatalf("login with the username signed in %+v", sess.Identity)
	}

	// Settings validate traits against the identity's schema.
	sf, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(sf.Ui.Nodes, "traits.nickname") == nil || sdkNode(sf.Ui.Nodes, "traits.email") != nil {
		t.Fatalf("settings profile nodes are not the username schema's")
	}
	profile := func(traits map[string]any) (*ory.SettingsFlow, *http.Response, error) {
		return c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(sf.Id).XSessionToken(token).UpdateSettingsFlowBody(
			ory.UpdateSettingsFlowWithProfileMethodAsUpdateSettingsFlowBody(
				ory.NewUpdateSettingsFlowWithProfileMethod("profile", traits))).Execute()
	}
	_, resp, err = profile(map[string]any{"username": username, "nickname": strings.Repeat("n", 21)})
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	f = decodeFlow(t, sdkErrBody(t, err))
	if n := f.node("traits.nickname"); n == nil || len(n.Messages) != 1 || n.Messages[0].ID != 4000017 {
		t.Errorf("too long nickname: node %+v, want 4000017", n)
	}
	_, resp, err = profile(map[string]any{"email": randEmail()})
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	_, resp, err = profile(map[string]any{"username": username, "nickname": "Nick"})
	wantSDKStatus(t, resp, err, http.StatusOK)

	// Unknown and non-selectable schemas are refused when the flow is
	// created; the default schema may be named.
	for _, id := range []string{"staff", "nope", "email"} {
		_, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).IdentitySchema(id).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
		e := decodeError(t, 400, sdkErrBody(t, err))
		if want := `Identity schema "` + id + `" does not exist or cannot be selected in self-service flows.`; e.Error.Reason != want {
			t.Errorf("identity_schema=%s: reason %q", id, e.Error.Reason)
		}
		_, resp, err = newBrowser(t, in.instance).sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).IdentitySchema(id).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
	}
	def, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).IdentitySchema("default").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if sdkNode(def.Ui.Nodes, "traits.email") == nil {
		t.Errorf("identity_schema=default: no traits.email node")
	}
	plain, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if plain.IdentitySchema != nil {
		t.Errorf("a flow created without identity_schema shows %q", *plain.IdentitySchema)
	}
}

func TestAdminIdentitySchemaID(t *testing.T) {
	t.Parallel()
	in := i12(t)
	adm := in.adminSDK().IdentityAPI
	email, password := randEmail(), randPassword()

	body := ory.NewCreateIdentityBody("email", map[string]any{"email": email})
	body.SetCredentials(ory.IdentityWithCredentials{Password: &ory.IdentityWithCredentialsPassword{
		Config: &ory.IdentityWithCredentialsPasswordConfig{Password: ory.PtrString(password)}}})
	created, resp, err := adm.CreateIdentity(ctx).CreateIdentityBody(*body).Execute()
	wantSDKStatus(t, resp, err, http.StatusCreated)
	if created.SchemaId != "email" {
		t.Fatalf("schema_id = %q, want email", created.SchemaId)
	}
	if len(created.RecoveryAddresses) != 1 || len(created.VerifiableAddresses) != 0 {
		t.Errorf("addresses from the email schema: %d recovery, %d verifiable, want 1 and 0",
			len(created.RecoveryAddresses), len(created.VerifiableAddresses))
	}
	if _, sess := loginNative(t, in.instance, email, password); sess.Identity == nil || sess.Identity.SchemaId != "email" {
		t.Errorf("login of an email-schema identity: %+v", sess.Identity)
	}

	// Traits are validated against the named schema: name is not in
	// "email", employee_id is required by "staff".
	_, resp, err = adm.CreateIdentity(ctx).CreateIdentityBody(*ory.NewCreateIdentityBody("email",
		map[string]any{"email": randEmail(), "name": map[string]any{"first": "A"}})).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	_, resp, err = adm.CreateIdentity(ctx).CreateIdentityBody(*ory.NewCreateIdentityBody("staff",
		map[string]any{"email": randEmail()})).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	_, resp, err = adm.CreateIdentity(ctx).CreateIdentityBody(*ory.NewCreateIdentityBody("nope",
		map[string]any{"email": randEmail()})).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.Reason != "unable to find JSON Schema ID: nope" {
		t.Errorf("unknown schema_id: %+v", e.Error)
	}
	// Non-selectable schemas are the admin's to use.
	staff, resp, err := adm.CreateIdentity(ctx).CreateIdentityBody(*ory.NewCreateIdentityBody("staff",
		map[string]any{"email": randEmail(), "employee_id": "E42"})).Execute()
	wantSDKStatus(t, resp, err, http.StatusCreated)
	if staff.SchemaId != "staff" {
		t.Errorf("staff schema_id = %q", staff.SchemaId)
	}

	// PUT moves the identity to another schema, validated against it;
	// without schema_id it keeps its schema.
	upd := ory.NewUpdateIdentityBody("default", "active", map[string]any{"email": email, "name": map[string]any{"first": "Moved"}})
	moved, resp, err := adm.UpdateIdentity(ctx, created.Id).UpdateIdentityBody(*upd).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if moved.SchemaId != "default" || len(moved.VerifiableAddresses) != 1 {
		t.Errorf("after PUT with schema_id default: schema %q, %d verifiable addresses", moved.SchemaId, len(moved.VerifiableAddresses))
	}
	_, resp, err = adm.UpdateIdentity(ctx, created.Id).UpdateIdentityBody(*ory.NewUpdateIdentityBody("staff", "active",
		map[string]any{"email": email})).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	_, resp, err = adm.UpdateIdentity(ctx, created.Id).UpdateIdentityBody(*ory.NewUpdateIdentityBody("nope", "active",
		map[string]any{"email": email})).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)

	// PATCH of schema_id with traits fitting the new schema.
	p, resp, err := adm.PatchIdentity(ctx, created.Id).JsonPatch([]ory.JsonPatch{
		{Op: "replace", Path: "/schema_id", Value: "email"},
		{Op: "remove", Path: "/traits/name"},
	}).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if p.SchemaId != "email" || len(p.VerifiableAddresses) != 0 {
		t.Errorf("after PATCH to email: schema %q, %d verifiable addresses", p.SchemaId, len(p.VerifiableAddresses))
	}
	_, resp, err = adm.PatchIdentity(ctx, created.Id).JsonPatch([]ory.JsonPatch{
		{Op: "replace", Path: "/schema_id", Value: "username"}}).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
}
