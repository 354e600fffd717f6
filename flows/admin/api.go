package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Config is what the admin API takes from the engine's configuration.
type Config struct {
	// PasswordHasher is the hasher of imported plaintext passwords
	// (bcrypt refuses more than 72 bytes).
	PasswordHasher string
	// RecoveryUse is code or link: only code flows have admin codes.
	RecoveryUse string
	// CodeLifespan is the default lifespan of admin recovery codes and
	// links.
	CodeLifespan time.Duration
	// SessionLifespan is how far extendSession moves a session's expiry.
	SessionLifespan time.Duration
	// Audit is the audit trail GET /admin/audit lists; nil: 404.
	Audit event.Log
}

// Recovery is what the admin API needs of the recovery flow (the
// recovery package's Flow): whether it is on, and its forms.
type Recovery interface {
	Disabled() *wire.Error
	Form(f *flow.Flow, csrf string)
	Sent(f *flow.Flow, address string)
}

// Shared are handlers of the public API that Kratos's admin port serves
// too (IdentityAPI's ListIdentitySchemas and GetIdentitySchema call them
// there): the schema list (without the public API's CSRF cookie), one
// schema, and the health check.
type Shared struct {
	ListSchemas, GetSchema, Health http.HandlerFunc
	// OpenCredential returns the config of a credential of type typ as
	// include_credential shows it, when it differs from the stored one
	// (oidc: the provider's tokens opened, as Kratos shows them). Nil, or
	// nil from it: as stored.
	OpenCredential func(ctx context.Context, typ string, config json.RawMessage) json.RawMessage
}

// API serves the admin API. It is safe for concurrent use.
type API struct {
	cfg      Config
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	schemas  *identity.Schemas
	hasher   *identity.Hasher
	urls     *wire.URLs
	recovery Recovery
	logger   *zap.Logger
	now      func() time.Time
	mux      *http.ServeMux
	shared   Shared
}

// New returns the admin API over the engine's layers.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, schemas *identity.Schemas,
	hasher *identity.Hasher, urls *wire.URLs, logger *zap.Logger, now func() time.Time, recovery Recovery, shared Shared) *API {
	a := &API{cfg: cfg, kernel: k, sessions: sessions, store: store, schemas: schemas, hasher: hasher, urls: urls,
		recovery: recovery, logger: logger, now: now, shared: shared}
	m := http.NewServeMux()
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) *wire.Error) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if ferr := f(w, r); ferr != nil {
				wire.WriteError(w, r, ferr)
			}
		})
	}
	h("GET /admin/identities", a.listIdentities)
	h("POST /admin/identities", a.createIdentity)
	h("PATCH /admin/identities", a.batchPatchIdentities)
	h("GET /admin/identities/{id}", a.getIdentity)
	h("PUT /admin/identities/{id}", a.updateIdentity)
	h("PATCH /admin/identities/{id}", a.patchIdentity)
	h("DELETE /admin/identities/{id}", a.deleteIdentity)
	h("GET /admin/identities/{id}/sessions", a.listIdentitySessions)
	h("DELETE /admin/identities/{id}/sessions", a.deleteIdentitySessions)
	h("GET /admin/sessions/{id}", a.getSession)
	h("DELETE /admin/sessions/{id}", a.disableSession)
	h("PATCH /admin/sessions/{id}/extend", a.extendSession)
	h("POST /admin/recovery/code", a.createRecoveryCode)
	h("POST /admin/recovery/link", a.createRecoveryLink)
	h("GET /admin/audit", a.listAudit)
	m.HandleFunc("GET /admin/health/alive", shared.Health)
	m.HandleFunc("GET /admin/health/ready", shared.Health)
	m.HandleFunc("GET /schemas", shared.ListSchemas)
	m.HandleFunc("GET /schemas/{id}", shared.GetSchema)
	a.mux = m
	return a
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// ServeHTTP serves the admin API at paths without any mount prefix
// (/admin/identities, …). It never panics out: a panic in a handler
// becomes a 500 in Kratos's error shape.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.logger.Error("panic serving admin request", zap.Any("panic", v), zap.String("path", r.URL.Path))
			wire.WriteError(w, r, wire.Internal("internal error"))
		}
	}()
	if _, pattern := a.mux.Handler(r); pattern == "" {
		var allowed []string
		for _, method := range methods {
			r2 := r.Clone(r.Context())
			r2.Method = method
			if _, p := a.mux.Handler(r2); p != "" && method != r.Method {
				allowed = append(allowed, method)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			wire.WriteError(w, r, wire.NewError(http.StatusMethodNotAllowed, "", "", ""))
			return
		}
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	w.Header().Set("Cache-Control", wire.NoCache)
	a.mux.ServeHTTP(w, r)
}

// WriteUnavailable answers 503 in Kratos's error shape: the admin API is
// mounted but no kratos app is running.
func WriteUnavailable(w http.ResponseWriter, r *http.Request, reason string) {
	wire.WriteError(w, r, wire.NewError(http.StatusServiceUnavailable, "", "The service is temporarily unavailable", reason))
}

// WriteForbidden answers 403 in Kratos's error shape: the admin API
// refuses this request (see caddymodule's kratos_admin).
func WriteForbidden(w http.ResponseWriter, r *http.Request, reason string) {
	wire.WriteError(w, r, wire.NewError(http.StatusForbidden, "", "", reason))
}
