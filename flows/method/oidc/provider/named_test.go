package provider

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider/oidctest"
)

func newNamed(t *testing.T, c Config, ep endpoints) Provider {
	t.Helper()
	p, err := New(c, Options{PublicURL: publicURL, endpoints: &ep})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGoogle(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	cfg := Config{ID: "google", Provider: KindGoogle, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Scope: []string{"email", "profile", "offline_access"}}
	p := newNamed(t, cfg, endpoints{google: srv.Issuer})
	srv.SetUser(map[string]any{"sub": "g-1", "email": "a@gmail.com", "email_verified": true})
	st, q, cb := signIn(t, srv, p, AuthOptions{})
	// Google refuses offline_access as a scope: it becomes access_type=offline.
	if q.Get("scope") != "openid email profile" || q.Get("access_type") != "offline" || q.Has("hd") {
		t.Fatalf("query %v", q)
	}
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil || r.Claims.Subject != "g-1" || !r.Claims.EmailVerified {
		t.Fatalf("%v %+v", err, r)
	}

	// hd: sent, and enforced on the verified ID token.
	cfg.HostedDomains = []string{"example.com"}
	p = newNamed(t, cfg, endpoints{google: srv.Issuer})
	for _, tc := range []struct {
		hd   any
		want error
	}{{"example.com", nil}, {"evil.com", ErrNotAllowed}, {nil, ErrNotAllowed}} {
		claims := map[string]any{"sub": "g-2", "email": "b@example.com", "email_verified": true}
		if tc.hd != nil {
			claims["hd"] = tc.hd
		}
		srv.SetUser(claims)
		st, q, cb := signIn(t, srv, p, AuthOptions{UpstreamParameters: map[string]string{"hd": "evil.com"}})
		if q.Get("hd") != "example.com" {
			t.Fatalf("hd sent %q (the configured domain wins over the upstream parameter)", q.Get("hd"))
		}
		if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Errorf("hd %v: %v, want %v", tc.hd, err, tc.want)
		}
	}
	cfg.HostedDomains = []string{"example.com", "example.org"}
	p = newNamed(t, cfg, endpoints{google: srv.Issuer})
	if _, q, _ := signIn(t, srv, p, AuthOptions{}); q.Get("hd") != "*" {
		t.Fatalf("hd with two domains = %q", q.Get("hd"))
	}
}

func TestGitLab(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	srv.Set(func(s *oidctest.Server) {
		s.Claims = map[string]any{"sub": "42"}
		s.Userinfo = map[string]any{"sub": "42", "email": "dev@example.com", "email_verified": true, "nickname": "dev", "groups": []string{"a"}}
	})
	p := newNamed(t, Config{ID: "gitlab", Provider: KindGitLab, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret}, endpoints{gitlab: srv.Issuer})
	st, _, cb := signIn(t, srv, p, AuthOptions{})
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil || r.Claims.Email != "dev@example.com" || r.Claims.Nickname != "dev" || r.Claims.Issuer != srv.Issuer {
		t.Fatalf("%v %+v", err, r)
	}
	// A self-managed instance by issuer_url.
	p = newNamed(t, Config{ID: "gl", Provider: KindGitLab, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, IssuerURL: srv.Issuer}, endpoints{gitlab: "https://gitlab.invalid"})
	st, _, cb = signIn(t, srv, p, AuthOptions{})
	if _, err := p.Exchange(context.Background(), st, cb); err != nil {
		t.Fatal(err)
	}
}

const tenantA = "11111111-2222-3333-4444-555555555555"

