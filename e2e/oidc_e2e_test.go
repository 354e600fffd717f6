package e2e

// Social sign-in end to end (issue 15): caddy-kratos with Ory Hydra as the
// OpenID provider (oidc_provider_test.go), driven with Ory's SDK and a
// browser that follows the redirects through Hydra and its login/consent
// app (oidc_helpers_test.go). The engine tests (flows/oidc_test.go) are
// the specification; these check the same against the real binary and a
// real provider. They run when KRATOS_TEST_OIDC=1 or CI=true.

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider/oidctest"
)

// TestOIDCSignUpSignIn: a browser signs up through Hydra from the login
// page (an account nobody has continues as a sign-up), and signs in again
// later; the identity has the provider's account as its oidc credential,
// its verified address verified, the provider's tokens readable by the
// admin API with include_credential=oidc.
func TestOIDCSignUpSignIn(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	user := hydraUser("signin")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: user, Lines: []string{"label Hydra", "scope openid offline_access email profile"}}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy)})

	b := newBrowser(t, in)
	f, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantButton(t, "login flow", f.Ui.Nodes, "provider", "hydra", 1010002, "Sign in with Hydra")
	// The default group (csrf_token, identifier), then the methods'
	// groups with the providers first, as Kratos sorts them.
	var groups []string
	for _, n := range f.Ui.Nodes {
		groups = append(groups, n.Group+":"+n.Attributes.UiNodeInputAttributes.Name)
	}
	if !slices.Equal(groups, []string{"default:csrf_token", "default:identifier", "oidc:provider", "password:password", "password:method"}) {
		t.Fatalf("login nodes %v", groups)
	}
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).
		UpdateLoginFlowBody(oidcLoginBody("hydra", sdkCSRF(t, f.Ui.Nodes), nil)).Execute()
	to := wantLocationChange(t, "login with hydra", resp, err)
	au := mustURL(to)
	q := au.Query()
	if !strings.HasPrefix(to, h.Issuer+"oauth2/auth?") || q.Get("client_id") != hy.Client.ID || q.Get("redirect_uri") != hy.Callback ||
		q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("nonce") == "" || !strings.HasPrefix(q.Get("state"), f.Id+".") || !strings.Contains(q.Get("scope"), "offline_access") {
		t.Fatalf("authorization URL %s", to)
	}
	if c := b.cookie("ory_kratos_continuity"); c == nil {
		t.Fatal("no continuity cookie after pressing the provider's button")
	}
	wantStop(t, "sign-up", b.visit(t, to, nil), in.publicURL)
	if c := b.cookie("ory_kratos_continuity"); c != nil {
		t.Fatalf("continuity cookie kept after the callback: %v", c)
	}
	s := b.whoami(t)
	wantOIDCMethods(t, "after sign-up", s, "hydra", "oidc")
	traits, _ := s.Identity.Traits.(map[string]any)
	name, _ := traits["name"].(map[string]any)
	if traits["email"] != user.email() || name["first"] != "Ada" || name["last"] != "Lovelace" {
		t.Fatalf("traits %v", traits)
	}
	if va := s.Identity.VerifiableAddresses; len(va) != 1 || !va[0].Verified || va[0].Status != "completed" || va[0].Value != user.email() {
		t.Fatalf("the provider's verified address: %+v", va)
	}

	// The admin API: one identity, the provider account as identifier,
	// the tokens opened only with include_credential=oidc.
	ids := in.identities(t)
	if len(ids) != 1 || ids[0].Id != s.Identity.Id {
		t.Fatalf("%d identities after sign-up", len(ids))
	}
	plain := in.identityWith(t, s.Identity.Id)
	if got := credentialIdentifiers(plain, "oidc"); !slices.Equal(got, []string{"hydra:" + user.Subject}) {
		t.Fatalf("oidc identifiers %v", got)
	}
	if c := (*plain.Credentials)["oidc"]; c.Config != nil {
		if raw, _ := jsonString(c.Config); strings.Contains(raw, "initial_") {
			t.Fatalf("tokens without include_credential: %s", raw)
		}
	}
	full := in.identityWith(t, s.Identity.Id, "oidc")
	provs := oidcCredentialProviders(t, full)
	if len(provs) != 1 || provs[0]["provider"] != "hydra" || provs[0]["subject"] != user.Subject {
		t.Fatalf("oidc credential config %v", provs)
	}
	idt, _ := provs[0]["initial_id_token"].(string)
	claims := jwtClaims(t, idt)
	if claims["sub"] != user.Subject || claims["iss"] != h.Issuer || claims["nonce"] != q.Get("nonce") || !audHas(claims["aud"], hy.Client.ID) {
		t.Fatalf("stored ID token claims %v", claims)
	}
	if at, _ := provs[0]["initial_access_token"].(string); !strings.HasPrefix(at, "ory_at_") {
		t.Fatalf("stored access token %q", at)
	}
	if rt, _ := provs[0]["initial_refresh_token"].(string); !strings.HasPrefix(rt, "ory_rt_") {
		t.Fatalf("stored refresh token %q", rt)
	}

	// Signing in again, in another browser: the same identity.
	b2 := newBrowser(t, in)
	s2 := b2.signInWith(t, "hydra", nil)
	wantOIDCMethods(t, "second sign-in", s2, "hydra", "oidc")
	if s2.Identity.Id != s.Identity.Id || s2.Id == s.Id {
		t.Fatalf("second sign-in: identity %s session %s, want identity %s in a new session", s2.Identity.Id, s2.Id, s.Identity.Id)
	}
	// And the sign-up button of the same account signs in too. (The
	// registration page is profile_first's first screen: the buttons are
	// between the traits and "Sign up".)
	b3 := newBrowser(t, in)
	rf, resp, err := b3.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantButton(t, "registration flow", rf.Ui.Nodes, "provider", "hydra", 1040002, "Sign up with Hydra")
	_, to = b3.startOIDCRegistration(t, "hydra", nil)
	wantStop(t, "sign-up of a known account", b3.visit(t, to, nil), in.publicURL)
	if s3 := b3.whoami(t); s3.Identity.Id != s.Identity.Id {
		t.Fatalf("sign-up of a known account made identity %s", s3.Identity.Id)
	}
	if n := len(in.identities(t)); n != 1 {
		t.Fatalf("%d identities after three sign-ins, want 1", n)
	}
}

