package e2e

// Helpers of the social sign-in end-to-end tests (oidc_e2e_test.go):
// caddy-kratos configured with Hydra (oidc_provider_test.go) and the
// in-process provider (oidctest) as providers of the oidc method, a
// browser that follows the redirects of a sign-in through the provider and
// back, and the admin API through Ory's SDK.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	ory "github.com/ory/client-go"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider/oidctest"
)

// oidcSpec is one provider of the oidc block: a Hydra client of its own,
// or the in-process provider.
type oidcSpec struct {
	ID string
	// Hydra: a client is registered on it (when the Caddyfile is first
	// rendered: the callback URL needs the instance's port) whose
	// sign-ins the login app accepts for User.
	Hydra *hydraProvider
	User  oidcUser
	// Mock: the in-process provider instead of Hydra.
	Mock *oidctest.Server
	// Lines are more options of the provider block: "label Hydra",
	// "mapper /path/to.jsonnet", "scope openid email".
	Lines []string

	// Client is the Hydra client, set when it is registered.
	Client hydraClient
	// Callback is the provider's callback URL at caddy-kratos.
	Callback string
}

// oidcProviders is instanceOptions.OIDC for specs, in button order.
func oidcProviders(t *testing.T, specs ...*oidcSpec) func(publicURL string) string {
	t.Helper()
	return func(publicURL string) string {
		var b strings.Builder
		for _, s := range specs {
			s.Callback = publicURL + "self-service/methods/oidc/callback/" + s.ID
			var issuer, id, secret string
			switch {
			case s.Hydra != nil:
				if s.Client.ID == "" {
					s.Client = s.Hydra.registerClient(t, []string{s.Callback}, s.User)
				}
				issuer, id, secret = s.Hydra.Issuer, s.Client.ID, s.Client.Secret
			case s.Mock != nil:
				issuer, id, secret = s.Mock.Issuer, s.Mock.ClientID, s.Mock.ClientSecret
			default:
				t.Fatalf("oidc provider %q: neither Hydra nor Mock", s.ID)
			}
			fmt.Fprintf(&b, "\t\t\tprovider %s {\n\t\t\t\tprovider generic\n\t\t\t\tissuer_url %s\n\t\t\t\tclient_id %s\n\t\t\t\tclient_secret %q\n",
				s.ID, issuer, id, secret)
			for _, l := range s.Lines {
				fmt.Fprintf(&b, "\t\t\t\t%s\n", l)
			}
			b.WriteString("\t\t\t}\n")
		}
		return b.String()
	}
}

// hydraUser is a test user of the provider with a verified address.
func hydraUser(prefix string) oidcUser {
	sub := prefix + "-" + randHex(4)
	return oidcUser{Subject: sub, Claims: map[string]any{
		"email": sub + "@example.com", "email_verified": true, "given_name": "Ada", "family_name": "Lovelace",
	}}
}

func (u oidcUser) email() string { s, _ := u.Claims["email"].(string); return s }

// identityAdmin is Ory's SDK on the instance's Kratos admin API.
func (in *instance) identityAdmin() ory.IdentityAPI {
	cfg := ory.NewConfiguration()
	cfg.Servers = ory.ServerConfigurations{{URL: in.adminBase + "/kratos"}}
	cfg.HTTPClient = plainHTTP()
	cfg.UserAgent = "caddy-kratos-e2e-admin"
	return ory.NewAPIClient(cfg).IdentityAPI
}

// identities lists every identity of the instance (admin API).
func (in *instance) identities(t *testing.T) []ory.Identity {
	t.Helper()
	list, resp, err := in.identityAdmin().ListIdentities(ctx).PageSize(500).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return list
}

// identityWith reads identity id (admin API) with the credentials' config
// of types (include_credential).
func (in *instance) identityWith(t *testing.T, id string, types ...string) *ory.Identity {
	t.Helper()
	req := in.identityAdmin().GetIdentity(ctx, id)
	if len(types) > 0 {
		req = req.IncludeCredential(types)
	}
	ident, resp, err := req.Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return ident
}

// credentialIdentifiers are the identifiers of ident's credential typ (nil
// when it has none).
func credentialIdentifiers(ident *ory.Identity, typ string) []string {
	if ident.Credentials == nil {
		return nil
	}
	c, ok := (*ident.Credentials)[typ]
	if !ok {
		return nil
	}
	if c.Identifiers == nil {
		return []string{}
	}
	return c.Identifiers
}

