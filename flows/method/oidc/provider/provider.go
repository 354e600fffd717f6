package provider

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// CallbackPath is the route the provider sends the browser back to, as in
// Kratos: /self-service/methods/oidc/callback/{provider}.
const CallbackPath = "/self-service/methods/oidc/callback/"

// Errors of the exchange, for the method to answer with the right flow
// error. Each returned error wraps exactly one of them.
var (
	// ErrUnavailable: the provider could not be reached or answered 5xx
	// (discovery, keys, token, userinfo, user API). The flow shows an
	// error; nothing is written.
	ErrUnavailable = errors.New("the identity provider is unavailable")
	// ErrDenied: the provider sent the user back with an error (e.g.
	// access_denied); ProviderError has the details.
	ErrDenied = errors.New("the identity provider refused the request")
	// ErrCallback: the callback lacks its code or its state does not match
	// the one this browser's flow started with (forged or replayed).
	ErrCallback = errors.New("the callback does not belong to this flow")
	// ErrCodeRejected: the token endpoint refused the code (used, expired,
	// wrong PKCE verifier or redirect URI).
	ErrCodeRejected = errors.New("the identity provider refused the authorization code")
	// ErrToken: the ID token is missing or fails verification (signature,
	// issuer, audience, authorized party, expiry, nonce, at_hash).
	ErrToken = errors.New("the ID token is not valid")
	// ErrClaims: the verified answer lacks a subject or issuer, or its
	// userinfo belongs to another subject.
	ErrClaims = errors.New("the identity provider's claims are not usable")
	// ErrScopeMissing: the user did not grant a configured scope.
	ErrScopeMissing = errors.New("the identity provider did not grant every requested scope")
	// ErrNotAllowed: the account is outside what the provider config admits
	// (Google hd, Microsoft organizations).
	ErrNotAllowed = errors.New("this account may not sign in with this provider")
)

// ProviderError is the error a provider put on the callback (RFC 6749
// 4.1.2.1). It wraps ErrDenied.
type ProviderError struct {
	Code        string // error, e.g. access_denied
	Description string // error_description
}

func (e *ProviderError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("%s: %s (%s)", ErrDenied, e.Code, e.Description)
	}
	return fmt.Sprintf("%s: %s", ErrDenied, e.Code)
}

func (e *ProviderError) Unwrap() error { return ErrDenied }

// Provider is one configured upstream identity provider.
type Provider interface {
	// Config is the validated configuration (defaults filled).
	Config() *Config
	// RedirectURL is this provider's callback URL, which the provider's
	// client registration must list.
	RedirectURL() string
	// NewAuthState draws a fresh state, nonce and (when used) PKCE
	// verifier for one authorization request. The method keeps it in the
	// continuity container bound to the browser, never in the URL.
	NewAuthState(ctx context.Context) (AuthState, error)
	// AuthCodeURL is where the browser goes to sign in.
	AuthCodeURL(ctx context.Context, st AuthState, opts AuthOptions) (string, error)
	// Exchange checks the callback against st, trades the code for tokens,
	// verifies them and returns the claims. Every failure wraps one of the
	// Err* sentinels.
	Exchange(ctx context.Context, st AuthState, cb Callback) (*Result, error)
	// FormPost reports whether the provider answers with
	// response_mode=form_post (Apple with the email or name scope): the
	// callback then arrives as a cross-site POST, which carries no
	// SameSite=Lax cookie, so the method re-issues it as a GET (303) to
	// read the continuity cookie.
	FormPost() bool
}

// Options are the deployment's settings every provider needs.
type Options struct {
	// PublicURL is the kratos public URL; callbacks are
	// <PublicURL>/self-service/methods/oidc/callback/<id>.
	PublicURL *url.URL
	// HTTPClient talks to the provider; nil means a client with a 10 s
	// timeout that does not dial this machine (unless the provider is
	// configured on loopback) nor link-local addresses. Responses are read
	// up to a bound either way.
	HTTPClient *http.Client
	// Now is the clock for token expiry and Apple's client secret.
	Now func() time.Time

	endpoints *endpoints // tests: the named providers' fixed URLs
}

// AuthState is what one authorization request is checked against on the
// callback. It is secret: it lives in the method's encrypted continuity
// container and never reaches the browser except as the URL's state.
type AuthState struct {
	Provider     string `json:"provider"`
	State        string `json:"state"`
	Nonce        string `json:"nonce,omitempty"`
	PKCEVerifier string `json:"pkce_verifier,omitempty"`
	// Created is when the state was drawn (Unix seconds).
	Created int64 `json:"created"`
	// ForceLogin asks the provider to authenticate the user again
	// (prompt=login, max_age=0), for a refresh or a privileged settings
	// change: the method sets it before AuthCodeURL. The ID token's
	// auth_time, when present, must then not be older than Created.
	ForceLogin bool `json:"force_login,omitempty"`
}

// AuthOptions are the per-request parts of the authorization URL.
type AuthOptions struct {
	// UpstreamParameters from the submit body; only Kratos's login_hint,
	// hd, prompt and auth_type are passed on.
	UpstreamParameters map[string]string
	// RequestAAL2 asks for the configured aal2_acr_values (acr_values),
	// for a flow that needs aal2.
	RequestAAL2 bool
}

// Callback is what the provider sent back, from the query or (form_post)
// the body.
type Callback struct {
	Code             string
	State            string
	Error            string
	ErrorDescription string
	// User is Apple's `user` form field (the name, on the first sign-in
	// only). It is not signed: only the name is taken from it.
	User string
}

