package flows

import "time"

// The option groups below are the plain options: the engine reads them as
// they are, and the Caddy `kratos` app decodes them from its JSON by
// embedding the same groups, so each option, its JSON name and its
// documentation are declared once, here. Options the app must convert
// (files it reads, nested blocks, values of another type) stay in Config
// and in the app.
//
// encoding/json flattens embedded structs at the place they are embedded,
// so the groups are cut along the app's JSON field order (which its
// Caddyfile adapter output keeps); within that order they follow topics.
// The groups with durations take the duration type as a parameter: the
// engine uses time.Duration, the app caddy.Duration (which also reads
// strings such as "1h"); EngineLifespans and EngineCodeOptions convert.

// SiteOptions is where the public API lives.
type SiteOptions struct {
	// PublicURL is the absolute http(s) URL at which the Kratos public API
	// is reached (Kratos's serve.public.base_url). It is the base of form
	// actions, links in mails, redirects, logout URLs, the CSRF cookie name
	// and the issuer of the gates' assertions. Required: none of these is
	// ever derived from a request's Host header, which the client chooses.
	PublicURL string `json:"public_url,omitempty"`
}

// SchemaOptions picks among the configured identity schemas.
type SchemaOptions struct {
	// DefaultIdentitySchemaID is the id of the schema new identities get
	// when a flow or an admin request names none
	// (identity.default_schema_id). Default: "default" when such a schema
	// exists (the single identity schema, or the built-in one), else the
	// only schema.
	DefaultIdentitySchemaID string `json:"default_identity_schema,omitempty"`
}

// BrowserOptions are where browsers are sent and how cookies reach them
// in development.
type BrowserOptions struct {
	// Dev allows cookies without the Secure attribute over plain http, like
	// `kratos --dev`. Default: false.
	Dev bool `json:"dev,omitempty"`

	// DefaultReturnURL is where browsers go after a flow when there is no
	// return_to (selfservice.default_browser_return_url). Default: the
	// public URL.
	DefaultReturnURL string `json:"default_return_url,omitempty"`

	// AllowedReturnURLs is the allow-list for return_to
	// (selfservice.allowed_return_urls): absolute http(s) URLs (a host may
	// be a *.example.com wildcard) or native apps' custom-scheme URLs. The
	// public URL's origin is always allowed (unlike Kratos: the same site is
	// never an open redirect, and one-Caddyfile setups need it). Default:
	// empty.
	AllowedReturnURLs []string `json:"allowed_return_urls,omitempty"`

	// UIURLs maps a flow (login, registration, settings, recovery,
	// verification, error) to the URL of its UI page
	// (selfservice.flows.<flow>.ui_url). Default: the built-in pages under
	// UIPrefix.
	UIURLs map[string]string `json:"ui_urls,omitempty"`

	// UIPrefix is the path under which the built-in UI pages are served.
	// Default: /ui/.
	UIPrefix string `json:"ui_prefix,omitempty"`
}

// CORSOptions let single-page apps on other origins call the API.
type CORSOptions struct {
	// CORSAllowedOrigins enables CORS with credentials for SPAs on these
	// origins (serve.public.cors). Default: none (CORS off).
	CORSAllowedOrigins []string `json:"cors_allowed_origins,omitempty"`
}

// LifespanOptions are how long sessions and flows live. D is the duration
// type: time.Duration in the engine, caddy.Duration in the Caddy app.
type LifespanOptions[D ~int64] struct {
	// SessionLifespan is how long a session lives (session.lifespan).
	// Default: 24h.
	SessionLifespan D `json:"session_lifespan,omitempty"`

	// EarliestPossibleExtend turns on sliding sessions
	// (session.earliest_possible_extend): when whoami or a gate sees a
	// session with less than this left, it extends the session by
	// SessionLifespan (at most once a minute per session) and whoami
	// re-issues the cookie. Default: 0, sessions are not extended.
	EarliestPossibleExtend D `json:"earliest_possible_extend,omitempty"`

	// FlowLifespan is how long a self-service flow stays valid
	// (selfservice.flows.<flow>.lifespan). Default: 1h.
	FlowLifespan D `json:"flow_lifespan,omitempty"`

	// PrivilegedSessionMaxAge is how long after authentication a session
	// may change credentials in the settings flow
	// (selfservice.flows.settings.privileged_session_max_age). Default: 1h.
	PrivilegedSessionMaxAge D `json:"privileged_session_max_age,omitempty"`
}

