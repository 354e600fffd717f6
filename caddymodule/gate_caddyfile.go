package caddymodule

import (
	"encoding/json"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// parseGate sets up the `kratos_gate` directive (registered in
// caddyfile.go's init).
func parseGate(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gate)
	if err := g.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	// The assertion's issuer is the public URL: without one it would
	// have to come from the request's Host header.
	if g.Assertion != nil && !hasPublicURL(h.Option("kratos")) {
		return nil, g.noPublicURL
	}
	return g, requireGlobalOption(h)
}

// hasPublicURL reports whether the `kratos` global option (as parsed by
// parseGlobalOption) sets public_url.
func hasPublicURL(opt any) bool {
	app, ok := opt.(httpcaddyfile.App)
	if !ok {
		return false
	}
	var site flows.SiteOptions
	return json.Unmarshal(app.Value, &site) == nil && site.PublicURL != ""
}

// UnmarshalCaddyfile sets up the gate from the `kratos_gate` directive:
//
//	kratos_gate {
//		login_url <url>
//		allow <path patterns...>
//		methods <HTTP methods...>
//		required_aal <aal1|aal2|highest_available>
//		on_unauthenticated <redirect|401>
//		header <name> <value with placeholders>
//		strip_credentials
//		name <name in the audit trail and the metrics>
//		assertion {
//			header <name>
//			ttl <duration>
//			traits <trait paths...>
//			key_file <pem file>
//			audience <aud...>
//		}
//	}
//
// allow, methods and header may repeat (header once per name); the others
// may appear once. `assertion` without a block turns the assertion on with
// its defaults.
func (g *Gate) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "allow", "methods", "header":
		default:
			if seen[name] {
				return d.Errf("duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		switch name {
		case "login_url":
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
		case "methods":
			methods := d.RemainingArgs()
			if len(methods) == 0 {
				return d.ArgErr()
			}
			for _, m := range methods {
				if err := checkHTTPMethod(m); err != nil {
					return d.Errf("methods: %v", err)
				}
				g.Methods = append(g.Methods, strings.ToUpper(m))
			}
		case "required_aal":
			if !d.AllArgs(&g.RequiredAAL) {
				return d.ArgErr()
			}
			if err := checkOneOf("required_aal", g.RequiredAAL, gateAALs); err != nil {
				return d.Errf("%v", err)
			}
		case "on_unauthenticated":
			if !d.AllArgs(&g.OnUnauthenticated) {
				return d.ArgErr()
			}
			if err := checkOneOf("on_unauthenticated", g.OnUnauthenticated, unauthenticatedModes); err != nil {
				return d.Errf("%v", err)
			}
		case "header":
			var hname, value string
			if !d.AllArgs(&hname, &value) {
				return d.ArgErr()
			}
			for have := range g.Headers {
				if sameHeaderName(have, hname) {
					return d.Errf("header: duplicate header %q", hname)
				}
			}
			if err := checkGateHeaderName(hname, []string{IdentityHeader}); err != nil {
				return d.Errf("header: %v", err)
			}
			if g.Headers == nil {
				g.Headers = map[string]string{}
			}
			g.Headers[hname] = value
		case "name":
			if !d.AllArgs(&g.Name) {
				return d.ArgErr()
			}
			if err := checkGateName(g.Name); err != nil {
				return d.Errf("name: %v", err)
			}
		case "strip_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			g.StripCredentials = true
		case "assertion":
			g.noPublicURL = d.Err("assertion: needs public_url in the kratos global option (the token's issuer)")
			a, err := parseGateAssertion(d)
			if err != nil {
				return err
			}
			g.Assertion = a
		default:
			return d.Errf("unrecognized subdirective %q", name)
		}
	}
	if g.Assertion != nil {
		h := g.Assertion.Header
		if h == "" {
			h = DefaultAssertionHeader
		}
		for name := range g.Headers {
			if sameHeaderName(name, h) {
				return d.Errf("header %q is also the assertion's header", name)
			}
		}
	}
	return nil
}

// parseGateAssertion reads `assertion` with its optional block.
func parseGateAssertion(d *caddyfile.Dispenser) (*GateAssertion, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	a := &GateAssertion{}
	seen := map[string]bool{}
	for d.NextBlock(1) {
		name := d.Val()
		if name != "traits" && name != "audience" {
			if seen[name] {
				return nil, d.Errf("assertion: duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		switch name {
		case "header":
			if !d.AllArgs(&a.Header) {
				return nil, d.ArgErr()
			}
			if err := checkGateHeaderName(a.Header, []string{IdentityHeader}); err != nil {
				return nil, d.Errf("assertion: header: %v", err)
			}
		case "ttl":
			var v string
			if !d.AllArgs(&v) {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("assertion: ttl: invalid duration %q", v)
			}
			a.TTL = caddy.Duration(dur)
		case "traits":
			paths := d.RemainingArgs()
			if len(paths) == 0 {
				return nil, d.ArgErr()
			}
			for _, p := range paths {
				if err := checkTraitPath(p); err != nil {
					return nil, d.Errf("assertion: traits: %v", err)
				}
			}
			a.Traits = append(a.Traits, paths...)
		case "key_file":
			if !d.AllArgs(&a.KeyFile) {
				return nil, d.ArgErr()
			}
		case "audience":
			auds := d.RemainingArgs()
			if len(auds) == 0 {
				return nil, d.ArgErr()
			}
			for _, aud := range auds {
				if aud == "" {
					return nil, d.Errf("assertion: audience: empty value")
				}
			}
			a.Audience = append(a.Audience, auds...)
		default:
			return nil, d.Errf("assertion: unrecognized subdirective %q", name)
		}
	}
	return a, nil
}

var _ caddyfile.Unmarshaler = (*Gate)(nil)
