package caddymodule

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
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
//		translations_dir <dir>
//		languages <tag...>
//		default_language <tag>
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
//		methods <password|profile|totp|lookup_secret|webauthn|passkey|code|oidc...>
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
//		oidc {
//			provider <id> {
//				provider <generic|google|github|microsoft|gitlab|apple|discord>
//				client_id <id>
//				client_secret <secret>
//				…               (see OIDCConfig.unmarshalCaddyfile)
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
	o := &globalOption{d: d, seen: make(map[string]bool), at: make(map[string]string)}
	for d.NextBlock(0) {
		o.name = d.Val()
		if !repeatableOptions[o.name] {
			if o.seen[o.name] {
				return d.Errf("duplicate subdirective %q", o.name)
			}
			o.seen[o.name] = true
		}
		if err := a.unmarshalOption(o); err != nil {
			return err
		}
	}
	return a.checkAcrossOptions(o.at)
}

// optionTopics read the subdirectives of the kratos global option, each
// those of its topic (in the topic's file); known is false for a
// subdirective the topic does not have.
var optionTopics = []func(a *App, o *globalOption) (known bool, err error){
	(*App).unmarshalStorageOption,   // storage.go
	(*App).unmarshalBrowserOption,   // browser_options.go
	(*App).unmarshalSessionOption,   // session_options.go
	(*App).unmarshalUIOption,        // ui_options.go
	(*App).unmarshalSchemaOption,    // identity_schema_options.go
	(*App).unmarshalMethodOption,    // method_options.go
	(*App).unmarshalWebAuthnOption,  // webauthn_options.go
	(*App).unmarshalOIDCOption,      // oidc_options.go
	(*App).unmarshalHardeningOption, // hardening_options.go
	(*App).unmarshalMailOption,      // mail_options.go
	(*App).unmarshalAuditOption,     // audit_options.go
	(*App).unmarshalLocaleTopic,     // locale_options.go
}

// unmarshalOption reads the subdirective under the cursor.
func (a *App) unmarshalOption(o *globalOption) error {
	for _, topic := range optionTopics {
		if known, err := topic(a, o); known {
			return err
		}
	}
	return o.d.Errf("unrecognized subdirective %q", o.name)
}

// checkAcrossOptions checks what involves several subdirectives, naming
// the line (at) of the one that is refused.
func (a *App) checkAcrossOptions(at map[string]string) error {
	if err := checkPasskeyEnabled(a); err != nil {
		return fmt.Errorf("passkey: %v, at %s", err, at["passkey"])
	}
	if field, err := checkOIDCEnabled(a); err != nil {
		line := at["oidc"]
		if field == "methods" {
			line = at["methods oidc"]
		}
		return fmt.Errorf("%s: %v, at %s", field, err, line)
	}
	if a.StorageResidentLimit != 0 && (a.Postgres != nil || isPostgresDSN(a.Storage)) {
		return fmt.Errorf("storage_resident_limit: applies to the embedded (Badger) storage only, not PostgreSQL, at %s", at["storage_resident_limit"])
	}
	if err := checkFirstFactor(a); err != nil {
		return fmt.Errorf("password: %v, at %s", err, at["password"])
	}
	if err := a.checkDefaultIdentitySchema(at["default_identity_schema"], at["identity_schema"]); err != nil {
		return err
	}
	return a.checkHostPrefixOption(at["cookie_host_prefix"])
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

// globalOption is the subdirective of the kratos global option under the
// dispenser's cursor, with what the option has shown so far.
type globalOption struct {
	d *caddyfile.Dispenser
	// name is the subdirective.
	name string
	// seen are the subdirectives given so far, and the values that two
	// spellings set (secrets.cookie, ui_prefix).
	seen map[string]bool
	// at is the file:line of the subdirectives that checks across
	// subdirectives name (see mark).
	at map[string]string
}

// mark records the file:line of the subdirective for checkAcrossOptions.
func (o *globalOption) mark() {
	o.at[o.name] = fmt.Sprintf("%s:%d", o.d.File(), o.d.Line())
}

// one reads the single argument of the subdirective.
func (o *globalOption) one() (string, error) {
	var v string
	if !o.d.AllArgs(&v) {
		return "", o.d.ArgErr()
	}
	return v, nil
}

// check wraps a value check's error with the subdirective and line.
func (o *globalOption) check(err error) error {
	if err != nil {
		return o.d.Errf("%s: %v", o.name, err)
	}
	return nil
}

// url reads one absolute http(s) URL.
func (o *globalOption) url() (string, error) {
	v, err := o.one()
	if err != nil {
		return "", err
	}
	if !hasPlaceholder(v) {
		if err := o.check(checkHTTPURL(v)); err != nil {
			return "", err
		}
	}
	return v, nil
}

// duration reads one positive duration.
func (o *globalOption) duration() (caddy.Duration, error) {
	v, err := o.one()
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, o.d.Errf("%s: invalid duration %q (want e.g. 90m, 24h or 7d)", o.name, v)
	}
	if err := o.check(checkLifespan(dur)); err != nil {
		return 0, err
	}
	return caddy.Duration(dur), nil
}

// number reads one integer that valid accepts.
func (o *globalOption) number(valid func(int) error) (int, error) {
	v, err := o.one()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, o.d.Errf("%s: invalid number %q", o.name, v)
	}
	return n, o.check(valid(n))
}

// flag reads a subdirective without arguments.
func (o *globalOption) flag() (bool, error) {
	if o.d.NextArg() {
		return false, o.d.ArgErr()
	}
	return true, nil
}

// choice reads one of allowed.
func (o *globalOption) choice(what string, allowed []string) (string, error) {
	v, err := o.one()
	if err != nil {
		return "", err
	}
	return v, o.check(checkOneOf(what, v, allowed))
}

// block reads a subdirective that takes no arguments, only a block, which
// unmarshal reads.
func (o *globalOption) block(unmarshal func(*caddyfile.Dispenser) error) error {
	if o.d.NextArg() {
		return o.d.ArgErr()
	}
	return unmarshal(o.d)
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

// parseHandler and Handler.UnmarshalCaddyfile, the `kratos` directive, are
// in handler.go; parseGate and Gate.UnmarshalCaddyfile, the `kratos_gate`
// directive, in gate_caddyfile.go.

var _ caddyfile.Unmarshaler = (*App)(nil)
