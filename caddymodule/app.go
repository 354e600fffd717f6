package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/audit"
	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the `kratos` Caddy app. It owns the caddy-kratos configuration,
// the storage, the mail courier (started and stopped with the app) and the
// self-service engine that the `kratos` and `kratos_gate` HTTP handlers
// use. Configure it with the `kratos` global
// option of the Caddyfile; public_url is required, everything else has a
// default.
//
// Secrets, URLs and paths may use {env.VAR} placeholders; they are
// replaced when the config is loaded.
//
// The plain options are the engine's own option groups (flows.SiteOptions
// and the others, documented there), embedded: their keys sit flat in the
// app's JSON, at the place of the group. Only what must be converted
// (schema files, nested blocks, names mapped to other types) and what the
// engine never sees (storage, mail) is declared here.
type App struct {
	// Storage is the directory of the embedded database (identities,
	// sessions, flows, generated secrets). A relative path is resolved
	// against Caddy's working directory. Default: the "kratos" folder in
	// Caddy's data directory, e.g. ~/.local/share/caddy/kratos. A
	// postgres:// URL selects the PostgreSQL engine with default pool
	// options; any other value with a URL scheme is an error, never a
	// directory name.
	Storage string `json:"storage,omitempty"`

	// Postgres selects the PostgreSQL engine with pool options (several
	// gateways on one database). Exclusive with Storage.
	Postgres *PostgresOptions `json:"postgres,omitempty"`

	// SessionCacheSize bounds, in bytes, the compact cache of sessions
	// and identities that whoami and the gates read from (records the
	// garbage collector does not scan, outside the Go heap). A session
	// takes ~200 bytes, an identity ~300. It applies when the storage is
	// opened: at start, or by a reload that names another storage.
	// Default: 64 MiB (67108864). At least 1 MiB.
	SessionCacheSize int64 `json:"session_cache_size,omitempty"`

	// StorageResidentLimit bounds, in bytes, the pages of the embedded
	// (Badger) storage's table files that stay mapped in the process after
	// being read: over it, on Linux, their data blocks are paged out
	// (checked every 250 ms; hot sessions and identities are served by the
	// cache above).
	// Default (0): 32 MiB (33554432). -1: no bound (the kernel reclaims
	// them under memory pressure only). At least 1 MiB. Badger only: set
	// with PostgreSQL it stops the config. Applies when the storage opens.
	StorageResidentLimit int64 `json:"storage_resident_limit,omitempty"`

	// SiteOptions: public_url (required).
	flows.SiteOptions

	// IdentitySchema is the path of a JSON identity schema file (Kratos's
	// identity.schemas). Default: the built-in schema (email with password
	// identifier, optional first and last name).
	IdentitySchema string `json:"identity_schema,omitempty"`

	// IdentitySchemas are further identity schemas, each with its id
	// (Kratos's identity.schemas): identities keep the schema they were
	// created with, the admin API picks one with schema_id, registration
	// flows with ?identity_schema= when it is selfservice_selectable.
	// Without IdentitySchema, the built-in schema is not configured when
	// these are given. Default: none.
	IdentitySchemas []*IdentitySchemaEntry `json:"identity_schemas,omitempty"`

	// SchemaOptions: default_identity_schema.
	flows.SchemaOptions

	// BrowserOptions: dev, default_return_url, allowed_return_urls,
	// ui_urls, ui_prefix.
	flows.BrowserOptions

	// UI brands the built-in pages: product name, logo, primary colour
	// (and their prefix, as ui_prefix). Default: "Account" in blue.
	UI *UIOptions `json:"ui,omitempty"`

	// LocaleOptions are the languages of the pages and the mails:
	// translations_dir, languages, default_language (locale_options.go).
	LocaleOptions

	// CORSOptions: cors_allowed_origins.
	flows.CORSOptions

	// LifespanOptions: session_lifespan, earliest_possible_extend,
	// flow_lifespan, privileged_session_max_age.
	flows.LifespanOptions[caddy.Duration]

	// CookieOptions: cookie_name, cookie_domain, cookie_path.
	flows.CookieOptions

	// CookieSameSite is the SameSite attribute of the cookies: lax, strict
	// or none (cookies.same_site). Default: lax.
	CookieSameSite string `json:"cookie_same_site,omitempty"`

	// SecretOptions: cookie_host_prefix, cookie_secrets, cipher_secrets.
	flows.SecretOptions

	// FormOptions: registration_style, login_style,
	// mitigate_account_enumeration.
	flows.FormOptions

	// RateLimits sets the abuse limits (failed logins, wrong codes, mails,
	// sign-ups). Default: on with the defaults of flows.RateLimits.
	RateLimits *flows.RateLimits `json:"rate_limits,omitempty"`

	// PasswordOptions: disable_breached_password_check,
	// disable_registration, disable_password, password_hasher,
	// bcrypt_cost.
	flows.PasswordOptions

	// Recovery turns on account recovery (selfservice.flows.recovery) with
	// its method: code (a six-digit code is mailed) or link (a one-time
	// link is mailed) (selfservice.flows.recovery.use). Default: off, as in
	// Kratos.
	Recovery string `json:"recovery,omitempty"`

	// Verification turns on address verification
	// (selfservice.flows.verification) with its method: code (a code and a
	// link carrying it are mailed) or link
	// (selfservice.flows.verification.use). When on, registration mails a
	// verification code to each new address. Default: off, as in Kratos.
	Verification string `json:"verification,omitempty"`

	// CodeOptions: code_lifespan, code_max_submissions,
	// notify_unknown_recipients.
	flows.CodeOptions[caddy.Duration]

	// HookOptions: use_continue_with_transitions, require_verified_address,
	// keep_sessions_after_recovery, revoke_sessions_after_password_change.
	flows.HookOptions

	// Methods enables optional credential methods: totp, lookup_secret,
	// webauthn, passkey, code and oidc (selfservice.methods.<name>.enabled).
	// password and profile may be listed and are on anyway (profile
	// always, password unless DisablePassword); recovery and verification
	// codes do not need `code` here. Default: none.
	Methods []string `json:"methods,omitempty"`

	// MFAOptions: required_aal, totp_issuer.
	flows.MFAOptions

	// WebAuthn configures the relying party of the webauthn and passkey
	// methods (enable them with Methods). Default: derived from the public
	// URL.
	WebAuthn *WebAuthnConfig `json:"webauthn,omitempty"`

	// Code configures the code credential method (enable it with Methods).
	// Default: neither passwordless nor mfa.
	Code *CodeConfig `json:"code,omitempty"`

	// Passkey configures the passkey method (enable it with Methods):
	// its relying party and which authenticators make passkeys
	// (selfservice.methods.passkey.config). Default: the WebAuthn relying
	// party; a discoverable credential, user verification preferred, a
	// platform authenticator.
	Passkey *PasskeyConfig `json:"passkey,omitempty"`

	// OIDC configures social sign-in, the providers of the oidc method
	// (selfservice.methods.oidc.config; enable it with Methods). Default:
	// none.
	OIDC *OIDCConfig `json:"oidc,omitempty"`

	// SMTP is the SMTP server the courier delivers mail through
	// (courier.smtp.connection_uri): smtp://user:pass@host:port/ (STARTTLS
	// required) or smtps://user:pass@host:port/ (implicit TLS); query
	// parameters disable_starttls=true, skip_ssl_verify=true and
	// server_name=<name>. Use an {env.X} placeholder to keep the password
	// out of the config. Default: none — mails are only written to Caddy's
	// log (DEV ONLY).
	SMTP string `json:"smtp,omitempty"`

	// DisableStartTLS sends smtp:// mail without STARTTLS, in plain text
	// (same as ?disable_starttls=true). Only for a local relay or tests.
	// Default: false.
	DisableStartTLS bool `json:"disable_starttls,omitempty"`

	// From is the sender of the mails, with an optional display name:
	// "Login <no-reply@example.com>" (courier.smtp.from_address,
	// from_name). Default: no-reply@ory.kratos.sh.
	From string `json:"from,omitempty"`

	// MailTemplates overrides parts of the built-in mail templates
	// (courier.templates). Keys are template names: recovery_code_valid,
	// recovery_code_invalid, recovery_valid, recovery_invalid,
	// verification_code_valid, verification_code_invalid,
	// verification_valid, verification_invalid, login_code_valid,
	// registration_code_valid. Default: the built-in templates.
	MailTemplates map[string]*MailTemplate `json:"mail_templates,omitempty"`

	// MailRetryBase is the delay before the first retry of a mail the SMTP
	// server did not take; it doubles with every failed attempt, up to 10
	// minutes. A tuning knob. Default: 1s.
	MailRetryBase caddy.Duration `json:"mail_retry_base,omitempty"`

	// Audit configures the audit trail (audit_options.go). Default: on,
	// 90 days, 1000000 records, logged.
	Audit *AuditOptions `json:"audit,omitempty"`

	trail   *audit.Trail
	engine  *flows.Engine
	courier *courier.Courier
	pool    *pooledStore // set while holding a pool reference
	poolKey string       // the storage's pool key, set while holding a pool reference
	logger  *zap.Logger

	// ctx is this config's context, for checks across apps at Start.
	ctx caddy.Context
	// gates numbers the unnamed gates of each server (metrics.go).
	gates *gateLabels
}

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
	a.ctx = ctx
	repl := caddy.NewReplacer()

	cfg, err := a.flowsConfig(repl)
	if err != nil {
		return err
	}
	target, err := a.storage(repl)
	if err != nil {
		return err
	}
	key := target.poolKey()
	val, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		st, err := openStorage(target)
		if err != nil {
			return nil, err
		}
		return &pooledStore{store: st}, nil
	})
	if err != nil {
		return fmt.Errorf("opening kratos storage %s: %w", target, err)
	}
	a.poolKey = key
	a.logStorage(target, loaded)

	a.pool = val.(*pooledStore)
	engine := target.engine()
	store := instrumentStore(a.pool.store, engine)

	// The courier of this config. During a reload the old config's courier
	// still runs on the same store until it is stopped; the outbox leases
	// keep them from sending a message twice.
	ccfg, err := a.courierConfig(repl)
	if err != nil {
		return err
	}
	if err := a.provisionLocale(repl, &cfg, &ccfg); err != nil {
		return err
	}
	ccfg.OnAttempt = courierAttempted
	a.courier, err = courier.New(store, ccfg, a.logger)
	if err != nil {
		return courierConfigError(err)
	}
	a.pool.addCourier(a.courier)
	cfg.Mailer = courierMailer{a.courier}
	if err := a.startAudit(store, &cfg); err != nil {
		return err
	}
	if err := a.provisionMetrics(ctx, &cfg, engine); err != nil {
		return err
	}

	a.engine, err = flows.New(cfg, store, a.logger)
	if err != nil {
		return fmt.Errorf("starting kratos engine: %w", err)
	}
	return nil
}

