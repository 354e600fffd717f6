package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the Ory Kratos admin API (identities, their sessions,
// recovery codes and links: Kratos's /admin/… paths) under /kratos/admin/
// on Caddy's admin endpoint, e.g. GET http://localhost:2019/kratos/admin/identities.
// It is never served on a site: it inherits the admin endpoint's address
// and access control (`admin` global option, remote admin with mTLS), so
// keep that endpoint private.
//
// Caddy loads every registered admin.api module whenever it starts an
// admin endpoint, with or without configuration, so this module needs
// none. It answers 503 when the running configuration has no kratos app.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.kratos",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// adminPrefix is where the admin API is mounted; the engine sees the paths
// without "/kratos" (/admin/identities, …), exactly Kratos's.
const adminPrefix = "/kratos"

// Routes returns the admin routes.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: adminPrefix + "/admin/",
		Handler: caddy.AdminHandlerFunc(serveAdminAPI),
	}}
}

// serveAdminAPI hands the request to the engine of the running config.
//
// Admin routers are created when the admin endpoint starts, before the
// apps of a new config are provisioned, and they outlive nothing: on every
// config load Caddy builds a new admin endpoint. So the router does not
// keep an engine; each request asks Caddy for the kratos app of the
// config that is running now (caddy.ActiveContext, which Caddy swaps only
// after the new config started). AppIfConfigured never instantiates an
// app: a config without a kratos app answers 503.
func serveAdminAPI(w http.ResponseWriter, r *http.Request) error {
	engine, err := runningEngine()
	if err != nil {
		flows.WriteAdminUnavailable(w, r, err.Error())
		return nil
	}
	http.StripPrefix(adminPrefix, engine.AdminHandler()).ServeHTTP(w, r)
	return nil
}

var errNoKratosApp = errors.New("no kratos app is running: the current Caddy configuration does not use caddy-kratos")

// runningEngine returns the engine of the running config's kratos app.
func runningEngine() (*flows.Engine, error) {
	v, err := caddy.ActiveContext().AppIfConfigured("kratos")
	if err != nil {
		return nil, errNoKratosApp
	}
	app, ok := v.(*App)
	if !ok {
		return nil, errNoKratosApp
	}
	engine := app.Engine()
	if engine == nil {
		return nil, errNoKratosApp
	}
	return engine, nil
}

// Interface guards
var (
	_ caddy.Module      = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
