package courier

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/locale"
)

// Defaults applied by ParseConfig to zero-valued Config fields.
const (
	DefaultFromAddress  = "no-reply@ory.kratos.sh"
	DefaultLocalName    = "localhost"
	DefaultRetryBase    = time.Second
	DefaultRetryMax     = 10 * time.Minute
	DefaultMaxAttempts  = 30
	DefaultPollInterval = 5 * time.Second
	DefaultRetainTTL    = 24 * time.Hour
	DefaultSendTimeout  = 30 * time.Second
)

// Config configures the courier. The zero value (plus a store) is a working
// development setup: no SMTP URI means "log delivery" (mails are written to
// the logger at WARN instead of being sent).
type Config struct {
	// ConnectionURI is courier.smtp.connection_uri:
	//   smtp://user:pass@host:port/   STARTTLS required (unless disable_starttls)
	//   smtps://user:pass@host:port/  implicit TLS
	// Query parameters: skip_ssl_verify=true, disable_starttls=true (smtp
	// only), server_name=<TLS server name>. Default ports: 25 / 465.
	// Empty: log delivery (DEV ONLY).
	ConnectionURI string `json:"connection_uri,omitempty"`
	// DisableStartTLS has the same effect as ?disable_starttls=true.
	DisableStartTLS bool `json:"disable_starttls,omitempty"`
	// From is courier.smtp.from_address; a display name is allowed
	// ("Login <no-reply@example.com>"). Default no-reply@ory.kratos.sh.
	From string `json:"from_address,omitempty"`
	// FromName is courier.smtp.from_name; used when From has no display name.
	FromName string `json:"from_name,omitempty"`
	// Headers are added to every message (courier.smtp.headers).
	Headers map[string]string `json:"headers,omitempty"`
	// LocalName is the HELO/EHLO name (courier.smtp.local_name). Default localhost.
	LocalName string `json:"local_name,omitempty"`

	// TemplateOverridePath is a directory laid out like Kratos's
	// (courier.template_override_path):
	//   <dir>/<name>/<valid|invalid>/email.subject.gotmpl
	//   <dir>/<name>/<valid|invalid>/email.body.gotmpl           (HTML)
	//   <dir>/<name>/<valid|invalid>/email.body.plaintext.gotmpl (text)
	// Missing files fall back to the built-in template.
	TemplateOverridePath string `json:"template_override_path,omitempty"`
	// Templates overrides single templates (courier.templates.<name>.<variant>.email).
	// Keys: a TemplateID ("recovery_code_valid") or Kratos's dotted form
	// ("recovery_code.valid"). Set files must be readable.
	Templates map[string]TemplateFiles `json:"templates,omitempty"`

	// Locale has the mail templates in every language (the built-in
	// translations and translations_dir). Nil: the built-in languages.
	// Config.Templates and TemplateOverridePath have no language: they
	// replace the built-in translations of the templates they change.
	Locale *locale.Catalog `json:"-"`

	// BodySecrets seal the text and HTML of queued mails at rest (they
	// hold codes and links until delivered); the first seals, all open.
	// Give secrets kept outside the storage (caddymodule passes the cipher
	// secrets, else the configured cookie secrets). Empty: bodies are
	// stored in clear until delivered.
	BodySecrets []string `json:"-"`

	// RetryBase is the first retry delay; it doubles per failed attempt up
	// to RetryMax. Defaults 1s and 10m.
	RetryBase time.Duration `json:"retry_base,omitempty"`
	RetryMax  time.Duration `json:"retry_max,omitempty"`
	// MaxAttempts is how many delivery attempts a message gets before it is
	// marked abandoned (and logged at ERROR). Default 30.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// PollInterval is how often the worker scans the outbox when not woken
	// (Enqueue wakes it; retries wake it when due). Default 5s.
	PollInterval time.Duration `json:"poll_interval,omitempty"`
	// RetainTTL is how long sent and abandoned records stay in the outbox for
	// inspection (bodies are dropped). Default 24h.
	RetainTTL time.Duration `json:"retain_ttl,omitempty"`
	// SendTimeout bounds one SMTP delivery (dial + transfer). Default 30s.
	SendTimeout time.Duration `json:"send_timeout,omitempty"`
}

// TemplateFiles are the override sources of one template. Each is a file
// path, a file:// URL or a base64:// inline template; empty keeps the
// built-in (or TemplateOverridePath) template.
type TemplateFiles struct {
	Subject       string `json:"subject,omitempty"`
	BodyPlaintext string `json:"body_plaintext,omitempty"`
	BodyHTML      string `json:"body_html,omitempty"`
}

// SMTPSettings is a parsed ConnectionURI.
type SMTPSettings struct {
	Host     string
	Port     int
	Username string
	Password string
	// ImplicitTLS: smtps://. StartTLS: smtp:// with STARTTLS required.
	// Neither: plain SMTP (disable_starttls).
	ImplicitTLS   bool
	StartTLS      bool
	SkipSSLVerify bool
	ServerName    string
	// Redacted is the URI with the password replaced, safe to log.
	Redacted string
}

// TLSConfig returns the client TLS configuration for these settings.
func (s SMTPSettings) TLSConfig() *tls.Config {
	name := s.ServerName
	if name == "" {
		name = s.Host
	}
	return &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: s.SkipSSLVerify, // #nosec G402 -- only when the operator sets skip_ssl_verify=true in the SMTP URI
		MinVersion:         tls.VersionTLS12,
	}
}

// Settings is a validated Config with defaults applied and templates loaded.
type Settings struct {
	Config
	// SMTP is nil for log delivery.
	SMTP *SMTPSettings
	// FromAddr is the parsed From (with FromName applied).
	FromAddr  *mail.Address
	templates *templateSet
	// catalog has the mails in every language; byLang caches their
	// compiled templates (translations.go).
	catalog *locale.Catalog
	byLang  *sync.Map
}

