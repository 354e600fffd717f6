package provider

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// endpoints are the named providers' fixed addresses (tests point them at
// httptest servers).
type endpoints struct {
	google    string // issuer, discovery
	apple     string // issuer, discovery
	gitlab    string // default issuer
	microsoft string // login host; tenants below it
	graph     string // Microsoft Graph (subject_source me)
	github    string // web host (authorize, access_token)
	githubAPI string
	discord   string // API base
}

const (
	googleIssuer = "https://accounts.google.com"
	appleIssuer  = "https://appleid.apple.com"
)

var defaultEndpoints = endpoints{
	google:    googleIssuer,
	apple:     appleIssuer,
	gitlab:    "https://gitlab.com",
	microsoft: "https://login.microsoftonline.com",
	graph:     "https://graph.microsoft.com",
	github:    "https://github.com",
	githubAPI: "https://api.github.com",
	discord:   "https://discord.com/api",
}

// discoveryDoc is the part of the OpenID Provider Metadata we use.
type discoveryDoc struct {
	Issuer               string   `json:"issuer"`
	AuthURL              string   `json:"authorization_endpoint"`
	TokenURL             string   `json:"token_endpoint"`
	UserinfoURL          string   `json:"userinfo_endpoint"`
	JWKSURL              string   `json:"jwks_uri"`
	Algs                 []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
}

type discovered struct {
	discoveryDoc
	keys *gooidc.RemoteKeySet
}

// oidcProvider is OpenID Connect with discovery: generic, and the named
// providers that are OpenID Connect underneath, through the hooks.
type oidcProvider struct {
	*base
	discoveryURL string // the issuer whose metadata we fetch
	// exactIssuer: the metadata's issuer must be discoveryURL (modulo a
	// trailing slash). Microsoft's multi-tenant metadata is a template.
	exactIssuer bool
	// pkceKnown: auto uses PKCE even when the metadata does not say so
	// (Microsoft supports it and does not advertise it).
	pkceKnown bool
	// formPost: response_mode=form_post (Apple asking for email or name).
	formPost bool

	issuerFor func(d *discovered, unverified map[string]any) (string, error)
	authExtra func(st AuthState, o AuthOptions) []oauth2.AuthCodeOption
	scopes    func() []string
	after     func(ctx context.Context, r *Result, tok *oauth2.Token, cb Callback) error
	secret    func() (string, error)
	authStyle oauth2.AuthStyle

	mu   sync.Mutex
	disc *discovered
}

func newGeneric(b *base) *oidcProvider {
	return &oidcProvider{base: b, discoveryURL: b.cfg.IssuerURL, exactIssuer: true}
}

func (p *oidcProvider) FormPost() bool { return p.formPost }

// discover fetches and caches the provider metadata; a failure is not
// cached, so the next sign-in tries again.
func (p *oidcProvider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p.disc, nil
	}
	wellKnown := strings.TrimSuffix(p.discoveryURL, "/") + "/.well-known/openid-configuration"
	body, err := p.getJSON(ctx, wellKnown, "", ErrUnavailable)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var d discoveryDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("%w: discovery document of %s: %v", ErrUnavailable, p.discoveryURL, err)
	}
	if p.exactIssuer && strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(p.discoveryURL, "/") {
		return nil, fmt.Errorf("%w: discovery document of %s names issuer %q", ErrUnavailable, p.discoveryURL, d.Issuer)
	}
	if p.cfg.AuthURL != "" {
		d.AuthURL, d.TokenURL = p.cfg.AuthURL, p.cfg.TokenURL
	}
	local := isLoopbackURL(p.discoveryURL)
	for _, e := range [][2]string{{"issuer", d.Issuer}, {"authorization_endpoint", d.AuthURL}, {"token_endpoint", d.TokenURL}, {"jwks_uri", d.JWKSURL}, {"userinfo_endpoint", d.UserinfoURL}} {
		if e[1] == "" && e[0] == "userinfo_endpoint" {
			continue
		}
		if err := checkDiscoveredURL(e[1], local); err != nil {
			return nil, fmt.Errorf("%w: discovery document of %s: %s: %v", ErrUnavailable, p.discoveryURL, e[0], err)
		}
	}
	keyCtx := gooidc.ClientContext(context.Background(), p.opts.HTTPClient)
	p.disc = &discovered{discoveryDoc: d, keys: gooidc.NewRemoteKeySet(keyCtx, d.JWKSURL)}
	return p.disc, nil
}

