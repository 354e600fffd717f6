package caddymodule

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the `kratos` Caddy app. It owns the caddy-kratos configuration,
// the storage and the self-service engine that the `kratos` and
// `kratos_gate` HTTP handlers use. Configure it with the `kratos` global
// option of the Caddyfile; a site that only uses the handlers gets an app
// with every default.
//
// Secrets, URLs and paths may use {env.VAR} placeholders; they are
// replaced when the config is loaded.
type App struct {
	// Storage is the directory of the embedded database (identities,
	// sessions, flows, generated secrets). A relative path is resolved
	// against Caddy's working directory. Default: the "kratos" folder in
	// Caddy's data directory, e.g. ~/.local/share/caddy/kratos.
	Storage string `json:"storage,omitempty"`

	// PublicURL is the absolute http(s) URL at which the Kratos public API
	// is reached (Kratos's serve.public.base_url). It is the base of form
	// actions, logout URLs and the CSRF cookie name. Default: derived from
	// each request's scheme and Host.
	PublicURL string `json:"public_url,omitempty"`

	// IdentitySchema is the path of a JSON identity schema file (Kratos's
	// identity.schemas). Default: the built-in schema (email with password
	// identifier, optional first and last name).
	IdentitySchema string `json:"identity_schema,omitempty"`

	// Dev allows cookies without the Secure attribute over plain http, like
	// `kratos --dev`. Default: false.
	Dev bool `json:"dev,omitempty"`

	// DefaultReturnURL is where browsers go after a flow when there is no
	// return_to (selfservice.default_browser_return_url). Default: the
	// public URL.
	DefaultReturnURL string `json:"default_return_url,omitempty"`

	// AllowedReturnURLs is the allow-list for return_to
	// (selfservice.allowed_return_urls). The public URL's origin is always
	// allowed. Default: empty.
	AllowedReturnURLs []string `json:"allowed_return_urls,omitempty"`

	// UIURLs maps a flow (login, registration, settings, recovery,
	// verification, error) to the URL of its UI page
	// (selfservice.flows.<flow>.ui_url). Default: the built-in pages under
	// UIPrefix.
	UIURLs map[string]string `json:"ui_urls,omitempty"`

	// UIPrefix is the path under which the built-in UI pages are served.
	// Default: /ui/.
	UIPrefix string `json:"ui_prefix,omitempty"`

	// SessionLifespan is how long a session lives (session.lifespan).
	// Default: 24h.
	SessionLifespan caddy.Duration `json:"session_lifespan,omitempty"`

	// FlowLifespan is how long a self-service flow stays valid
	// (selfservice.flows.<flow>.lifespan). Default: 1h.
	FlowLifespan caddy.Duration `json:"flow_lifespan,omitempty"`

	// PrivilegedSessionMaxAge is how long after authentication a session
	// may change credentials in the settings flow
	// (selfservice.flows.settings.privileged_session_max_age). Default: 1h.
	PrivilegedSessionMaxAge caddy.Duration `json:"privileged_session_max_age,omitempty"`

	// CookieName is the name of the session cookie
	// (session.cookie.name). Default: ory_kratos_session.
	CookieName string `json:"cookie_name,omitempty"`

	// CookieDomain is the Domain attribute of the cookies
	// (cookies.domain). Default: none (host-only cookies).
	CookieDomain string `json:"cookie_domain,omitempty"`

	// CookiePath is the Path attribute of the cookies (cookies.path).
	// Default: /.
	CookiePath string `json:"cookie_path,omitempty"`

	// CookieSameSite is the SameSite attribute of the cookies: lax, strict
	// or none (cookies.same_site). Default: lax.
	CookieSameSite string `json:"cookie_same_site,omitempty"`

	// CookieSecrets sign and encrypt the session cookie (secrets.cookie),
	// each at least 16 characters. The first signs new cookies; all are
	// accepted (rotation). Default: a random secret generated once and kept
	// in the storage, so restarts keep users logged in.
	CookieSecrets []string `json:"cookie_secrets,omitempty"`

	// RegistrationStyle is profile_first (traits first, then the
	// credential) or unified (one step)
	// (selfservice.flows.registration.style). Default: profile_first.
	RegistrationStyle string `json:"registration_style,omitempty"`

	// DisableRegistration closes self-service registration
	// (selfservice.flows.registration.enabled: false). Default: false.
	DisableRegistration bool `json:"disable_registration,omitempty"`

	// PasswordHasher is bcrypt or argon2id (hashers.algorithm). Default:
	// bcrypt.
	PasswordHasher string `json:"password_hasher,omitempty"`

	// BcryptCost is the bcrypt cost, 4 to 31 (hashers.bcrypt.cost).
	// Default: 12.
	BcryptCost int `json:"bcrypt_cost,omitempty"`

	engine  *flows.Engine
	poolKey string // absolute storage directory, set while holding a pool reference
	logger  *zap.Logger
}

