package e2e

// Social sign-in end to end (issue 15): caddy-kratos with Ory Hydra as the
// OpenID provider (oidc_provider_test.go), driven with Ory's SDK and a
// browser that follows the redirects through Hydra and its login/consent
// app (oidc_helpers_test.go). The engine tests (flows/oidc_test.go) are
// the specification; these check the same against the real binary and a
// real provider. They run when KRATOS_TEST_OIDC=1 or CI=true.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
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
	if f.Ui.Nodes[1].Group != "oidc" {
		t.Fatalf("the provider's button is not first after csrf_token: %+v", f.Ui.Nodes[1])
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
	wantButton(t, "registration flow", rf.Ui.Nodes, "provider", "hydra", 1040002, "Sign up with Hydra")
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
