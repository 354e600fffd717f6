package caddymodule

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

func init() {
	caddy.RegisterModule(new(AdminHandler))
	httpcaddyfile.RegisterHandlerDirective("kratos_admin", parseAdminHandler)
	// After the authentication directives, so basic_auth or forward_auth
	// on the same site can guard it.
	httpcaddyfile.RegisterDirectiveOrder("kratos_admin", httpcaddyfile.After, "forward_auth")
}

// AdminHandler serves the Ory Kratos admin API at Kratos's own paths
// (/admin/identities…, /admin/sessions…, /admin/recovery/code and /link,
// /admin/health/alive and /ready, and /health/alive and /ready as Kratos's
// admin port does) on a site the operator chooses, e.g.
//
//	http://127.0.0.1:4434 {
//		kratos_admin
//	}
//
// so Ory's admin SDKs, the Kratos CLI and admin UIs work with that site as
// their admin URL. It is the same API as the admin.api.kratos mount on
// Caddy's admin endpoint (the engine's AdminHandler), and it has no access
// control of its own: whoever reaches it can read and change every
// identity. So Caddy does not start when it shares an HTTP server (a
// listener) with kratos or kratos_gate (checkAdminServers), and it answers
// every request itself (unknown paths get 404), refusing with 403:
//   - requests that arrived on a public address of this machine (the
//     connection's local address is neither loopback, private, shared
//     (100.64.0.0/10) nor link-local), unless the client proved itself
//     with a verified TLS client certificate: bind the site to an internal
//     address;
//   - requests from browsers (an Origin or Sec-Fetch-Site header): a web
//     page must not drive the admin API of the machine its visitor is on
//     (cross-site requests, DNS rebinding).
type AdminHandler struct {
	app    *App
	logger *zap.Logger
	// warned: local addresses already logged as public.
	warned sync.Map
}

// CaddyModule returns the Caddy module information.
func (*AdminHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.kratos_admin",
		New: func() caddy.Module { return new(AdminHandler) },
	}
}

// Provision gets the engine from the `kratos` app.
func (h *AdminHandler) Provision(ctx caddy.Context) error {
	app, err := kratosApp(ctx)
	if err != nil {
		return err
	}
	h.app, h.logger = app, ctx.Logger()
	return nil
}

// ServeHTTP answers every request: the admin API, or a refusal, or 404.
func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if addr, public := publicLocalAddr(r); public && !verifiedClientCert(r) {
		if _, seen := h.warned.LoadOrStore(addr, true); !seen {
			h.logger.Error("kratos_admin refuses requests received on a public address: bind the site to an internal address (e.g. http://127.0.0.1:4434) or require TLS client certificates",
				zap.String("local_address", addr))
		}
		flows.WriteAdminForbidden(w, r, "The Kratos admin API is not served on a public address of this machine.")
		return nil
	}
	if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
		flows.WriteAdminForbidden(w, r, "The Kratos admin API does not answer requests from web browsers.")
		return nil
	}
	var engine *flows.Engine
	if h.app != nil {
		engine = h.app.Engine()
	}
	if engine == nil {
		flows.WriteAdminUnavailable(w, r, errNoKratosApp.Error())
		return nil
	}
	if p := r.URL.Path; p == "/health/alive" || p == "/health/ready" {
		// Kratos's admin port answers its health checks at both paths.
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/admin"+p, ""
		r = r2
	}
	engine.AdminHandler().ServeHTTP(w, r)
	return nil
}

// checkAdminServers refuses a configuration in which kratos_admin shares
// an HTTP server (its listeners) with the public API or a gate: sites on
// one server are told apart by the Host header, which any client sets, so
// the admin API would be one header away from the public. Run at Start,
// when every app is provisioned.
func (a *App) checkAdminServers() error {
	if a.ctx.Context == nil {
		return nil
	}
	v, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return nil // no HTTP app: nothing serves the admin API
	}
	httpApp, ok := v.(*caddyhttp.App)
	if !ok {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(httpApp.Servers)) {
		srv := httpApp.Servers[name]
		var admin, public bool
		walkServerHandlers(srv, func(h caddyhttp.MiddlewareHandler) {
			switch h.(type) {
			case *AdminHandler:
				admin = true
			case *Handler, *Gate:
				public = true
			}
		})
		if admin && public {
			return fmt.Errorf("kratos_admin shares the HTTP server %s (listening on %s) with kratos or kratos_gate: "+
				"give the admin API a site with a port of its own, bound to an internal address, e.g. http://:4434 { bind 127.0.0.1; kratos_admin }",
				name, strings.Join(srv.Listen, ", "))
		}
	}
	return nil
}

// walkServerHandlers calls f for every handler of srv's routes, error
// routes and named routes, descending into subroutes.
func walkServerHandlers(srv *caddyhttp.Server, f func(caddyhttp.MiddlewareHandler)) {
	var walk func(routes caddyhttp.RouteList, errs *caddyhttp.HTTPErrorConfig)
	walk = func(routes caddyhttp.RouteList, errs *caddyhttp.HTTPErrorConfig) {
		if errs != nil {
			routes = append(slices.Clone(routes), errs.Routes...)
		}
		for _, r := range routes {
			for _, h := range r.Handlers {
				f(h)
				if sr, ok := h.(*caddyhttp.Subroute); ok {
					walk(sr.Routes, sr.Errors)
				}
			}
		}
	}
	walk(srv.Routes, srv.Errors)
	for _, r := range srv.NamedRoutes {
		if r != nil {
			walk(caddyhttp.RouteList{*r}, nil)
		}
	}
}

// sharedAddressSpace is 100.64.0.0/10 (RFC 6598: carrier-grade NAT, also
// the addresses of Tailscale nodes), which netip does not count as
// private.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicLocalAddr reports the local address a request arrived on when it
// is public, i.e. reachable from the internet if nothing else stands in
// the way. Unix sockets are local; an unknown address counts as public.
func publicLocalAddr(r *http.Request) (string, bool) {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || a == nil {
		return "unknown", true
	}
	if _, unix := a.(*net.UnixAddr); unix {
		return "", false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host, true
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || sharedAddressSpace.Contains(ip) {
		return "", false
	}
	return ip.String(), true
}

// verifiedClientCert: the TLS client presented a certificate that Caddy
// verified (client_auth with trusted CAs).
func verifiedClientCert(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}

// parseAdminHandler sets up the `kratos_admin` directive.
func parseAdminHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(AdminHandler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, requireGlobalOption(h)
}

// UnmarshalCaddyfile sets up the handler from the `kratos_admin`
// directive, which takes no arguments (an empty block is accepted):
//
//	kratos_admin
//
// Its configuration is the `kratos` global option.
func (h *AdminHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("unrecognized subdirective %q (the kratos_admin directive has none; configure the kratos global option)", d.Val())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*AdminHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*AdminHandler)(nil)
	_ caddyfile.Unmarshaler       = (*AdminHandler)(nil)
)
