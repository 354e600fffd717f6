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
	// webauthn, passkey and code (selfservice.methods.<name>.enabled).
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

	a.engine, err = flows.New(cfg, store, a.logger)
	if err != nil {
		return fmt.Errorf("starting kratos engine: %w", err)
	}
	return nil
}

// courierConfig resolves placeholders and maps the mail options to the
// courier's Config. Values are checked by courier.New.
func (a *App) courierConfig(repl *caddy.Replacer) (courier.Config, error) {
	r := replaceKnown(repl)
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
	cfg.BodySecrets = replaceEach(bodySecrets, r)
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
	r := replaceKnown(repl)
	// The plain options are the engine's own groups; only their strings
	// that may hold placeholders are replaced, into fresh values (a keeps
	// the configuration as written).
	cfg := flows.Config{
		SiteOptions:     a.SiteOptions,
		SchemaOptions:   a.SchemaOptions,
		BrowserOptions:  a.BrowserOptions,
		LifespanOptions: flows.EngineLifespans(a.LifespanOptions),
		CookieOptions:   a.CookieOptions,
		SecretOptions:   a.SecretOptions,
		FormOptions:     a.FormOptions,
		PasswordOptions: a.PasswordOptions,
		CodeOptions:     flows.EngineCodeOptions(a.CodeOptions),
		HookOptions:     a.HookOptions,
		MFAOptions:      a.MFAOptions,

		RecoveryEnabled:     a.Recovery != "",
		RecoveryUse:         a.Recovery,
		VerificationEnabled: a.Verification != "",
		VerificationUse:     a.Verification,
	}
	cfg.PublicURL = r(a.PublicURL)
	cfg.DefaultIdentitySchemaID = r(a.DefaultIdentitySchemaID)
	cfg.DefaultReturnURL = r(a.DefaultReturnURL)
	cfg.AllowedReturnURLs = replaceEach(a.AllowedReturnURLs, r)
	cfg.UIURLs = nil
	cfg.UIPrefix = r(a.UIPrefix)
	cfg.CookieName, cfg.CookieDomain, cfg.CookiePath = r(a.CookieName), r(a.CookieDomain), r(a.CookiePath)
	cfg.CookieSecrets = replaceEach(a.CookieSecrets, r)
	cfg.CipherSecrets = replaceEach(a.CipherSecrets, r)
	cfg.TOTPIssuer = r(a.TOTPIssuer)

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
	for _, u := range cfg.AllowedReturnURLs {
		check("allowed_return_urls", flows.CheckAllowedReturnURL(u))
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
		d     time.Duration
	}{
		{"session_lifespan", cfg.SessionLifespan},
		{"earliest_possible_extend", cfg.EarliestPossibleExtend},
		{"flow_lifespan", cfg.FlowLifespan},
		{"privileged_session_max_age", cfg.PrivilegedSessionMaxAge},
	} {
		if l.d != 0 {
			check(l.field, checkLifespan(l.d))
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
	for _, s := range cfg.CookieSecrets {
		check("cookie_secrets", checkSecret(s))
	}
	for _, s := range cfg.CipherSecrets {
		check("cipher_secrets", checkSecret(s))
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
		cfg.WebAuthnRPOrigins = replaceEach(w.RPOrigins, r)
		for _, o := range cfg.WebAuthnRPOrigins {
			check("webauthn.rp_origins", checkOrigin(o))
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
		cfg.PasskeyRPOrigins = replaceEach(p.RPOrigins, r)
		for _, o := range cfg.PasskeyRPOrigins {
			check("passkey.rp_origins", checkOrigin(o))
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
	a.applyHardening(&cfg)
	errs = append(errs, a.uiFlowsConfig(&cfg, r)...)
	return cfg, errors.Join(errs...)
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
func (a *App) Stop() error { return a.stopCourier() }

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
