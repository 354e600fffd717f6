package oidc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/mapper"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Config is what the oidc method takes from the configuration.
type Config struct {
	// Enabled turns the method on (methods oidc with providers).
	Enabled bool
	// Providers in the order their buttons are shown.
	Providers []provider.Config
	// HTTPClient talks to the providers (nil: provider's default).
	HTTPClient *http.Client
	// PublicURL is the base of the callback URLs.
	PublicURL *url.URL
}

// Method is the oidc method.
type Method struct {
	enabled   bool
	providers []provider.Provider
	byID      map[string]provider.Provider
	mappers   map[string]*mapper.Mapper
	kernel    *flow.Kernel
	sessions  *session.Manager
	store     sessionstore.Storage
	schemas   *identity.Schemas
	sealer    *token.Sealer
	logger    *zap.Logger
	now       func() time.Time
}

// New builds the providers and loads their mappers.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, schemas *identity.Schemas,
	sealer *token.Sealer, logger *zap.Logger, now func() time.Time) (*Method, error) {
	m := &Method{enabled: cfg.Enabled && len(cfg.Providers) > 0, byID: map[string]provider.Provider{},
		mappers: map[string]*mapper.Mapper{}, kernel: k, sessions: sessions, store: store, schemas: schemas, sealer: sealer,
		logger: logger, now: now}
	if len(cfg.Providers) == 0 {
		return m, nil
	}
	if err := provider.ValidateAll(cfg.Providers); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	for _, pc := range cfg.Providers {
		p, err := provider.New(pc, provider.Options{PublicURL: cfg.PublicURL, HTTPClient: cfg.HTTPClient, Now: now})
		if err != nil {
			return nil, fmt.Errorf("oidc provider %q: %w", pc.ID, err)
		}
		mp := mapper.Default()
		if pc.MapperURL != "" {
			if mp, err = mapper.Load(pc.MapperURL); err != nil {
				return nil, fmt.Errorf("oidc provider %q: mapper: %w", pc.ID, err)
			}
		}
		m.providers = append(m.providers, p)
		m.byID[pc.ID] = p
		m.mappers[pc.ID] = mp
	}
	return m, nil
}

// ID is "oidc".
func (m *Method) ID() string { return "oidc" }

// Enabled reports whether the method is on and has providers.
func (m *Method) Enabled() bool { return m.enabled }

// FirstFactor is true: a provider signs in.
func (m *Method) FirstFactor() bool { return true }

// SecondFactor is false.
func (m *Method) SecondFactor() bool { return false }

// HasActive is false: a provider is no second factor.
func (m *Method) HasActive(*sessionstore.Identity) bool { return false }

// LoginNodes adds one "Sign in with <provider>" button per provider.
func (m *Method) LoginNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	for _, p := range m.providers {
		f.UI.Nodes = append(f.UI.Nodes, m.button(p, 1010002))
	}
}

// RefreshNodes adds the buttons of the providers ident is linked to:
// re-authenticating with one of them refreshes the session.
func (m *Method) RefreshNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	linked := linkedProviders(ident)
	for _, p := range m.providers {
		if linked[p.Config().ID] {
			f.UI.Nodes = append(f.UI.Nodes, m.button(p, 1010002))
		}
	}
}

// RegistrationNodes adds one "Sign up with <provider>" button per provider.
func (m *Method) RegistrationNodes(_ *http.Request, f *flow.Flow, _ map[string]any) {
	for _, p := range m.providers {
		f.UI.Nodes = append(f.UI.Nodes, m.button(p, 1040002))
	}
}

// button is a provider's submit button labelled with message id.
func (m *Method) button(p provider.Provider, id int) *node.Node {
	c := p.Config()
	return node.Submit("oidc", "provider", c.ID, node.Label(id, map[string]any{"provider": c.DisplayName(), "provider_id": c.ID},
		c.DisplayName()))
}

// Offered reports whether identifier-first login offers the providers.
func (m *Method) Offered(*http.Request, *flow.Flow) bool { return m.enabled }

// Has reports whether ident is linked to a provider.
func (m *Method) Has(ident *sessionstore.Identity, _ string) bool {
	return len(linkedProviders(ident)) > 0
}

// FirstScreenNodes adds nothing: identifier-first's first screen is the
// identifier (Kratos).
func (m *Method) FirstScreenNodes(*http.Request, *flow.Flow) {}

// SecondScreenNodes adds the provider buttons to the second screen of an
// account linked to a provider (every account, with enumeration
// mitigated).
func (m *Method) SecondScreenNodes(r *http.Request, f *flow.Flow) { m.LoginNodes(r, f, nil) }

// Fast is false.
func (m *Method) Fast() bool { return false }

// Provider returns the configured provider of id.
func (m *Method) Provider(id string) (provider.Provider, bool) {
	p, ok := m.byID[id]
	return p, ok
}

// Interface guards.
var (
	_ flow.LoginMethod            = (*Method)(nil)
	_ flow.LoginRefresher         = (*Method)(nil)
	_ flow.LoginCompleter         = (*Method)(nil)
	_ flow.IdentifierFirstMethod  = (*Method)(nil)
	_ flow.RegistrationMethod     = (*Method)(nil)
	_ flow.RegistrationRedirector = (*Method)(nil)
	_ flow.RegistrationTraitsForm = (*Method)(nil)
	_ flow.SettingsMethod         = (*Method)(nil)
)

// detached is ctx without its cancellation: once the provider's code is
// taken, the exchange and the writes after it finish even when the
// browser goes away.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
