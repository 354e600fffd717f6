package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/admin"
	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/login"
	"github.com/caddy-kratos/caddy-kratos/flows/logout"
	"github.com/caddy-kratos/caddy-kratos/flows/method/code"
	"github.com/caddy-kratos/caddy-kratos/flows/method/lookupsecret"
	"github.com/caddy-kratos/caddy-kratos/flows/method/passkey"
	"github.com/caddy-kratos/caddy-kratos/flows/method/password"
	"github.com/caddy-kratos/caddy-kratos/flows/method/totp"
	"github.com/caddy-kratos/caddy-kratos/flows/method/webauthn"
	"github.com/caddy-kratos/caddy-kratos/flows/recovery"
	"github.com/caddy-kratos/caddy-kratos/flows/registration"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/settings"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/ui"
	"github.com/caddy-kratos/caddy-kratos/flows/verification"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Config is everything the engine needs. Zero values mean Kratos's defaults
// (filled by Config.withDefaults). The plain options are in the embedded
// groups (options.go), which the Caddy app decodes from its JSON too; the
// fields below are those the app converts.
type Config struct {
	SiteOptions
	SchemaOptions
	BrowserOptions
	CORSOptions
	LifespanOptions[time.Duration]
	CookieOptions
	SecretOptions
	FormOptions
	PasswordOptions
	CodeOptions[time.Duration]
	HookOptions
	MFAOptions

	// CookieSameSite is Lax, Strict or None. Default: Lax.
	CookieSameSite http.SameSite
	// IdentitySchema is the raw JSON of the identity schema. Default: the
	// built-in email + optional first/last name schema.
	IdentitySchema []byte
	// IdentitySchemaID is the schema's id. Default: "default".
	IdentitySchemaID string
	// IdentitySchemas are further identity schemas (identity.schemas), in
	// the order GET /schemas lists them, after IdentitySchema when that is
	// set. Without IdentitySchema, the built-in schema is there only when
	// IdentitySchemas is empty.
	IdentitySchemas []IdentitySchemaConfig

	// RecoveryEnabled turns on account recovery. Default: off (Kratos).
	RecoveryEnabled bool
	// RecoveryUse is code (default) or link.
	RecoveryUse string
	// VerificationEnabled turns on address verification. Default: off.
	VerificationEnabled bool
	// VerificationUse is code (default) or link.
	VerificationUse string
	// Methods enables optional credential methods by name (totp,
	// lookup_secret, webauthn, passkey, code). profile is always on, and
	// password unless DisablePassword.
	Methods map[string]bool
	// WebAuthnRPID is the relying party id (a registrable domain). Default:
	// the public URL's hostname.
	WebAuthnRPID string
	// WebAuthnRPDisplayName is shown by authenticators. Default: the RP id.
	WebAuthnRPDisplayName string
	// WebAuthnRPOrigins are the origins allowed in ceremonies. Default: the
	// public URL's origin.
	WebAuthnRPOrigins []string
	// WebAuthnPasswordless lets security keys be a first factor (Kratos's
	// webauthn.config.passwordless). Default: off (second factor only).
	WebAuthnPasswordless bool
	// PasskeyRPID, PasskeyRPDisplayName and PasskeyRPOrigins are the
	// relying party of the passkey method
	// (selfservice.methods.passkey.config.rp). Default: the WebAuthn
	// relying party.
	PasskeyRPID          string
	PasskeyRPDisplayName string
	PasskeyRPOrigins     []string
	// PasskeyResidentKey (required or preferred), PasskeyUserVerification
	// (required, preferred or discouraged) and PasskeyAttachment
	// (platform, cross-platform or any) select the authenticators of
	// passkeys. Default: required, preferred, platform (what Kratos's
	// passkey strategy asks for).
	PasskeyResidentKey      string
	PasskeyUserVerification string
	PasskeyAttachment       string
	// OIDCProviders are the social sign-in providers
	// (selfservice.methods.oidc.config.providers), in the order their
	// buttons are shown; each already passed provider.ValidateAll. The
	// oidc method is on when Methods["oidc"] is set and there is at least
	// one provider. Each provider's MapperURL is loaded by New (empty: the
	// default mapper).
	OIDCProviders []provider.Config
	// OIDCHTTPClient talks to the providers. Nil: provider's default (10 s
	// timeout, no dialling this machine unless a provider is configured
	// on loopback, no link-local addresses).
	OIDCHTTPClient *http.Client
	// CodePasswordless enables sign-in and sign-up with a mailed code.
	CodePasswordless bool
	// CodeMFA enables a mailed code as a second factor.
	CodeMFA bool
	// UIProductName brands the built-in pages. Default: "Account".
	UIProductName string
	// UILogoURL is an image shown on the built-in pages (same origin or
	// data: URL, CSP permitting). Default: none.
	UILogoURL string
	// UIPrimaryColor is a CSS colour for buttons and links. Default:
	// #2563eb.
	UIPrimaryColor string
	// RateLimits bounds guessing and mail bombing; on by default.
	RateLimits RateLimits
	// ClientIP returns the client address of a request (Caddy's client_ip,
	// which honours trusted proxies). Nil: the connection's remote host.
	ClientIP func(*http.Request) string
	// Mailer sends courier messages. Nil: codes are not sent anywhere
	// (caddymodule always wires the courier, which logs when no SMTP is set).
	Mailer Mailer
	// Locale holds the texts of the built-in pages and the mails in every
	// offered language (translations_dir). Nil: the built-in languages.
	Locale *locale.Catalog
	// Events receive the engine's security-relevant events (sign-ins,
	// sign-ups, revocations, credential changes, administrative changes,
	// rate-limit blocks): the audit trail and the metrics. Nil: none.
	Events []event.Sink
	// AuditLog is the audit trail the admin API lists at GET
	// /admin/audit (one of Events, usually). Nil: that path answers 404.
	AuditLog event.Log
	// ObserveWhoami, when set, is told how long each whoami request took
	// (caddymodule passes a latency histogram's Observe). It runs on the
	// hot path: it must not block, and should not allocate.
	ObserveWhoami func(time.Duration)
}

