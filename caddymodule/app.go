package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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

	// PublicURL is the absolute http(s) URL at which the Kratos public API
	// is reached (Kratos's serve.public.base_url). It is the base of form
	// actions, links in mails, redirects, logout URLs, the CSRF cookie name
	// and the issuer of the gates' assertions. Required: none of these is
	// ever derived from a request's Host header.
	PublicURL string `json:"public_url,omitempty"`

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

	// DefaultIdentitySchema is the id of the schema new identities get
	// when nothing names one (identity.default_schema_id). Default:
	// "default" when such a schema exists (IdentitySchema, or the built-in
	// one), else the only schema.
	DefaultIdentitySchema string `json:"default_identity_schema,omitempty"`

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

	// UI brands the built-in pages: product name, logo, primary colour
	// (and their prefix, as ui_prefix). Default: "Account" in blue.
	UI *UIOptions `json:"ui,omitempty"`

	// CORSAllowedOrigins enables CORS with credentials for SPAs on these
	// origins (serve.public.cors). Default: none (CORS off).
	CORSAllowedOrigins []string `json:"cors_allowed_origins,omitempty"`

	// SessionLifespan is how long a session lives (session.lifespan).
	// Default: 24h.
	SessionLifespan caddy.Duration `json:"session_lifespan,omitempty"`

	// EarliestPossibleExtend turns on sliding sessions
	// (session.earliest_possible_extend): when whoami or a gate sees a
	// session with less than this left, it extends the session by
	// SessionLifespan (at most once a minute per session) and whoami
	// re-issues the cookie. Default: 0, sessions are not extended.
	EarliestPossibleExtend caddy.Duration `json:"earliest_possible_extend,omitempty"`

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

	// CookieHostPrefix names the session and CSRF cookies with the
	// __Host- prefix (__Host-ory_kratos_session, __Host-csrf_token_…):
	// browsers then take them only from this host, Secure, with Path=/ and
	// no Domain, so a sibling subdomain cannot plant or overwrite them
	// (cookie tossing). Needs an https public_url (or a loopback one), no
	// cookie_domain and cookie_path /. Default: false (Kratos's names).
	CookieHostPrefix bool `json:"cookie_host_prefix,omitempty"`

	// CookieSecrets sign and encrypt the session cookie (secrets.cookie),
	// each at least 16 characters. The first signs new cookies; all are
	// accepted (rotation). Default: a random secret generated once and kept
	// in the storage, so restarts keep users logged in.
	CookieSecrets []string `json:"cookie_secrets,omitempty"`

	// CipherSecrets seal credentials at rest — TOTP keys, the sealed copy
	// of backup codes, pending WebAuthn ceremonies — and key the MACs of
	// one-time codes (secrets.cipher), each at least 16 characters. The
	// first seals; all open (rotation; values sealed under the cookie
	// secrets still open and are re-sealed when used). Kept outside the
	// storage (e.g. {env.KRATOS_CIPHER_SECRET}), a copy of the storage
	// directory does not reveal TOTP keys or backup codes and cannot test
	// pending codes offline. Default: the cookie secrets.
	CipherSecrets []string `json:"cipher_secrets,omitempty"`

	// RegistrationStyle is profile_first (traits first, then the
	// credential) or unified (one step)
	// (selfservice.flows.registration.style). Default: profile_first.
	RegistrationStyle string `json:"registration_style,omitempty"`

	// LoginStyle is unified (the identifier and every first factor on one
	// form) or identifier_first (the identifier alone, then the methods of
	// that account) (selfservice.flows.login.style). Default: unified.
	LoginStyle string `json:"login_style,omitempty"`

	// MitigateAccountEnumeration makes no sign-in answer tell whether an
	// account exists: identifier-first login shows every enabled method
	// whatever the identifier, sign-in codes for unknown addresses are
	// answered as sent (and sent nowhere), and WebAuthn options for unknown
	// identifiers look like real ones
	// (security.account_enumeration.mitigate). Default: false.
	MitigateAccountEnumeration bool `json:"mitigate_account_enumeration,omitempty"`

	// RateLimits sets the abuse limits (failed logins, wrong codes, mails,
	// sign-ups). Default: on with RateLimitsConfig's defaults.
	RateLimits *RateLimitsConfig `json:"rate_limits,omitempty"`

	// DisableBreachedPasswordCheck turns off the offline check of new
	// passwords against the embedded list of common leaked passwords.
	// Default: false (the check is on).
	DisableBreachedPasswordCheck bool `json:"disable_breached_password_check,omitempty"`

	// DisableRegistration closes self-service registration
	// (selfservice.flows.registration.enabled: false). Default: false.
	DisableRegistration bool `json:"disable_registration,omitempty"`

	// DisablePassword turns the password method off
	// (selfservice.methods.password.enabled: false) for passwordless
	// deployments: no password nodes in any flow, and password submits are
	// refused as a disabled method. Needs another first factor: passkey,
	// webauthn with passwordless, or code with passwordless. Default:
	// false.
	DisablePassword bool `json:"disable_password,omitempty"`

	// PasswordHasher is bcrypt or argon2id (hashers.algorithm). Default:
	// bcrypt.
	PasswordHasher string `json:"password_hasher,omitempty"`

	// BcryptCost is the bcrypt cost, 4 to 31 (hashers.bcrypt.cost).
	// Default: 12.
	BcryptCost int `json:"bcrypt_cost,omitempty"`

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

	// CodeLifespan is how long a mailed code or link stays valid
	// (selfservice.methods.code.config.lifespan, …link.config.lifespan).
	// Default: 1h.
	CodeLifespan caddy.Duration `json:"code_lifespan,omitempty"`

	// CodeMaxSubmissions is how many codes may be tried on one flow before
	// it must be started again (selfservice.methods.code.config.max_submissions).
	// Default: 5.
	CodeMaxSubmissions int `json:"code_max_submissions,omitempty"`

	// NotifyUnknownRecipients mails a "no account with this address"
	// message when recovery or verification is asked for an address that
	// belongs to no identity
	// (selfservice.flows.<recovery|verification>.notify_unknown_recipients).
	// Default: false (nothing is sent).
	NotifyUnknownRecipients bool `json:"notify_unknown_recipients,omitempty"`

	// UseContinueWithTransitions answers a completed recovery with 200 and
	// continue_with instead of 422 browser_location_change_required
	// (feature_flags.use_continue_with_transitions). Default: false.
	UseContinueWithTransitions bool `json:"use_continue_with_transitions,omitempty"`

	// RequireVerifiedAddress refuses every first-factor sign-in (message
	// 4000010) until one of the identity's addresses is verified, and
	// sign-up then issues no session (Kratos's require_verified_address
	// login hook). Default: false.
	RequireVerifiedAddress bool `json:"require_verified_address,omitempty"`

	// KeepSessionsAfterRecovery leaves an identity's other sessions alive
	// after a recovery. Default: false — a successful recovery signs out
	// every other session of the identity (Kratos's revoke_active_sessions
	// hook in selfservice.flows.recovery.after).
	KeepSessionsAfterRecovery bool `json:"keep_sessions_after_recovery,omitempty"`

	// RevokeSessionsAfterPasswordChange signs out an identity's other
	// sessions when its password is changed in settings (the
	// revoke_active_sessions hook in selfservice.flows.settings.after.password).
	// Default: false.
	RevokeSessionsAfterPasswordChange bool `json:"revoke_sessions_after_password_change,omitempty"`

	// Methods enables optional credential methods: totp, lookup_secret,
	// webauthn, passkey and code (selfservice.methods.<name>.enabled).
	// password and profile may be listed and are on anyway (profile
	// always, password unless DisablePassword); recovery and verification
	// codes do not need `code` here. Default: none.
	Methods []string `json:"methods,omitempty"`

	// RequiredAAL is the assurance level whoami, settings and the gate
	// require: highest_available (a second factor is due when the identity
	// has one) or aal1 (session.whoami.required_aal,
	// selfservice.flows.settings.required_aal). Default: highest_available.
	RequiredAAL string `json:"required_aal,omitempty"`

	// TOTPIssuer is the issuer authenticator apps show
	// (selfservice.methods.totp.config.issuer). Default: the public URL's
	// host.
	TOTPIssuer string `json:"totp_issuer,omitempty"`

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
}

