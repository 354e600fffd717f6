package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// credConfig is Kratos's oidc credential config: one entry per linked
// provider account.
type credConfig struct {
	Providers []credProvider `json:"providers"`
}

// credProvider is one linked provider account; the tokens are sealed
// with the cipher key (purpose tokenPurpose, bound to provider:subject).
type credProvider struct {
	Subject             string `json:"subject"`
	Provider            string `json:"provider"`
	InitialIDToken      string `json:"initial_id_token,omitempty"`
	InitialAccessToken  string `json:"initial_access_token,omitempty"`
	InitialRefreshToken string `json:"initial_refresh_token,omitempty"`
	Organization        string `json:"organization,omitempty"`
}

// tokenPurpose keys the sealing of the provider's tokens.
const tokenPurpose = "oidc-token"

// newEntry is the credential entry of a verified callback, its tokens
// sealed.
func (m *Method) newEntry(ctx context.Context, cr *result) (credProvider, error) {
	e := credProvider{Subject: cr.res.Claims.Subject, Provider: cr.provider.Config().ID}
	aad := cr.identifier()
	for _, t := range []struct {
		plain string
		dst   *string
	}{
		{cr.res.Tokens.IDToken, &e.InitialIDToken},
		{cr.res.Tokens.AccessToken, &e.InitialAccessToken},
		{cr.res.Tokens.RefreshToken, &e.InitialRefreshToken},
	} {
		if t.plain == "" {
			continue
		}
		sealed, err := m.sealer.Seal(ctx, tokenPurpose, aad, []byte(t.plain))
		if err != nil {
			return e, fmt.Errorf("sealing the provider's token: %w", err)
		}
		*t.dst = sealed
	}
	return e, nil
}

// configOf decodes ident's oidc credential (empty when it has none).
func configOf(ident *sessionstore.Identity) credConfig {
	var cc credConfig
	if ident == nil {
		return cc
	}
	if c, ok := ident.Credentials["oidc"]; ok && len(c.Config) > 0 {
		_ = identity.DecodeConfig(c.Config, &cc)
	}
	return cc
}

// linkedProviders are the provider ids ident is linked to.
func linkedProviders(ident *sessionstore.Identity) map[string]bool {
	out := map[string]bool{}
	for _, p := range configOf(ident).Providers {
		out[p.Provider] = true
	}
	return out
}

// addEntry links e to ident (its oidc credential created when needed).
func addEntry(ident *sessionstore.Identity, e credProvider, now time.Time) {
	cc := configOf(ident)
	cc.Providers = append(cc.Providers, e)
	c, ok := ident.Credentials["oidc"]
	if !ok {
		c = sessionstore.Credential{Type: "oidc", CreatedAt: now}
	}
	c.Identifiers = append(slices.Clone(c.Identifiers), e.Provider+":"+e.Subject)
	c.Config = identity.EncodeConfig(cc)
	c.UpdatedAt = now
	identity.SetCredential(ident, "oidc", c)
}

// removeProvider unlinks every account of provider id from ident; the
// credential goes when nothing is left. It reports whether one was linked.
func removeProvider(ident *sessionstore.Identity, id string, now time.Time) bool {
	cc := configOf(ident)
	kept := cc.Providers[:0:0]
	var ids []string
	removed := false
	for _, p := range cc.Providers {
		if p.Provider == id {
			removed = true
			continue
		}
		kept = append(kept, p)
		ids = append(ids, p.Provider+":"+p.Subject)
	}
	if !removed {
		return false
	}
	if len(kept) == 0 {
		delete(ident.Credentials, "oidc")
		return true
	}
	c := ident.Credentials["oidc"]
	c.Identifiers, c.Config, c.UpdatedAt = ids, identity.EncodeConfig(credConfig{Providers: kept}), now
	identity.SetCredential(ident, "oidc", c)
	return true
}

// newCredential is the oidc credential of a new identity.
func newCredential(e credProvider, now time.Time) sessionstore.Credential {
	return sessionstore.Credential{Type: "oidc", Identifiers: []string{e.Provider + ":" + e.Subject},
		Config: identity.EncodeConfig(credConfig{Providers: []credProvider{e}}), CreatedAt: now, UpdatedAt: now}
}

// firstFactors counts the ways ident can sign in other than the provider
// id: other linked providers, a password, passkeys, and a sign-in code
// credential. Keys that are second factors do not count: unlinking must
// not leave an account nobody can sign in to.
func firstFactors(ident *sessionstore.Identity, except string) int {
	n := 0
	for _, p := range configOf(ident).Providers {
		if p.Provider != except {
			n++
		}
	}
	if identity.HasPasswordHash(ident) {
		n++
	}
	for _, t := range []string{"passkey", "code"} {
		if identity.HasCredential(ident, t) {
			n++
		}
	}
	return n
}

// OpenTokens returns config, an oidc credential's config as stored, with
// the provider's tokens opened: what the admin API shows with
// include_credential=oidc, as Kratos does. Tokens that do not open (a
// rotated cipher key) are left out.
func (m *Method) OpenTokens(ctx context.Context, config json.RawMessage) json.RawMessage {
	var cc credConfig
	if err := json.Unmarshal(config, &cc); err != nil {
		return config
	}
	for i := range cc.Providers {
		p := &cc.Providers[i]
		aad := p.Provider + ":" + p.Subject
		for _, t := range []*string{&p.InitialIDToken, &p.InitialAccessToken, &p.InitialRefreshToken} {
			if *t == "" {
				continue
			}
			plain, _, err := m.sealer.Open(ctx, tokenPurpose, aad, *t)
			if err != nil {
				*t = ""
				continue
			}
			*t = string(plain)
		}
	}
	b, err := json.Marshal(cc)
	if err != nil {
		return config
	}
	return b
}