// EventSink receives the engine's events (event.Sink).
type EventSink = event.Sink

// Event is one security-relevant event (event.Event).
type Event = event.Event

// Mailer queues a courier message durably (the courier implements it).
type Mailer = flow.Mailer

// Mail is one message for the courier: a Kratos template and its data.
type Mail = flow.Mail

// RateLimits bounds guessing and mail bombing (on by default).
type RateLimits = flow.RateLimits

// CheckAllowedReturnURL checks an entry of allowed_return_urls: an
// absolute http(s) URL (its host may be a *.example.com wildcard), or a
// native app's custom-scheme URL with a host.
func CheckAllowedReturnURL(s string) error { return flow.CheckAllowedReturnURL(s) }

// IdentitySchemaConfig is one entry of identity.schemas: its id, its
// JSON, and whether registration flows may choose it.
type IdentitySchemaConfig = identity.SchemaConfig

// CheckIdentitySchemaID accepts an identity schema id: 1 to 128 printable
// characters without spaces or '/'.
func CheckIdentitySchemaID(id string) error { return identity.CheckSchemaID(id) }

// ValidCSSColor reports whether s is a CSS colour the pages accept for
// UIPrimaryColor: #hex, a named colour or a colour function.
func ValidCSSColor(s string) bool { return ui.ValidCSSColor(s) }