// IdentitySchemaEntry is one entry of identity.schemas.
type IdentitySchemaEntry struct {
	// ID is the schema id (identity schema_id, ?identity_schema=).
	ID string `json:"id"`
	// Path is the schema's JSON file: a path, a file:// URL or an inline
	// base64://… document.
	Path string `json:"path"`
	// SelfserviceSelectable lets registration flows choose this schema
	// with ?identity_schema=<id> (selfservice_selectable). Default: false,
	// only the admin API creates identities with it (the default schema
	// needs no flag).
	SelfserviceSelectable bool `json:"selfservice_selectable,omitempty"`
}

// WebAuthnConfig is the relying party of the webauthn and passkey methods
// (selfservice.methods.<webauthn|passkey>.config).
type WebAuthnConfig struct {
	// RPID is the relying party id, a registrable domain such as
	// example.com (config.rp.id). Default: the public URL's host name.
	RPID string `json:"rp_id,omitempty"`

	// RPDisplayName is the name authenticators show
	// (config.rp.display_name). Default: the relying party id.
	RPDisplayName string `json:"rp_display_name,omitempty"`

	// RPOrigins are the origins (scheme://host[:port]) allowed in
	// ceremonies (config.rp.origins). Default: the public URL's origin.
	RPOrigins []string `json:"rp_origins,omitempty"`

	// Passwordless lets security keys sign in without a password
	// (webauthn config.passwordless). Default: false (second factor only).
	Passwordless bool `json:"passwordless,omitempty"`
}

