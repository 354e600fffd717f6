package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(Handler))
}

// Handler serves the Ory Kratos public API (/self-service/…, /sessions…,
// /schemas…, /.well-known/ory/…, /health/…) and the built-in UI pages, and
// passes every other request to the next handler. Its configuration lives
// in the `kratos` app.
type Handler struct {
	api api
	log accessLog
}

// api is what Handler needs from the engine (*flows.Engine).
type api interface {
	Handles(r *http.Request) bool
	ServeHTTP(w http.ResponseWriter, r *http.Request)
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.kratos",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision gets the engine from the `kratos` app (which refuses to start
// without public_url).
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := kratosApp(ctx)
	if err != nil {
		return err
	}
	h.api = app.Engine()
	h.log.provision(ctx)
	return nil
}

// ServeHTTP serves the Kratos API or calls next. A request that carries
// a session token or, on the API's paths, a link secret gets an access
// log entry without them (accesslog.go).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	handles := h.api.Handles(r)
	w, r, done := h.log.takeOver(w, r, handles)
	if done != nil {
		err := h.serve(w, r, next, handles)
		done(err)
		return err
	}
	return h.serve(w, r, next, handles)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, handles bool) error {
	if handles {
		h.api.ServeHTTP(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// kratosApp loads (instantiating and provisioning it if needed) the
// `kratos` app.
func kratosApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("kratos")
	if err != nil {
		return nil, fmt.Errorf("getting kratos app: %w", err)
	}
	app, ok := v.(*App)
	if !ok || app.Engine() == nil {
		return nil, fmt.Errorf("kratos app is not provisioned")
	}
	return app, nil
}

// parseHandler sets up the `kratos` directive (registered in
// caddyfile.go's init).
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, requireGlobalOption(h)
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

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
