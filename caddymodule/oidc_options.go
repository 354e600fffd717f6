package caddymodule

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/mapper"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
)

// Social sign-in: the oidc block, the providers of the oidc method
// (selfservice.methods.oidc.config.providers). The method is turned on
// with `methods oidc`; the provider vocabulary and its checks are the
// provider package's, the mappers the mapper package's.

// OIDCConfig is the oidc method's configuration
// (selfservice.methods.oidc.config).
type OIDCConfig struct {
	// Providers are the social sign-in providers, in the order of their
	// buttons (config.providers), each a Kratos provider object as it is
	// (id, provider, client_id, client_secret, issuer_url, mapper_url, …;
	// see provider.Config). Placeholders such as {env.X} work in every
	// string except id, provider and requested_claims; keep
	// client_secret and apple_private_key in the environment (or a
	// {file.…}): the app's JSON keeps the placeholder, never the value.
	Providers []provider.Config `json:"providers,omitempty"`
}

// unmarshalOIDCOption reads the oidc block (see
// OIDCConfig.unmarshalCaddyfile).
func (a *App) unmarshalOIDCOption(o *globalOption) (bool, error) {
	if o.name != "oidc" {
		return false, nil
	}
	a.OIDC = new(OIDCConfig)
	o.mark()
	if err := o.block(a.OIDC.unmarshalCaddyfile); err != nil {
		return true, err
	}
	if len(a.OIDC.Providers) == 0 {
		return true, fmt.Errorf("oidc: %v, at %s", errOIDCNoProvider, o.at["oidc"])
	}
	return true, nil
}

// unmarshalCaddyfile reads the block of the oidc subdirective:
//
//	oidc {
//		provider <id> {
//			provider <generic|google|github|microsoft|gitlab|apple|discord>
//			client_id <id>
//			client_secret <secret>
//			label <text>
//			icon <url|path>
//			issuer_url <url>
//			auth_url <url>
//			token_url <url>
//			scope <scope...>
//			mapper <file|file://…|base64://…>
//			microsoft_tenant <tenant>
//			subject_source <userinfo|me>
//			apple_team_id <id>
//			apple_private_key_id <id>
//			apple_private_key <pem>
//			requested_claims <json>
//			claims_source <id_token|userinfo>
//			pkce <auto|never|force>
//			hd <domain...>
//			aal2_acr_values <acr...>
//			aal2_amr_values <amr...>
//		}
//	}
//
// The options are Kratos's names (mapper_url is also accepted for
// mapper); scope, hd and the aal2 lists may repeat. Each provider is
// validated when its block ends and its mapper is loaded on its line, so
// a mistake names the line; values behind placeholders are checked again
// when the config is loaded.
func (c *OIDCConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	at := make(map[string]string) // provider id → file:line of its block
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "provider" {
			return d.Errf("oidc: unrecognized subdirective %q (want provider <id> { … })", d.Val())
		}
		seg := d.NewFromNextSegment()
		cfg, err := parseOIDCProvider(seg)
		if err != nil {
			return err
		}
		if first, dup := at[cfg.ID]; dup {
			seg.Reset()
			seg.Next()
			return seg.Errf("oidc: provider %q is configured twice (first at %s)", cfg.ID, first)
		}
		seg.Reset()
		seg.Next()
		at[cfg.ID] = fmt.Sprintf("%s:%d", seg.File(), seg.Line())
		c.Providers = append(c.Providers, cfg)
	}
	return nil
}

// parseOIDCProvider reads one `provider <id> { … }` segment: every option
// through provider.Config.SetOption, the mapper on its line, then the
// whole provider, whose errors name the `provider <id>` line. The config
// is returned as written (Validate's defaults are filled in Provision).
func parseOIDCProvider(d *caddyfile.Dispenser) (provider.Config, error) {
	d.Next() // "provider"
	var id string
	if !d.AllArgs(&id) {
		return provider.Config{}, d.ArgErr()
	}
	cfg := provider.Config{ID: id}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if err := cfg.SetOption(name, d.RemainingArgs()); err != nil {
			return cfg, d.Errf("oidc provider %q: %v", id, err)
		}
		if (name == "mapper" || name == "mapper_url") && !hasPlaceholder(cfg.MapperURL) {
			if _, err := mapper.Load(cfg.MapperURL); err != nil {
				return cfg, d.Errf("oidc provider %q: %v", id, err)
			}
		}
	}
	if err := checkOIDCProviderAsWritten(cfg); err != nil {
		d.Reset()
		d.Next()
		return cfg, d.Errf("%v", err)
	}
	return cfg, nil
}

// providerStrings are the string options of c that may hold
// placeholders, by their Kratos names. id and provider are fixed (the id
// is part of the callback URL registered with the provider) and
// requested_claims is JSON, whose braces are not placeholders.
func providerStrings(c *provider.Config) []struct {
	name string
	p    *string
} {
	return []struct {
		name string
		p    *string
	}{
		{"client_id", &c.ClientID}, {"client_secret", &c.ClientSecret}, {"label", &c.Label}, {"icon", &c.Icon},
		{"issuer_url", &c.IssuerURL}, {"auth_url", &c.AuthURL}, {"token_url", &c.TokenURL}, {"mapper_url", &c.MapperURL},
		{"microsoft_tenant", &c.MicrosoftTenant}, {"subject_source", &c.SubjectSource},
		{"apple_team_id", &c.AppleTeamID}, {"apple_private_key_id", &c.ApplePrivateKeyID}, {"apple_private_key", &c.ApplePrivateKey},
		{"claims_source", &c.ClaimsSource}, {"pkce", &c.PKCE},
	}
}