// stores holds one open sessionstore.Store per absolute storage directory.
// Caddy provisions a new config before it cleans up the old one, so a
// reload must reuse the open database rather than open it again (Badger
// locks its directory).
var stores = caddy.NewUsagePool()

// pooledStore is a store in the pool; the pool closes it when the last
// config using it is cleaned up.
type pooledStore struct {
	store *sessionstore.Store
}

// Destruct closes the store.
func (p *pooledStore) Destruct() error { return p.store.Close() }

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "kratos",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves placeholders, checks the configuration, takes the
// store for the storage directory from the pool and creates the engine.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	repl := caddy.NewReplacer()

	cfg, err := a.flowsConfig(repl)
	if err != nil {
		return err
	}
	dir, err := a.storageDir(repl)
	if err != nil {
		return err
	}

	val, loaded, err := stores.LoadOrNew(dir, func() (caddy.Destructor, error) {
		st, err := sessionstore.Open(dir, sessionstore.Options{
			// The store outlives this config, so it logs to Caddy's
			// default logger rather than to this module's.
			Logf: storeLogf(caddy.Log().Named("kratos.store")),
		})
		if err != nil {
			return nil, err
		}
		return &pooledStore{store: st}, nil
	})
	if err != nil {
		return fmt.Errorf("opening kratos storage %s: %w", dir, err)
	}
	a.poolKey = dir
	a.logger.Info("kratos storage", zap.String("dir", dir), zap.Bool("reused", loaded))

	a.engine, err = flows.New(cfg, val.(*pooledStore).store, a.logger)
	if err != nil {
		return fmt.Errorf("starting kratos engine: %w", err)
	}
	return nil
}

// storageDir is the absolute storage directory.
func (a *App) storageDir(repl *caddy.Replacer) (string, error) {
	dir := repl.ReplaceKnown(a.Storage, "")
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "kratos")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("storage %q: %w", dir, err)
	}
	return abs, nil
}