// TestOIDCNativeTokenExchange: a native app signs up and in through the
// provider in the system browser (which has none of the app's cookies)
// and trades its init code and the return_to code for a session token,
// once: a login of an unknown account (continued as a sign-up), a sign-up
// of another account (login_hint picks it), a login of a known one.
func TestOIDCNativeTokenExchange(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	first, second := hydraUser("native"), hydraUser("native2")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: first}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy), GlobalKratos: []string{"allowed_return_urls myapp://callback"}})
	h.setUser(second.Subject, second)
	const returnTo = "myapp://callback"
	api := in.api()
	identities := map[string]string{} // subject → identity id

	for _, tc := range []struct {
		kind string
		user oidcUser
		hint string
	}{{"login", first, ""}, {"registration", second, second.Subject}, {"login", first, ""}} {
		what := tc.kind + " of " + tc.user.Subject
		var upstream map[string]any
		if tc.hint != "" {
			upstream = map[string]any{"login_hint": tc.hint}
		}
		var initCode, to string
		var resp *http.Response
		var err error
		if tc.kind == "login" {
			f, r, e := api.FrontendAPI.CreateNativeLoginFlow(ctx).ReturnSessionTokenExchangeCode(true).ReturnTo(returnTo).Execute()
			wantSDKStatus(t, r, e, http.StatusOK)
			initCode = f.GetSessionTokenExchangeCode()
			_, resp, err = api.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(oidcLoginBody("hydra", "", upstream)).Execute()
		} else {
			f, r, e := api.FrontendAPI.CreateNativeRegistrationFlow(ctx).ReturnSessionTokenExchangeCode(true).ReturnTo(returnTo).Execute()
			wantSDKStatus(t, r, e, http.StatusOK)
			initCode = f.GetSessionTokenExchangeCode()
			_, resp, err = api.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
				UpdateRegistrationFlowBody(oidcRegistrationBody("hydra", "", nil, upstream)).Execute()
		}
		if len(initCode) != 64 || !isAlnum(initCode) {
			t.Fatalf("%s: session_token_exchange_code %q", what, initCode)
		}
		to = wantLocationChange(t, what, resp, err)

		// The system browser: no cookie of the app's, no continuity cookie
		// (native flows have none); it ends at the app's return_to.
		sys := newBrowser(t, in)
		back := wantStop(t, what, sys.visit(t, to, nil), returnTo+"?")
		code := back.Query().Get("code")
		if len(code) != 64 || !isAlnum(code) {
			t.Fatalf("%s: return_to %s without a return_to code", what, back)
		}
		if c := sys.cookie("ory_kratos_session"); c != nil {
			t.Fatalf("%s: the system browser got the app's session cookie", what)
		}

		// A wrong return_to code does not use the pair up.
		_, resp, err = api.FrontendAPI.ExchangeSessionToken(ctx).InitCode(initCode).ReturnToCode(strings.Repeat("a", 64)).Execute()
		if e := decodeError(t, http.StatusNotFound, sdkErrBody(t, err)); resp.StatusCode != http.StatusNotFound || e.Error.Reason != `no session yet for this "code"` {
			t.Fatalf("%s: wrong return_to code: %d %+v", what, resp.StatusCode, e)
		}
		x, resp, err := api.FrontendAPI.ExchangeSessionToken(ctx).InitCode(initCode).ReturnToCode(code).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		tok := x.GetSessionToken()
		assertSessionToken(t, tok)
		s, st := whoamiToken(t, in, tok)
		if st != http.StatusOK || s.Id != x.Session.Id {
			t.Fatalf("%s: whoami with the exchanged token: %d", what, st)
		}
		wantOIDCMethods(t, what, s, "hydra", "oidc")
		if got := credentialIdentifiers(in.identityWith(t, s.Identity.Id), "oidc"); !slices.Equal(got, []string{"hydra:" + tc.user.Subject}) {
			t.Fatalf("%s: session of identity with oidc identifiers %v", what, got)
		}
		if prev, ok := identities[tc.user.Subject]; ok && prev != s.Identity.Id {
			t.Fatalf("%s: identity %s, want the one signed up before (%s)", what, s.Identity.Id, prev)
		}
		identities[tc.user.Subject] = s.Identity.Id
		// Once.
		_, resp, err = api.FrontendAPI.ExchangeSessionToken(ctx).InitCode(initCode).ReturnToCode(code).Execute()
		if e := decodeError(t, http.StatusNotFound, sdkErrBody(t, err)); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: second exchange: %d %+v", what, resp.StatusCode, e)
		}
	}
	if n := len(in.identities(t)); n != 2 {
		t.Fatalf("%d identities, want 2", n)
	}
}

