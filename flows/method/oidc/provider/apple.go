package provider

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// newApple is Sign in with Apple: OpenID Connect at appleid.apple.com whose
// client secret is a short-lived ES256 JWT (iss team id, sub client id, aud
// https://appleid.apple.com, kid the key id) signed with the .p8 key, sent
// in the token request's body. Asking for email or name makes Apple answer
// with response_mode=form_post. The name arrives once, in the unsigned
// `user` form field; nothing else is taken from it (never the email, which
// comes from the verified ID token; Apple writes its email_verified as a
// string).
func newApple(b *base) (*oidcProvider, error) {
	key, err := parseAppleKey(b.cfg.ApplePrivateKey)
	if err != nil {
		return nil, fmt.Errorf("oidc provider %q: apple_private_key: %w", b.cfg.ID, err)
	}
	p := &oidcProvider{base: b, discoveryURL: b.opts.endpoints.apple, exactIssuer: true, authStyle: oauth2.AuthStyleInParams}
	p.formPost = slices.Contains(b.cfg.Scope, "email") || slices.Contains(b.cfg.Scope, "name")
	p.secret = func() (string, error) { return appleClientSecret(key, b.cfg, b.opts.Now()) }
	p.after = func(_ context.Context, r *Result, _ *oauth2.Token, cb Callback) error {
		appleUserName(cb.User, r.Claims)
		return nil
	}
	return p, nil
}

func appleClientSecret(key *ecdsa.PrivateKey, cfg *Config, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", cfg.ApplePrivateKeyID))
	if err != nil {
		return "", fmt.Errorf("apple client secret: %w", err)
	}
	s, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   cfg.AppleTeamID,
		Subject:  cfg.ClientID,
		Audience: jwt.Audience{appleIssuer},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("apple client secret: %w", err)
	}
	return s, nil
}

// appleUserName takes the first and last name from Apple's user field when
// the ID token has none.
func appleUserName(user string, c *Claims) {
	if user == "" || len(user) > 4096 {
		return
	}
	var u struct {
		Name struct {
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
		} `json:"name"`
	}
	if json.Unmarshal([]byte(user), &u) != nil {
		return
	}
	first, last := strings.TrimSpace(u.Name.FirstName), strings.TrimSpace(u.Name.LastName)
	if c.GivenName == "" {
		c.GivenName = first
	}
	if c.FamilyName == "" {
		c.FamilyName = last
	}
	if c.LastName == "" {
		c.LastName = last
	}
	if c.Name == "" {
		c.Name = strings.TrimSpace(first + " " + last)
	}
}