// EngineLifespans converts lifespans of another duration type (the Caddy
// app's) to the engine's time.Duration.
func EngineLifespans[D ~int64](o LifespanOptions[D]) LifespanOptions[time.Duration] {
	return LifespanOptions[time.Duration]{
		SessionLifespan:         time.Duration(o.SessionLifespan),
		EarliestPossibleExtend:  time.Duration(o.EarliestPossibleExtend),
		FlowLifespan:            time.Duration(o.FlowLifespan),
		PrivilegedSessionMaxAge: time.Duration(o.PrivilegedSessionMaxAge),
	}
}

// CookieOptions are the attributes of the session and CSRF cookies.
type CookieOptions struct {
	// CookieName is the name of the session cookie
	// (session.cookie.name). Default: ory_kratos_session.
	CookieName string `json:"cookie_name,omitempty"`

	// CookieDomain is the Domain attribute of the cookies
	// (cookies.domain). Default: none (host-only cookies).
	CookieDomain string `json:"cookie_domain,omitempty"`

	// CookiePath is the Path attribute of the cookies (cookies.path).
	// Default: /.
	CookiePath string `json:"cookie_path,omitempty"`
}

// SecretOptions keep cookies and stored credentials from being forged,
// planted or read.
type SecretOptions struct {
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
}

// FormOptions shape the sign-up and sign-in forms.
type FormOptions struct {
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
}

// PasswordOptions are the password policy, and the switches that close
// registration or the password method.
type PasswordOptions struct {
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

	// PasswordHasher is bcrypt or argon2id (hashers.algorithm; argon2 is
	// read as argon2id). Default: bcrypt.
	PasswordHasher string `json:"password_hasher,omitempty"`

	// BcryptCost is the bcrypt cost, 4 to 31 (hashers.bcrypt.cost).
	// Default: 12.
	BcryptCost int `json:"bcrypt_cost,omitempty"`
}

// CodeOptions are the mailed codes and links of recovery, verification
// and the code method. D is the duration type, as in LifespanOptions.
type CodeOptions[D ~int64] struct {
	// CodeLifespan is how long a mailed code or link stays valid
	// (selfservice.methods.code.config.lifespan, …link.config.lifespan).
	// Default: 1h.
	CodeLifespan D `json:"code_lifespan,omitempty"`

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
}

// EngineCodeOptions converts code options of another duration type (the
// Caddy app's) to the engine's time.Duration.
func EngineCodeOptions[D ~int64](o CodeOptions[D]) CodeOptions[time.Duration] {
	return CodeOptions[time.Duration]{
		CodeLifespan:            time.Duration(o.CodeLifespan),
		CodeMaxSubmissions:      o.CodeMaxSubmissions,
		NotifyUnknownRecipients: o.NotifyUnknownRecipients,
	}
}

// HookOptions are what happens when a flow completes (Kratos's hooks and
// feature flags).
type HookOptions struct {
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
}

// MFAOptions are when a second factor is due and how authenticator apps
// name this site.
type MFAOptions struct {
	// RequiredAAL is the assurance level whoami, settings and the gate
	// require: highest_available (a second factor is due when the identity
	// has one) or aal1 (session.whoami.required_aal,
	// selfservice.flows.settings.required_aal). Default: highest_available.
	RequiredAAL string `json:"required_aal,omitempty"`

	// TOTPIssuer is the issuer authenticator apps show
	// (selfservice.methods.totp.config.issuer). Default: the public URL's
	// host.
	TOTPIssuer string `json:"totp_issuer,omitempty"`
}