// oidcMapper is a Kratos mapper file as Kratos's documentation writes
// them: traits from the standard claims, metadata from custom ones
// (raw_claims), the address verified by the mapper's own rule.
const oidcMapper = `local claims = std.extVar('claims');
{
  identity: {
    traits: {
      email: claims.email,
      name: { first: claims.given_name, last: std.asciiUpper(claims.family_name) },
    },
    verified_addresses: if std.get(claims.raw_claims, 'department', '') == 'research' then [{ value: claims.email, via: 'email' }] else [],
    metadata_public: { department: claims.raw_claims.department, subject: claims.sub, issuer: claims.iss },
    metadata_admin: { groups: claims.raw_claims.groups },
  },
}
`

// TestOIDCMapper: a Jsonnet mapper file fills the traits, the verified
// addresses and both metadata from the provider's claims.
func TestOIDCMapper(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	mapperPath := t.TempDir() + "/hydra.jsonnet"
	if err := writeFile(mapperPath, oidcMapper); err != nil {
		t.Fatal(err)
	}
	user := hydraUser("mapper")
	// Not verified by the provider: the mapper decides.
	user.Claims["email_verified"] = false
	user.Claims["department"] = "research"
	user.Claims["groups"] = []string{"staff", "admins"}
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: user, Lines: []string{"mapper " + mapperPath}}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy)})

	b := newBrowser(t, in)
	_, to := b.startOIDCRegistration(t, "hydra", nil)
	wantStop(t, "sign-up", b.visit(t, to, nil), in.publicURL)
	s := b.whoami(t)
	ident := in.identityWith(t, s.Identity.Id)
	traits, _ := ident.Traits.(map[string]any)
	name, _ := traits["name"].(map[string]any)
	if traits["email"] != user.email() || name["first"] != "Ada" || name["last"] != "LOVELACE" {
		t.Fatalf("mapped traits %v", traits)
	}
	pub, adm := ident.MetadataPublic, ident.MetadataAdmin
	if pub["department"] != "research" || pub["subject"] != user.Subject || pub["issuer"] != h.Issuer || len(pub) != 3 {
		t.Fatalf("metadata_public %v", pub)
	}
	if g, _ := adm["groups"].([]any); len(adm) != 1 || len(g) != 2 || g[0] != "staff" || g[1] != "admins" {
		t.Fatalf("metadata_admin %v", adm)
	}
	if va := ident.VerifiableAddresses; len(va) != 1 || !va[0].Verified || va[0].Status != "completed" || va[0].VerifiedAt == nil {
		t.Fatalf("the mapper's verified address: %+v", va)
	}
	// The session's identity shows metadata_public, never metadata_admin.
	if s.Identity.MetadataPublic["department"] != "research" || s.Identity.MetadataAdmin != nil {
		t.Fatalf("whoami metadata: public %v admin %v", s.Identity.MetadataPublic, s.Identity.MetadataAdmin)
	}
}

// TestOIDCMissingTraits: the provider gives no email, which the schema
// requires: the sign-up comes back as the registration flow with the
// provider's traits filled and 4000002 on traits.email; the user
// completes it and presses the provider's button again.
func TestOIDCMissingTraits(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	user := oidcUser{Subject: "nomail-" + randHex(4), Claims: map[string]any{"given_name": "Grace", "family_name": "Hopper"}}
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: user, Lines: []string{"label Hydra"}}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy)})

	// From the login page: the unknown account continues as a sign-up,
	// which needs the email.
	b := newBrowser(t, in)
	lf, to := b.startOIDCLogin(t, "hydra", nil)
	id := wantFlowPage(t, "sign-up without email", b.visit(t, to, nil), "http://127.0.0.1:4455/registration")
	if id == lf.Id {
		t.Fatal("the login flow came back as itself, want a registration flow")
	}
	rf, resp, err := b.sdk.FrontendAPI.GetRegistrationFlow(ctx).Id(id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if inputValue(rf.Ui.Nodes, "traits.name.first") != "Grace" || inputValue(rf.Ui.Nodes, "traits.name.last") != "Hopper" {
		t.Fatalf("the provider's traits are not filled: %s", nodesJSON(rf.Ui.Nodes))
	}
	email := sdkNode(rf.Ui.Nodes, "traits.email")
	if email == nil || !containsID(sdkMessageIDs(email.Messages), 4000002) || email.Messages[0].Text != "Property email is missing." {
		t.Fatalf("traits.email node: %s", nodesJSON(rf.Ui.Nodes))
	}
	// Kratos's shape: the traits in the oidc group, the button "Continue".
	if email.Group != "oidc" {
		t.Fatalf("traits.email in group %q, want oidc", email.Group)
	}
	wantButton(t, "registration flow", rf.Ui.Nodes, "provider", "hydra", 1040003, "Continue")
	b.wantNoSession(t, "sign-up without email")
	if n := len(in.identities(t)); n != 0 {
		t.Fatalf("%d identities before the sign-up is complete", n)
	}

	// Completed and the provider's button again: signed up.
	mail := randEmail()
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).UpdateRegistrationFlowBody(oidcRegistrationBody("hydra",
		sdkCSRF(t, rf.Ui.Nodes), map[string]any{"email": mail, "name": map[string]any{"first": "Grace", "last": "Hopper"}}, nil)).Execute()
	to = wantLocationChange(t, "completed sign-up", resp, err)
	wantStop(t, "completed sign-up", b.visit(t, to, nil), in.publicURL)
	s := b.whoami(t)
	wantOIDCMethods(t, "completed sign-up", s, "hydra", "oidc")
	traits, _ := s.Identity.Traits.(map[string]any)
	if traits["email"] != mail {
		t.Fatalf("traits %v", traits)
	}
	// Nobody verified the typed address.
	if va := s.Identity.VerifiableAddresses; len(va) != 1 || va[0].Verified || va[0].Status == "completed" {
		t.Fatalf("typed address verified: %+v", va)
	}
	if got := credentialIdentifiers(in.identityWith(t, s.Identity.Id), "oidc"); !slices.Equal(got, []string{"hydra:" + user.Subject}) {
		t.Fatalf("oidc identifiers %v", got)
	}
}