// flowsConfig resolves placeholders, checks every value and maps the app
// to the engine's Config. Zero values stay zero: the engine fills in
// Kratos's defaults.
func (a *App) flowsConfig(repl *caddy.Replacer) (flows.Config, error) {
	r := func(s string) string { return repl.ReplaceKnown(s, "") }
	cfg := flows.Config{
		PublicURL:               r(a.PublicURL),
		Dev:                     a.Dev,
		DefaultReturnURL:        r(a.DefaultReturnURL),
		UIPrefix:                r(a.UIPrefix),
		SessionLifespan:         time.Duration(a.SessionLifespan),
		FlowLifespan:            time.Duration(a.FlowLifespan),
		PrivilegedSessionMaxAge: time.Duration(a.PrivilegedSessionMaxAge),
		CookieName:              r(a.CookieName),
		CookieDomain:            r(a.CookieDomain),
		CookiePath:              r(a.CookiePath),
		DisableRegistration:     a.DisableRegistration,
		RegistrationStyle:       a.RegistrationStyle,
		PasswordHasher:          a.PasswordHasher,
		BcryptCost:              a.BcryptCost,
	}

	var errs []error
	check := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	if cfg.PublicURL != "" {
		check("public_url", checkHTTPURL(cfg.PublicURL))
	}
	if cfg.DefaultReturnURL != "" {
		check("default_return_url", checkHTTPURL(cfg.DefaultReturnURL))
	}
	for _, u := range a.AllowedReturnURLs {
		u = r(u)
		check("allowed_return_urls", checkHTTPURL(u))
		cfg.AllowedReturnURLs = append(cfg.AllowedReturnURLs, u)
	}
	if len(a.UIURLs) > 0 {
		cfg.UIURLs = make(map[string]string, len(a.UIURLs))
		for _, kind := range slices.Sorted(maps.Keys(a.UIURLs)) {
			u := r(a.UIURLs[kind])
			check("ui_urls", checkUIKind(kind))
			check("ui_urls."+kind, checkHTTPURL(u))
			cfg.UIURLs[kind] = u
		}
	}
	if cfg.UIPrefix != "" {
		check("ui_prefix", checkPath(cfg.UIPrefix))
	}
	for _, l := range []struct {
		field string
		d     caddy.Duration
	}{
		{"session_lifespan", a.SessionLifespan},
		{"flow_lifespan", a.FlowLifespan},
		{"privileged_session_max_age", a.PrivilegedSessionMaxAge},
	} {
		if l.d != 0 {
			check(l.field, checkLifespan(time.Duration(l.d)))
		}
	}
	if cfg.CookieName != "" {
		check("cookie_name", checkCookieName(cfg.CookieName))
	}
	if cfg.CookieDomain != "" {
		check("cookie_domain", checkCookieDomain(cfg.CookieDomain))
	}
	if cfg.CookiePath != "" {
		check("cookie_path", checkPath(cfg.CookiePath))
	}
	sameSite, err := parseSameSite(a.CookieSameSite)
	check("cookie_same_site", err)
	cfg.CookieSameSite = sameSite
	for _, s := range a.CookieSecrets {
		s = r(s)
		check("cookie_secrets", checkSecret(s))
		cfg.CookieSecrets = append(cfg.CookieSecrets, s)
	}
	if a.RegistrationStyle != "" {
		check("registration_style", checkOneOf("registration style", a.RegistrationStyle, registrationStyles))
	}
	if a.PasswordHasher != "" {
		check("password_hasher", checkOneOf("password hasher", a.PasswordHasher, passwordHashers))
	}
	if a.BcryptCost != 0 {
		check("bcrypt_cost", checkBcryptCost(a.BcryptCost))
	}
	if a.IdentitySchema != "" {
		path := r(a.IdentitySchema)
		schema, err := os.ReadFile(path)
		check("identity_schema", err)
		cfg.IdentitySchema = schema
	}
	return cfg, errors.Join(errs...)
}

// storeLogf adapts the store's log callback to zap.
func storeLogf(l *zap.Logger) func(level, format string, args ...any) {
	s := l.Sugar()
	return func(level, format string, args ...any) {
		switch level {
		case "error":
			s.Errorf(format, args...)
		case "warn", "warning":
			s.Warnf(format, args...)
		case "info":
			s.Infof(format, args...)
		default:
			s.Debugf(format, args...)
		}
	}
}

// Engine is the self-service engine; nil before Provision.
func (a *App) Engine() *flows.Engine { return a.engine }

// Start is a no-op: the engine does its work in the HTTP handlers.
func (a *App) Start() error { return nil }

// Stop is a no-op: resources are released in Cleanup.
func (a *App) Stop() error { return nil }

// Cleanup closes the engine and releases this config's reference to the
// store; the last reference closes it. Caddy also calls it after a failed
// Provision, so it releases only what was taken.
func (a *App) Cleanup() error {
	var errs []error
	if a.engine != nil {
		errs = append(errs, a.engine.Close())
		a.engine = nil
	}
	if a.poolKey != "" {
		_, err := stores.Delete(a.poolKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("closing kratos storage %s: %w", a.poolKey, err))
		}
		a.poolKey = ""
	}
	return errors.Join(errs...)
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*pooledStore)(nil)
)