// flowsConfig resolves placeholders, checks every value and maps the app
// to the engine's Config. Zero values stay zero: the engine fills in
// Kratos's defaults.
func (a *App) flowsConfig(repl *caddy.Replacer) (flows.Config, error) {
	// The plain options are the engine's own groups. Each topic below
	// replaces the placeholders of its strings (into fresh values: a keeps
	// the configuration as written), checks its values and maps what the
	// engine reads in another form, in the order of the app's fields.
	cfg := flows.Config{
		SiteOptions:     a.SiteOptions,
		SchemaOptions:   a.SchemaOptions,
		BrowserOptions:  a.BrowserOptions,
		CORSOptions:     a.CORSOptions,
		LifespanOptions: flows.EngineLifespans(a.LifespanOptions),
		CookieOptions:   a.CookieOptions,
		SecretOptions:   a.SecretOptions,
		FormOptions:     a.FormOptions,
		PasswordOptions: a.PasswordOptions,
		CodeOptions:     flows.EngineCodeOptions(a.CodeOptions),
		HookOptions:     a.HookOptions,
		MFAOptions:      a.MFAOptions,
	}
	r := replaceKnown(repl)
	var errs configErrors
	a.browserFlowsConfig(&cfg, r, &errs)  // browser_options.go
	a.sessionFlowsConfig(&cfg, r, &errs)  // session_options.go
	a.methodFlowsConfig(&cfg, r, &errs)   // method_options.go
	a.webauthnFlowsConfig(&cfg, r, &errs) // webauthn_options.go
	a.oidcFlowsConfig(&cfg, r, &errs)     // oidc_options.go
	a.checkMailOptions(&errs)             // mail_options.go
	a.schemaFlowsConfig(&cfg, r, &errs)   // identity_schema_options.go
	a.applyHardening(&cfg)                // hardening_options.go
	a.uiFlowsConfig(&cfg, r, &errs)       // ui_options.go
	return cfg, errors.Join(errs...)
}