// checkDiscoveredURL is checkEndpointURL allowing a query (some providers
// put one on their endpoints), and, unless the configured issuer is itself
// on loopback, refusing loopback hosts: a provider's metadata must not turn
// caddy-kratos into a client of its own machine's services (Caddy's admin
// API), whose answers would come back as claims.
func checkDiscoveredURL(raw string, issuerOnLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if !issuerOnLoopback && isLoopback(u.Hostname()) {
		return fmt.Errorf("%q is on loopback, the issuer is not", raw)
	}
	u.RawQuery = ""
	return checkEndpointURL(u.String())
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && isLoopback(u.Hostname())
}

func (p *oidcProvider) usePKCE(ctx context.Context) (bool, error) {
	switch p.cfg.PKCE {
	case PKCENever:
		return false, nil
	case PKCEForce:
		return true, nil
	}
	if p.pkceKnown {
		return true, nil
	}
	d, err := p.discover(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(d.CodeChallengeMethods, "S256"), nil
}

func (p *oidcProvider) NewAuthState(ctx context.Context) (AuthState, error) {
	pkce, err := p.usePKCE(ctx)
	if err != nil {
		return AuthState{}, err
	}
	return newAuthState(p.cfg.ID, pkce)
}

func (p *oidcProvider) oauth2Config(d *discovered) (*oauth2.Config, error) {
	secret := p.cfg.ClientSecret
	if p.secret != nil {
		s, err := p.secret()
		if err != nil {
			return nil, err
		}
		secret = s
	}
	scopes := p.cfg.Scope
	if p.scopes != nil {
		scopes = p.scopes()
	}
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: secret, Scopes: scopes, RedirectURL: p.redirect,
		Endpoint: oauth2.Endpoint{AuthURL: d.AuthURL, TokenURL: d.TokenURL, AuthStyle: p.authStyle},
	}, nil
}

func (p *oidcProvider) AuthCodeURL(ctx context.Context, st AuthState, o AuthOptions) (string, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	oc, err := p.oauth2Config(d)
	if err != nil {
		return "", err
	}
	opts := p.authParams(st, o, true)
	if p.authExtra != nil {
		opts = append(opts, p.authExtra(st, o)...)
	}
	if p.formPost {
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "form_post"))
	}
	return oc.AuthCodeURL(st.State, opts...), nil
}