// PasskeyConfig is the passkey method's configuration
// (selfservice.methods.passkey.config).
type PasskeyConfig struct {
	// RPID is the relying party id of passkeys (config.rp.id). Default:
	// the WebAuthn one (webauthn rp_id, else the public URL's host name).
	RPID string `json:"rp_id,omitempty"`

	// RPDisplayName is the name authenticators show
	// (config.rp.display_name). Default: the WebAuthn one, else the
	// relying party id.
	RPDisplayName string `json:"rp_display_name,omitempty"`

	// RPOrigins are the origins allowed in passkey ceremonies
	// (config.rp.origins). Default: the WebAuthn ones (without an own
	// rp_id), else the public URL's origin.
	RPOrigins []string `json:"rp_origins,omitempty"`

	// AuthenticatorSelection selects the authenticators that make
	// passkeys.
	AuthenticatorSelection *PasskeySelection `json:"authenticator_selection,omitempty"`
}

// PasskeySelection is the authenticator selection of passkey
// registrations (WebAuthn's authenticatorSelection).
type PasskeySelection struct {
	// ResidentKey is required or preferred: passkeys sign in without an
	// identifier, which needs a discoverable credential. Default:
	// required.
	ResidentKey string `json:"resident_key,omitempty"`

	// UserVerification is required, preferred or discouraged, for passkey
	// sign-up and sign-in. Default: preferred.
	UserVerification string `json:"user_verification,omitempty"`

	// Attachment is platform (the device's own authenticator),
	// cross-platform (security keys, phones) or any. Default: platform,
	// as Kratos.
	Attachment string `json:"attachment,omitempty"`
}

// CodeConfig configures the code credential method
// (selfservice.methods.code).
type CodeConfig struct {
	// Passwordless enables sign-up and sign-in with a mailed code
	// (passwordless_enabled). Default: false.
	Passwordless bool `json:"passwordless,omitempty"`

	// MFA enables a mailed code as a second factor (mfa_enabled).
	// Default: false.
	MFA bool `json:"mfa,omitempty"`
}

