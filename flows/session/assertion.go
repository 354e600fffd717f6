package session

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
)

// Signed identity assertions: a short-lived ES256 JWT that the gate hands
// to the upstream, which can check it against the JWKS served at
// /.well-known/jwks.json instead of trusting a plain header. The signing
// key comes from a PEM file or is generated once and kept in the store.
// Tokens are cached per session and reused for a quarter of their
// lifetime, so the gate signs about once per session every ttl/4, not on
// every request.

// JWKSPath is where the engine serves the public keys of its assertions.
const JWKSPath = "/.well-known/jwks.json"

// assertionSecretName is the store secret holding the generated key
// (PKCS #8 DER).
const assertionSecretName = "assertion_es256"

// DefaultAssertionTTL is the lifetime of an assertion when none is set.
const DefaultAssertionTTL = 60 * time.Second

// AssertionConfig configures one gate's assertions.
type AssertionConfig struct {
	// TTL is the lifetime of a token. Default: DefaultAssertionTTL.
	TTL time.Duration
	// Traits are dotted trait paths (email, name.first) copied into the
	// "traits" claim, nested as in the identity.
	Traits []string
	// KeyPEM is an ES256 (P-256) private key in PEM (PKCS #8 or SEC 1).
	// Nil: the key generated once and persisted in the store.
	KeyPEM []byte
	// Audience is the "aud" claim: the upstreams the token is meant for
	// (one value is written as a string, several as an array). Empty: no
	// aud claim.
	Audience []string
}

// AssertionClaims are the claims of an assertion.
type AssertionClaims struct {
	Issuer   string         `json:"iss"`
	Audience jwt.Audience   `json:"aud,omitempty"`
	Subject  string         `json:"sub"`
	Session  string         `json:"sid"`
	AAL      string         `json:"aal"`
	Methods  []string       `json:"amr,omitempty"`
	IssuedAt int64          `json:"iat"`
	Expiry   int64          `json:"exp"`
	Traits   map[string]any `json:"traits,omitempty"`
}

// AssertionSigner signs the assertions of one gate.
type AssertionSigner struct {
	m      *Manager
	iss    string // the configured public URL, never the request's host
	aud    jwt.Audience
	ttl    time.Duration
	traits []string
	signer jose.Signer
	kid    string
	cache  *boundedMap[*assertionEntry]
}

type assertionEntry struct {
	sess  *sessionstore.Session
	ident *sessionstore.Identity
	token string
	reuse int64 // unix nanoseconds until which token is handed out again
}

// NewAssertionSigner loads the key (or the persisted generated one,
// creating it on first use), publishes its public half in the engine's
// JWKS and returns a signer. The tokens' issuer is the engine's configured
// public URL; a request's Host header never is.
func (m *Manager) NewAssertionSigner(cfg AssertionConfig) (*AssertionSigner, error) {
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, errors.New("assertion: empty audience")
		}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultAssertionTTL
	}
	for _, p := range cfg.Traits {
		if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return nil, fmt.Errorf("assertion: bad trait path %q", p)
		}
	}
	var (
		key *ecdsa.PrivateKey
		err error
	)
	if cfg.KeyPEM != nil {
		key, err = parseES256PEM(cfg.KeyPEM)
	} else {
		key, err = m.generatedAssertionKey(context.Background(), true)
	}
	if err != nil {
		return nil, fmt.Errorf("assertion key: %w", err)
	}
	jwk, err := publicJWK(key)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: jwk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("assertion signer: %w", err)
	}
	m.keys.add(jwk)
	return &AssertionSigner{m: m, iss: m.urls.Base(), aud: jwt.Audience(slices.Clone(cfg.Audience)), ttl: cfg.TTL, traits: cfg.Traits,
		signer: signer, kid: jwk.KeyID, cache: &boundedMap[*assertionEntry]{perShard: 4096}}, nil
}

// KeyID is the "kid" of the signer's key (its RFC 7638 thumbprint).
func (a *AssertionSigner) KeyID() string { return a.kid }

