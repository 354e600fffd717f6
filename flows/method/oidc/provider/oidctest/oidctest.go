// Package oidctest is an OpenID provider in a httptest.Server for the oidc
// method's tests: discovery, JWKS, an authorization endpoint that signs the
// configured user in at once, a token endpoint that checks the client, the
// redirect URI and PKCE and issues RS256 ID tokens, and userinfo. Knobs
// break it on purpose (forged signatures, wrong claims, outages).
//
// It is test support: production code never imports it.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Server is the test provider. Set the exported knobs before the flow they
// should affect; they are read under the server's lock.
type Server struct {
	*httptest.Server
	Issuer       string // the server's URL (no trailing slash)
	ClientID     string
	ClientSecret string

	mu sync.Mutex
	// Claims go into the ID token (sub is required) and userinfo.
	Claims map[string]any
	// Userinfo, when set, is what userinfo answers instead of Claims.
	Userinfo map[string]any
	// MutateIDToken edits the ID token's claims after the standard ones
	// are set (iss, aud, exp, nonce, …): forge what a test needs.
	MutateIDToken func(map[string]any)
	// MutateDiscovery edits the discovery document.
	MutateDiscovery func(map[string]any)
	// SignWith signs ID tokens with another key than the published one.
	SignWith *rsa.PrivateKey
	// NoPKCE leaves code_challenge_methods_supported out of discovery.
	NoPKCE bool
	// CheckClientSecret replaces the client secret comparison (Apple's
	// JWT secrets).
	CheckClientSecret func(secret string) bool
	// Deny makes the authorization endpoint answer error=access_denied.
	Deny bool
	// Down makes every endpoint answer 503.
	Down bool
	// NoIDToken leaves id_token out of the token response.
	NoIDToken bool
	// AuthRequests are the authorization requests seen, in order.
	AuthRequests []url.Values
	// TokenRequests are the token requests' forms, in order.
	TokenRequests []url.Values

	key   *rsa.PrivateKey
	codes map[string]*grant
	token map[string]map[string]any // access token → userinfo
}

type grant struct {
	redirectURI, nonce, challenge string
	claims                        map[string]any
	used                          bool
}

// New starts a provider with a client (ClientID, ClientSecret) and a user
// (sub "user-1", a verified email).
func New() *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := &Server{
		ClientID: "client-" + randomString(6), ClientSecret: randomString(24), key: key,
		Claims: map[string]any{"sub": "user-1", "email": "user@example.com", "email_verified": true, "given_name": "Ada", "family_name": "Lovelace"},
		codes:  map[string]*grant{}, token: map[string]map[string]any{},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Issuer = s.URL
	return s
}

// SetUser replaces the claims of the user the next sign-in returns.
func (s *Server) SetUser(claims map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Claims = maps.Clone(claims)
}

// Set runs f under the server's lock, to change knobs safely.
func (s *Server) Set(f func(s *Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Key is the published signing key.
func (s *Server) Key() *rsa.PrivateKey { return s.key }

// Authorize plays the browser at the authorization URL: it returns the
// query the provider redirects back with (code and state, or an error).
func (s *Server) Authorize(authURL string) (url.Values, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL) // #nosec G107 -- the test's own server
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, err
	}
	return loc.Query(), nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		s.discovery(w)
	case r.URL.Path == "/jwks":
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	case r.URL.Path == "/authorize":
		s.authorize(w, r)
	case r.URL.Path == "/token" && r.Method == http.MethodPost:
		s.tokenEndpoint(w, r)
	case r.URL.Path == "/userinfo":
		info, ok := s.token[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
			return
		}
		writeJSON(w, http.StatusOK, info)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) discovery(w http.ResponseWriter) {
	d := map[string]any{
		"issuer": s.Issuer, "authorization_endpoint": s.URL + "/authorize", "token_endpoint": s.URL + "/token",
		"userinfo_endpoint": s.URL + "/userinfo", "jwks_uri": s.URL + "/jwks",
		"id_token_signing_alg_values_supported": []string{"RS256"}, "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"},
	}
	if !s.NoPKCE {
		d["code_challenge_methods_supported"] = []string{"S256"}
	}
	if s.MutateDiscovery != nil {
		s.MutateDiscovery(d)
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.AuthRequests = append(s.AuthRequests, q)
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" || redirect.Scheme == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if s.Deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user denied the request")
	} else {
		if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
			http.Error(w, "only S256", http.StatusBadRequest)
			return
		}
		code := randomString(24)
		s.codes[code] = &grant{redirectURI: q.Get("redirect_uri"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), claims: maps.Clone(s.Claims)}
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound) // #nosec G710 -- test support: an authorization endpoint redirects to the request's redirect_uri
}

func (s *Server) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	s.TokenRequests = append(s.TokenRequests, r.PostForm)
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) == 1
	if s.CheckClientSecret != nil {
		secretOK = s.CheckClientSecret(secret)
	}
	if id != s.ClientID || !secretOK {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	g, ok := s.codes[r.PostForm.Get("code")]
	if !ok || g.used || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != g.redirectURI {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	g.used = true
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
			return
		}
	}
	access := randomString(32)
	info := g.claims
	if s.Userinfo != nil {
		info = maps.Clone(s.Userinfo)
	}
	s.token[access] = info
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": randomString(32), "scope": "openid email profile"}
	if !s.NoIDToken {
		resp["id_token"] = s.idToken(g, access)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) idToken(g *grant, access string) string {
	now := time.Now()
	c := maps.Clone(g.claims)
	c["iss"], c["aud"], c["iat"], c["exp"] = s.Issuer, s.ClientID, now.Unix(), now.Add(time.Hour).Unix()
	if g.nonce != "" {
		c["nonce"] = g.nonce
	}
	sum := sha256.Sum256([]byte(access))
	c["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:16])
	if s.MutateIDToken != nil {
		s.MutateIDToken(c)
	}
	return Sign(s.signKey(), "k1", c)
}

func (s *Server) signKey() *rsa.PrivateKey {
	if s.SignWith != nil {
		return s.SignWith
	}
	return s.key
}

// Sign makes an RS256 JWT of claims.
func Sign(key *rsa.PrivateKey, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		panic(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
