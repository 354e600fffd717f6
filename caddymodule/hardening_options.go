package caddymodule

import (
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// The abuse limits and the password breach check: rate_limits and
// breached_password_check.

// unmarshalHardeningOption reads
//
//	rate_limits off | { … }   (see parseRateLimits)
//	breached_password_check <on|off>
func (a *App) unmarshalHardeningOption(o *globalOption) (bool, error) {
	var err error
	switch o.name {
	case "rate_limits":
		a.RateLimits, err = parseRateLimits(o.d)
	case "breached_password_check":
		var v string
		v, err = o.choice("breached_password_check", []string{"on", "off"})
		a.DisableBreachedPasswordCheck = v == "off"
	default:
		return false, nil
	}
	return true, err
}

// parseRateLimits reads `rate_limits off` or
//
//	rate_limits {
//		login_failures_per_identifier <n>
//		login_failures_per_ip <n>
//		code_failures_per_ip <n>
//		sends_per_address <n>
//		sends_per_ip <n>
//		registrations_per_ip <n>
//		flows_per_ip <n>
//	}
func parseRateLimits(d *caddyfile.Dispenser) (*flows.RateLimits, error) {
	rl := &flows.RateLimits{}
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "off":
		rl.Disabled = true
		if d.NextBlock(1) {
			return nil, d.Err("rate_limits off takes no block")
		}
		return rl, nil
	case len(args) > 0:
		return nil, d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(1) {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("rate_limits: duplicate subdirective %q", name)
		}
		seen[name] = true
		var target *int
		switch name {
		case "login_failures_per_identifier":
			target = &rl.LoginFailuresPerIdentifier
		case "login_failures_per_ip":
			target = &rl.LoginFailuresPerIP
		case "code_failures_per_ip":
			target = &rl.CodeFailuresPerIP
		case "sends_per_address":
			target = &rl.SendsPerAddress
		case "sends_per_ip":
			target = &rl.SendsPerIP
		case "registrations_per_ip":
			target = &rl.RegistrationsPerIP
		case "flows_per_ip":
			target = &rl.FlowsPerIP
		default:
			return nil, d.Errf("rate_limits: unrecognized subdirective %q", name)
		}
		var v string
		if !d.AllArgs(&v) {
			return nil, d.ArgErr()
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, d.Errf("rate_limits: %s: want a positive number, got %q", name, v)
		}
		*target = n
	}
	return rl, nil
}

// applyHardening maps the abuse limits and gives the engine Caddy's client
// IP (which honours trusted_proxies).
func (a *App) applyHardening(cfg *flows.Config) {
	if a.RateLimits != nil {
		cfg.RateLimits = *a.RateLimits
	}
	cfg.ClientIP = clientIP
}

// clientIP is the client address Caddy determined for the request.
func clientIP(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		return v
	}
	return ""
}
