package caddymodule

import (
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// How sessions and flows live, their cookies and secrets, and which
// sessions end when credentials change (flows.LifespanOptions,
// flows.CookieOptions, flows.SecretOptions, cookie_same_site and the
// session hooks of flows.HookOptions).

// unmarshalSessionOption reads
//
//	session_lifespan <duration>
//	earliest_possible_extend <duration>
//	flow_lifespan <duration>
//	privileged_session_max_age <duration>
//	cookie_name <name>
//	cookie_domain <domain>
//	cookie_path <path>
//	cookie_same_site <lax|strict|none>
//	cookie_host_prefix
//	cookie_secret <secret...>
//	secrets {
//		cookie <secret...>
//		cipher <secret...>
//	}
//	revoke_active_sessions <recovery|password|off...>
func (a *App) unmarshalSessionOption(o *globalOption) (bool, error) {
	var err error
	switch o.name {
	case "session_lifespan":
		a.SessionLifespan, err = o.duration()

	case "earliest_possible_extend":
		a.EarliestPossibleExtend, err = o.duration()

	case "flow_lifespan":
		a.FlowLifespan, err = o.duration()

	case "privileged_session_max_age":
		a.PrivilegedSessionMaxAge, err = o.duration()

	case "cookie_name":
		a.CookieName, err = o.one()
		if err == nil {
			err = o.check(checkCookieName(a.CookieName))
		}

	case "cookie_domain":
		a.CookieDomain, err = o.one()
		if err == nil && !hasPlaceholder(a.CookieDomain) {
			err = o.check(checkCookieDomain(a.CookieDomain))
		}

	case "cookie_path":
		a.CookiePath, err = o.one()
		if err == nil {
			err = o.check(checkPath(a.CookiePath))
		}

	case "cookie_same_site":
		a.CookieSameSite, err = o.one()
		if err == nil {
			_, err = parseSameSite(a.CookieSameSite)
			err = o.check(err)
		}

	case "cookie_host_prefix":
		a.CookieHostPrefix, err = o.flag()
		o.mark()

	case "cookie_secret":
		if o.seen["secrets.cookie"] {
			return true, o.d.Errf("cookie_secret: already set by secrets { cookie … }")
		}
		o.seen["secrets.cookie"] = true
		a.CookieSecrets, err = secretArgs(o.d, o.name)

	case "secrets":
		err = o.block(func(d *caddyfile.Dispenser) error { return a.unmarshalSecrets(d, o.seen) })

	case "revoke_active_sessions":
		err = a.parseRevokeActiveSessions(o.d)

	default:
		return false, nil
	}
	return true, err
}

// unmarshalSecrets reads the block of the secrets subdirective; seen
// tracks secrets.cookie, which cookie_secret sets too.
func (a *App) unmarshalSecrets(d *caddyfile.Dispenser, seen map[string]bool) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen["secrets."+sub] {
			if sub == "cookie" {
				return d.Errf("secrets: cookie: already set (by cookie_secret or an earlier line)")
			}
			return d.Errf("secrets: duplicate subdirective %q", sub)
		}
		seen["secrets."+sub] = true
		var err error
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

// checkHostPrefixOption refuses cookie_host_prefix (given at at, if at
// all) with a cookie_domain or a cookie_path other than /: browsers
// silently drop such __Host- cookies, and nobody could sign in.
func (a *App) checkHostPrefixOption(at string) error {
	if at == "" {
		return nil
	}
	switch {
	case a.CookieDomain != "":
		return fmt.Errorf("cookie_host_prefix: __Host- cookies cannot have a cookie_domain, at %s", at)
	case a.CookiePath != "" && a.CookiePath != "/":
		return fmt.Errorf("cookie_host_prefix: __Host- cookies need cookie_path /, at %s", at)
	}
	return nil
}

// sessionFlowsConfig replaces the placeholders of the cookie options and
// secrets in cfg, checks them and the lifespans, and maps
// cookie_same_site.
func (a *App) sessionFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
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
			errs.check(l.field, checkLifespan(l.d))
		}
	}
	cfg.CookieName, cfg.CookieDomain, cfg.CookiePath = r(a.CookieName), r(a.CookieDomain), r(a.CookiePath)
	if cfg.CookieName != "" {
		errs.check("cookie_name", checkCookieName(cfg.CookieName))
	}
	if cfg.CookieDomain != "" {
		errs.check("cookie_domain", checkCookieDomain(cfg.CookieDomain))
	}
	if cfg.CookiePath != "" {
		errs.check("cookie_path", checkPath(cfg.CookiePath))
	}
	sameSite, err := parseSameSite(a.CookieSameSite)
	errs.check("cookie_same_site", err)
	cfg.CookieSameSite = sameSite
	cfg.CookieSecrets = replaceEach(a.CookieSecrets, r)
	for _, s := range cfg.CookieSecrets {
		errs.check("cookie_secrets", checkSecret(s))
	}
	cfg.CipherSecrets = replaceEach(a.CipherSecrets, r)
	for _, s := range cfg.CipherSecrets {
		errs.check("cipher_secrets", checkSecret(s))
	}
}
