package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/courier"
)

// The value checks below are shared by the Caddyfile parser (which wraps
// their errors with the file and line) and by App.Provision (which sees
// JSON configs and values behind {env.X} placeholders). One check, one
// place.

// uiKinds are the flows that have a UI page, in Kratos's order.
var uiKinds = []string{"login", "registration", "settings", "recovery", "verification", "error"}

// registrationStyles are the accepted values of registration_style.
var registrationStyles = []string{"profile_first", "unified"}

// loginStyles are the accepted values of login_style.
var loginStyles = []string{"unified", "identifier_first"}

// passwordHashers are the accepted values of password_hasher (argon2 is
// Kratos's name for argon2id).
var passwordHashers = []string{"bcrypt", "argon2id", "argon2"}

// Bounds of bcrypt_cost (golang.org/x/crypto/bcrypt's MinCost and MaxCost).
const (
	minBcryptCost = 4
	maxBcryptCost = 31
)

// minSecretLength is Kratos's minimum length of secrets.default/cookie.
const minSecretLength = 16

// hasPlaceholder reports whether s still holds a {placeholder}, whose value
// is only known at provision time.
func hasPlaceholder(s string) bool {
	return strings.Contains(s, "{") && strings.Contains(s, "}")
}

// checkHTTPURL accepts an absolute http or https URL with a host.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid URL %q: must be an absolute http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: missing host", s)
	}
	return nil
}

// checkURLOrPath accepts an absolute http(s) URL or an absolute path
// (same host as the request), e.g. a gate's login_url.
func checkURLOrPath(s string) error {
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		if _, err := url.Parse(s); err != nil {
			return fmt.Errorf("invalid path %q: %v", s, err)
		}
		return nil
	}
	return checkHTTPURL(s)
}

// checkPath accepts an absolute URL path such as /ui/ or /.
func checkPath(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("invalid path %q: must start with /", s)
	}
	if strings.ContainsAny(s, " ?#;") {
		return fmt.Errorf("invalid path %q: must not contain spaces, '?', '#' or ';'", s)
	}
	return nil
}

// checkUIKind accepts the flow names of ui_url.
func checkUIKind(kind string) error {
	if !slices.Contains(uiKinds, kind) {
		return fmt.Errorf("unknown UI kind %q: want one of %s", kind, strings.Join(uiKinds, ", "))
	}
	return nil
}

// checkOneOf accepts v if it is one of allowed.
func checkOneOf(what, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("invalid %s %q: want one of %s", what, v, strings.Join(allowed, ", "))
	}
	return nil
}

// checkBcryptCost accepts the costs bcrypt supports.
func checkBcryptCost(n int) error {
	if n < minBcryptCost || n > maxBcryptCost {
		return fmt.Errorf("invalid bcrypt cost %d: want %d..%d", n, minBcryptCost, maxBcryptCost)
	}
	return nil
}

// checkLifespan accepts a positive duration.
func checkLifespan(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("invalid duration %s: must be positive", d)
	}
	return nil
}

// checkCookieName accepts an RFC 6265 cookie name (an HTTP token).
func checkCookieName(s string) error {
	if s == "" {
		return fmt.Errorf("empty cookie name")
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return fmt.Errorf("invalid cookie name %q: must be an HTTP token", s)
		}
	}
	return nil
}

// checkCookieDomain accepts a host name (with an optional leading dot).
func checkCookieDomain(s string) error {
	d := strings.TrimPrefix(s, ".")
	if d == "" || strings.ContainsAny(d, " /:;,") {
		return fmt.Errorf("invalid cookie domain %q", s)
	}
	return nil
}

// checkSecret accepts a cookie secret of Kratos's minimum length.
func checkSecret(s string) error {
	if len(s) < minSecretLength {
		return fmt.Errorf("secret too short: want at least %d characters", minSecretLength)
	}
	return nil
}

// parseSameSite maps lax, strict and none (any case) to http.SameSite;
// the empty string is the zero value (the engine's default, Lax).
func parseSameSite(s string) (http.SameSite, error) {
	switch strings.ToLower(s) {
	case "":
		return 0, nil
	case "lax":
		return http.SameSiteLaxMode, nil
	case "strict":
		return http.SameSiteStrictMode, nil
	case "none":
		return http.SameSiteNoneMode, nil
	}
	return 0, fmt.Errorf("invalid cookie SameSite %q: want lax, strict or none", s)
}

// flowMethods are the values of recovery and verification.
var flowMethods = []string{"code", "link"}

// credentialMethods are the names `methods` accepts: password and profile
// (on anyway, listed as a Kratos user thinks of them; `password disabled`
// turns the password off) and the optional methods.
var credentialMethods = []string{"password", "profile", "totp", "lookup_secret", "webauthn", "passkey", "code", "oidc"}