// providerLists are the list options of c that may hold placeholders.
func providerLists(c *provider.Config) []struct {
	name string
	p    *[]string
} {
	return []struct {
		name string
		p    *[]string
	}{
		{"scope", &c.Scope}, {"hd", &c.HostedDomains}, {"aal2_acr_values", &c.AAL2ACRValues}, {"aal2_amr_values", &c.AAL2AMRValues},
	}
}

// standIns are valid values that take the place of a value behind a
// placeholder when a provider is checked as written; "" leaves the
// option out (the mapper is loaded when the config is loaded).
var standIns = map[string]string{ // #nosec G101 -- option names and made-up valid values, no credential
	"issuer_url": "https://placeholder.invalid", "auth_url": "https://placeholder.invalid/auth",
	"token_url": "https://placeholder.invalid/token", "icon": "/placeholder.svg",
	"microsoft_tenant": "common", "mapper_url": "", "subject_source": "", "claims_source": "", "pkce": "",
	"hd": "placeholder.invalid",
}

// checkOIDCProviderAsWritten validates a copy of c (Validate fills in
// defaults, and the app keeps the config as written) in which the values
// behind placeholders are replaced by valid stand-ins: their real values
// are only known, and checked, when the config is loaded.
func checkOIDCProviderAsWritten(c provider.Config) error {
	for _, f := range providerStrings(&c) {
		if !hasPlaceholder(*f.p) {
			continue
		}
		v, ok := standIns[f.name]
		switch {
		case f.name == "apple_private_key":
			var err error
			if v, err = standInAppleKey(); err != nil {
				return err
			}
		case !ok:
			v = "placeholder"
		}
		*f.p = v
	}
	for _, f := range providerLists(&c) {
		list := slices.Clone(*f.p)
		for i, s := range list {
			if hasPlaceholder(s) {
				v, ok := standIns[f.name]
				if !ok {
					v = "placeholder"
				}
				list[i] = v
			}
		}
		*f.p = list
	}
	return c.Validate()
}

// standInAppleKey is a fresh P-256 key in Apple's .p8 form, standing in
// for an apple_private_key behind a placeholder.
func standInAppleKey() (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("oidc: checking apple_private_key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("oidc: checking apple_private_key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

var (
	errOIDCNoProvider      = errors.New("no provider is configured (add provider <id> { provider …; client_id …; client_secret … })")
	errOIDCMethodNotListed = errors.New("configures the oidc method's providers, but the method is not enabled: add methods oidc")
	errOIDCNoProviders     = errors.New("lists oidc, but no provider is configured: add oidc { provider <id> { … } }")
)

// checkOIDCEnabled refuses providers without `methods oidc` (a block that
// would do nothing is a mistake, as with passkey) and `methods oidc`
// without providers (Kratos would show no button; nobody means that).
// field is "oidc" or "methods", the option to name.
func checkOIDCEnabled(a *App) (field string, err error) {
	listed := slices.Contains(a.Methods, "oidc")
	switch {
	case a.OIDC != nil && len(a.OIDC.Providers) == 0:
		return "oidc", errOIDCNoProvider
	case a.OIDC != nil && !listed:
		return "oidc", errOIDCMethodNotListed
	case a.OIDC == nil && listed:
		return "methods", errOIDCNoProviders
	}
	return "", nil
}

// hasOIDCProviders reports whether the oidc method is on with at least
// one provider: a first factor.
func hasOIDCProviders(a *App) bool {
	return a.OIDC != nil && len(a.OIDC.Providers) > 0 && slices.Contains(a.Methods, "oidc")
}

// oidcFlowsConfig replaces the placeholders of the providers (into
// copies: the app keeps its placeholders, so Caddy's admin API and
// autosave show {env.X}, never a client secret), validates them as the
// engine will use them, loads their mappers and hands them to the
// engine.
func (a *App) oidcFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
	if field, err := checkOIDCEnabled(a); err != nil {
		errs.check(field, err)
		return
	}
	if a.OIDC == nil {
		return
	}
	list := make([]provider.Config, len(a.OIDC.Providers))
	empty := false
	for i, p := range a.OIDC.Providers {
		c := p
		for _, f := range providerStrings(&c) {
			v := r(*f.p)
			if *f.p != "" && v == "" {
				// The placeholder, never the value: it may be a secret.
				errs.check("oidc.providers", fmt.Errorf("oidc provider %q: %s: %q is empty after replacing placeholders", c.ID, f.name, *f.p))
				empty = true
			}
			*f.p = v
		}
		for _, f := range providerLists(&c) {
			*f.p = replaceEach(*f.p, r)
		}
		list[i] = c
	}
	if empty {
		return
	}
	if err := provider.ValidateAll(list); err != nil {
		errs.check("oidc.providers", err)
		return
	}
	for _, c := range list {
		if _, err := mapper.Load(c.MapperURL); err != nil {
			errs.check("oidc.providers", fmt.Errorf("oidc provider %q: %w", c.ID, err))
		}
	}
	cfg.OIDCProviders = list
}