// MailTemplate overrides parts of one mail template. Each part is a file
// path (or file:// URL, or base64://… inline template) of a Go template
// that sees Kratos's template data (.To, .RecoveryCode, .VerificationURL,
// .Identity, …); an empty part keeps the built-in one.
type MailTemplate struct {
	// Subject is the template of the subject line.
	Subject string `json:"subject,omitempty"`
	// Text is the template of the plain-text body.
	Text string `json:"text,omitempty"`
	// HTML is the template of the HTML body.
	HTML string `json:"html,omitempty"`
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
	store := a.pool.store

	// The courier of this config. During a reload the old config's courier
	// still runs on the same store until it is stopped; the outbox leases
	// keep them from sending a message twice.
	ccfg, err := a.courierConfig(repl)
	if err != nil {
		return err
	}
	a.courier, err = courier.New(store, ccfg, a.logger)
	if err != nil {
		return courierConfigError(err)
	}
	a.pool.addCourier(a.courier)
	cfg.Mailer = courierMailer{a.courier}
	if err := a.startAudit(store, &cfg); err != nil {
		return err
	}

	a.engine, err = flows.New(cfg, store, a.logger)
	if err != nil {
		return fmt.Errorf("starting kratos engine: %w", err)
	}
	return nil
}

// courierConfig resolves placeholders and maps the mail options to the
// courier's Config. Values are checked by courier.New.
func (a *App) courierConfig(repl *caddy.Replacer) (courier.Config, error) {
	r := func(s string) string { return repl.ReplaceKnown(s, "") }
	cfg := courier.Config{
		ConnectionURI:   r(a.SMTP),
		DisableStartTLS: a.DisableStartTLS,
		From:            r(a.From),
		RetryBase:       time.Duration(a.MailRetryBase),
	}
	// Queued mails are sealed with secrets kept outside the storage, when
	// the configuration gives any (the generated one lives in the store).
	bodySecrets := a.CipherSecrets
	if len(bodySecrets) == 0 {
		bodySecrets = a.CookieSecrets
	}
	for _, s := range bodySecrets {
		cfg.BodySecrets = append(cfg.BodySecrets, r(s))
	}
	if a.SMTP != "" && cfg.ConnectionURI == "" {
		return cfg, fmt.Errorf("smtp: %q is empty after replacing placeholders", a.SMTP)
	}
	if len(a.MailTemplates) > 0 {
		cfg.Templates = make(map[string]courier.TemplateFiles, len(a.MailTemplates))
		for name, t := range a.MailTemplates {
			if t == nil {
				continue
			}
			cfg.Templates[name] = courier.TemplateFiles{Subject: r(t.Subject), BodyPlaintext: r(t.Text), BodyHTML: r(t.HTML)}
		}
	}
	return cfg, nil
}

// courierConfigError names the option behind a courier configuration
// error.
func courierConfigError(err error) error {
	var ce *courier.ConfigError
	if !errors.As(err, &ce) {
		return fmt.Errorf("kratos mail courier: %w", err)
	}
	field := ce.Field
	switch {
	case field == "connection_uri":
		field = "smtp"
	case field == "from_address":
		field = "from"
	case field == "templates":
		field = "mail_templates"
	case strings.HasPrefix(field, "templates."):
		field = "mail_template " + strings.TrimPrefix(field, "templates.")
	}
	return fmt.Errorf("%s: %w", field, ce.Err)
}

// courierMailer queues the engine's mails in the courier's outbox.
type courierMailer struct{ c *courier.Courier }