// checkFirstFactor refuses a config without a way to sign in: the
// password method off and no passkey, passwordless webauthn,
// passwordless code or social sign-in provider.
func checkFirstFactor(a *App) error {
	if !a.DisablePassword {
		return nil
	}
	if slices.Contains(a.Methods, "password") {
		return errors.New("the password method is disabled but methods lists password")
	}
	has := func(m string) bool { return slices.Contains(a.Methods, m) }
	if has("passkey") || has("webauthn") && a.WebAuthn != nil && a.WebAuthn.Passwordless || has("code") && a.Code != nil && a.Code.Passwordless || hasOIDCProviders(a) {
		return nil
	}
	return errors.New("the password method is disabled and no other first factor is enabled, so nobody could sign in: " +
		"add methods passkey, or methods webauthn with webauthn { passwordless }, or methods code with code { passwordless }, or methods oidc with an oidc provider")
}

// requiredAALs are the accepted values of required_aal.
var requiredAALs = []string{"highest_available", "aal1"}

// mailTemplateParts are the parts of a mail template override.
var mailTemplateParts = []string{"subject", "text", "html"}

// checkCodeMaxSubmissions accepts a positive number of code submissions.
func checkCodeMaxSubmissions(n int) error {
	if n < 1 {
		return fmt.Errorf("invalid number of submissions %d: must be at least 1", n)
	}
	return nil
}

// checkMethods accepts a list of distinct credential method names.
func checkMethods(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := checkOneOf("method", n, credentialMethods); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("method %q listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// checkOrigin accepts a web origin: http(s)://host[:port], without path,
// query or user info (WebAuthn's rp origins).
func checkOrigin(s string) error {
	if err := checkHTTPURL(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("invalid origin %q: want scheme://host[:port] only", s)
	}
	return nil
}

// checkRPID accepts a WebAuthn relying party id: a bare host name such as
// example.com (no scheme, port or path).
func checkRPID(s string) error {
	if s == "" || strings.ContainsAny(s, ":/?#@ ") {
		return fmt.Errorf("invalid relying party id %q: want a host name such as example.com", s)
	}
	if net.ParseIP(s) != nil {
		return fmt.Errorf("invalid relying party id %q: WebAuthn does not accept an IP address; use a host name such as example.com (or localhost)", s)
	}
	return nil
}

// Values of the passkey authenticator selection.
var (
	passkeyResidentKeys       = []string{"required", "preferred"}
	passkeyUserVerifications  = []string{"required", "preferred", "discouraged"}
	passkeyAttachments        = []string{"platform", "cross-platform", "any"}
	errPasskeyDiscoverable    = errors.New("passkeys sign in without an identifier, which needs a discoverable (resident) credential: want required or preferred")
	errPasskeyMethodNotListed = errors.New("configures the passkey method, which is not enabled: add methods passkey")
)

// checkPasskeySelection accepts the authenticator selection of passkeys.
func checkPasskeySelection(s *PasskeySelection) error {
	if s.ResidentKey == "discouraged" {
		return fmt.Errorf("resident_key discouraged: %w", errPasskeyDiscoverable)
	}
	for _, c := range []struct {
		what, v string
		allowed []string
	}{
		{"resident_key", s.ResidentKey, passkeyResidentKeys},
		{"user_verification", s.UserVerification, passkeyUserVerifications},
		{"attachment", s.Attachment, passkeyAttachments},
	} {
		if c.v != "" {
			if err := checkOneOf(c.what, c.v, c.allowed); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPasskeyEnabled refuses a passkey block without the passkey method
// (a block that would do nothing is a mistake).
func checkPasskeyEnabled(a *App) error {
	if a.Passkey != nil && !slices.Contains(a.Methods, "passkey") {
		return errPasskeyMethodNotListed
	}
	return nil
}

// checkMailTemplateName accepts a courier template name such as
// recovery_code_valid.
func checkMailTemplateName(name string) error {
	if !slices.Contains(courier.AllTemplates, courier.TemplateID(name)) {
		known := make([]string, len(courier.AllTemplates))
		for i, t := range courier.AllTemplates {
			known[i] = string(t)
		}
		return fmt.Errorf("unknown mail template %q: want one of %s", name, strings.Join(known, ", "))
	}
	return nil
}

// checkSMTPURI accepts an smtp:// or smtps:// connection URI. Its errors
// never contain the password.
func checkSMTPURI(s string) error {
	_, err := courier.ParseConnectionURI(s, false)
	var ce *courier.ConfigError
	if errors.As(err, &ce) {
		return ce.Err
	}
	return err
}

// checkFromAddress accepts an address with an optional display name
// ("Login <no-reply@example.com>").
func checkFromAddress(s string) error {
	if _, err := mail.ParseAddress(s); err != nil {
		return fmt.Errorf("invalid address %q: %v", s, err)
	}
	return nil
}
