package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
	return httpcaddyfile.App{
		Name:  "kratos",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// UnmarshalCaddyfile sets up the app from the `kratos` global option:
//
//	kratos {
//		storage <dir>
//		public_url <url>
//		identity_schema <file>
//		dev
//		default_return_url <url>
//		allowed_return_urls <url...>
//		ui_url <login|registration|settings|recovery|verification|error> <url>
//		ui_prefix <path>
//		session_lifespan <duration>
//		flow_lifespan <duration>
//		privileged_session_max_age <duration>
//		cookie_name <name>
//		cookie_domain <domain>
//		cookie_path <path>
//		cookie_same_site <lax|strict|none>
//		cookie_secret <secret...>
//		registration_style <profile_first|unified>
//		registration <enabled|disabled>
//		password_hasher <bcrypt|argon2id>
//		bcrypt_cost <n>
//	}
//
// allowed_return_urls may repeat (the lists are joined) and ui_url may
// repeat for different flows; every other subdirective may appear once.
// Values holding {placeholders} are checked when the config is loaded.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		name := d.Val()
		if name != "allowed_return_urls" && name != "ui_url" {
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
			a.Storage, err = one()

		case "public_url":
			a.PublicURL, err = urlArg()

		case "identity_schema":
			a.IdentitySchema, err = one()

		case "dev":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.Dev = true

		case "default_return_url":
			a.DefaultReturnURL, err = urlArg()

		case "allowed_return_urls":
			urls := d.RemainingArgs()
			if len(urls) == 0 {
				return d.ArgErr()
			}
			for _, u := range urls {
				if !hasPlaceholder(u) {
					if err := check(checkHTTPURL(u)); err != nil {
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

		case "ui_prefix":
			a.UIPrefix, err = one()
			if err == nil {
				err = check(checkPath(a.UIPrefix))
			}

		case "session_lifespan":
			a.SessionLifespan, err = durationArg()

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
			secrets := d.RemainingArgs()
			if len(secrets) == 0 {
				return d.ArgErr()
			}
			for _, s := range secrets {
				if !hasPlaceholder(s) {
					if err := check(checkSecret(s)); err != nil {
						return err
					}
				}
			}
			a.CookieSecrets = secrets

		case "registration_style":
			a.RegistrationStyle, err = choiceArg("registration style", registrationStyles)

		case "registration":
			var v string
			v, err = choiceArg("registration", []string{"enabled", "disabled"})
			a.DisableRegistration = v == "disabled"

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

		default:
			return d.Errf("unrecognized subdirective %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseHandler sets up the `kratos` directive.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
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

// parseGate sets up the `kratos_gate` directive.
func parseGate(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gate)
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return g, err
}

// UnmarshalCaddyfile sets up the gate from the `kratos_gate` directive:
//
//	kratos_gate {
//		login_url <url>
//		allow <path patterns...>
//	}
//
// allow may repeat; login_url may appear once.
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "login_url":
			if g.LoginURL != "" {
				return d.Errf("duplicate subdirective %q", "login_url")
			}
			if !d.AllArgs(&g.LoginURL) {
				return d.ArgErr()
			}
			if !hasPlaceholder(g.LoginURL) {
				if err := checkURLOrPath(g.LoginURL); err != nil {
					return d.Errf("login_url: %v", err)
				}
			}
		case "allow":
			paths := d.RemainingArgs()
			if len(paths) == 0 {
				return d.ArgErr()
			}
			for _, p := range paths {
				if (p == "" || p[0] != '/' && p[0] != '*') && !hasPlaceholder(p) {
					return d.Errf("allow: path pattern %q must start with / or *", p)
				}
			}
			g.Allow = append(g.Allow, paths...)
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Gate)(nil)
)