// Send renders m and stores it durably; delivery happens in the background.
func (m courierMailer) Send(ctx context.Context, mail flows.Mail) error {
	_, err := m.c.Enqueue(ctx, courier.Message{
		To:       mail.To,
		Template: courier.TemplateID(mail.Template),
		Data: courier.TemplateData{
			To:               mail.To,
			RecoveryCode:     mail.RecoveryCode,
			RecoveryURL:      mail.RecoveryURL,
			VerificationCode: mail.VerificationCode,
			VerificationURL:  mail.VerificationURL,
			LoginCode:        mail.LoginCode,
			RegistrationCode: mail.RegistrationCode,
			Identity:         mail.Identity,
			RequestURL:       mail.RequestURL,
			TransientPayload: mail.TransientPayload,
			ExpiresInMinutes: mail.ExpiresInMinutes,
		},
	})
	return err
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
		EarliestPossibleExtend:  time.Duration(a.EarliestPossibleExtend),
		FlowLifespan:            time.Duration(a.FlowLifespan),
		PrivilegedSessionMaxAge: time.Duration(a.PrivilegedSessionMaxAge),
		CookieName:              r(a.CookieName),
		CookieDomain:            r(a.CookieDomain),
		CookiePath:              r(a.CookiePath),
		CookieHostPrefix:        a.CookieHostPrefix,
		DisableRegistration:     a.DisableRegistration,
		DisablePassword:         a.DisablePassword,
		RegistrationStyle:       a.RegistrationStyle,
		PasswordHasher:          a.PasswordHasher,
		BcryptCost:              a.BcryptCost,

		RecoveryEnabled:            a.Recovery != "",
		RecoveryUse:                a.Recovery,
		VerificationEnabled:        a.Verification != "",
		VerificationUse:            a.Verification,
		CodeLifespan:               time.Duration(a.CodeLifespan),
		CodeMaxSubmissions:         a.CodeMaxSubmissions,
		NotifyUnknownRecipients:    a.NotifyUnknownRecipients,
		UseContinueWithTransitions: a.UseContinueWithTransitions,
		RequireVerifiedAddress:     a.RequireVerifiedAddress,
		LoginStyle:                 a.LoginStyle,
		MitigateAccountEnumeration: a.MitigateAccountEnumeration,
		RequiredAAL:                a.RequiredAAL,
		TOTPIssuer:                 r(a.TOTPIssuer),

		KeepSessionsAfterRecovery:         a.KeepSessionsAfterRecovery,
		RevokeSessionsAfterPasswordChange: a.RevokeSessionsAfterPasswordChange,
	}

	var errs []error
	check := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
	}
	switch {
	case cfg.PublicURL != "":
		check("public_url", checkHTTPURL(cfg.PublicURL))
	case a.PublicURL != "":
		errs = append(errs, fmt.Errorf("public_url: %q is empty after replacing placeholders", a.PublicURL))
	default:
		errs = append(errs, errors.New(publicURLRequired))
	}
	if cfg.DefaultReturnURL != "" {
		check("default_return_url", checkHTTPURL(cfg.DefaultReturnURL))
	}
	for _, u := range a.AllowedReturnURLs {
		u = r(u)
		check("allowed_return_urls", flows.CheckAllowedReturnURL(u))
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
		{"earliest_possible_extend", a.EarliestPossibleExtend},
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
	for _, s := range a.CipherSecrets {
		s = r(s)
		check("cipher_secrets", checkSecret(s))
		cfg.CipherSecrets = append(cfg.CipherSecrets, s)
	}
	if a.RegistrationStyle != "" {
		check("registration_style", checkOneOf("registration style", a.RegistrationStyle, registrationStyles))
	}
	if a.LoginStyle != "" {
		check("login_style", checkOneOf("login style", a.LoginStyle, loginStyles))
	}
	if a.PasswordHasher != "" {
		check("password_hasher", checkOneOf("password hasher", a.PasswordHasher, passwordHashers))
	}
	if a.BcryptCost != 0 {
		check("bcrypt_cost", checkBcryptCost(a.BcryptCost))
	}
	if a.Recovery != "" {
		check("recovery", checkOneOf("recovery method", a.Recovery, flowMethods))
	}
	if a.Verification != "" {
		check("verification", checkOneOf("verification method", a.Verification, flowMethods))
	}
	if a.CodeLifespan != 0 {
		check("code_lifespan", checkLifespan(time.Duration(a.CodeLifespan)))
	}
	if a.CodeMaxSubmissions != 0 {
		check("code_max_submissions", checkCodeMaxSubmissions(a.CodeMaxSubmissions))
	}
	check("disable_password", checkFirstFactor(a))
	if len(a.Methods) > 0 {
		check("methods", checkMethods(a.Methods))
		cfg.Methods = make(map[string]bool, len(a.Methods))
		for _, m := range a.Methods {
			cfg.Methods[m] = true
		}
	}
	if a.RequiredAAL != "" {
		check("required_aal", checkOneOf("required AAL", a.RequiredAAL, requiredAALs))
	}
	if a.TOTPIssuer != "" && cfg.TOTPIssuer == "" {
		check("totp_issuer", fmt.Errorf("%q is empty after replacing placeholders", a.TOTPIssuer))
	}
	if w := a.WebAuthn; w != nil {
		cfg.WebAuthnRPID = r(w.RPID)
		cfg.WebAuthnRPDisplayName = r(w.RPDisplayName)
		cfg.WebAuthnPasswordless = w.Passwordless
		if w.RPID != "" {
			check("webauthn.rp_id", checkRPID(cfg.WebAuthnRPID))
		}
		for _, o := range w.RPOrigins {
			o = r(o)
			check("webauthn.rp_origins", checkOrigin(o))
			cfg.WebAuthnRPOrigins = append(cfg.WebAuthnRPOrigins, o)
		}
	}
	if c := a.Code; c != nil {
		cfg.CodePasswordless = c.Passwordless
		cfg.CodeMFA = c.MFA
	}
	if p := a.Passkey; p != nil {
		check("passkey", checkPasskeyEnabled(a))
		cfg.PasskeyRPID = r(p.RPID)
		cfg.PasskeyRPDisplayName = r(p.RPDisplayName)
		if p.RPID != "" {
			check("passkey.rp_id", checkRPID(cfg.PasskeyRPID))
		}
		for _, o := range p.RPOrigins {
			o = r(o)
			check("passkey.rp_origins", checkOrigin(o))
			cfg.PasskeyRPOrigins = append(cfg.PasskeyRPOrigins, o)
		}
		if s := p.AuthenticatorSelection; s != nil {
			cfg.PasskeyResidentKey, cfg.PasskeyUserVerification, cfg.PasskeyAttachment = s.ResidentKey, s.UserVerification, s.Attachment
			check("passkey.authenticator_selection", checkPasskeySelection(s))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a.MailTemplates)) {
		check("mail_templates", checkMailTemplateName(name))
	}
	if a.SMTP != "" && !hasPlaceholder(a.SMTP) {
		check("smtp", checkSMTPURI(a.SMTP))
	}
	if a.From != "" && !hasPlaceholder(a.From) {
		check("from", checkFromAddress(a.From))
	}
	if a.MailRetryBase != 0 {
		check("mail_retry_base", checkLifespan(time.Duration(a.MailRetryBase)))
	}
	if a.IdentitySchema != "" {
		schema, err := readSchemaSource(r(a.IdentitySchema))
		check("identity_schema", err)
		cfg.IdentitySchema = schema
	}
	for _, s := range a.IdentitySchemas {
		if s == nil {
			continue
		}
		if err := flows.CheckIdentitySchemaID(s.ID); err != nil {
			check("identity_schemas", err)
			continue
		}
		schema, err := readSchemaSource(r(s.Path))
		check("identity_schemas."+s.ID, err)
		cfg.IdentitySchemas = append(cfg.IdentitySchemas,
			flows.IdentitySchemaConfig{ID: s.ID, Raw: schema, SelfserviceSelectable: s.SelfserviceSelectable})
	}
	cfg.DefaultIdentitySchemaID = r(a.DefaultIdentitySchema)
	a.applyHardening(&cfg)
	errs = append(errs, a.uiFlowsConfig(&cfg, r)...)
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