// configErrors collects what is wrong with a configuration, each error
// named by its JSON field.
type configErrors []error

// check records err, if any, under field.
func (e *configErrors) check(field string, err error) {
	if err != nil {
		*e = append(*e, fmt.Errorf("%s: %w", field, err))
	}
}

// replaceKnown replaces the placeholders repl knows (e.g. {env.X}) and
// empties the unknown ones.
func replaceKnown(repl *caddy.Replacer) func(string) string {
	return func(s string) string { return repl.ReplaceKnown(s, "") }
}

// replaceEach returns a copy of list with r applied to each element; nil
// for an empty list.
func replaceEach(list []string, r func(string) string) []string {
	var out []string
	for _, s := range list {
		out = append(out, r(s))
	}
	return out
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

// courierStopTimeout bounds how long Stop waits for a mail being
// delivered; the message stays queued if it is cut off.
const courierStopTimeout = 5 * time.Second

// Start starts the mail courier, which first sends whatever is still
// queued (from before a restart, or from a previous config). The engine
// does its work in the HTTP handlers.
func (a *App) Start() error {
	if err := a.checkAdminServers(); err != nil {
		return err
	}
	if a.courier != nil {
		a.courier.Start()
	}
	return nil
}

// Stop stops the mail courier, waiting a few seconds for a delivery in
// progress; queued mails stay in the outbox for the next config or start.
// Other resources are released in Cleanup.
func (a *App) Stop() error { return errors.Join(a.stopCourier(), a.stopAudit()) }

func (a *App) stopCourier() error {
	if a.courier == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), courierStopTimeout)
	defer cancel()
	err := a.courier.Stop(ctx)
	a.pool.removeCourier(a.courier)
	if err != nil {
		return fmt.Errorf("stopping kratos mail courier: %w", err)
	}
	return nil
}

// Cleanup stops the courier (if Stop was not called), closes the engine
// and releases this config's reference to the store; the last reference
// closes it. Caddy also calls it after a failed Provision, so it releases
// only what was taken.
func (a *App) Cleanup() error {
	var errs []error
	if a.courier != nil {
		errs = append(errs, a.stopCourier())
		a.courier = nil
	}
	if a.engine != nil {
		errs = append(errs, a.engine.Close())
		a.engine = nil
	}
	errs = append(errs, a.stopAudit())
	a.trail = nil
	if a.poolKey != "" {
		_, err := stores.Delete(a.poolKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("closing kratos storage: %w", err))
		}
		a.poolKey, a.pool = "", nil
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