func TestMicrosoft(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.0/me" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"id":"graph-id-7","displayName":"Ada"}`))
	}))
	defer graph.Close()
	// The multi-tenant metadata's issuer is a template; each token names its
	// tenant in iss and tid.
	srv.Set(func(s *oidctest.Server) {
		base := s.URL
		s.MutateDiscovery = func(d map[string]any) { d["issuer"] = base + "/{tenantid}/v2.0" }
	})
	ep := endpoints{microsoft: srv.URL, graph: graph.URL}
	token := func(tid, iss string) {
		srv.Set(func(s *oidctest.Server) {
			s.MutateIDToken = func(c map[string]any) { c["tid"] = tid; c["iss"] = iss }
		})
	}
	cfg := Config{ID: "ms", Provider: KindMicrosoft, ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, MicrosoftTenant: "common"}
	p := newNamed(t, cfg, ep)
	srv.SetUser(map[string]any{"sub": "ms-sub", "email": "ada@contoso.com"})

	token(tenantA, srv.URL+"/"+tenantA+"/v2.0")
	st, q, cb := signIn(t, srv, p, AuthOptions{})
	if q.Get("code_challenge") == "" { // Microsoft supports PKCE without advertising it
		t.Fatalf("no PKCE for microsoft: %v", q)
	}
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil || r.Claims.Subject != "ms-sub" || r.Claims.EmailVerified {
		t.Fatalf("%v %+v (Microsoft's email is not verified by default)", err, r)
	}

	for _, tc := range []struct {
		name, tenant, tid, iss string
		want                   error
		msg                    string
	}{
		{"iss of another tenant than tid", "common", tenantA, srv.URL + "/" + consumersTenant + "/v2.0", ErrToken, "issued by a different provider"},
		{"tid not a uuid", "common", "../x", srv.URL + "/../x/v2.0", ErrToken, "is not a tenant id"},
		{"organizations refuses personal accounts", "organizations", consumersTenant, srv.URL + "/" + consumersTenant + "/v2.0", ErrNotAllowed, "personal Microsoft accounts may not sign in"},
		{"consumers refuses work accounts", "consumers", tenantA, srv.URL + "/" + tenantA + "/v2.0", ErrNotAllowed, "only personal Microsoft accounts"},
	} {
		c := cfg
		c.MicrosoftTenant = tc.tenant
		p := newNamed(t, c, ep)
		token(tc.tid, tc.iss)
		st, _, cb := signIn(t, srv, p, AuthOptions{})
		if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	// A single tenant's metadata names its own issuer: a token of another
	// tenant does not match it.
	srv.Set(func(s *oidctest.Server) {
		base := s.URL
		s.MutateDiscovery = func(d map[string]any) { d["issuer"] = base + "/" + tenantA + "/v2.0" }
	})
	single := cfg
	single.MicrosoftTenant = "contoso.onmicrosoft.com"
	single.SubjectSource = SubjectSourceMe
	p = newNamed(t, single, ep)
	other := "99999999-2222-3333-4444-555555555555"
	token(other, srv.URL+"/"+other+"/v2.0")
	st, _, cb = signIn(t, srv, p, AuthOptions{})
	if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrToken) {
		t.Fatalf("other tenant on a single-tenant app: %v", err)
	}
	token(tenantA, srv.URL+"/"+tenantA+"/v2.0")
	srv.SetUser(map[string]any{"sub": "ms-sub", "email": "ada@contoso.com", "xms_edov": true})
	st, _, cb = signIn(t, srv, p, AuthOptions{})
	r, err = p.Exchange(context.Background(), st, cb)
	if err != nil || r.Claims.Subject != "graph-id-7" || !r.Claims.EmailVerified {
		t.Fatalf("subject_source me / xms_edov: %v %+v", err, r)
	}
}

func TestApple(t *testing.T) {
	srv := oidctest.New()
	defer srv.Close()
	keyPEM, key := appleKeyPEM(t)
	var mu sync.Mutex
	var secrets []string
	srv.Set(func(s *oidctest.Server) {
		s.CheckClientSecret = func(secret string) bool {
			mu.Lock()
			secrets = append(secrets, secret)
			mu.Unlock()
			return checkAppleSecret(secret, &key.PublicKey, "TEAM1", "KEY1", s.ClientID) == nil
		}
		s.Claims = map[string]any{"sub": "apple-1", "email": "x@privaterelay.appleid.com", "email_verified": "true", "is_private_email": "true"}
	})
	cfg := Config{ID: "apple", Provider: KindApple, ClientID: srv.ClientID, AppleTeamID: "TEAM1", ApplePrivateKeyID: "KEY1", ApplePrivateKey: keyPEM}
	p := newNamed(t, cfg, endpoints{apple: srv.Issuer})
	if !p.FormPost() {
		t.Fatal("apple with the email scope answers with form_post")
	}
	st, q, cb := signIn(t, srv, p, AuthOptions{})
	if q.Get("response_mode") != "form_post" || q.Get("scope") != "openid email name" {
		t.Fatalf("query %v", q)
	}
	// The unsigned user field gives the name, never the email.
	cb.User = `{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"victim@example.com"}`
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Claims
	if c.Email != "x@privaterelay.appleid.com" || !c.EmailVerified || c.GivenName != "Ada" || c.FamilyName != "Lovelace" || c.LastName != "Lovelace" || c.Name != "Ada Lovelace" {
		t.Fatalf("claims %+v", c)
	}
	if len(secrets) != 1 || srv.TokenRequests[0].Get("client_secret") == "" {
		t.Fatalf("the client secret JWT goes in the body: %d secrets, form %v", len(secrets), srv.TokenRequests[0])
	}
	// Without email and name, Apple answers with a plain query redirect.
	cfg.Scope = []string{"openid"}
	if p := newNamed(t, cfg, endpoints{apple: srv.Issuer}); p.FormPost() {
		t.Fatal("form_post without email or name")
	}
}

func checkAppleSecret(secret string, pub *ecdsa.PublicKey, team, kid, clientID string) error {
	tok, err := jwt.ParseSigned(secret, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return err
	}
	if tok.Headers[0].KeyID != kid {
		return errors.New("kid")
	}
	var c jwt.Claims
	if err := tok.Claims(pub, &c); err != nil {
		return err
	}
	return c.ValidateWithLeeway(jwt.Expected{Issuer: team, Subject: clientID, AnyAudience: jwt.Audience{appleIssuer}, Time: time.Now()}, 0)
}

// fakeOAuth serves the token endpoint and user API of an OAuth provider.
type fakeOAuth struct {
	*httptest.Server
	mu       sync.Mutex
	scope    string
	routes   map[string]string // path → JSON body
	status   map[string]int
	tokenReq url.Values
}