// Engine serves the self-service API. Create it with New; it is safe for
// concurrent use. Several engines (old and new config during a Caddy
// reload) may share one store.
type Engine struct {
	cfg     Config
	store   sessionstore.Storage
	logger  *zap.Logger
	hasher  *identity.Hasher
	cookies *token.CookieCodec
	// base is the configured public URL; urls builds every public
	// address from it.
	base    *url.URL
	urls    *wire.URLs
	allowed []*url.URL
	mux     *http.ServeMux
	now     func() time.Time
	// csrfName is the CSRF cookie's name (from the public URL).
	csrfName string
	// sealer seals credential secrets at rest (credseal.go).
	sealer *token.Sealer
	// codeKey keys the MACs of one-time codes (codes.go).
	codeKey []byte
	// loginMethods, registrationMethods and settingsMethods are the
	// credential methods of each flow, in display order (methods.go).
	loginMethods        []flow.LoginMethod
	registrationMethods []flow.RegistrationMethod
	settingsMethods     []flow.SettingsMethod
	// idFirstMethods are the first factors of identifier-first login.
	idFirstMethods []flow.IdentifierFirstMethod
	// lookup is the backup-code method.
	lookup *lookupsecret.Method
	// totp is the authenticator-app method.
	totp *totp.Method
	// code is the mailed-code method.
	code *code.Method
	// webauthn and passkey are the security key and passkey methods.
	webauthn *webauthn.Method
	passkey  *passkey.Method
	// oidc is social sign-in.
	oidc *oidc.Method
	// password is the password method.
	password *password.Method
	// logout is the logout flow.
	logout *logout.Logout
	// login, settings, recovery and verification are flows.
	settings     *settings.Flow
	recovery     *recovery.Flow
	verification *verification.Flow
	login        *login.Flow
	registration *registration.Flow
	// kernel stores and drives the flows (flow.Kernel).
	kernel *flow.Kernel
	// sessions issues, finds and checks sessions (sessioncheck.go).
	sessions *session.Manager
	// admin is the admin API (AdminHandler).
	admin *admin.API
	// pages are the built-in pages.
	pages *ui.Pages
	// locale picks the language of a request (pages, mails).
	locale *locale.Catalog

	// schemas are the configured identity schemas (schema.go).
	schemas *identity.Schemas
}

// ErrNoPublicURL is returned by New without Config.PublicURL. Links in
// mails, redirects, cookie names and assertion issuers built from a
// request's Host header would point wherever the client says (a recovery
// link mailed to evil.example is an account takeover), so there is no
// per-request default.
var ErrNoPublicURL = errors.New("flows: public_url is required: links in mails, redirects, the CSRF cookie name and assertion issuers are built from it, never from a request's Host header")

// ErrNoFirstFactor is returned by New when the password method is off and
// no other first factor is on: nobody could sign in.
var ErrNoFirstFactor = errors.New("flows: the password method is disabled and no other first factor is enabled (passkey, webauthn passwordless, code passwordless or oidc with a provider): nobody could sign in")

// hasPasswordlessFirstFactor reports whether a first factor other than
// the password is on.
func (c Config) hasPasswordlessFirstFactor() bool {
	return c.Methods["passkey"] || c.Methods["webauthn"] && c.WebAuthnPasswordless || c.Methods["code"] && c.CodePasswordless ||
		c.Methods["oidc"] && len(c.OIDCProviders) > 0
}

