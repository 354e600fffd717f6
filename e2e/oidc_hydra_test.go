package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/mapper"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
)

// TestOIDCHydraHarness proves the OpenID provider harness and the oidc
// provider package against a real provider, without caddy-kratos: an
// authorization-code flow with PKCE (which this Hydra enforces) and nonce,
// the ID token verified, the claims mapped to traits, then a replayed code,
// a wrong PKCE verifier, an authorization without PKCE, a denied login and
// the provider going down.
func TestOIDCHydraHarness(t *testing.T) {
	start := time.Now()
	h := startHydra(t)
	t.Logf("hydra ready in %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	// Nothing listens there: the browser stops at the redirect to it.
	public, _ := url.Parse("http://127.0.0.1:4455/")
	callback := public.String() + "self-service/methods/oidc/callback/hydra"
	ada := oidcUser{
		Subject: "ada-" + randHex(4),
		Claims:  map[string]any{"email": "Ada@Example.com", "email_verified": true, "given_name": "Ada", "family_name": "Lovelace", "locale": "en"},
		AMR:     []string{"pwd", "otp"},
	}
	cl := h.registerClient(t, []string{callback}, ada)
	cfg := provider.Config{
		ID: "hydra", Provider: provider.KindGeneric, ClientID: cl.ID, ClientSecret: cl.Secret, IssuerURL: h.Issuer,
		Scope: []string{"openid", "email", "profile", "offline_access"}, AAL2AMRValues: []string{"otp"},
	}
	p, err := provider.New(cfg, provider.Options{PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	if p.RedirectURL() != callback {
		t.Fatalf("redirect URL %q", p.RedirectURL())
	}

	signIn := func(p provider.Provider) (provider.AuthState, provider.Callback) {
		t.Helper()
		st, err := p.NewAuthState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		authURL, err := p.AuthCodeURL(ctx, st, provider.AuthOptions{})
		if err != nil {
			t.Fatal(err)
		}
		back := browseToCallback(t, authURL, callback)
		return st, provider.ParseCallback(back.Query())
	}

	st, cb := signIn(p)
	if st.PKCEVerifier == "" || st.Nonce == "" {
		t.Fatalf("auth state %+v: Hydra's discovery advertises S256, so auto uses PKCE", st)
	}
	if cb.State != st.State || cb.Code == "" {
		t.Fatalf("callback %+v", cb)
	}
	r, err := p.Exchange(ctx, st, cb)
	if err != nil {
		t.Fatalf("exchange: %v\nhydra:\n%s", err, h.logs.tail(4096))
	}
	c := r.Claims
	if c.Subject != ada.Subject || c.Issuer != h.Issuer || c.Email != "Ada@Example.com" || !c.EmailVerified || c.GivenName != "Ada" || c.Locale != "en" || c.Nonce != st.Nonce {
		t.Fatalf("claims %+v", c)
	}
	if r.AAL != "aal2" { // amr otp, trusted by aal2_amr_values
		t.Fatalf("AAL %q (amr %v)", r.AAL, c.RawClaims["amr"])
	}
	if r.Tokens.AccessToken == "" || r.Tokens.RefreshToken == "" || r.Tokens.IDToken == "" {
		t.Fatalf("tokens %+v", r.Tokens)
	}
	m, err := mapper.Default().Map(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var traits map[string]any
	if err := json.Unmarshal(m.Traits, &traits); err != nil {
		t.Fatal(err)
	}
	name, _ := traits["name"].(map[string]any)
	if traits["email"] != "Ada@Example.com" || name["first"] != "Ada" || name["last"] != "Lovelace" ||
		len(m.VerifiedAddresses) != 1 || m.VerifiedAddresses[0] != (mapper.VerifiedAddress{Value: "ada@example.com", Via: "email"}) {
		t.Fatalf("mapped traits %s, verified %+v", m.Traits, m.VerifiedAddresses)
	}

	// The same code again: Hydra refuses it.
	if _, err := p.Exchange(ctx, st, cb); !errors.Is(err, provider.ErrCodeRejected) {
		t.Fatalf("replayed code: %v", err)
	}

	// Another browser's verifier for a fresh code: refused.
	st, cb = signIn(p)
	wrong := st
	wrong.PKCEVerifier = "a-verifier-of-another-browser-aaaaaaaaaaaaaaaaaaaa"
	if _, err := p.Exchange(ctx, wrong, cb); !errors.Is(err, provider.ErrCodeRejected) {
		t.Fatalf("wrong PKCE verifier: %v", err)
	}

	// Userinfo as claims source: same subject, the claims from Hydra's userinfo.
	ucfg := cfg
	ucfg.ClaimsSource = provider.ClaimsSourceUserinfo
	up, err := provider.New(ucfg, provider.Options{PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	st, cb = signIn(up)
	if r, err := up.Exchange(ctx, st, cb); err != nil || r.Claims.Subject != ada.Subject || r.Claims.Email != "Ada@Example.com" {
		t.Fatalf("userinfo: %v %+v", err, r)
	}

	// Without PKCE this Hydra refuses the authorization: proof that the
	// flows above really sent it.
	ncfg := cfg
	ncfg.PKCE = provider.PKCENever
	np, err := provider.New(ncfg, provider.Options{PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	st, cb = signIn(np)
	var pe *provider.ProviderError
	if _, err := np.Exchange(ctx, st, cb); !errors.As(err, &pe) || pe.Code != "invalid_request" {
		t.Fatalf("authorization without PKCE: %v", err)
	}

	// A login the user denies comes back as the provider's error.
	h.setUser("deny-me", oidcUser{Subject: "nobody", Deny: true})
	st, err = p.NewAuthState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	authURL, _ := p.AuthCodeURL(ctx, st, provider.AuthOptions{UpstreamParameters: map[string]string{"login_hint": "deny-me"}})
	cb = provider.ParseCallback(browseToCallback(t, authURL, callback).Query())
	if _, err := p.Exchange(ctx, st, cb); !errors.As(err, &pe) || pe.Code != "access_denied" || !errors.Is(err, provider.ErrDenied) {
		t.Fatalf("denied login: %v", err)
	}

	// The provider goes down between the redirect and the callback.
	st, cb = signIn(p)
	h.stop()
	if _, err := p.Exchange(ctx, st, cb); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("provider down: %v", err)
	}
	// Five sign-ins were accepted by the login/consent app (Hydra refuses
	// the one without PKCE only when it would issue the code); the denied
	// one was rejected.
	if logins, consents := h.Logins.Load(), h.Consents.Load(); logins != 5 || consents != 5 {
		t.Fatalf("login/consent app accepted %d logins, %d consents; want 5 and 5", logins, consents)
	}
	t.Logf("whole harness test %s", time.Since(start).Round(time.Millisecond))
}

// TestOIDCHydraSharedUsers: on the shared Hydra, each client signs in its
// own test user, and a login_hint registered with setUser picks another
// (how parallel tests keep their users apart).
func TestOIDCHydraSharedUsers(t *testing.T) {
	h := sharedHydra(t)
	ctx := context.Background()
	public, _ := url.Parse("http://127.0.0.1:4456/")
	callback := public.String() + "self-service/methods/oidc/callback/hydra"
	newProvider := func(sub string) provider.Provider {
		cl := h.registerClient(t, []string{callback}, oidcUser{Subject: sub, Claims: map[string]any{"email": sub + "@example.com"}})
		p, err := provider.New(provider.Config{ID: "hydra", Provider: provider.KindGeneric, ClientID: cl.ID, ClientSecret: cl.Secret, IssuerURL: h.Issuer}, provider.Options{PublicURL: public})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	subject := func(p provider.Provider, hint string) (string, bool) {
		st, err := p.NewAuthState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o := provider.AuthOptions{}
		if hint != "" {
			o.UpstreamParameters = map[string]string{"login_hint": hint}
		}
		authURL, err := p.AuthCodeURL(ctx, st, o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Exchange(ctx, st, provider.ParseCallback(browseToCallback(t, authURL, callback).Query()))
		if err != nil {
			t.Fatal(err)
		}
		return r.Claims.Subject, r.Claims.EmailVerified
	}
	a, b := "a-"+randHex(4), "b-"+randHex(4)
	pa, pb := newProvider(a), newProvider(b)
	if got, _ := subject(pa, ""); got != a {
		t.Fatalf("client a signed in %q", got)
	}
	if got, _ := subject(pb, ""); got != b {
		t.Fatalf("client b signed in %q", got)
	}
	c := "c-" + randHex(4)
	h.setUser(c, oidcUser{Subject: c, Claims: map[string]any{"email": c + "@example.com", "email_verified": true}})
	if got, verified := subject(pa, c); got != c || !verified {
		t.Fatalf("login_hint %q signed in %q (verified %v)", c, got, verified)
	}
}