// ConfigError is returned for configuration problems found at start-up.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "courier: invalid " + e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate reports configuration errors (bad URI scheme, missing host, bad
// from address, unreadable or broken template override) without starting
// anything.
func (c Config) Validate() error {
	_, err := ParseConfig(c)
	return err
}

// ParseConfig validates c, applies defaults and loads (and test-renders)
// all templates, so that every configuration error surfaces at start-up.
func ParseConfig(c Config) (*Settings, error) {
	s := &Settings{Config: c}
	if s.LocalName == "" {
		s.LocalName = DefaultLocalName
	}
	if s.RetryBase <= 0 {
		s.RetryBase = DefaultRetryBase
	}
	if s.RetryMax <= 0 {
		s.RetryMax = DefaultRetryMax
	}
	if s.RetryMax < s.RetryBase {
		s.RetryMax = s.RetryBase
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.PollInterval <= 0 {
		s.PollInterval = DefaultPollInterval
	}
	if s.RetainTTL <= 0 {
		s.RetainTTL = DefaultRetainTTL
	}
	if s.SendTimeout <= 0 {
		s.SendTimeout = DefaultSendTimeout
	}

	if strings.TrimSpace(c.ConnectionURI) != "" {
		smtp, err := ParseConnectionURI(c.ConnectionURI, c.DisableStartTLS)
		if err != nil {
			return nil, err
		}
		s.SMTP = smtp
	}

	from := strings.TrimSpace(c.From)
	if from == "" {
		from = DefaultFromAddress
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, &ConfigError{Field: "from_address", Err: fmt.Errorf("%q: %w", from, err)}
	}
	if addr.Name == "" {
		addr.Name = c.FromName
	}
	s.FromAddr = addr

	if strings.ContainsAny(s.LocalName, " \r\n\t") {
		return nil, &ConfigError{Field: "local_name", Err: fmt.Errorf("%q contains whitespace", s.LocalName)}
	}
	for k, v := range c.Headers {
		if k == "" || strings.ContainsAny(k, ": \r\n\t") || strings.ContainsAny(v, "\r\n") {
			return nil, &ConfigError{Field: "headers", Err: fmt.Errorf("invalid header %q", k)}
		}
	}

	ts, err := loadTemplates(c.TemplateOverridePath, c.Templates)
	if err != nil {
		return nil, err
	}
	s.templates = ts
	s.catalog, s.byLang = c.Locale, new(sync.Map)
	if s.catalog == nil {
		s.catalog = locale.Builtin()
	}
	return s, nil
}

// ParseConnectionURI parses an SMTP connection URI (see Config.ConnectionURI).
// Errors never contain the password.
func ParseConnectionURI(raw string, disableStartTLS bool) (*SMTPSettings, error) {
	fail := func(format string, args ...any) error {
		return &ConfigError{Field: "connection_uri", Err: fmt.Errorf("%s: %s", RedactURI(raw), fmt.Sprintf(format, args...))}
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url errors quote the whole input, password included: do not wrap.
		return nil, fail("not a valid URL")
	}
	s := &SMTPSettings{Redacted: RedactURI(raw)}
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		s.Port = 25
		s.StartTLS = true
	case "smtps":
		s.Port = 465
		s.ImplicitTLS = true
	case "":
		return nil, fail("missing scheme (want smtp:// or smtps://)")
	default:
		return nil, fail("unsupported scheme %q (want smtp or smtps)", u.Scheme)
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return nil, fail("missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fail("invalid port %q", p)
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	for key, vals := range u.Query() {
		val := ""
		if len(vals) > 0 {
			val = vals[len(vals)-1]
		}
		switch key {
		case "skip_ssl_verify", "disable_starttls":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, fail("query %s=%q is not a boolean", key, val)
			}
			if key == "skip_ssl_verify" {
				s.SkipSSLVerify = b
			} else if b {
				disableStartTLS = true
			}
		case "server_name":
			s.ServerName = val
		default:
			return nil, fail("unknown query parameter %q (known: skip_ssl_verify, disable_starttls, server_name)", key)
		}
	}
	if disableStartTLS && !s.ImplicitTLS {
		s.StartTLS = false
	}
	return s, nil
}

// RedactURI returns uri with the password of its user info replaced by
// "xxxxx". It also handles strings that do not parse as URLs.
func RedactURI(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		if u.Opaque != "" && strings.Contains(u.Opaque, "@") {
			// "smtp:user:pass@host" (no //): user info hides in Opaque.
			return u.Scheme + ":<redacted>"
		}
		return u.Redacted()
	}
	i := strings.Index(uri, "://")
	if i < 0 {
		if strings.Contains(uri, "@") {
			return "<redacted>"
		}
		return uri
	}
	rest := uri[i+3:]
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return uri
	}
	userinfo := rest[:at]
	if c := strings.Index(userinfo, ":"); c >= 0 {
		userinfo = userinfo[:c] + ":xxxxx"
	}
	return uri[:i+3] + userinfo + rest[at:]
}

// addr returns host:port.
func (s *SMTPSettings) addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// redact removes the password from an error or log string.
func (s *SMTPSettings) redact(msg string) string {
	if s == nil || s.Password == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, s.Password, "xxxxx")
	if esc := url.UserPassword("", s.Password).String(); len(esc) > 1 {
		msg = strings.ReplaceAll(msg, strings.TrimPrefix(esc, ":"), "xxxxx")
	}
	return msg
}

var errSkip = errors.New("courier: record not claimable")