// withDefaults fills Kratos's defaults into zero fields.
func (c Config) withDefaults() Config {
	if c.UIPrefix == "" {
		c.UIPrefix = "/ui/"
	}
	if !strings.HasPrefix(c.UIPrefix, "/") {
		c.UIPrefix = "/" + c.UIPrefix
	}
	if !strings.HasSuffix(c.UIPrefix, "/") {
		c.UIPrefix += "/"
	}
	if c.SessionLifespan <= 0 {
		c.SessionLifespan = 24 * time.Hour
	}
	if c.FlowLifespan <= 0 {
		c.FlowLifespan = time.Hour
	}
	if c.PrivilegedSessionMaxAge <= 0 {
		c.PrivilegedSessionMaxAge = time.Hour
	}
	if c.CookieName == "" {
		c.CookieName = "ory_kratos_session"
	}
	if c.CookiePath == "" {
		c.CookiePath = "/"
	}
	if c.CookieSameSite == 0 {
		c.CookieSameSite = http.SameSiteLaxMode
	}
	if c.RegistrationStyle == "" {
		c.RegistrationStyle = "profile_first"
	}
	if c.LoginStyle == "" {
		c.LoginStyle = "unified"
	}
	switch c.PasswordHasher {
	case "":
		c.PasswordHasher = "bcrypt"
	case "argon2": // Kratos's name (hashers.algorithm: argon2) for argon2id
		c.PasswordHasher = "argon2id"
	}
	if c.BcryptCost == 0 {
		c.BcryptCost = 12
	}
	if c.IdentitySchemaID == "" {
		c.IdentitySchemaID = "default"
	}
	if c.RecoveryUse == "" {
		c.RecoveryUse = "code"
	}
	if c.VerificationUse == "" {
		c.VerificationUse = "code"
	}
	if c.CodeLifespan <= 0 {
		c.CodeLifespan = time.Hour
	}
	if c.CodeMaxSubmissions <= 0 {
		c.CodeMaxSubmissions = 5
	}
	if c.PasskeyResidentKey == "" {
		c.PasskeyResidentKey = "required"
	}
	if c.PasskeyUserVerification == "" {
		c.PasskeyUserVerification = "preferred"
	}
	if c.PasskeyAttachment == "" {
		c.PasskeyAttachment = "platform"
	}
	return c
}