// oidcCredentialProviders are the providers of ident's oidc credential
// config (read with include_credential=oidc).
func oidcCredentialProviders(t *testing.T, ident *ory.Identity) []map[string]any {
	t.Helper()
	if ident.Credentials == nil {
		t.Fatalf("identity %s has no credentials", ident.Id)
	}
	c, ok := (*ident.Credentials)["oidc"]
	if !ok || c.Config == nil {
		t.Fatalf("identity %s has no oidc credential config: %+v", ident.Id, *ident.Credentials)
	}
	list, _ := c.Config["providers"].([]any)
	var out []map[string]any
	for _, p := range list {
		m, _ := p.(map[string]any)
		out = append(out, m)
	}
	return out
}

// jwtClaims decodes the payload of a compact JWT (no verification: the
// test only reads what caddy-kratos stored).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return c
}

// ---------------------------------------------------------------------------
// The browser through the provider

// oidcVisit is where a browser's walk through the redirects ended.
type oidcVisit struct {
	// Stopped is the address the browser was sent to and did not
	// request (nil when a page answered without a redirect).
	Stopped *url.URL
	// Resp and Body are the last answer the browser got.
	Resp *http.Response
	Body []byte
	// Hops are the addresses requested, in order.
	Hops []string
}

func (v oidcVisit) String() string {
	status := 0
	if v.Resp != nil {
		status = v.Resp.StatusCode
	}
	return fmt.Sprintf("stopped at %v after %d hops (last status %d, body %s)\n  hops: %s", v.Stopped, len(v.Hops), status,
		clip(v.Body), strings.Join(v.Hops, "\n        "))
}

// isOIDCCallback reports whether u is caddy-kratos's oidc callback.
func isOIDCCallback(u *url.URL) bool {
	return strings.HasPrefix(u.Path, "/self-service/methods/oidc/callback/")
}

// visit plays the browser from start, as one that follows redirects:
// through the provider (Hydra, its login/consent app, the in-process
// provider) and caddy-kratos's oidc callback, with the browser's cookie
// jar. It stops before any other address — a caddy-kratos page (the
// default return URL, the built-in pages), the UI (127.0.0.1:4455), the
// gated app, an app's return_to of another scheme — and before one
// stopAt picks (nil: none), e.g. the callback itself.
func (b *browser) visit(t *testing.T, start string, stopAt func(*url.URL) bool) oidcVisit {
	t.Helper()
	api, app := mustURL(b.in.publicURL).Host, mustURL(b.in.appBase).Host
	var v oidcVisit
	u := mustURL(start)
	for range 20 {
		follow := (u.Scheme == "http" || u.Scheme == "https") && u.Host != app && u.Host != "127.0.0.1:4455" &&
			(u.Host != api || isOIDCCallback(u))
		if !follow || (stopAt != nil && stopAt(u)) {
			v.Stopped = u
			return v
		}
		v.Hops = append(v.Hops, u.String())
		v.Resp, v.Body = do(t, b.hc, "GET", u.String(), hdr{"Accept": "text/html,application/xhtml+xml"}, nil)
		if v.Resp.StatusCode < 300 || v.Resp.StatusCode > 399 {
			return v
		}
		next, err := u.Parse(v.Resp.Header.Get("Location"))
		if err != nil {
			t.Fatalf("redirect from %s to %q: %v", u, v.Resp.Header.Get("Location"), err)
		}
		u = next
	}
	t.Fatalf("more than 20 redirects: %s", v)
	return v
}

// toCallback plays the browser from the provider's URL to the redirect to
// caddy-kratos's callback, which it returns without requesting it.
func (b *browser) toCallback(t *testing.T, authURL string) *url.URL {
	t.Helper()
	v := b.visit(t, authURL, isOIDCCallback)
	if v.Stopped == nil || !isOIDCCallback(v.Stopped) {
		t.Fatalf("the provider did not send the browser to the callback: %s", v)
	}
	return v.Stopped
}

// wantStop fails unless the visit stopped at an address that starts
// with prefix, and returns it.
func wantStop(t *testing.T, what string, v oidcVisit, prefix string) *url.URL {
	t.Helper()
	if v.Stopped == nil || !strings.HasPrefix(v.Stopped.String(), prefix) {
		t.Fatalf("%s: want the browser at %s…, %s", what, prefix, v)
	}
	return v.Stopped
}