// TestOIDCSettingsLinkUnlink: a password account links the provider in
// settings (a trip to the provider, forced to sign in again), signs in
// with it, unlinks it; an account that has only the provider cannot
// unlink it; a provider account of another identity is not linked.
func TestOIDCSettingsLinkUnlink(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	ada, only := hydraUser("link"), hydraUser("only")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: ada, Lines: []string{"label Hydra"}}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy)})
	h.setUser(only.Subject, only)
	email, pw := randEmail(), randPassword()
	acct := admCreate(t, in, email, pw)
	b := newBrowser(t, in)
	b.login(t, email, pw)

	settings := func(b *browser) *ory.SettingsFlow {
		t.Helper()
		f, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		return f
	}
	f := settings(b)
	wantButton(t, "settings before linking", f.Ui.Nodes, "link", "hydra", 1050002, "Link hydra")
	if oidcButton(f.Ui.Nodes, "unlink", "hydra") != nil {
		t.Fatal("unlink offered for a provider that is not linked")
	}
	_, resp, err := b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(oidcSettingsBody("hydra", "", sdkCSRF(t, f.Ui.Nodes), nil)).Execute()
	to := wantLocationChange(t, "link", resp, err)
	if q := mustURL(to).Query(); q.Get("prompt") != "login" || !strings.HasPrefix(q.Get("state"), f.Id+".") {
		t.Fatalf("a link must make the provider sign the user in again: %s", to)
	}
	id := wantFlowPage(t, "link", b.visit(t, to, nil), in.publicURL+"ui/settings")
	if id != f.Id {
		t.Fatalf("link came back to flow %s, want %s", id, f.Id)
	}
	done, resp, err := b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if done.State != "success" || !containsID(sdkMessageIDs(done.Ui.Messages), 1050001) {
		t.Fatalf("after linking: state %v messages %v", done.State, sdkMessageIDs(done.Ui.Messages))
	}
	wantButton(t, "settings after linking", done.Ui.Nodes, "unlink", "hydra", 1050003, "Unlink hydra")
	if oidcButton(done.Ui.Nodes, "link", "hydra") != nil {
		t.Fatal("link still offered after linking")
	}
	ident := in.identityWith(t, acct.ID)
	if got := credentialIdentifiers(ident, "oidc"); !slices.Equal(got, []string{"hydra:" + ada.Subject}) {
		t.Fatalf("oidc identifiers after linking %v", got)
	}
	if got := credentialIdentifiers(ident, "password"); !slices.Equal(got, []string{email}) {
		t.Fatalf("password identifiers after linking %v", got)
	}

	// The provider now signs in to this account.
	other := newBrowser(t, in)
	if s := other.signInWith(t, "hydra", nil); s.Identity.Id != acct.ID {
		t.Fatalf("sign-in with the linked provider: identity %s, want %s", s.Identity.Id, acct.ID)
	}

	// Linking it again (a forged submit: the button is gone) is refused.
	f = settings(b)
	_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(oidcSettingsBody("hydra", "", sdkCSRF(t, f.Ui.Nodes), nil)).Execute()
	if bad := sdkFlowError(t, "link twice", resp, err, http.StatusBadRequest); !containsID(bad.messageIDs(), 4000001) {
		t.Fatalf("link twice: messages %v", bad.messageIDs())
	}

	// Unlink: the password remains.
	f = settings(b)
	res, resp, err := b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(oidcSettingsBody("", "hydra", sdkCSRF(t, f.Ui.Nodes), nil)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.State != "success" || !containsID(sdkMessageIDs(res.Ui.Messages), 1050001) || oidcButton(res.Ui.Nodes, "link", "hydra") == nil {
		t.Fatalf("unlink: state %v messages %v nodes %s", res.State, sdkMessageIDs(res.Ui.Messages), nodesJSON(res.Ui.Nodes))
	}
	if got := credentialIdentifiers(in.identityWith(t, acct.ID), "oidc"); got != nil {
		t.Fatalf("oidc credential after unlinking: %v", got)
	}

	// An account with only the provider: no unlink button, and a forged
	// unlink is refused with nothing changed.
	c := newBrowser(t, in)
	s := c.signInWith(t, "hydra", map[string]any{"login_hint": only.Subject})
	f = settings(c)
	if oidcButton(f.Ui.Nodes, "unlink", "hydra") != nil || oidcButton(f.Ui.Nodes, "link", "hydra") != nil {
		t.Fatalf("settings of a provider-only account: %s", nodesJSON(f.Ui.Nodes))
	}
	before := in.identityWith(t, s.Identity.Id)
	_, resp, err = c.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(oidcSettingsBody("", "hydra", sdkCSRF(t, f.Ui.Nodes), nil)).Execute()
	bad := sdkFlowError(t, "unlink of the last credential", resp, err, http.StatusBadRequest)
	if len(bad.UI.Messages) != 1 || bad.UI.Messages[0].ID != 4000001 ||
		bad.UI.Messages[0].Text != "This is the last way to sign in to your account: it cannot be unlinked." {
		t.Fatalf("unlink of the last credential: messages %+v", bad.UI.Messages)
	}
	after := in.identityWith(t, s.Identity.Id)
	if !slices.Equal(credentialIdentifiers(after, "oidc"), []string{"hydra:" + only.Subject}) || !after.UpdatedAt.Equal(*before.UpdatedAt) {
		t.Fatalf("refused unlink changed the identity: %v, updated %v → %v", credentialIdentifiers(after, "oidc"), before.UpdatedAt, after.UpdatedAt)
	}
	c.whoami(t)

	// The password account links the provider account of the other one:
	// 4000027, nothing linked.
	f = settings(b)
	_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(oidcSettingsBody("hydra", "", sdkCSRF(t, f.Ui.Nodes), map[string]any{"login_hint": only.Subject})).Execute()
	to = wantLocationChange(t, "link of another identity's account", resp, err)
	wantFlowPage(t, "link of another identity's account", b.visit(t, to, nil), in.publicURL+"ui/settings")
	dup, resp, err := b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(f.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if dup.State == "success" || !containsID(sdkMessageIDs(dup.Ui.Messages), 4000027) {
		t.Fatalf("link of another identity's account: state %v messages %v", dup.State, sdkMessageIDs(dup.Ui.Messages))
	}
	if got := credentialIdentifiers(in.identityWith(t, acct.ID), "oidc"); got != nil {
		t.Fatalf("another identity's provider account linked: %v", got)
	}
}

// TestOIDCSettingsPrivileged: linking and unlinking need a privileged
// session. Past privileged_session_max_age the settings flow answers an
// API client and a browser's JSON submit with 403 session_refresh_required
// (redirect_browser_to a refresh login that returns to the flow), and a
// browser's form post with a 303 there; after the refresh the link goes
// through.
func TestOIDCSettingsPrivileged(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	ada := hydraUser("priv")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: ada}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy), GlobalKratos: []string{"privileged_session_max_age 2s"}})
	email, pw := randEmail(), randPassword()
	acct := admCreate(t, in, email, pw)
	b := newBrowser(t, in)
	b.login(t, email, pw)
	tok, _ := loginNative(t, in, email, pw)
	time.Sleep(2200 * time.Millisecond)

	f, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantRefresh := func(what, to string) {
		t.Helper()
		u := mustURL(to)
		if u.Path != "/self-service/login/browser" || u.Query().Get("refresh") != "true" ||
			u.Query().Get("return_to") != in.publicURL+"ui/settings?flow="+f.Id {
			t.Fatalf("%s: refresh URL %s", what, to)
		}
	}
	for _, body := range []ory.UpdateSettingsFlowBody{
		oidcSettingsBody("hydra", "", sdkCSRF(t, f.Ui.Nodes), nil),
		oidcSettingsBody("", "hydra", sdkCSRF(t, f.Ui.Nodes), nil),
	} {
		_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).UpdateSettingsFlowBody(body).Execute()
		e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err))
		if resp.StatusCode != http.StatusForbidden || e.Error.ID != "session_refresh_required" {
			t.Fatalf("stale browser session: %d %+v", resp.StatusCode, e)
		}
		wantRefresh("stale browser session (JSON)", e.RedirectBrowserTo)
	}
	form := url.Values{"method": {"oidc"}, "link": {"hydra"}, "csrf_token": {sdkCSRF(t, f.Ui.Nodes)}}
	r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/settings?flow="+f.Id,
		hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	wantRefresh("stale browser session (form)", r.Header.Get("Location"))

	api := in.api()
	nf, resp, err := api.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = api.FrontendAPI.UpdateSettingsFlow(ctx).Flow(nf.Id).XSessionToken(tok).
		UpdateSettingsFlowBody(oidcSettingsBody("hydra", "", "", nil)).Execute()
	if e := decodeError(t, http.StatusForbidden, sdkErrBody(t, err)); resp.StatusCode != http.StatusForbidden || e.Error.ID != "session_refresh_required" {
		t.Fatalf("stale API session: %d %+v", resp.StatusCode, e)
	}
	if got := credentialIdentifiers(in.identityWith(t, acct.ID), "oidc"); got != nil {
		t.Fatalf("linked on a stale session: %v", got)
	}

	// The refresh login, then the link on the same flow.
	lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Refresh(true).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	pwBody := ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", pw)
	pwBody.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pwBody)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(f.Id).
		UpdateSettingsFlowBody(oidcSettingsBody("hydra", "", sdkCSRF(t, f.Ui.Nodes), nil)).Execute()
	to := wantLocationChange(t, "link after the refresh", resp, err)
	wantFlowPage(t, "link after the refresh", b.visit(t, to, nil), in.publicURL+"ui/settings")
	done, resp, err := b.sdk.FrontendAPI.GetSettingsFlow(ctx).Id(f.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if done.State != "success" {
		t.Fatalf("link after the refresh: state %v messages %+v", done.State, done.Ui.Messages)
	}
	if got := credentialIdentifiers(in.identityWith(t, acct.ID), "oidc"); !slices.Equal(got, []string{"hydra:" + ada.Subject}) {
		t.Fatalf("oidc identifiers after the link %v", got)
	}
}