// New validates cfg, fills defaults and returns a ready engine. It reads or
// creates the persisted cookie secret in store.
func New(cfg Config, store sessionstore.Storage, logger *zap.Logger) (*Engine, error) {
	if store == nil {
		return nil, errors.New("flows: nil store")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, store: store, logger: logger, now: time.Now}
	switch cfg.RegistrationStyle {
	case "profile_first", "unified":
	default:
		return nil, fmt.Errorf("flows: registration style %q: want profile_first or unified", cfg.RegistrationStyle)
	}
	if cfg.LoginStyle != "unified" && cfg.LoginStyle != "identifier_first" {
		return nil, fmt.Errorf("flows: login style %q: want unified or identifier_first", cfg.LoginStyle)
	}
	for _, u := range []string{cfg.RecoveryUse, cfg.VerificationUse} {
		if u != "code" && u != "link" {
			return nil, fmt.Errorf("flows: recovery/verification method %q: want code or link", u)
		}
	}
	switch cfg.PasswordHasher {
	case "bcrypt", "argon2id":
	default:
		return nil, fmt.Errorf("flows: password hasher %q: want bcrypt or argon2id", cfg.PasswordHasher)
	}
	if cfg.BcryptCost < 4 || cfg.BcryptCost > 31 {
		return nil, fmt.Errorf("flows: bcrypt cost %d out of range 4..31", cfg.BcryptCost)
	}
	if cfg.PublicURL == "" {
		return nil, ErrNoPublicURL
	}
	if cfg.DisablePassword && !cfg.hasPasswordlessFirstFactor() {
		return nil, ErrNoFirstFactor
	}
	if err := passkey.CheckSelection(cfg.PasskeyResidentKey, cfg.PasskeyUserVerification, cfg.PasskeyAttachment); err != nil {
		return nil, err
	}
	u, err := parseBaseURL(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("flows: public URL: %w", err)
	}
	e.base = u
	e.urls = wire.NewURLs(u.String(), cfg.UIPrefix, cfg.UIURLs, cfg.DefaultReturnURL)
	e.csrfName = token.CSRFCookieName(u.String())
	if cfg.CookieHostPrefix {
		if err := checkHostPrefix(cfg, u); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(cfg.CookieName, hostPrefix) {
			e.cfg.CookieName = hostPrefix + cfg.CookieName
		}
		e.csrfName = hostPrefix + e.csrfName
	}
	for _, s := range cfg.AllowedReturnURLs {
		if err := flow.CheckAllowedReturnURL(s); err != nil {
			return nil, fmt.Errorf("flows: allowed return URL: %w", err)
		}
		u, _ := url.Parse(s)
		e.allowed = append(e.allowed, u)
	}
	for kind, s := range cfg.UIURLs {
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return nil, fmt.Errorf("flows: ui_url %s %q is not an absolute URL", kind, s)
		}
	}
	if cfg.DefaultReturnURL != "" {
		if u, err := url.Parse(cfg.DefaultReturnURL); err != nil || u.Host == "" {
			return nil, fmt.Errorf("flows: default return URL %q is not an absolute URL", cfg.DefaultReturnURL)
		}
	}
	if err := e.loadSchemas(); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	if e.hasher, err = identity.NewHasher(cfg.PasswordHasher, cfg.BcryptCost); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	var secrets [][]byte
	for _, s := range cfg.CookieSecrets {
		if len(s) < 16 {
			return nil, errors.New("flows: cookie secrets must be at least 16 characters")
		}
		secrets = append(secrets, []byte(s))
	}
	if len(secrets) == 0 {
		// Generated once and persisted, so restarts keep users logged in.
		sec, err := store.Secret(context.Background(), "cookie", func() ([]byte, error) { return token.RandomBytes(32), nil })
		if err != nil {
			return nil, fmt.Errorf("flows: cookie secret: %w", err)
		}
		secrets = [][]byte{sec}
	}
	if e.cookies, err = token.NewCookieCodec(secrets); err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	for _, s := range cfg.CipherSecrets {
		if len(s) < 16 {
			return nil, errors.New("flows: cipher secrets must be at least 16 characters")
		}
	}
	e.sealer = token.NewSealer(cfg.CipherSecrets, cfg.CookieSecrets, func(ctx context.Context) ([]byte, error) {
		return store.Secret(ctx, "cookie", func() ([]byte, error) {
			return nil, errors.New("the persisted cookie secret is missing")
		})
	})
	e.codeKey = e.cookies.MACKey()
	if len(cfg.CipherSecrets) > 0 {
		e.codeKey = token.PurposeKey([]byte(cfg.CipherSecrets[0]), "code-mac")
	}
	// The layers from the bottom up: events, sessions, the kernel, the
	// methods, the flows.
	clock := func() time.Time { return e.now() }
	events := event.NewRecorder(cfg.Events, cfg.ClientIP, clock, token.PurposeKey(e.codeKey, "event-identifier"))
	e.sessions = session.NewManager(session.Config{
		SessionLifespan: e.cfg.SessionLifespan, EarliestPossibleExtend: e.cfg.EarliestPossibleExtend,
		CookieName: e.cfg.CookieName, CookieDomain: e.cfg.CookieDomain, CookiePath: e.cfg.CookiePath,
		CookieSameSite: e.cfg.CookieSameSite, Secure: e.secureCookies(nil), RequiredAAL: e.cfg.RequiredAAL,
		PrivilegedSessionMaxAge: e.cfg.PrivilegedSessionMaxAge, Events: events, ObserveWhoami: e.cfg.ObserveWhoami,
	}, store, e.cookies, e.urls, logger, clock)
	e.kernel = flow.NewKernel(flow.Config{
		FlowLifespan: e.cfg.FlowLifespan, CookieDomain: e.cfg.CookieDomain, CookiePath: e.cfg.CookiePath,
		CookieSameSite: e.cfg.CookieSameSite, Secure: e.secureCookies(nil),
		CodeLifespan: e.cfg.CodeLifespan, CodeMaxSubmissions: e.cfg.CodeMaxSubmissions,
		NotifyUnknownRecipients: e.cfg.NotifyUnknownRecipients, RecoveryUse: e.cfg.RecoveryUse,
		VerificationUse: e.cfg.VerificationUse, RateLimits: e.cfg.RateLimits, ClientIP: e.cfg.ClientIP, Mailer: e.cfg.Mailer,
		Events: events,
	}, store, e.urls, e.sessions, e.schemas, logger, clock, e.csrfName, e.codeKey, e.allowed,
		[]func(*flow.Flow) *flow.Flow{lookupsecret.MaskCodes},
		[]func(*sessionstore.Identity, time.Time) error{dropCredential("password"), dropCredential("passkey"), webauthn.DropPasswordlessKeys})
	e.password = password.New(password.Config{Enabled: !e.cfg.DisablePassword, BreachCheck: !e.cfg.DisableBreachedPasswordCheck,
		RevokeSessionsOnChange: e.cfg.RevokeSessionsAfterPasswordChange}, e.kernel, e.sessions, store, e.hasher, e.schemas, logger, clock)
	if e.oidc, err = oidc.New(oidc.Config{Enabled: e.cfg.Methods["oidc"], Providers: e.cfg.OIDCProviders,
		HTTPClient: e.cfg.OIDCHTTPClient, PublicURL: e.base}, e.kernel, e.sessions, store, e.schemas, e.sealer, logger, clock); err != nil {
		return nil, err
	}
	e.registerMethods()
	var factors []session.SecondFactor
	for _, m := range e.loginMethods {
		if m.SecondFactor() {
			factors = append(factors, m)
		}
	}
	e.sessions.UseSecondFactors(factors)
	e.login = login.New(login.Config{LoginStyle: e.cfg.LoginStyle, RequireVerifiedAddress: e.cfg.RequireVerifiedAddress,
		MitigateAccountEnumeration: e.cfg.MitigateAccountEnumeration}, e.kernel, e.sessions, store, e.schemas, e.urls, logger,
		e.loginMethods, e.idFirstMethods)
	e.logout = logout.New(e.kernel, e.sessions, store, e.urls)
	e.verification = verification.New(verification.Config{VerificationEnabled: e.cfg.VerificationEnabled,
		VerificationUse: e.cfg.VerificationUse}, e.kernel, store, e.urls, logger, clock)
	e.kernel.UseAddressVerifier(e.verification)
	e.settings = settings.New(e.kernel, e.sessions, store, e.urls, logger, clock, e.settingsMethods)
	e.recovery = recovery.New(recovery.Config{RecoveryEnabled: e.cfg.RecoveryEnabled, RecoveryUse: e.cfg.RecoveryUse,
		CodeMaxSubmissions: e.cfg.CodeMaxSubmissions, KeepSessionsAfterRecovery: e.cfg.KeepSessionsAfterRecovery,
		PrivilegedSessionMaxAge: e.cfg.PrivilegedSessionMaxAge, UseContinueWithTransitions: e.cfg.UseContinueWithTransitions},
		e.kernel, e.sessions, store, e.urls, logger, clock, e.settings.NewFlow)
	e.admin = admin.New(admin.Config{PasswordHasher: e.cfg.PasswordHasher, RecoveryUse: e.cfg.RecoveryUse,
		CodeLifespan: e.cfg.CodeLifespan, SessionLifespan: e.cfg.SessionLifespan, Audit: e.cfg.AuditLog}, e.kernel, e.sessions, store, e.schemas,
		e.hasher, e.urls, logger, clock, e.recovery, admin.Shared{ListSchemas: e.writeSchemaList, GetSchema: e.getSchema, Health: e.health,
			OpenCredential: func(ctx context.Context, typ string, config json.RawMessage) json.RawMessage {
				if typ != "oidc" {
					return nil
				}
				return e.oidc.OpenTokens(ctx, config)
			}})
	e.registration = registration.New(registration.Config{Disabled: e.cfg.DisableRegistration, Style: e.cfg.RegistrationStyle,
		RequireVerifiedAddress: e.cfg.RequireVerifiedAddress, MitigateAccountEnumeration: e.cfg.MitigateAccountEnumeration},
		e.kernel, e.sessions, store, e.schemas, e.urls, logger, clock, e.registrationMethods)
	e.kernel.Register(e.login, e.registration, e.settings, e.recovery, e.verification)
	e.sessions.UseExchange(e.exchangeConfig())
	e.kernel.SetFinishNative(func(ctx context.Context, f *flow.Flow, is *session.Issued) (string, error) {
		return e.sessions.CompleteExchange(ctx, f.ID, f.ExchangeCodeHash, is)
	})
	e.locale = cfg.Locale
	if e.locale == nil {
		e.locale = locale.Builtin()
	}
	e.pages = ui.New(ui.Config{Prefix: e.cfg.UIPrefix, ProductName: e.cfg.UIProductName, LogoURL: e.cfg.UILogoURL,
		PrimaryColor: e.cfg.UIPrimaryColor, AllowedReturnURLs: e.cfg.AllowedReturnURLs, UIURLs: e.cfg.UIURLs,
		RegistrationEnabled: !e.cfg.DisableRegistration, RecoveryEnabled: e.cfg.RecoveryEnabled,
		Locale: e.locale, SecureCookies: e.secureCookies(nil), CookieDomain: e.cfg.CookieDomain,
		SocialProviders: socialPages(e.oidc.Enabled(), e.cfg.OIDCProviders)},
		e.kernel, e.sessions, store, e.settings, e.urls, logger, clock)
	e.routes()
	return e, nil
}