// wantFlowPage fails unless the visit ended at the UI page of a flow
// (uiURL?flow=<id>) and returns the flow id.
func wantFlowPage(t *testing.T, what string, v oidcVisit, uiURL string) string {
	t.Helper()
	u := wantStop(t, what, v, uiURL+"?")
	id := u.Query().Get("flow")
	if !isUUID(id) {
		t.Fatalf("%s: no flow id in %s", what, u)
	}
	return id
}

// wantErrorPage fails unless the visit ended at the error UI, and
// returns the error (GET /self-service/errors).
func (b *browser) wantErrorPage(t *testing.T, what string, v oidcVisit) *genericError {
	t.Helper()
	u := wantStop(t, what, v, "http://127.0.0.1:4455/error?")
	fe, resp, err := b.sdk.FrontendAPI.GetFlowError(ctx).Id(u.Query().Get("id")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	raw, _ := json.Marshal(fe.Error)
	e := decodeJSON[genericError](t, raw)
	return &e
}

// wantLocationChange fails unless an SDK submit was answered 422
// browser_location_change_required, and returns redirect_browser_to.
func wantLocationChange(t *testing.T, what string, resp *http.Response, err error) string {
	t.Helper()
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("%s: want 422, got %v %v", what, resp, err)
	}
	e := decodeError(t, http.StatusUnprocessableEntity, sdkErrBody(t, err))
	if e.Error.ID != "browser_location_change_required" || e.RedirectBrowserTo == "" {
		t.Fatalf("%s: want browser_location_change_required with redirect_browser_to: %+v", what, e)
	}
	return e.RedirectBrowserTo
}

// oidcLoginBody is the provider button of a login flow.
func oidcLoginBody(providerID, csrf string, upstream map[string]any) ory.UpdateLoginFlowBody {
	m := ory.NewUpdateLoginFlowWithOidcMethod("oidc", providerID)
	if csrf != "" {
		m.SetCsrfToken(csrf)
	}
	if upstream != nil {
		m.SetUpstreamParameters(upstream)
	}
	return ory.UpdateLoginFlowWithOidcMethodAsUpdateLoginFlowBody(m)
}

// oidcRegistrationBody is the provider button of a registration flow.
func oidcRegistrationBody(providerID, csrf string, traits, upstream map[string]any) ory.UpdateRegistrationFlowBody {
	m := ory.NewUpdateRegistrationFlowWithOidcMethod("oidc", providerID)
	if csrf != "" {
		m.SetCsrfToken(csrf)
	}
	if traits != nil {
		m.SetTraits(traits)
	}
	if upstream != nil {
		m.SetUpstreamParameters(upstream)
	}
	return ory.UpdateRegistrationFlowWithOidcMethodAsUpdateRegistrationFlowBody(m)
}

// oidcSettingsBody links (link) or unlinks (unlink) a provider.
func oidcSettingsBody(link, unlink, csrf string, upstream map[string]any) ory.UpdateSettingsFlowBody {
	m := ory.NewUpdateSettingsFlowWithOidcMethod("oidc")
	if link != "" {
		m.SetLink(link)
	}
	if unlink != "" {
		m.SetUnlink(unlink)
	}
	if csrf != "" {
		m.SetCsrfToken(csrf)
	}
	if upstream != nil {
		m.SetUpstreamParameters(upstream)
	}
	return ory.UpdateSettingsFlowWithOidcMethodAsUpdateSettingsFlowBody(m)
}

// startOIDCLogin creates a browser login flow and presses the provider's
// button (SDK, JSON): it returns the flow and the provider's URL.
func (b *browser) startOIDCLogin(t *testing.T, providerID string, upstream map[string]any) (*ory.LoginFlow, string) {
	t.Helper()
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if oidcButton(f.Ui.Nodes, "provider", providerID) == nil {
		t.Fatalf("login flow without the %s button: %s", providerID, nodesJSON(f.Ui.Nodes))
	}
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).
		UpdateLoginFlowBody(oidcLoginBody(providerID, sdkCSRF(t, f.Ui.Nodes), upstream)).Execute()
	return f, wantLocationChange(t, "login with "+providerID, resp, err)
}