// TestOIDCAccountLinking: the provider's (verified) email belongs to a
// password account: nothing is created or merged; the browser lands on a
// login flow (active oidc, 1010016, the identifier hidden) where the
// password of that account links the provider and signs in with both
// methods. Signing in to another account on that flow links nothing
// (4010009).
func TestOIDCAccountLinking(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	ada := hydraUser("linking")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: ada, Lines: []string{"label Hydra"}}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy)})
	pw := randPassword()
	owner := admCreate(t, in, ada.email(), pw)
	otherEmail := randEmail()
	other := admCreate(t, in, otherEmail, pw)

	linkingFlow := func(b *browser) *ory.LoginFlow {
		t.Helper()
		lf0, to := b.startOIDCLogin(t, "hydra", nil)
		id := wantFlowPage(t, "provider account with a taken email", b.visit(t, to, nil), "http://127.0.0.1:4455/login")
		if id == lf0.Id {
			t.Fatal("account linking reused the first login flow")
		}
		lf, resp, err := b.sdk.FrontendAPI.GetLoginFlow(ctx).Id(id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if lf.GetActive() != "oidc" || len(lf.Ui.Messages) != 1 || lf.Ui.Messages[0].Id != 1010016 {
			t.Fatalf("linking flow: active %q messages %+v", lf.GetActive(), lf.Ui.Messages)
		}
		m := lf.Ui.Messages[0]
		if m.Type != "info" || m.Context["duplicateIdentifier"] != ada.email() || m.Context["duplicate_identifier"] != ada.email() ||
			m.Context["provider"] != "Hydra" || !strings.Contains(m.Text, `"`+ada.email()+`"`) || !strings.Contains(m.Text, `at "Hydra"`) {
			t.Fatalf("1010016: %+v", m)
		}
		if types, _ := m.Context["available_credential_types"].([]any); len(types) != 1 || types[0] != "password" {
			t.Fatalf("1010016 available_credential_types %v", m.Context["available_credential_types"])
		}
		idn := sdkNode(lf.Ui.Nodes, "identifier")
		if idn == nil || idn.Attributes.UiNodeInputAttributes.Type != "hidden" || idn.Group != "default" || inputValue(lf.Ui.Nodes, "identifier") != ada.email() {
			t.Fatalf("identifier node: %s", nodesJSON(lf.Ui.Nodes))
		}
		if sdkNode(lf.Ui.Nodes, "password") == nil {
			t.Fatalf("no password node on the linking flow: %s", nodesJSON(lf.Ui.Nodes))
		}
		b.wantNoSession(t, "before proving the account")
		return lf
	}
	pwLogin := func(b *browser, lf *ory.LoginFlow, email string) (*ory.SuccessfulNativeLogin, *http.Response, error) {
		body := ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", pw)
		body.SetCsrfToken(sdkCSRF(t, lf.Ui.Nodes))
		return b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(lf.Id).
			UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(body)).Execute()
	}
	noLinks := func(what string) {
		t.Helper()
		for _, id := range []string{owner.ID, other.ID} {
			if got := credentialIdentifiers(in.identityWith(t, id), "oidc"); got != nil {
				t.Fatalf("%s: identity %s has oidc identifiers %v", what, id, got)
			}
		}
		if n := len(in.identities(t)); n != 2 {
			t.Fatalf("%s: %d identities, want the 2 password accounts", what, n)
		}
	}

	// Another account's password on the linking flow: 4010009.
	b := newBrowser(t, in)
	lf := linkingFlow(b)
	noLinks("linking flow")
	_, resp, err := pwLogin(b, lf, otherEmail)
	bad := sdkFlowError(t, "other account on the linking flow", resp, err, http.StatusBadRequest)
	if !containsID(bad.messageIDs(), 4010009) {
		t.Fatalf("other account on the linking flow: messages %+v", bad.UI.Messages)
	}
	b.wantNoSession(t, "other account on the linking flow")
	noLinks("other account on the linking flow")

	// The owner's password: linked, signed in with both methods.
	b2 := newBrowser(t, in)
	lf = linkingFlow(b2)
	res, resp, err := pwLogin(b2, lf, ada.email())
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantOIDCMethods(t, "password on the linking flow", &res.Session, "hydra", "password", "oidc")
	if res.Session.Identity.Id != owner.ID {
		t.Fatalf("signed in to %s, want %s", res.Session.Identity.Id, owner.ID)
	}
	wantOIDCMethods(t, "whoami after linking", b2.whoami(t), "hydra", "password", "oidc")
	ident := in.identityWith(t, owner.ID, "oidc")
	if got := credentialIdentifiers(ident, "oidc"); !slices.Equal(got, []string{"hydra:" + ada.Subject}) {
		t.Fatalf("oidc identifiers after linking %v", got)
	}
	if p := oidcCredentialProviders(t, ident); len(p) != 1 || p[0]["subject"] != ada.Subject || !strings.HasPrefix(p[0]["initial_id_token"].(string), "eyJ") {
		t.Fatalf("linked credential %v", p)
	}
	if n := len(in.identities(t)); n != 2 {
		t.Fatalf("%d identities after linking, want 2", n)
	}
	// From now on the provider signs in to that account directly.
	b3 := newBrowser(t, in)
	s := b3.signInWith(t, "hydra", nil)
	wantOIDCMethods(t, "sign-in after linking", s, "hydra", "oidc")
	if s.Identity.Id != owner.ID {
		t.Fatalf("sign-in after linking: identity %s, want %s", s.Identity.Id, owner.ID)
	}
}