// loadSchemas compiles the configured identity schemas (identity.schemas,
// identity.default_schema_id): the one schema of the simple configuration
// (the built-in one when none is given), then the listed ones.
func (e *Engine) loadSchemas() error {
	var list []identity.SchemaConfig
	if len(e.cfg.IdentitySchema) > 0 || len(e.cfg.IdentitySchemas) == 0 {
		raw := e.cfg.IdentitySchema
		if len(raw) == 0 {
			raw = []byte(identity.DefaultSchema)
		}
		list = append(list, identity.SchemaConfig{ID: e.cfg.IdentitySchemaID, Raw: raw})
	}
	list = append(list, e.cfg.IdentitySchemas...)
	set, err := identity.LoadSchemas(list, e.cfg.DefaultIdentitySchemaID, e.cfg.IdentitySchemaID, e.logger)
	if err != nil {
		return err
	}
	e.schemas = set
	return nil
}

// hostPrefix is the cookie name prefix browsers accept only for Secure,
// host-only cookies with Path=/ (RFC 6265bis).
const hostPrefix = "__Host-"

// checkHostPrefix refuses settings a __Host- cookie cannot have: browsers
// drop such cookies silently, and nobody could sign in.
func checkHostPrefix(cfg Config, base *url.URL) error {
	if cfg.CookieDomain != "" {
		return errors.New("flows: cookie_host_prefix: __Host- cookies cannot have a cookie_domain")
	}
	if cfg.CookiePath != "/" {
		return errors.New("flows: cookie_host_prefix: __Host- cookies need cookie_path /")
	}
	if base.Scheme != "https" && !isLoopback(base.Hostname()) {
		return errors.New("flows: cookie_host_prefix: __Host- cookies are Secure, so the public_url must be https (or on localhost)")
	}
	return nil
}

// isLoopback: browsers treat http://localhost and loopback addresses as
// secure contexts and keep Secure cookies for them.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// secureCookies: cookies carry Secure unless dev mode serves plain http
// (__Host- cookies are always Secure).
func (e *Engine) secureCookies(*http.Request) bool {
	if !e.cfg.Dev || e.cfg.CookieHostPrefix {
		return true
	}
	return strings.HasPrefix(e.urls.Base(), "https://")
}

// Close stops the engine's background work. It does not close the store.
func (e *Engine) Close() error { return nil }
