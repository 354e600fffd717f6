package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider/oidctest"
)

var publicURL, _ = url.Parse("https://auth.example.com/")

func newTestProvider(t *testing.T, srv *oidctest.Server, edit func(*Config)) Provider {
	t.Helper()
	c := Config{ID: "corp", Provider: KindGeneric, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, IssuerURL: srv.Issuer}
	if edit != nil {
		edit(&c)
	}
	p, err := New(c, Options{PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signIn runs one authorization against the test server and returns the
// state, the authorization URL's query and the callback.
func signIn(t *testing.T, srv *oidctest.Server, p Provider, o AuthOptions) (AuthState, url.Values, Callback) {
	t.Helper()
	ctx := context.Background()
	st, err := p.NewAuthState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.AuthCodeURL(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	back, err := srv.Authorize(u)
	if err != nil {
		t.Fatal(err)
	}
	return st, pu.Query(), ParseCallback(back)
}

func TestGenericSignIn(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	p := newTestProvider(t, srv, nil)
	if got := p.RedirectURL(); got != "https://auth.example.com/self-service/methods/oidc/callback/corp" {
		t.Fatalf("RedirectURL = %q", got)
	}
	st, q, cb := signIn(t, srv, p, AuthOptions{UpstreamParameters: map[string]string{"login_hint": "ada@example.com", "foo": "bar"}})
	if len(st.State) != 43 || len(st.Nonce) != 43 || len(st.PKCEVerifier) != 43 || st.Provider != "corp" {
		t.Fatalf("auth state %+v", st)
	}
	for k, want := range map[string]string{
		"state": st.State, "nonce": st.Nonce, "code_challenge_method": "S256", "response_type": "code",
		"client_id": srv.ClientID, "redirect_uri": p.RedirectURL(), "scope": "openid email profile", "login_hint": "ada@example.com",
	} {
		if q.Get(k) != want {
			t.Errorf("authorization %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Has("foo") || q.Get("code_challenge") == "" || q.Has("prompt") {
		t.Errorf("authorization query %v", q)
	}
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Claims
	if c.Subject != "user-1" || c.Issuer != srv.Issuer || c.Email != "user@example.com" || !c.EmailVerified || c.GivenName != "Ada" || c.FamilyName != "Lovelace" || c.Nonce != st.Nonce {
		t.Fatalf("claims %+v", c)
	}
	if r.AAL != "aal1" || r.Tokens.AccessToken == "" || r.Tokens.RefreshToken == "" || r.Tokens.IDToken == "" || r.Tokens.Expiry.IsZero() {
		t.Fatalf("result %+v", r)
	}
	if c.RawClaims["aud"] != srv.ClientID || c.RawClaims["at_hash"] == nil {
		t.Fatalf("raw claims %v", c.RawClaims)
	}
	if v := srv.TokenRequests[0].Get("code_verifier"); v != st.PKCEVerifier {
		t.Fatalf("token request code_verifier %q", v)
	}
	// The code is single use: a replayed callback is refused by the provider.
	if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrCodeRejected) {
		t.Fatalf("replayed code: %v", err)
	}
}

func TestGenericPKCEModes(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	for _, tc := range []struct {
		mode   string
		noPKCE bool // discovery leaves S256 out
		want   bool
	}{{"auto", false, true}, {"auto", true, false}, {"never", false, false}, {"force", true, true}} {
		srv.Set(func(s *oidctest.Server) { s.NoPKCE = tc.noPKCE })
		p := newTestProvider(t, srv, func(c *Config) { c.PKCE = tc.mode })
		st, q, cb := signIn(t, srv, p, AuthOptions{})
		if (st.PKCEVerifier != "") != tc.want || (q.Get("code_challenge") != "") != tc.want {
			t.Errorf("pkce %s (advertised %v): verifier %q challenge %q", tc.mode, !tc.noPKCE, st.PKCEVerifier, q.Get("code_challenge"))
		}
		if _, err := p.Exchange(context.Background(), st, cb); err != nil {
			t.Errorf("pkce %s: %v", tc.mode, err)
		}
	}
}

func TestGenericPKCEVerifierChecked(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	p := newTestProvider(t, srv, nil)
	st, _, cb := signIn(t, srv, p, AuthOptions{})
	st.PKCEVerifier = strings.Repeat("a", 43) // another browser's verifier
	if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrCodeRejected) {
		t.Fatalf("wrong verifier: %v", err)
	}
}

func TestGenericCallbackChecks(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	p := newTestProvider(t, srv, nil)
	ctx := context.Background()

	st, _, cb := signIn(t, srv, p, AuthOptions{})
	forged := cb
	forged.State = "forged"
	if _, err := p.Exchange(ctx, st, forged); !errors.Is(err, ErrCallback) || !strings.Contains(err.Error(), "state mismatch") {
		t.Fatalf("forged state: %v", err)
	}
	empty := st
	empty.State = ""
	if _, err := p.Exchange(ctx, empty, Callback{Code: cb.Code}); !errors.Is(err, ErrCallback) {
		t.Fatalf("empty state on both sides: %v", err)
	}
	other := st
	other.Provider = "google"
	if _, err := p.Exchange(ctx, other, cb); !errors.Is(err, ErrCallback) {
		t.Fatalf("state of another provider: %v", err)
	}
	if _, err := p.Exchange(ctx, st, Callback{State: st.State}); !errors.Is(err, ErrCallback) {
		t.Fatalf("no code: %v", err)
	}

	srv.Set(func(s *oidctest.Server) { s.Deny = true })
	st, _, cb = signIn(t, srv, p, AuthOptions{})
	_, err := p.Exchange(ctx, st, cb)
	var pe *ProviderError
	if !errors.Is(err, ErrDenied) || !errors.As(err, &pe) || pe.Code != "access_denied" || pe.Description != "The user denied the request" {
		t.Fatalf("denied: %v", err)
	}
}

// TestGenericIDTokenForgeries: every check of the ID token refuses a token
// that breaks it.
func TestGenericIDTokenForgeries(t *testing.T) {
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		set  func(s *oidctest.Server)
		want string
	}{
		{"wrong nonce", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { c["nonce"] = "other" } }, "nonce mismatch"},
		{"no nonce", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { delete(c, "nonce") } }, "nonce mismatch"},
		{"wrong audience", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { c["aud"] = "other-client" } }, "expected audience"},
		{"wrong issuer", func(s *oidctest.Server) {
			s.MutateIDToken = func(c map[string]any) { c["iss"] = "https://evil.example.com" }
		}, "issued by a different provider"},
		{"expired", func(s *oidctest.Server) {
			s.MutateIDToken = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }
		}, "token is expired"},
		{"foreign key", func(s *oidctest.Server) { s.SignWith = otherKey }, "failed to verify signature"},
		{"azp of another client", func(s *oidctest.Server) { s.MutateIDToken = func(c map[string]any) { c["azp"] = "other-client" } }, "issued to another party"},
		{"several audiences without azp", func(s *oidctest.Server) {
			id := s.ClientID
			s.MutateIDToken = func(c map[string]any) { c["aud"] = []string{id, "other-client"} }
		}, "issued to another party"},
		{"at_hash of another token", func(s *oidctest.Server) {
			s.MutateIDToken = func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }
		}, "access token hash does not match"},
		{"no id_token", func(s *oidctest.Server) { s.NoIDToken = true }, "the token response has no id_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := oidctest.New()
			defer srv.Close()
			srv.Set(tc.set)
			p := newTestProvider(t, srv, nil)
			st, _, cb := signIn(t, srv, p, AuthOptions{})
			r, err := p.Exchange(context.Background(), st, cb)
			if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want ErrToken with %q", r, err, tc.want)
			}
		})
	}
	t.Run("no subject", func(t *testing.T) {
		srv := oidctest.New()
		defer srv.Close()
		srv.SetUser(map[string]any{"email": "x@example.com"})
		p := newTestProvider(t, srv, nil)
		st, _, cb := signIn(t, srv, p, AuthOptions{})
		if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrClaims) {
			t.Fatalf("no sub: %v", err)
		}
	})
}