// reasonCallback is the error of a callback that is not the browser's.
const reasonCallback = "The OpenID Connect callback does not belong to this browser's flow. Please start again."

// withQuery is u with its query parameters set to the values in set.
func withQuery(u *url.URL, set map[string]string) string {
	c := *u
	q := c.Query()
	for k, v := range set {
		if v == "" {
			q.Del(k)
			continue
		}
		q.Set(k, v)
	}
	c.RawQuery = q.Encode()
	return c.String()
}

// TestOIDCCallbackAttacks: the callback only completes the flow of the
// browser that started it, with the state it was sent with, once — a
// forged state, a replay, another browser and another request's code
// are refused, and the real callback still works after the attempts that
// are refused before it is used.
func TestOIDCCallbackAttacks(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	victim, attacker := hydraUser("victim"), hydraUser("attacker")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: victim}
	mock := oidctest.New()
	t.Cleanup(mock.Close)
	mk := &oidcSpec{ID: "mock", Mock: mock}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy, mk)})
	h.setUser(attacker.Subject, attacker)
	errorPage := func(b *browser, what, u string) {
		t.Helper()
		if e := b.wantErrorPage(t, what, b.visit(t, u, nil)); e.Code != http.StatusBadRequest || e.Reason != reasonCallback {
			t.Fatalf("%s: error %+v", what, e)
		}
	}

	t.Run("forged state", func(t *testing.T) {
		b := newBrowser(t, in)
		f, to := b.startOIDCLogin(t, "hydra", nil)
		cb := b.toCallback(t, to)
		for what, u := range map[string]string{
			"state with another secret":          withQuery(cb, map[string]string{"state": f.Id + ".forged"}),
			"state of an unknown flow":           withQuery(cb, map[string]string{"state": admRandUUID() + ".forged"}),
			"no state":                           withQuery(cb, map[string]string{"state": ""}),
			"the flow's id alone":                withQuery(cb, map[string]string{"state": f.Id}),
			"state at another provider's path":   strings.Replace(cb.String(), "/callback/hydra", "/callback/mock", 1),
			"forged error with the flow's state": withQuery(cb, map[string]string{"state": f.Id + ".x", "code": "", "error": "access_denied"}),
		} {
			errorPage(b, what, u)
		}
		// A JSON client gets the error itself.
		r, body := do(t, b.hc, "GET", withQuery(cb, map[string]string{"state": f.Id + ".forged"}), hdr{"Accept": "application/json"}, nil)
		if e := decodeError(t, http.StatusBadRequest, body); r.StatusCode != http.StatusBadRequest || e.Error.Reason != reasonCallback {
			t.Fatalf("forged state (JSON): %d %s", r.StatusCode, body)
		}
		// Nothing was taken: the real callback signs in.
		wantStop(t, "real callback after forged ones", b.visit(t, cb.String(), nil), in.publicURL)
		s := b.whoami(t)
		wantOIDCMethods(t, "real callback after forged ones", s, "hydra", "oidc")

		// Replayed, in the same browser and in another: refused, no
		// second session.
		errorPage(b, "replayed callback", cb.String())
		errorPage(newBrowser(t, in), "replayed callback in another browser", cb.String())
		sessions, resp, err := in.identityAdmin().ListIdentitySessions(ctx, s.Identity.Id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if len(sessions) != 1 || sessions[0].Id != s.Id {
			t.Fatalf("sessions of the identity after replays: %d", len(sessions))
		}
	})

	t.Run("another browser", func(t *testing.T) {
		// The attacker's callback (the attacker's provider account) in the
		// victim's browser: no continuity cookie for that flow — refused,
		// and the flow is untouched for its own browser.
		a := newBrowser(t, in)
		_, to := a.startOIDCLogin(t, "hydra", map[string]any{"login_hint": attacker.Subject})
		cb := a.toCallback(t, to)
		v := newBrowser(t, in)
		v.startOIDCLogin(t, "hydra", nil) // the victim's own continuity cookie, for another flow
		errorPage(v, "callback in another browser", cb.String())
		v.wantNoSession(t, "callback in another browser")
		wantStop(t, "callback in its own browser", a.visit(t, cb.String(), nil), in.publicURL)
		s := a.whoami(t)
		if got := credentialIdentifiers(in.identityWith(t, s.Identity.Id), "oidc"); !slices.Equal(got, []string{"hydra:" + attacker.Subject}) {
			t.Fatalf("attacker's own sign-in: %v", got)
		}
	})

	t.Run("code injection", func(t *testing.T) {
		// The code of the attacker's authorization request delivered with
		// the victim's state: the token endpoint refuses it (PKCE: the
		// victim's verifier does not match the attacker's challenge).
		a := newBrowser(t, in)
		_, to := a.startOIDCLogin(t, "hydra", map[string]any{"login_hint": attacker.Subject})
		cbA := a.toCallback(t, to)
		v := newBrowser(t, in)
		fv, to := v.startOIDCLogin(t, "hydra", nil)
		cbV := v.toCallback(t, to)
		before := len(in.identities(t))
		injected := withQuery(cbV, map[string]string{"code": cbA.Query().Get("code")})
		id := wantFlowPage(t, "injected code", v.visit(t, injected, nil), "http://127.0.0.1:4455/login")
		lf, resp, err := v.sdk.FrontendAPI.GetLoginFlow(ctx).Id(id).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if id != fv.Id || len(lf.Ui.Messages) != 1 || lf.Ui.Messages[0].Id != 4000001 ||
			lf.Ui.Messages[0].Text != "The identity provider's answer could not be verified, please try again." {
			t.Fatalf("injected code: flow %s messages %+v", id, lf.Ui.Messages)
		}
		v.wantNoSession(t, "injected code")
		if n := len(in.identities(t)); n != before {
			t.Fatalf("injected code: %d identities, want %d", n, before)
		}
		// The authorization request was used up by the attempt.
		errorPage(v, "the victim's own callback after the injection", cbV.String())
		// The flow itself goes on: the button again signs the victim in.
		_, resp, err = v.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(fv.Id).
			UpdateLoginFlowBody(oidcLoginBody("hydra", sdkCSRF(t, lf.Ui.Nodes), nil)).Execute()
		to = wantLocationChange(t, "retry after the injection", resp, err)
		wantStop(t, "retry after the injection", v.visit(t, to, nil), in.publicURL)
		if s := v.whoami(t); !slices.Equal(credentialIdentifiers(in.identityWith(t, s.Identity.Id), "oidc"), []string{"hydra:" + victim.Subject}) {
			t.Fatalf("retry signed in identity %s", s.Identity.Id)
		}
	})

	t.Run("forged ID token", func(t *testing.T) {
		// Hydra always signs the right nonce: the in-process provider
		// (configured beside it) forges what Hydra would not.
		wrongKey := oidctest.New()
		wrongKey.Close()
		for _, tc := range []struct {
			name string
			set  func(s *oidctest.Server)
		}{
			{"wrong nonce", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { c["nonce"] = "another-nonce" } }},
			{"no nonce", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { delete(c, "nonce") } }},
			{"signed with another key", func(s *oidctest.Server) { s.SignWith = wrongKey.Key() }},
			{"another audience", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { c["aud"] = "another-client" } }},
			{"another issuer", func(s *oidctest.Server) {
				s.MutateIDToken = func(c map[string]any) { c["iss"] = "https://evil.example" }
			}},
			{"expired", func(s *oidctest.Server) {
				s.MutateIDToken = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
			}},
		} {
			mock.Set(tc.set)
			b := newBrowser(t, in)
			f, to := b.startOIDCLogin(t, "mock", nil)
			id := wantFlowPage(t, tc.name, b.visit(t, to, nil), "http://127.0.0.1:4455/login")
			lf, resp, err := b.sdk.FrontendAPI.GetLoginFlow(ctx).Id(id).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			if id != f.Id || len(lf.Ui.Messages) != 1 || lf.Ui.Messages[0].Id != 4000001 ||
				lf.Ui.Messages[0].Text != "The identity provider's answer could not be verified, please try again." {
				t.Fatalf("%s: flow %s messages %+v", tc.name, id, lf.Ui.Messages)
			}
			b.wantNoSession(t, tc.name)
			mock.Set(func(s *oidctest.Server) { s.MutateIDToken, s.SignWith = nil, nil })
		}
		for _, ident := range in.identities(t) {
			if got := credentialIdentifiers(in.identityWith(t, ident.Id), "oidc"); slices.Contains(got, "mock:user-1") {
				t.Fatalf("a forged ID token made an identity: %v", got)
			}
		}
		// The same provider with honest tokens signs in.
		s := newBrowser(t, in).signInWith(t, "mock", nil)
		wantOIDCMethods(t, "honest ID token", s, "mock", "oidc")
	})
}

