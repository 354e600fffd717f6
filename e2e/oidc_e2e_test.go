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
	// And the sign-up button of the same account signs in too.
	b3 := newBrowser(t, in)
	_, to = b3.startOIDCRegistration(t, "hydra", nil)
	wantStop(t, "sign-up of a known account", b3.visit(t, to, nil), in.publicURL)
	if s3 := b3.whoami(t); s3.Identity.Id != s.Identity.Id {
		t.Fatalf("sign-up of a known account made identity %s", s3.Identity.Id)
	}
	if n := len(in.identities(t)); n != 1 {
		t.Fatalf("%d identities after three sign-ins, want 1", n)
	}
}