// startOIDCRegistration is startOIDCLogin on a registration flow.
func (b *browser) startOIDCRegistration(t *testing.T, providerID string, upstream map[string]any) (*ory.RegistrationFlow, string) {
	t.Helper()
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if oidcButton(f.Ui.Nodes, "provider", providerID) == nil {
		t.Fatalf("registration flow without the %s button: %s", providerID, nodesJSON(f.Ui.Nodes))
	}
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(oidcRegistrationBody(providerID, sdkCSRF(t, f.Ui.Nodes), nil, upstream)).Execute()
	return f, wantLocationChange(t, "registration with "+providerID, resp, err)
}

// signInWith signs the browser in (or up) with the provider from a login
// flow: it ends at the default return URL with a session.
func (b *browser) signInWith(t *testing.T, providerID string, upstream map[string]any) *ory.Session {
	t.Helper()
	_, to := b.startOIDCLogin(t, providerID, upstream)
	wantStop(t, "sign-in with "+providerID, b.visit(t, to, nil), b.in.publicURL)
	return b.whoami(t)
}

// whoami is the browser's session (fails unless it has one).
func (b *browser) whoami(t *testing.T) *ory.Session {
	t.Helper()
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	return s
}

// wantNoSession fails if the browser has a session.
func (b *browser) wantNoSession(t *testing.T, what string) {
	t.Helper()
	_, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s: the browser has a session: %v %v", what, resp, err)
	}
}

// wantOIDCMethods fails unless s's authentication methods are methods in
// order, an oidc one with provider providerID.
func wantOIDCMethods(t *testing.T, what string, s *ory.Session, providerID string, methods ...string) {
	t.Helper()
	var got []string
	for _, am := range s.AuthenticationMethods {
		got = append(got, am.GetMethod())
		if am.GetMethod() == "oidc" && (am.GetProvider() != providerID || am.GetAal() != ory.AUTHENTICATORASSURANCELEVEL_AAL1) {
			t.Fatalf("%s: oidc method %+v, want provider %q at aal1", what, am, providerID)
		}
		if am.GetMethod() != "oidc" && am.Provider != nil {
			t.Fatalf("%s: method %s with a provider %q", what, am.GetMethod(), am.GetProvider())
		}
	}
	if !slices.Equal(got, methods) {
		t.Fatalf("%s: authentication methods %v, want %v", what, got, methods)
	}
}

// inputValue is the value of a flow's input node name ("" without one).
func inputValue(nodes []ory.UiNode, name string) string {
	n := sdkNode(nodes, name)
	if n == nil {
		return ""
	}
	s, _ := n.Attributes.UiNodeInputAttributes.Value.(string)
	return s
}

// oidcButton finds the oidc group's submit node name=value.
func oidcButton(nodes []ory.UiNode, name, value string) *ory.UiNode {
	for i := range nodes {
		a := nodes[i].Attributes.UiNodeInputAttributes
		if nodes[i].Group == "oidc" && a != nil && a.Name == name && a.Value == value {
			return &nodes[i]
		}
	}
	return nil
}

// wantButton fails unless nodes have the oidc button name=value labelled
// with message id and text.
func wantButton(t *testing.T, what string, nodes []ory.UiNode, name, value string, id int64, text string) {
	t.Helper()
	n := oidcButton(nodes, name, value)
	if n == nil {
		t.Fatalf("%s: no oidc %s=%s button", what, name, value)
	}
	a := n.Attributes.UiNodeInputAttributes
	if a.Type != "submit" || n.Type != "input" || n.Meta.Label == nil || n.Meta.Label.Id != id || n.Meta.Label.Text != text {
		t.Fatalf("%s: %s=%s button: type %s/%s label %+v, want submit labelled %d %q", what, name, value, n.Type, a.Type,
			n.Meta.Label, id, text)
	}
}

// jsonString is v as JSON text.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// audHas reports whether a JWT's aud (a string or a list) names client.
func audHas(aud any, client string) bool {
	switch a := aud.(type) {
	case string:
		return a == client
	case []any:
		return slices.Contains(a, any(client))
	}
	return false
}

// nodesJSON renders nodes for failure messages.
func nodesJSON(nodes []ory.UiNode) string {
	s, _ := jsonString(nodes)
	return clip([]byte(s))
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