func (p *oidcProvider) Exchange(ctx context.Context, st AuthState, cb Callback) (*Result, error) {
	if err := p.checkCallback(st, cb); err != nil {
		return nil, err
	}
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	oc, err := p.oauth2Config(d)
	if err != nil {
		return nil, err
	}
	tok, err := p.exchangeCode(ctx, oc, st, cb.Code)
	if err != nil {
		return nil, err
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, fmt.Errorf("%w: the token response has no id_token", ErrToken)
	}
	idRaw, err := p.verify(ctx, d, rawID, st, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	merged := idRaw
	if p.cfg.ClaimsSource == ClaimsSourceUserinfo {
		if merged, err = p.userinfo(ctx, d, tok.AccessToken, idRaw); err != nil {
			return nil, err
		}
	}
	r := &Result{Claims: claimsFromRaw(merged), AAL: p.aal(idRaw), Tokens: tokensOf(tok, rawID)}
	if p.after != nil {
		if err := p.after(ctx, r, tok, cb); err != nil {
			return nil, err
		}
	}
	if err := r.Claims.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// signingAlgs are the asymmetric algorithms go-oidc verifies; a provider
// advertising HS256 does not get to have its ID tokens checked with the
// client secret.
var signingAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// verify checks the ID token (signature against the provider's keys,
// issuer, audience, expiry, then nonce, authorized party and at_hash) and
// returns its claims.
func (p *oidcProvider) verify(ctx context.Context, d *discovered, raw string, st AuthState, accessToken string) (map[string]any, error) {
	issuer := d.Issuer
	if p.issuerFor != nil {
		unverified, err := unverifiedPayload(raw)
		if err != nil {
			return nil, err
		}
		if issuer, err = p.issuerFor(d, unverified); err != nil {
			return nil, err
		}
	}
	var algs []string
	for _, a := range d.Algs {
		if slices.Contains(signingAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	v := gooidc.NewVerifier(issuer, d.keys, &gooidc.Config{ClientID: p.cfg.ClientID, SupportedSigningAlgs: algs, Now: p.opts.Now})
	tok, err := v.Verify(gooidc.ClientContext(ctx, p.opts.HTTPClient), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	if st.Nonce == "" || subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(st.Nonce)) != 1 {
		return nil, fmt.Errorf("%w: nonce mismatch", ErrToken)
	}
	var rawClaims json.RawMessage
	if err := tok.Claims(&rawClaims); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	claims, err := decodeRaw(rawClaims)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	// OpenID Connect Core 3.1.3.7: with several audiences the authorized
	// party must be us; when azp is there, it must be us anyway.
	azp, hasAZP := claims["azp"].(string)
	if (hasAZP && azp != p.cfg.ClientID) || (!hasAZP && len(tok.Audience) > 1) {
		return nil, fmt.Errorf("%w: the token was issued to another party (azp %q)", ErrToken, azp)
	}
	// A forced login must be a fresh one where the provider says when it
	// was (auth_time; a minute of clock skew).
	if at := intClaim(claims["auth_time"]); st.ForceLogin && at != 0 && at < st.Created-60 {
		return nil, fmt.Errorf("%w: the provider did not authenticate the user again (auth_time %d)", ErrToken, at)
	}
	if tok.AccessTokenHash != "" {
		if err := tok.VerifyAccessToken(accessToken); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrToken, err)
		}
	}
	return claims, nil
}

// userinfo fetches the userinfo claims and fills in what they lack from
// the ID token. The userinfo answer must be about the ID token's subject
// (OpenID Connect Core 5.3.2: token substitution).
func (p *oidcProvider) userinfo(ctx context.Context, d *discovered, accessToken string, idRaw map[string]any) (map[string]any, error) {
	if d.UserinfoURL == "" {
		return nil, fmt.Errorf("%w: claims_source userinfo, but the provider has no userinfo_endpoint", ErrUnavailable)
	}
	body, err := p.getJSON(ctx, d.UserinfoURL, accessToken, ErrClaims)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	info, err := decodeRaw(body)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %v", ErrClaims, err)
	}
	if sub, _ := info["sub"].(string); sub == "" || sub != idRaw["sub"] {
		return nil, fmt.Errorf("%w: the userinfo subject %q is not the ID token's", ErrClaims, sub)
	}
	for k, v := range idRaw {
		if _, ok := info[k]; !ok {
			info[k] = v
		}
	}
	return info, nil
}

// aal is the assurance the provider asserts in its verified ID token, when
// the configuration trusts it.
func (p *oidcProvider) aal(idRaw map[string]any) string {
	if acr, ok := idRaw["acr"].(string); ok && slices.Contains(p.cfg.AAL2ACRValues, acr) {
		return "aal2"
	}
	for _, m := range stringList(idRaw["amr"]) {
		if slices.Contains(p.cfg.AAL2AMRValues, m) {
			return "aal2"
		}
	}
	return "aal1"
}

// unverifiedPayload reads a JWT's claims without checking it, only to pick
// the issuer it must then be verified against (Microsoft's tid).
func unverifiedPayload(raw string) (map[string]any, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrToken)
	}
	payload, err := base64URLDecode(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrToken, err)
	}
	m, err := decodeRaw(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	return m, nil
}