// TestGenericRefusesHS256: a provider (or an attacker who controls its
// discovery) advertising HS256 does not get tokens MACed with the client
// secret accepted.
func TestGenericRefusesHS256(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	srv.Set(func(s *oidctest.Server) {
		s.MutateDiscovery = func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"HS256"} }
		s.ClientSecret = strings.Repeat("s", 40) // long enough to be an HS256 key
	})
	p := newTestProvider(t, srv, nil).(*oidcProvider)
	st, _, _ := signIn(t, srv, p, AuthOptions{})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(srv.ClientSecret)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"iss":"` + srv.Issuer + `","aud":"` + srv.ClientID + `","sub":"x","nonce":"` + st.Nonce + `","exp":` + jsonInt(time.Now().Add(time.Hour).Unix()) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := obj.CompactSerialize()
	d, err := p.discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Refused at parsing, for its algorithm, before any key is looked at.
	if _, err := p.verify(context.Background(), d, raw, st, ""); !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "unexpected signature algorithm \"HS256\"") {
		t.Fatalf("HS256 token: %v", err)
	}
}

func jsonInt(n int64) string { return strconv.FormatInt(n, 10) }

func TestGenericUserinfo(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	srv.Set(func(s *oidctest.Server) {
		s.Claims = map[string]any{"sub": "user-1", "email": "id@example.com", "acr": "x"}
		s.Userinfo = map[string]any{"sub": "user-1", "email": "info@example.com", "email_verified": "true", "picture": "https://p.example.com/a.png"}
	})
	p := newTestProvider(t, srv, func(c *Config) { c.ClaimsSource = ClaimsSourceUserinfo })
	st, _, cb := signIn(t, srv, p, AuthOptions{})
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Claims
	// userinfo wins, the ID token fills the gaps (iss, acr).
	if c.Email != "info@example.com" || !c.EmailVerified || c.Picture != "https://p.example.com/a.png" || c.Issuer != srv.Issuer || c.RawClaims["acr"] != "x" {
		t.Fatalf("claims %+v", c)
	}

	// A userinfo answer about someone else is refused (token substitution).
	srv.Set(func(s *oidctest.Server) {
		s.Userinfo = map[string]any{"sub": "user-2", "email": "victim@example.com", "email_verified": true}
	})
	st, _, cb = signIn(t, srv, p, AuthOptions{})
	if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrClaims) || !strings.Contains(err.Error(), `userinfo subject "user-2"`) {
		t.Fatalf("userinfo of another subject: %v", err)
	}

	// With the default claims_source, userinfo is not asked.
	p = newTestProvider(t, srv, nil)
	st, _, cb = signIn(t, srv, p, AuthOptions{})
	if r, err = p.Exchange(context.Background(), st, cb); err != nil || r.Claims.Email != "id@example.com" {
		t.Fatalf("id_token source: %v %+v", err, r)
	}
}

func TestGenericAAL(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		acr      any
		amr      any
		acrCfg   []string
		amrCfg   []string
		want     string
		wantAuth string // acr_values asked for with RequestAAL2
	}{
		{"not trusted", "urn:mfa", []string{"mfa"}, nil, nil, "aal1", ""},
		{"acr trusted", "urn:mfa", nil, []string{"urn:mfa"}, nil, "aal2", "urn:mfa"},
		{"acr other", "urn:pwd", nil, []string{"urn:mfa"}, nil, "aal1", "urn:mfa"},
		{"amr trusted", nil, []string{"pwd", "otp"}, nil, []string{"otp", "hwk"}, "aal2", ""},
		{"amr other", nil, []string{"pwd"}, nil, []string{"otp"}, "aal1", ""},
	} {
		claims := map[string]any{"sub": "u"}
		if tc.acr != nil {
			claims["acr"] = tc.acr
		}
		if tc.amr != nil {
			claims["amr"] = tc.amr
		}
		srv.SetUser(claims)
		p := newTestProvider(t, srv, func(c *Config) { c.AAL2ACRValues, c.AAL2AMRValues = tc.acrCfg, tc.amrCfg })
		st, q, cb := signIn(t, srv, p, AuthOptions{RequestAAL2: true})
		r, err := p.Exchange(context.Background(), st, cb)
		if err != nil || r.AAL != tc.want || q.Get("acr_values") != tc.wantAuth {
			t.Errorf("%s: err %v aal %v acr_values %q", tc.name, err, r, q.Get("acr_values"))
			continue
		}
		// The mapper sees them too.
		if acr, _ := tc.acr.(string); r.Claims.ACR != acr || (tc.amr != nil && len(r.Claims.AMR) != len(tc.amr.([]string))) {
			t.Errorf("%s: claims acr %q amr %v", tc.name, r.Claims.ACR, r.Claims.AMR)
		}
	}
}

func TestGenericAuthOptions(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	p := newTestProvider(t, srv, func(c *Config) { c.RequestedClaims = []byte(`{"id_token":{"email":{"essential":true}}}`) })
	st, err := p.NewAuthState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.ForceLogin = true
	u, err := p.AuthCodeURL(context.Background(), st, AuthOptions{UpstreamParameters: map[string]string{"prompt": "select_account", "hd": "example.com", "auth_type": "reauthenticate", "login_hint": strings.Repeat("x", 257)}})
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	if q.Get("prompt") != "login" || q.Get("max_age") != "0" || q.Get("hd") != "example.com" || q.Get("auth_type") != "reauthenticate" || q.Has("login_hint") || q.Get("claims") != `{"id_token":{"email":{"essential":true}}}` {
		t.Fatalf("query %v", q)
	}
}

// TestGenericForcedLoginIsFresh: a refresh asks the provider to
// authenticate again, and an ID token saying the authentication is older
// than the request is refused.
func TestGenericForcedLoginIsFresh(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	p := newTestProvider(t, srv, nil)
	for _, tc := range []struct {
		authTime any
		force    bool
		ok       bool
	}{
		{time.Now().Add(-time.Hour).Unix(), true, false},
		{time.Now().Unix(), true, true},
		{nil, true, true}, // the provider does not say: prompt=login and max_age=0 were asked
		{time.Now().Add(-time.Hour).Unix(), false, true},
	} {
		srv.Set(func(s *oidctest.Server) {
			s.MutateIDToken = func(c map[string]any) {
				if tc.authTime != nil {
					c["auth_time"] = tc.authTime
				}
			}
		})
		st, err := p.NewAuthState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st.ForceLogin = tc.force
		u, _ := p.AuthCodeURL(context.Background(), st, AuthOptions{})
		back, err := srv.Authorize(u)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Exchange(context.Background(), st, ParseCallback(back))
		if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrToken) || !strings.Contains(err.Error(), "did not authenticate the user again"))) {
			t.Errorf("auth_time %v force %v: %v", tc.authTime, tc.force, err)
		}
	}
}

// TestGenericForgedErrorCallback: an error on a callback whose state is not
// this flow's is a forged callback, not the provider's word.
func TestGenericForgedErrorCallback(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	p := newTestProvider(t, srv, nil)
	st, err := p.NewAuthState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	forged := ParseCallback(url.Values{"error": {"access_denied"}, "error_description": {"Your account is locked, call +1 555 0100"}, "state": {"guess"}})
	if _, err := p.Exchange(context.Background(), st, forged); !errors.Is(err, ErrCallback) || errors.Is(err, ErrDenied) {
		t.Fatalf("forged error callback: %v", err)
	}
}

func TestGenericDiscoveryFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("provider down, then up", func(t *testing.T) {
		srv := oidctest.New()
		defer srv.Close()
		srv.Set(func(s *oidctest.Server) { s.Down = true })
		p := newTestProvider(t, srv, nil)
		if _, err := p.NewAuthState(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("down: %v", err)
		}
		srv.Set(func(s *oidctest.Server) { s.Down = false })
		st, _, cb := signIn(t, srv, p, AuthOptions{}) // a failed discovery is not cached
		srv.Set(func(s *oidctest.Server) { s.Down = true })
		if _, err := p.Exchange(ctx, st, cb); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("token endpoint down: %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := oidctest.New()
		p := newTestProvider(t, srv, nil)
		srv.Close()
		if _, err := p.NewAuthState(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("closed: %v", err)
		}
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		srv := oidctest.New()
		defer srv.Close()
		srv.Set(func(s *oidctest.Server) {
			s.MutateDiscovery = func(d map[string]any) { d["issuer"] = "https://evil.example.com" }
		})
		p := newTestProvider(t, srv, nil)
		if _, err := p.NewAuthState(ctx); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `names issuer "https://evil.example.com"`) {
			t.Fatalf("issuer mismatch: %v", err)
		}
	})
	t.Run("trailing slash tolerated", func(t *testing.T) {
		srv := oidctest.New()
		defer srv.Close()
		p := newTestProvider(t, srv, func(c *Config) { c.IssuerURL += "/" })
		st, _, cb := signIn(t, srv, p, AuthOptions{})
		if _, err := p.Exchange(ctx, st, cb); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http endpoint off loopback", func(t *testing.T) {
		srv := oidctest.New()
		defer srv.Close()
		srv.Set(func(s *oidctest.Server) {
			s.MutateDiscovery = func(d map[string]any) { d["token_endpoint"] = "http://idp.example.com/token" }
		})
		p := newTestProvider(t, srv, nil)
		if _, err := p.NewAuthState(ctx); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "token_endpoint") {
			t.Fatalf("http token endpoint: %v", err)
		}
	})
	t.Run("huge discovery document", func(t *testing.T) {
		big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":"`))
			chunk := []byte(strings.Repeat("a", 64<<10))
			for range 40 {
				_, _ = w.Write(chunk)
			}
		}))
		defer big.Close()
		p, err := New(Config{ID: "big", Provider: KindGeneric, ClientID: "c", ClientSecret: "s", IssuerURL: big.URL}, Options{PublicURL: publicURL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.NewAuthState(ctx); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "exceeds 1 MiB") {
			t.Fatalf("huge discovery: %v", err)
		}
	})
}