// ParseCallback reads a callback's parameters.
func ParseCallback(v url.Values) Callback {
	return Callback{
		Code: v.Get("code"), State: v.Get("state"),
		Error: v.Get("error"), ErrorDescription: v.Get("error_description"),
		User: v.Get("user"),
	}
}

// Result is a verified sign-in at the provider.
type Result struct {
	Claims *Claims
	// AAL is "aal2" when the provider's acr/amr matched the configured
	// aal2 values, else "aal1".
	AAL string
	// Tokens are stored, encrypted, in the identity's oidc credential.
	Tokens Tokens
}

// Tokens are the provider's tokens (Kratos's initial_* credential fields).
type Tokens struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// New builds the provider for a configuration. It validates cfg (a copy)
// but does not contact the provider: discovery happens on first use, so
// Caddy starts while a provider is down, and is retried until it works.
func New(cfg Config, opts Options) (Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.PublicURL == nil || !opts.PublicURL.IsAbs() {
		return nil, errors.New("oidc: the public URL is required")
	}
	if opts.endpoints == nil {
		opts.endpoints = &defaultEndpoints
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = guardedClient(cfg.onLoopback() || *opts.endpoints != defaultEndpoints)
	}
	opts.HTTPClient = limitedClient(opts.HTTPClient)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &base{cfg: &cfg, opts: opts}
	b.redirect = strings.TrimSuffix(opts.PublicURL.String(), "/") + CallbackPath + cfg.ID
	switch cfg.Provider {
	case KindGitHub:
		return newGitHub(b), nil
	case KindDiscord:
		return newDiscord(b), nil
	case KindMicrosoft:
		return newMicrosoft(b), nil
	case KindGoogle:
		return newGoogle(b), nil
	case KindApple:
		return newApple(b)
	case KindGitLab:
		return newGitLab(b), nil
	default:
		return newGeneric(b), nil
	}
}

// base is what every provider kind shares.
type base struct {
	cfg      *Config
	opts     Options
	redirect string
}

func (b *base) Config() *Config     { return b.cfg }
func (b *base) RedirectURL() string { return b.redirect }
func (b *base) FormPost() bool      { return false }

// clientContext makes oauth2 and go-oidc use our bounded client.
func (b *base) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, b.opts.HTTPClient)
}

// randomToken is 32 random bytes, base64url: a state or nonce.
func randomToken() (string, error) {
	var buf [32]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("oidc: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf[:]), nil
}

func newAuthState(provider string, pkce bool) (AuthState, error) {
	st := AuthState{Provider: provider, Created: time.Now().Unix()}
	var err error
	if st.State, err = randomToken(); err != nil {
		return st, err
	}
	if st.Nonce, err = randomToken(); err != nil {
		return st, err
	}
	if pkce {
		st.PKCEVerifier = oauth2.GenerateVerifier()
	}
	return st, nil
}

// checkCallback is the part of the exchange every kind shares: the
// provider's error, the code's presence, and the state in constant time.
func (b *base) checkCallback(st AuthState, cb Callback) error {
	if st.Provider != b.cfg.ID {
		return fmt.Errorf("%w: the flow started with provider %q", ErrCallback, st.Provider)
	}
	// The state first: a provider's error is only believed on a callback
	// that belongs to this flow (anyone can link a victim to
	// callback?error=…), and providers echo the state on errors (RFC 6749
	// 4.1.2.1).
	if st.State == "" || subtle.ConstantTimeCompare([]byte(st.State), []byte(cb.State)) != 1 {
		return fmt.Errorf("%w: state mismatch", ErrCallback)
	}
	if cb.Error != "" {
		return &ProviderError{Code: clip(cb.Error, 64), Description: clip(cb.ErrorDescription, 256)}
	}
	if cb.Code == "" {
		return fmt.Errorf("%w: no authorization code", ErrCallback)
	}
	return nil
}

// authParams are the options every authorization URL carries.
func (b *base) authParams(st AuthState, o AuthOptions, oidc bool) []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	if oidc && st.Nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", st.Nonce))
	}
	if st.PKCEVerifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(st.PKCEVerifier))
	}
	for _, k := range []string{"login_hint", "hd", "prompt", "auth_type"} {
		if v := o.UpstreamParameters[k]; v != "" && len(v) <= 256 {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	if st.ForceLogin {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
		if oidc {
			opts = append(opts, oauth2.SetAuthURLParam("max_age", "0"))
		}
	}
	if oidc && o.RequestAAL2 && len(b.cfg.AAL2ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(b.cfg.AAL2ACRValues, " ")))
	}
	if len(b.cfg.RequestedClaims) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("claims", string(b.cfg.RequestedClaims)))
	}
	return opts
}

// exchangeCode trades the code, sorting the failures into the sentinels.
func (b *base) exchangeCode(ctx context.Context, oc *oauth2.Config, st AuthState, code string) (*oauth2.Token, error) {
	var opts []oauth2.AuthCodeOption
	if st.PKCEVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(st.PKCEVerifier))
	}
	tok, err := oc.Exchange(b.clientContext(ctx), code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, fmt.Errorf("%w: %s", ErrCodeRejected, clip(re.Error(), 300))
		}
		return nil, fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	}
	return tok, nil
}

func tokensOf(t *oauth2.Token, idToken string) Tokens {
	return Tokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, IDToken: idToken, TokenType: t.TokenType, Expiry: t.Expiry}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