// Assertion returns a signed token for the session, from the cache while
// it has at least three quarters of its lifetime left. Nothing in it comes
// from r.
func (a *AssertionSigner) Assertion(_ *http.Request, g *GateSession) (string, error) {
	now := a.m.now()
	if ent, ok := a.cache.load(g.SessionID); ok && ent.sess == g.sess && ent.ident == g.ident && now.UnixNano() < ent.reuse {
		return ent.token, nil
	}
	c := AssertionClaims{
		Issuer: a.iss, Audience: a.aud, Subject: g.IdentityID, Session: g.SessionID, AAL: g.AAL, Methods: g.Methods(),
		IssuedAt: now.Unix(), Expiry: now.Add(a.ttl).Unix(),
	}
	if len(a.traits) > 0 {
		traits, err := a.m.Traits(g)
		if err != nil {
			return "", fmt.Errorf("assertion traits: %w", err)
		}
		c.Traits = pickTraits(traits, a.traits)
	}
	tok, err := jwt.Signed(a.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing assertion: %w", err)
	}
	a.cache.store(g.SessionID, &assertionEntry{sess: g.sess, ident: g.ident, token: tok, reuse: now.Add(a.ttl / 4).UnixNano()})
	return tok, nil
}

// pickTraits copies the trait paths that exist into a new nested map.
func pickTraits(traits map[string]any, paths []string) map[string]any {
	out := map[string]any{}
	for _, p := range paths {
		v, ok := TraitValue(traits, p)
		if !ok {
			continue
		}
		cur := out
		keys := strings.Split(p, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := cur[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[k] = next
			}
			cur = next
		}
		cur[keys[len(keys)-1]] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseES256PEM reads a P-256 private key from PEM (PKCS #8 or SEC 1).
func parseES256PEM(b []byte) (*ecdsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PRIVATE KEY or EC PRIVATE KEY block in the PEM data")
		}
		var key any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, errors.New("not a P-256 (ES256) key")
		}
		return ec, nil
	}
}

// generatedAssertionKey is the key kept in the store. create false only
// reads it: nil, nil when there is none yet.
func (m *Manager) generatedAssertionKey(ctx context.Context, create bool) (*ecdsa.PrivateKey, error) {
	errAbsent := errors.New("absent")
	der, err := m.store.Secret(ctx, assertionSecretName, func() ([]byte, error) {
		if !create {
			return nil, errAbsent
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	})
	if !create && errors.Is(err, errAbsent) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("stored assertion key is not ECDSA")
	}
	return ec, nil
}

// publicJWK is the public key as a JWK with its thumbprint as kid.
func publicJWK(k *ecdsa.PrivateKey) (jose.JSONWebKey, error) {
	jwk := jose.JSONWebKey{Key: &k.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jwk, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}

// assertionKeys are the public keys the engine publishes.
type assertionKeys struct {
	mu   sync.Mutex
	keys []jose.JSONWebKey
}

func (k *assertionKeys) add(jwk jose.JSONWebKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, have := range k.keys {
		if have.KeyID == jwk.KeyID {
			return
		}
	}
	k.keys = append(k.keys, jwk)
}

func (k *assertionKeys) list() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]jose.JSONWebKey(nil), k.keys...)
}

// JWKS serves GET /.well-known/jwks.json: the keys of the gates'
// assertions, and the generated key once it exists.
func (m *Manager) JWKS(w http.ResponseWriter, r *http.Request) {
	set := jose.JSONWebKeySet{Keys: m.keys.list()}
	if k, err := m.generatedAssertionKey(r.Context(), false); err != nil {
		m.logger.Error("jwks", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the keys"))
		return
	} else if k != nil {
		if jwk, err := publicJWK(k); err == nil && !hasKID(set.Keys, jwk.KeyID) {
			set.Keys = append(set.Keys, jwk)
		}
	}
	if set.Keys == nil {
		set.Keys = []jose.JSONWebKey{}
	}
	b, err := json.Marshal(set)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to encode the keys"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func hasKID(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}