// TestDiscoveredEndpointsStayOffLoopback: a remote provider's metadata
// cannot point caddy-kratos at its own machine's services.
func TestDiscoveredEndpointsStayOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		url        string
		issuerHere bool
		ok         bool
	}{
		{"https://idp.example.com/jwks", false, true},
		{"https://idp.example.com/jwks?x=1", false, true},
		{"http://127.0.0.1:2019/config/", false, false},
		{"https://127.0.0.1/jwks", false, false},
		{"https://localhost./jwks", false, false},
		{"https://admin.localhost/jwks", false, false},
		{"http://[::1]:2019/", false, false},
		{"http://[::ffff:127.0.0.1]:2019/", false, false},
		{"http://0.0.0.0:2019/", false, false},
		{"http://idp.example.com/jwks", false, false},
		{"http://127.0.0.1:4444/jwks", true, true}, // a provider on this machine (tests)
		{"", false, false},
	} {
		if err := checkDiscoveredURL(tc.url, tc.issuerHere); (err == nil) != tc.ok {
			t.Errorf("%q (issuer on loopback %v): %v", tc.url, tc.issuerHere, err)
		}
	}
}

// TestGuardedClient: the default client dials neither this machine (unless
// the provider is configured here) nor link-local addresses, by the
// address dialled: a DNS name for 127.0.0.1 does not get around it.
func TestGuardedClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer srv.Close()
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	for _, u := range []string{srv.URL, byName} {
		if _, err := guardedClient(false).Get(u); err == nil || !strings.Contains(err.Error(), "refused: this machine") {
			t.Errorf("GET %s off-loopback client: %v", u, err)
		}
		resp, err := guardedClient(true).Get(u)
		if err != nil {
			t.Errorf("GET %s loopback client: %v", u, err)
		} else {
			resp.Body.Close()
		}
	}
	// Refused before connecting: no packet leaves for the metadata address.
	if _, err := guardedClient(true).Get("http://169.254.169.254/latest/meta-data/"); err == nil || !strings.Contains(err.Error(), "refused: link-local") {
		t.Errorf("link-local: %v", err)
	}
	// A provider configured off loopback gets the guarded client.
	p, err := New(Config{ID: "corp", Provider: KindGeneric, ClientID: "c", ClientSecret: "s", IssuerURL: "https://idp.example.com"}, Options{PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.(*oidcProvider).opts.HTTPClient.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "refused: this machine") {
		t.Errorf("provider client: %v", err)
	}
}