// reasonUnavailable is the flow message (4000001) of a provider that does
// not answer.
const reasonUnavailable = "The identity provider is unavailable, please try again later."

// TestOIDCProviderDown: the provider goes down between the browser's
// redirect and its return (the code cannot be exchanged), and a provider
// that was never reached cannot be discovered: the flow comes back with a
// 4000001 message, never a 5xx, and nothing is created.
func TestOIDCProviderDown(t *testing.T) {
	t.Parallel()
	h := startHydra(t)
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: hydraUser("down")}
	// Never used before Hydra stops: its discovery has not happened yet.
	cold := &oidcSpec{ID: "cold", Hydra: h, User: hydraUser("cold")}
	in := startInstance(t, instanceOptions{OIDC: oidcProviders(t, hy, cold)})

	b := newBrowser(t, in)
	f, to := b.startOIDCLogin(t, "hydra", nil)
	cb := b.toCallback(t, to)
	h.stop()
	id := wantFlowPage(t, "callback with the provider down", b.visit(t, cb.String(), nil), "http://127.0.0.1:4455/login")
	lf, resp, err := b.sdk.FrontendAPI.GetLoginFlow(ctx).Id(id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if id != f.Id || len(lf.Ui.Messages) != 1 || lf.Ui.Messages[0].Id != 4000001 || lf.Ui.Messages[0].Text != reasonUnavailable {
		t.Fatalf("callback with the provider down: flow %s messages %+v", id, lf.Ui.Messages)
	}
	b.wantNoSession(t, "callback with the provider down")

	// The other provider's button: discovery fails, the flow answers 400
	// with the message (JSON), or 303 back to its page (form).
	f2, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(f2.Id).
		UpdateLoginFlowBody(oidcLoginBody("cold", sdkCSRF(t, f2.Ui.Nodes), nil)).Execute()
	bad := sdkFlowError(t, "button of a provider that is down", resp, err, http.StatusBadRequest)
	if len(bad.UI.Messages) != 1 || bad.UI.Messages[0].ID != 4000001 || bad.UI.Messages[0].Text != reasonUnavailable {
		t.Fatalf("button of a provider that is down: messages %+v", bad.UI.Messages)
	}
	form := url.Values{"method": {"oidc"}, "provider": {"cold"}, "csrf_token": {sdkCSRF(t, f2.Ui.Nodes)}}
	r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/login?flow="+f2.Id,
		hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(form.Encode()))
	wantStatus(t, r, body, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "http://127.0.0.1:4455/login?flow="+f2.Id {
		t.Fatalf("form post with the provider down: Location %s", loc)
	}
	// A sign-up too.
	rf, resp, err := b.sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = b.sdk.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(rf.Id).
		UpdateRegistrationFlowBody(oidcRegistrationBody("cold", sdkCSRF(t, rf.Ui.Nodes), nil, nil)).Execute()
	bad = sdkFlowError(t, "sign-up with a provider that is down", resp, err, http.StatusBadRequest)
	if len(bad.UI.Messages) != 1 || bad.UI.Messages[0].ID != 4000001 || bad.UI.Messages[0].Text != reasonUnavailable {
		t.Fatalf("sign-up with a provider that is down: messages %+v", bad.UI.Messages)
	}
	if n := len(in.identities(t)); n != 0 {
		t.Fatalf("%d identities with the provider down", n)
	}
}
