package caddymodule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("kratos", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("kratos", parseHandler)
	httpcaddyfile.RegisterHandlerDirective("kratos_gate", parseGate)
	// The API answers its own paths before the gate sees them; both run
	// where authentication handlers do, so users write no `order` lines.
	httpcaddyfile.RegisterDirectiveOrder("kratos", httpcaddyfile.Before, "basic_auth")
	httpcaddyfile.RegisterDirectiveOrder("kratos_gate", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption turns the `kratos` global option into the kratos app.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next() // option name, for the line number
		return nil, d.Err("the kratos global option may be given only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	if app.PublicURL == "" {
		d.Reset()
		d.Next() // option name, for the line number
		return nil, d.Err(publicURLRequired)
	}
	return httpcaddyfile.App{
		Name:  "kratos",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// UnmarshalCaddyfile sets up the app from the `kratos` global option:
//
//	kratos {
//		storage <dir> | postgres://… | { dsn …; schema …; max_conns …; … }
//		public_url <url>          (required)
//		identity_schema [<id>] <file> [selfservice_selectable]
//		default_identity_schema <id>
//		dev
//		default_return_url <url>
//		allowed_return_urls <url...>
//		ui_url <login|registration|settings|recovery|verification|error> <url>
//		ui_prefix <path>
//		audit {
//			max_age <duration>
//			max_records <n>
//			log on|off
//		}
//		session_lifespan <duration>
//		earliest_possible_extend <duration>
//		flow_lifespan <duration>
//		privileged_session_max_age <duration>
//		cookie_name <name>
//		cookie_domain <domain>
//		cookie_path <path>
//		cookie_same_site <lax|strict|none>
//		cookie_host_prefix
//		cookie_secret <secret...>
//		secrets {
//			cookie <secret...>
//			cipher <secret...>
//		}
//		registration_style <profile_first|unified>
//		login_style <unified|identifier_first>
//		mitigate_account_enumeration
//		registration <enabled|disabled>
//		password <enabled|disabled>
//		password_hasher <bcrypt|argon2id>
//		bcrypt_cost <n>
//
//		recovery [code|link]
//		verification [code|link]
//		code_lifespan <duration>
//		code_max_submissions <n>
//		notify_unknown_recipients
//		use_continue_with_transitions
//		require_verified_address
//		revoke_active_sessions <recovery|password|off...>
//		methods <password|profile|totp|lookup_secret|webauthn|passkey|code...>
//		required_aal <highest_available|aal1>
//		totp_issuer <name>
//		webauthn {
//			rp_id <host>
//			rp_display_name <name>
//			rp_origins <origin...>
//			passwordless
//		}
//		code {
//			passwordless
//			mfa
//		}
//		passkey {
//			rp_id <host>
//			rp_display_name <name>
//			rp_origins <origin...>
//			authenticator_selection {
//				resident_key <required|preferred>
//				user_verification <required|preferred|discouraged>
//				attachment <platform|cross-platform|any>
//			}
//		}
//
//		smtp <smtp://user:pass@host:port/|smtps://...>
//		disable_starttls
//		from <address>
//		mail_template <name> <subject|text|html> <file>
//		mail_retry_base <duration>
//	}
//
// allowed_return_urls and methods may repeat (the lists are joined),
// identity_schema may repeat with different ids,
// ui_url may repeat for different flows and mail_template for different
// templates or parts; every other subdirective may appear once.
// Values holding {placeholders} are checked when the config is loaded.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	var hostPrefixAt string // file:line of cookie_host_prefix
	var passwordAt string   // file:line of password
	var passkeyAt string    // file:line of passkey

	// file:line of default_identity_schema and of the last identity_schema
	var defaultSchemaAt, schemaAt string
	for d.NextBlock(0) {
		name := d.Val()
		if !repeatableOptions[name] {
			if seen[name] {
				return d.Errf("duplicate subdirective %q", name)
			}
			seen[name] = true
		}

		// one reads the single argument of the subdirective.
		one := func() (string, error) {
			var v string
			if !d.AllArgs(&v) {
				return "", d.ArgErr()
			}
			return v, nil
		}
		// check wraps a value check's error with the subdirective and line.
		check := func(err error) error {
			if err != nil {
				return d.Errf("%s: %v", name, err)
			}
			return nil
		}
		// urlArg reads one absolute http(s) URL.
		urlArg := func() (string, error) {
			v, err := one()
			if err != nil {
				return "", err
			}
			if !hasPlaceholder(v) {
				if err := check(checkHTTPURL(v)); err != nil {
					return "", err
				}
			}
			return v, nil
		}
		// durationArg reads one positive duration.
		durationArg := func() (caddy.Duration, error) {
			v, err := one()
			if err != nil {
				return 0, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return 0, d.Errf("%s: invalid duration %q (want e.g. 90m, 24h or 7d)", name, v)
			}
			if err := check(checkLifespan(dur)); err != nil {
				return 0, err
			}
			return caddy.Duration(dur), nil
		}
		// flag reads a subdirective without arguments.
		flag := func() (bool, error) {
			if d.NextArg() {
				return false, d.ArgErr()
			}
			return true, nil
		}
		// choiceArg reads one of allowed.
		choiceArg := func(what string, allowed []string) (string, error) {
			v, err := one()
			if err != nil {
				return "", err
			}
			return v, check(checkOneOf(what, v, allowed))
		}

		var err error
		switch name {
		case "storage":
			err = a.parseStorage(d)

		case "public_url":
			a.PublicURL, err = urlArg()

		case "session_cache_size":
			var v string
			if v, err = one(); err != nil {
				return err
			}
			n, convErr := parseByteSize(v)
			if convErr != nil {
				return d.Errf("session_cache_size: %v", convErr)
			}
			if err := check(checkSessionCacheSize(n)); err != nil {
				return err
			}
			a.SessionCacheSize = n

		case "identity_schema":
			schemaAt = fmt.Sprintf("%s:%d", d.File(), d.Line())
			err = a.parseIdentitySchema(d)

		case "default_identity_schema":
			a.DefaultIdentitySchema, err = one()
			if err == nil {
				err = check(flows.CheckIdentitySchemaID(a.DefaultIdentitySchema))
				defaultSchemaAt = fmt.Sprintf("%s:%d", d.File(), d.Line())
			}

		case "dev":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.Dev = true

		case "cookie_host_prefix":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.CookieHostPrefix = true
			hostPrefixAt = fmt.Sprintf("%s:%d", d.File(), d.Line())

		case "default_return_url":
			a.DefaultReturnURL, err = urlArg()

		case "allowed_return_urls":
			urls := d.RemainingArgs()
			if len(urls) == 0 {
				return d.ArgErr()
			}
			for _, u := range urls {
				if !hasPlaceholder(u) {
					if err := check(flows.CheckAllowedReturnURL(u)); err != nil {
						return err
					}
				}
			}
			a.AllowedReturnURLs = append(a.AllowedReturnURLs, urls...)

		case "ui_url":
			var kind, u string
			if !d.AllArgs(&kind, &u) {
				return d.ArgErr()
			}
			if err := check(checkUIKind(kind)); err != nil {
				return err
			}
			if _, dup := a.UIURLs[kind]; dup {
				return d.Errf("ui_url: duplicate UI kind %q", kind)
			}
			if !hasPlaceholder(u) {
				if err := check(checkHTTPURL(u)); err != nil {
					return err
				}
			}
			if a.UIURLs == nil {
				a.UIURLs = make(map[string]string)
			}
			a.UIURLs[kind] = u

		case "ui", "cors_allowed_origins":
			err = a.unmarshalUIOption(d, name, seen)

		case "audit":
			err = a.unmarshalAuditOption(d)

		case "ui_prefix":
			a.UIPrefix, err = one()
			if err == nil {
				err = check(checkPath(a.UIPrefix))
			}

		case "session_lifespan":
			a.SessionLifespan, err = durationArg()

		case "earliest_possible_extend":
			a.EarliestPossibleExtend, err = durationArg()

		case "flow_lifespan":
			a.FlowLifespan, err = durationArg()

		case "privileged_session_max_age":
			a.PrivilegedSessionMaxAge, err = durationArg()

		case "cookie_name":
			a.CookieName, err = one()
			if err == nil {
				err = check(checkCookieName(a.CookieName))
			}

		case "cookie_domain":
			a.CookieDomain, err = one()
			if err == nil && !hasPlaceholder(a.CookieDomain) {
				err = check(checkCookieDomain(a.CookieDomain))
			}

		case "cookie_path":
			a.CookiePath, err = one()
			if err == nil {
				err = check(checkPath(a.CookiePath))
			}

		case "cookie_same_site":
			a.CookieSameSite, err = one()
			if err == nil {
				_, err = parseSameSite(a.CookieSameSite)
				err = check(err)
			}

		case "cookie_secret":
			if seen["secrets.cookie"] {
				return d.Errf("cookie_secret: already set by secrets { cookie … }")
			}
			seen["secrets.cookie"] = true
			if a.CookieSecrets, err = secretArgs(d, name); err != nil {
				return err
			}

		case "secrets":
			if d.NextArg() {
				return d.ArgErr()
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				sub := d.Val()
				if seen["secrets."+sub] {
					if sub == "cookie" {
						return d.Errf("secrets: cookie: already set (by cookie_secret or an earlier line)")
					}
					return d.Errf("secrets: duplicate subdirective %q", sub)
				}
				seen["secrets."+sub] = true
				switch sub {
				case "cookie":
					a.CookieSecrets, err = secretArgs(d, "secrets: cookie")
				case "cipher":
					a.CipherSecrets, err = secretArgs(d, "secrets: cipher")
				default:
					return d.Errf("secrets: unrecognized subdirective %q (want cookie or cipher)", sub)
				}
				if err != nil {
					return err
				}
			}

		case "rate_limits":
			a.RateLimits, err = parseRateLimits(d)

		case "breached_password_check":
			var v string
			v, err = choiceArg("breached_password_check", []string{"on", "off"})
			a.DisableBreachedPasswordCheck = v == "off"

		case "registration_style":
			a.RegistrationStyle, err = choiceArg("registration style", registrationStyles)

		case "login_style":
			a.LoginStyle, err = choiceArg("login style", loginStyles)

		case "mitigate_account_enumeration":
			a.MitigateAccountEnumeration, err = flag()

		case "registration":
			var v string
			v, err = choiceArg("registration", []string{"enabled", "disabled"})
			a.DisableRegistration = v == "disabled"

		case "password":
			var v string
			v, err = choiceArg("password", []string{"enabled", "disabled"})
			a.DisablePassword = v == "disabled"
			passwordAt = fmt.Sprintf("%s:%d", d.File(), d.Line())

		case "password_hasher":
			a.PasswordHasher, err = choiceArg("password hasher", passwordHashers)

		case "bcrypt_cost":
			var v string
			if v, err = one(); err != nil {
				return err
			}
			n, convErr := strconv.Atoi(v)
			if convErr != nil {
				return d.Errf("bcrypt_cost: invalid number %q", v)
			}
			if err := check(checkBcryptCost(n)); err != nil {
				return err
			}
			a.BcryptCost = n

		case "recovery", "verification":
			v := "code"
			args := d.RemainingArgs()
			switch len(args) {
			case 0:
			case 1:
				v = args[0]
				err = check(checkOneOf(name+" method", v, flowMethods))
			default:
				return d.ArgErr()
			}
			if name == "recovery" {
				a.Recovery = v
			} else {
				a.Verification = v
			}

		case "code_lifespan":
			a.CodeLifespan, err = durationArg()

		case "code_max_submissions":
			var v string
			if v, err = one(); err != nil {
				return err
			}
			n, convErr := strconv.Atoi(v)
			if convErr != nil {
				return d.Errf("code_max_submissions: invalid number %q", v)
			}
			if err := check(checkCodeMaxSubmissions(n)); err != nil {
				return err
			}
			a.CodeMaxSubmissions = n

		case "notify_unknown_recipients":
			a.NotifyUnknownRecipients, err = flag()

		case "use_continue_with_transitions":
			a.UseContinueWithTransitions, err = flag()

		case "require_verified_address":
			a.RequireVerifiedAddress, err = flag()

		case "revoke_active_sessions":
			err = a.parseRevokeActiveSessions(d)

		case "methods":
			methods := d.RemainingArgs()
			if len(methods) == 0 {
				return d.ArgErr()
			}
			if err := check(checkMethods(append(slices.Clone(a.Methods), methods...))); err != nil {
				return err
			}
			a.Methods = append(a.Methods, methods...)

		case "required_aal":
			a.RequiredAAL, err = choiceArg("required AAL", requiredAALs)

		case "totp_issuer":
			a.TOTPIssuer, err = one()

		case "webauthn":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.WebAuthn = new(WebAuthnConfig)
			err = a.WebAuthn.unmarshalCaddyfile(d)

		case "code":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.Code = new(CodeConfig)
			err = a.Code.unmarshalCaddyfile(d)

		case "passkey":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.Passkey = new(PasskeyConfig)
			passkeyAt = fmt.Sprintf("%s:%d", d.File(), d.Line())
			err = a.Passkey.unmarshalCaddyfile(d)

		case "smtp":
			a.SMTP, err = one()
			if err == nil && !hasPlaceholder(a.SMTP) {
				err = check(checkSMTPURI(a.SMTP))
			}

		case "disable_starttls":
			a.DisableStartTLS, err = flag()

		case "from":
			a.From, err = one()
			if err == nil && !hasPlaceholder(a.From) {
				err = check(checkFromAddress(a.From))
			}

		case "mail_template":
			var tpl, part, file string
			if !d.AllArgs(&tpl, &part, &file) {
				return d.ArgErr()
			}
			if err := check(checkMailTemplateName(tpl)); err != nil {
				return err
			}
			if err := check(checkOneOf("mail template part", part, mailTemplateParts)); err != nil {
				return err
			}
			if a.MailTemplates == nil {
				a.MailTemplates = make(map[string]*MailTemplate)
			}
			t := a.MailTemplates[tpl]
			if t == nil {
				t = new(MailTemplate)
				a.MailTemplates[tpl] = t
			}
			dst := map[string]*string{"subject": &t.Subject, "text": &t.Text, "html": &t.HTML}[part]
			if *dst != "" {
				return d.Errf("mail_template: duplicate %s of %s", part, tpl)
			}
			*dst = file

		case "mail_retry_base":
			a.MailRetryBase, err = durationArg()

		default:
			return d.Errf("unrecognized subdirective %q", name)
		}
		if err != nil {
			return err
		}
	}
	if err := checkPasskeyEnabled(a); err != nil {
		return fmt.Errorf("passkey: %v, at %s", err, passkeyAt)
	}
	if err := checkFirstFactor(a); err != nil {
		return fmt.Errorf("password: %v, at %s", err, passwordAt)
	}
	if err := a.checkDefaultIdentitySchema(defaultSchemaAt, schemaAt); err != nil {
		return err
	}
	if hostPrefixAt != "" {
		// Browsers silently drop __Host- cookies with these: nobody could
		// sign in.
		switch {
		case a.CookieDomain != "":
			return fmt.Errorf("cookie_host_prefix: __Host- cookies cannot have a cookie_domain, at %s", hostPrefixAt)
		case a.CookiePath != "" && a.CookiePath != "/":
			return fmt.Errorf("cookie_host_prefix: __Host- cookies need cookie_path /, at %s", hostPrefixAt)
		}
	}
	return nil
}

// secretArgs reads one or more secrets (the first is current, the others
// are still accepted) and checks those without placeholders now.
func secretArgs(d *caddyfile.Dispenser, what string) ([]string, error) {
	secrets := d.RemainingArgs()
	if len(secrets) == 0 {
		return nil, d.ArgErr()
	}
	for _, s := range secrets {
		if !hasPlaceholder(s) {
			if err := checkSecret(s); err != nil {
				return nil, d.Errf("%s: %v", what, err)
			}
		}
	}
	return secrets, nil
}

// repeatableOptions are the subdirectives of the kratos global option that
// may appear more than once.
var repeatableOptions = map[string]bool{
	"allowed_return_urls": true,
	"identity_schema":     true,
	"ui_url":              true,
	"methods":             true,
	"mail_template":       true,
}

// unmarshalCaddyfile reads the block of the webauthn subdirective:
//
//	webauthn {
//		rp_id <host>
//		rp_display_name <name>
//		rp_origins <origin...>
//		passwordless
//	}
//
// rp_origins may repeat (the lists are joined).
func (w *WebAuthnConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for d.NextBlock(1) {
		name := d.Val()
		if name != "rp_origins" {
			if seen[name] {
				return d.Errf("webauthn: duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		switch name {
		case "rp_id", "rp_display_name", "rp_origins":
			if err := parseRelyingParty(d, "webauthn", &w.RPID, &w.RPDisplayName, &w.RPOrigins); err != nil {
				return err
			}
		case "passwordless":
			if d.NextArg() {
				return d.ArgErr()
			}
			w.Passwordless = true
		default:
			return d.Errf("webauthn: unrecognized subdirective %q", name)
		}
	}
	return nil
}

// unmarshalCaddyfile reads the block of the passkey subdirective:
//
//	passkey {
//		rp_id <host>
//		rp_display_name <name>
//		rp_origins <origin...>
//		authenticator_selection {
//			resident_key <required|preferred>
//			user_verification <required|preferred|discouraged>
//			attachment <platform|cross-platform|any>
//		}
//	}
//
// rp_origins may repeat (the lists are joined).
func (p *PasskeyConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "rp_origins" {
			if seen[name] {
				return d.Errf("passkey: duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		switch name {
		case "rp_id", "rp_display_name", "rp_origins":
			if err := parseRelyingParty(d, "passkey", &p.RPID, &p.RPDisplayName, &p.RPOrigins); err != nil {
				return err
			}
		case "authenticator_selection":
			if d.NextArg() {
				return d.ArgErr()
			}
			s := new(PasskeySelection)
			p.AuthenticatorSelection = s
			inner := make(map[string]bool)
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				sub := d.Val()
				if inner[sub] {
					return d.Errf("passkey authenticator_selection: duplicate subdirective %q", sub)
				}
				inner[sub] = true
				dst := map[string]*string{"resident_key": &s.ResidentKey, "user_verification": &s.UserVerification, "attachment": &s.Attachment}[sub]
				if dst == nil {
					return d.Errf("passkey authenticator_selection: unrecognized subdirective %q (want resident_key, user_verification or attachment)", sub)
				}
				if !d.AllArgs(dst) {
					return d.ArgErr()
				}
				if err := checkPasskeySelection(s); err != nil {
					return d.Errf("passkey authenticator_selection: %v", err)
				}
			}
		default:
			return d.Errf("passkey: unrecognized subdirective %q", name)
		}
	}
	return nil
}

// unmarshalCaddyfile reads the block of the code subdirective:
//
//	code {
//		passwordless
//		mfa
//	}
func (c *CodeConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for d.NextBlock(1) {
		name := d.Val()
		if seen[name] {
			return d.Errf("code: duplicate subdirective %q", name)
		}
		seen[name] = true
		switch name {
		case "passwordless":
			c.Passwordless = true
		case "mfa":
			c.MFA = true
		default:
			return d.Errf("code: unrecognized subdirective %q", name)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// parseHandler sets up the `kratos` directive.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, requireGlobalOption(h)
}

// publicURLRequired explains why public_url has no default.
const publicURLRequired = "kratos: public_url is required (e.g. public_url https://auth.example.com/): " +
	"links in mails, redirects, the CSRF cookie name and assertion issuers are built from it, never from the request's Host header"

// requireGlobalOption fails a kratos or kratos_gate directive, naming its
// line, when the Caddyfile has no `kratos` global option: without it there
// is no public_url (the option itself refuses to be without one).
func requireGlobalOption(h httpcaddyfile.Helper) error {
	if _, ok := h.Option("kratos").(httpcaddyfile.App); ok {
		return nil
	}
	h.Reset()
	h.Next() // directive name, for the line number
	return h.Errf("%s: add the kratos global option with public_url, e.g. { kratos { public_url https://auth.example.com/ } }; "+
		"links in mails, redirects, the CSRF cookie name and assertion issuers are built from it, never from the request's Host header", h.Val())
}

// UnmarshalCaddyfile sets up the handler from the `kratos` directive,
// which takes no arguments (an empty block is accepted):
//
//	kratos
//
// Its configuration is the `kratos` global option.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("unrecognized subdirective %q (the kratos directive has none; configure the kratos global option)", d.Val())
	}
	return nil
}

// parseGate and Gate.UnmarshalCaddyfile, the `kratos_gate` directive, are
// in gate_caddyfile.go.

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Gate)(nil)
)

// parseRevokeActiveSessions reads `revoke_active_sessions <after…>`: the
// flows after which an identity's other sessions are signed out, recovery
// and/or password (a password change in settings), or off. Without the
// option: recovery.
func (a *App) parseRevokeActiveSessions(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for _, v := range args {
		switch {
		case v != "recovery" && v != "password" && v != "off":
			return d.Errf("revoke_active_sessions: unknown value %q (want recovery, password or off)", v)
		case seen[v]:
			return d.Errf("revoke_active_sessions: %q listed twice", v)
		case v == "off" && len(args) > 1:
			return d.Errf("revoke_active_sessions: off cannot be combined with %q", args[slices.IndexFunc(args, func(s string) bool { return s != "off" })])
		}
		seen[v] = true
	}
	a.KeepSessionsAfterRecovery = !seen["recovery"]
	a.RevokeSessionsAfterPasswordChange = seen["password"]
	return nil
}

// parseIdentitySchema reads one identity_schema line (Kratos's
// identity.schemas[]):
//
//	identity_schema <file>                                 (the schema "default")
//	identity_schema <id> <file> [selfservice_selectable]
//
// The file may also be a file:// URL or an inline base64://… schema.
func (a *App) parseIdentitySchema(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	id, path, selectable := "default", "", false
	switch len(args) {
	case 1:
		path = args[0]
	case 3:
		if args[2] != "selfservice_selectable" {
			return d.Errf("identity_schema: unknown flag %q (want selfservice_selectable)", args[2])
		}
		selectable = true
		fallthrough
	case 2:
		id, path = args[0], args[1]
		if err := flows.CheckIdentitySchemaID(id); err != nil {
			return d.Errf("identity_schema: %v", err)
		}
	default:
		return d.ArgErr()
	}
	if (id == "default" && a.IdentitySchema != "") ||
		slices.ContainsFunc(a.IdentitySchemas, func(s *IdentitySchemaEntry) bool { return s.ID == id }) {
		return d.Errf("identity_schema: schema %q is configured twice", id)
	}
	if len(args) == 1 {
		a.IdentitySchema = path
		return nil
	}
	a.IdentitySchemas = append(a.IdentitySchemas, &IdentitySchemaEntry{ID: id, Path: path, SelfserviceSelectable: selectable})
	return nil
}

// schemaIDs are the ids of the configured identity schemas; without any,
// the built-in schema "default".
func (a *App) schemaIDs() []string {
	var ids []string
	if a.IdentitySchema != "" || len(a.IdentitySchemas) == 0 {
		ids = append(ids, "default")
	}
	for _, s := range a.IdentitySchemas {
		ids = append(ids, s.ID)
	}
	return ids
}

// checkDefaultIdentitySchema: the default schema must be one of the
// configured ones, and several schemas without one named "default" need
// default_identity_schema (at and schemaAt are the file:line of that
// subdirective and of the last identity_schema).
func (a *App) checkDefaultIdentitySchema(at, schemaAt string) error {
	ids := a.schemaIDs()
	switch {
	case a.DefaultIdentitySchema != "":
		if !slices.Contains(ids, a.DefaultIdentitySchema) {
			return fmt.Errorf("default_identity_schema: %q is not a configured identity schema (configured: %s), at %s",
				a.DefaultIdentitySchema, strings.Join(ids, ", "), at)
		}
	case len(ids) > 1 && !slices.Contains(ids, "default"):
		return fmt.Errorf("identity_schema: several schemas (%s) and none named \"default\": name the default with default_identity_schema <id>, at %s",
			strings.Join(ids, ", "), schemaAt)
	}
	return nil
}

// parseRelyingParty reads the relying-party subdirective under the
// dispenser's cursor (rp_id, rp_display_name or rp_origins, which may
// repeat) of the webauthn or passkey block named what.
func parseRelyingParty(d *caddyfile.Dispenser, what string, rpID, displayName *string, origins *[]string) error {
	switch d.Val() {
	case "rp_id":
		if !d.AllArgs(rpID) {
			return d.ArgErr()
		}
		if !hasPlaceholder(*rpID) {
			if err := checkRPID(*rpID); err != nil {
				return d.Errf("%s rp_id: %v", what, err)
			}
		}
	case "rp_display_name":
		if !d.AllArgs(displayName) {
			return d.ArgErr()
		}
	default: // rp_origins
		list := d.RemainingArgs()
		if len(list) == 0 {
			return d.ArgErr()
		}
		for _, o := range list {
			if !hasPlaceholder(o) {
				if err := checkOrigin(o); err != nil {
					return d.Errf("%s rp_origins: %v", what, err)
				}
			}
		}
		*origins = append(*origins, list...)
	}
	return nil
}