func newFakeOAuth(tokenPath string) *fakeOAuth {
	f := &fakeOAuth{routes: map[string]string{}, status: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == tokenPath {
			_ = r.ParseForm()
			f.tokenReq = r.PostForm
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "bearer", "scope": f.scope})
			return
		}
		if r.Header.Get("Authorization") != "Bearer at-1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, ok := f.routes[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if s := f.status[r.URL.Path]; s != 0 {
			w.WriteHeader(s)
		}
		_, _ = w.Write([]byte(body))
	}))
	return f
}

func stateAndCallback(t *testing.T, p Provider) (AuthState, Callback, url.Values) {
	t.Helper()
	st, err := p.NewAuthState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.AuthCodeURL(context.Background(), st, AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	return st, Callback{Code: "code-1", State: st.State}, pu.Query()
}

func TestGitHub(t *testing.T) {
	f := newFakeOAuth("/login/oauth/access_token")
	defer f.Close()
	f.scope = "read:user,user:email"
	f.routes["/user"] = `{"id":4711,"login":"ada","name":"Ada L","email":"public@example.com","blog":"https://ada.example.com","avatar_url":"https://a.example.com/ada.png","html_url":"https://github.com/ada","updated_at":"2024-01-02T03:04:05Z"}`
	f.routes["/user/emails"] = `[{"email":"other@example.com","primary":false,"verified":true},{"email":"Ada@Example.com","primary":true,"verified":true}]`
	p := newNamed(t, Config{ID: "github", Provider: KindGitHub, ClientID: "c", ClientSecret: "s"}, endpoints{github: f.URL, githubAPI: f.URL})
	st, cb, q := stateAndCallback(t, p)
	if q.Get("scope") != "user:email" || q.Has("nonce") || q.Get("code_challenge") == "" {
		t.Fatalf("query %v", q)
	}
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Claims
	if c.Subject != "4711" || c.Issuer != githubIssuer || c.Email != "Ada@Example.com" || !c.EmailVerified || c.Nickname != "ada" || c.Name != "Ada L" ||
		c.Picture != "https://a.example.com/ada.png" || c.Website != "https://ada.example.com" || c.Profile != "https://github.com/ada" || c.UpdatedAt != 1704164645 || r.AAL != "aal1" {
		t.Fatalf("claims %+v", c)
	}
	if f.tokenReq.Get("code_verifier") != st.PKCEVerifier {
		t.Fatalf("token request %v", f.tokenReq)
	}

	// An unverified primary email stays unverified; the public profile email is never used.
	f.mu.Lock()
	f.routes["/user/emails"] = `[{"email":"ada@example.com","primary":true,"verified":false}]`
	f.mu.Unlock()
	if r, err = p.Exchange(context.Background(), st, cb); err != nil || r.Claims.Email != "ada@example.com" || r.Claims.EmailVerified {
		t.Fatalf("unverified primary: %v %+v", err, r)
	}

	// The user narrowed the scopes: refused, as Kratos does.
	f.mu.Lock()
	f.scope = "read:user"
	f.mu.Unlock()
	if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrScopeMissing) {
		t.Fatalf("scope missing: %v", err)
	}

	// The API failing is the provider being unavailable.
	f.mu.Lock()
	f.scope = "user:email"
	f.status["/user"] = http.StatusBadGateway
	f.mu.Unlock()
	if _, err := p.Exchange(context.Background(), st, cb); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("api down: %v", err)
	}
}

func TestDiscord(t *testing.T) {
	f := newFakeOAuth("/oauth2/token")
	defer f.Close()
	f.scope = "identify email"
	f.routes["/users/@me"] = `{"id":"80351110224678912","username":"nelly","discriminator":"1337","avatar":"a_8342729096ea3675442027381ff50dfe","verified":true,"email":"nelly@discord.com","locale":"en-US"}`
	p := newNamed(t, Config{ID: "discord", Provider: KindDiscord, ClientID: "c", ClientSecret: "s"}, endpoints{discord: f.URL})
	st, cb, q := stateAndCallback(t, p)
	if q.Get("prompt") != "none" || q.Get("scope") != "identify email" || q.Has("code_challenge") || q.Has("nonce") {
		t.Fatalf("query %v", q)
	}
	r, err := p.Exchange(context.Background(), st, cb)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Claims
	if c.Subject != "80351110224678912" || c.Name != "nelly#1337" || c.Nickname != "nelly" || c.Email != "nelly@discord.com" || !c.EmailVerified ||
		c.Locale != "en-US" || c.Issuer != discordIssuer || c.Picture != "https://cdn.discordapp.com/avatars/80351110224678912/a_8342729096ea3675442027381ff50dfe.gif" {
		t.Fatalf("claims %+v", c)
	}
	st.ForceLogin = true
	u, _ := p.AuthCodeURL(context.Background(), st, AuthOptions{})
	if pu, _ := url.Parse(u); pu.Query().Get("prompt") != "consent" || pu.Query().Has("max_age") {
		t.Fatalf("forced login: %s", u)
	}
}
