package flows

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The Kratos admin API (the `identity` tag of Kratos's OpenAPI document):
// identities, their sessions and recovery codes and links. AdminHandler
// serves it at Kratos's paths (/admin/identities, …) without any access
// control of its own: caddymodule mounts it on Caddy's admin endpoint,
// never on a public site.
//
//	GET    /admin/identities                 listIdentities
//	POST   /admin/identities                 createIdentity
//	PATCH  /admin/identities                 batchPatchIdentities
//	GET    /admin/identities/{id}            getIdentity
//	PUT    /admin/identities/{id}            updateIdentity
//	PATCH  /admin/identities/{id}            patchIdentity
//	DELETE /admin/identities/{id}            deleteIdentity
//	GET    /admin/identities/{id}/sessions   listIdentitySessions
//	DELETE /admin/identities/{id}/sessions   deleteIdentitySessions
//	GET    /admin/sessions/{id}              getSession
//	DELETE /admin/sessions/{id}              disableSession
//	PATCH  /admin/sessions/{id}/extend       extendSession
//	POST   /admin/recovery/code              createRecoveryCodeForIdentity
//	POST   /admin/recovery/link              createRecoveryLinkForIdentity
//	GET    /admin/health/alive, /admin/health/ready
//	GET    /schemas, /schemas/{id}                  listIdentitySchemas, getIdentitySchema

// AdminHandler returns the handler of the Kratos admin API. It expects
// paths without any mount prefix (/admin/identities, …).
func (e *Engine) AdminHandler() http.Handler {
	return http.HandlerFunc(e.serveAdmin)
}

type adminEngineKey struct{}

// adminRoute is an admin handler; the engine comes from the request
// context, so one mux serves every engine (old and new config alike).
type adminRoute func(e *Engine, w http.ResponseWriter, r *http.Request)

var adminMux = sync.OnceValue(func() *http.ServeMux {
	m := http.NewServeMux()
	h := func(pattern string, f adminRoute) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f(r.Context().Value(adminEngineKey{}).(*Engine), w, r)
		})
	}
	h("GET /admin/identities", (*Engine).adminListIdentities)
	h("POST /admin/identities", (*Engine).adminCreateIdentity)
	h("PATCH /admin/identities", (*Engine).adminBatchPatchIdentities)
	h("GET /admin/identities/{id}", (*Engine).adminGetIdentity)
	h("PUT /admin/identities/{id}", (*Engine).adminUpdateIdentity)
	h("PATCH /admin/identities/{id}", (*Engine).adminPatchIdentity)
	h("DELETE /admin/identities/{id}", (*Engine).adminDeleteIdentity)
	h("GET /admin/identities/{id}/sessions", (*Engine).adminListIdentitySessions)
	h("DELETE /admin/identities/{id}/sessions", (*Engine).adminDeleteIdentitySessions)
	h("GET /admin/sessions/{id}", (*Engine).adminGetSession)
	h("DELETE /admin/sessions/{id}", (*Engine).adminDisableSession)
	h("PATCH /admin/sessions/{id}/extend", (*Engine).adminExtendSession)
	h("POST /admin/recovery/code", (*Engine).adminCreateRecoveryCode)
	h("POST /admin/recovery/link", (*Engine).adminCreateRecoveryLink)
	h("GET /admin/health/alive", (*Engine).health)
	h("GET /admin/health/ready", (*Engine).health)
	// Kratos's admin port serves the schemas too (IdentityAPI's
	// ListIdentitySchemas and GetIdentitySchema call them there).
	h("GET /schemas", (*Engine).writeSchemaList)
	h("GET /schemas/{id}", (*Engine).getSchema)
	return m
})

var adminMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func (e *Engine) serveAdmin(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			e.logger.Error("panic serving admin request", zap.Any("panic", v), zap.String("path", r.URL.Path))
			wire.WriteError(w, r, wire.Internal("internal error"))
		}
	}()
	m := adminMux()
	if _, pattern := m.Handler(r); pattern == "" {
		var allowed []string
		for _, method := range adminMethods {
			r2 := r.Clone(r.Context())
			r2.Method = method
			if _, p := m.Handler(r2); p != "" && method != r.Method {
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
	w.Header().Set("Cache-Control", noCache)
	m.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), adminEngineKey{}, e)))
}

// WriteAdminUnavailable answers 503 in Kratos's error shape: the admin API
// is mounted but no kratos app is running.
func WriteAdminUnavailable(w http.ResponseWriter, r *http.Request, reason string) {
	wire.WriteError(w, r, wire.NewError(http.StatusServiceUnavailable, "", "The service is temporarily unavailable", reason))
}

// WriteAdminForbidden answers 403 in Kratos's error shape: the admin API
// refuses this request (see caddymodule's kratos_admin).
func WriteAdminForbidden(w http.ResponseWriter, r *http.Request, reason string) {
	wire.WriteError(w, r, wire.NewError(http.StatusForbidden, "", "", reason))
}

// --- wire shapes ---

// adminIdentity is Kratos's identity as the admin API shows it: with
// metadata_admin and credentials (config only when declassified with
// include_credential).
type adminIdentity struct {
	ID                  string                           `json:"id"`
	Credentials         map[string]adminCredential       `json:"credentials,omitempty"`
	SchemaID            string                           `json:"schema_id"`
	SchemaURL           string                           `json:"schema_url"`
	State               string                           `json:"state"`
	StateChangedAt      *time.Time                       `json:"state_changed_at,omitempty"`
	Traits              json.RawMessage                  `json:"traits"`
	VerifiableAddresses []sessionstore.VerifiableAddress `json:"verifiable_addresses"`
	RecoveryAddresses   []sessionstore.RecoveryAddress   `json:"recovery_addresses"`
	MetadataPublic      json.RawMessage                  `json:"metadata_public"`
	MetadataAdmin       json.RawMessage                  `json:"metadata_admin"`
	CreatedAt           time.Time                        `json:"created_at"`
	UpdatedAt           time.Time                        `json:"updated_at"`
	OrganizationID      *string                          `json:"organization_id"`
}

type adminCredential struct {
	Type        string          `json:"type"`
	Identifiers []string        `json:"identifiers"`
	Config      json.RawMessage `json:"config,omitempty"`
	Version     int             `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// adminCredentialTypes are the values Kratos accepts for include_credential.
var adminCredentialTypes = map[string]bool{
	"password": true, "oidc": true, "totp": true, "lookup_secret": true, "webauthn": true, "code": true,
	"passkey": true, "profile": true, "saml": true, "deviceauthn": true, "identifier_first": true,
	"link_recovery": true, "code_recovery": true,
}

// parseIncludeCredential reads include_credential (repeatable; a comma
// separated list is accepted too).
func parseIncludeCredential(q url.Values) (map[string]bool, *wire.Error) {
	out := map[string]bool{}
	for _, v := range q["include_credential"] {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if !adminCredentialTypes[t] {
				return nil, wire.BadRequest(fmt.Sprintf("Invalid value `%s` for parameter `include_credential`.", t))
			}
			out[t] = true
		}
	}
	return out, nil
}

// adminIdentityJSON renders id in the admin shape; the config of the
// credential types in declassify is included as stored (Kratos does the
// same: for password that is hashed_password).
func (e *Engine) adminIdentityJSON(r *http.Request, id *sessionstore.Identity, declassify map[string]bool) *adminIdentity {
	w := &adminIdentity{
		ID: id.ID, SchemaID: id.SchemaID, SchemaURL: e.adminSchemaURL(r, id.SchemaID),
		State: id.State, Traits: id.Traits,
		VerifiableAddresses: id.VerifiableAddresses, RecoveryAddresses: id.RecoveryAddresses,
		MetadataPublic: id.MetadataPublic, MetadataAdmin: id.MetadataAdmin,
		CreatedAt: id.CreatedAt, UpdatedAt: id.UpdatedAt,
	}
	if !id.StateChangedAt.IsZero() {
		t := id.StateChangedAt
		w.StateChangedAt = &t
	}
	if w.State == "" {
		w.State = "active"
	}
	if len(w.Traits) == 0 {
		w.Traits = json.RawMessage("{}")
	}
	if len(w.MetadataPublic) == 0 {
		w.MetadataPublic = json.RawMessage("null")
	}
	if len(w.MetadataAdmin) == 0 {
		w.MetadataAdmin = json.RawMessage("null")
	}
	if w.VerifiableAddresses == nil {
		w.VerifiableAddresses = []sessionstore.VerifiableAddress{}
	}
	if w.RecoveryAddresses == nil {
		w.RecoveryAddresses = []sessionstore.RecoveryAddress{}
	}
	if len(id.Credentials) > 0 {
		w.Credentials = make(map[string]adminCredential, len(id.Credentials))
		for t, c := range id.Credentials {
			ac := adminCredential{Type: c.Type, Identifiers: c.Identifiers, Version: c.Version,
				CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
			if ac.Type == "" {
				ac.Type = t
			}
			if ac.Identifiers == nil {
				ac.Identifiers = []string{}
			}
			if declassify[t] {
				ac.Config = c.Config
			}
			w.Credentials[t] = ac
		}
	}
	return w
}

// adminSchemaURL points at the public getIdentitySchema endpoint.
func (e *Engine) adminSchemaURL(r *http.Request, schemaID string) string {
	return e.urls.Base() + "schemas/" + base64.RawURLEncoding.EncodeToString([]byte(schemaID))
}

// adminSession is Kratos's session for the admin API; identity and devices
// appear when expanded.
type adminSession struct {
	ID                    string                    `json:"id"`
	Active                bool                      `json:"active"`
	ExpiresAt             time.Time                 `json:"expires_at"`
	AuthenticatedAt       time.Time                 `json:"authenticated_at"`
	AAL                   string                    `json:"authenticator_assurance_level"`
	AuthenticationMethods []sessionstore.AuthMethod `json:"authentication_methods"`
	IssuedAt              time.Time                 `json:"issued_at"`
	Identity              *session.IdentityWire     `json:"identity,omitempty"`
	Devices               []sessionstore.Device     `json:"devices,omitempty"`
}

func (e *Engine) adminSessionJSON(s *sessionstore.Session, idw *session.IdentityWire, devices bool) *adminSession {
	w := &adminSession{
		ID: s.ID, Active: e.sessions.Active(s), ExpiresAt: s.ExpiresAt, AuthenticatedAt: s.AuthenticatedAt,
		AAL: s.AAL, AuthenticationMethods: s.AuthenticationMethods, IssuedAt: s.IssuedAt, Identity: idw,
	}
	if w.AuthenticationMethods == nil {
		w.AuthenticationMethods = []sessionstore.AuthMethod{}
	}
	if devices {
		w.Devices = s.Devices
		if w.Devices == nil {
			w.Devices = []sessionstore.Device{}
		}
	}
	return w
}

// adminIdentityWire is the identity embedded in sessions: the frontend
// shape (no credentials, no admin metadata), as Kratos embeds it. The
// schema URL follows adminSchemaURL.
func (e *Engine) adminIdentityWire(r *http.Request, id *sessionstore.Identity) *session.IdentityWire {
	w := e.sessions.IdentityJSON(r, id)
	w.SchemaURL = e.adminSchemaURL(r, id.SchemaID)
	return w
}

// --- request helpers ---

const (
	maxAdminBody = 1 << 20
	maxBatchBody = 64 << 20
)

// adminDecode decodes a JSON body into v, rejecting unknown fields and
// trailing data (Kratos decodes admin bodies strictly).
func adminDecode(w http.ResponseWriter, r *http.Request, limit int64, v any) *wire.Error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return wire.NewError(http.StatusRequestEntityTooLarge, "", "", fmt.Sprintf("The request body is larger than %d bytes.", limit))
		}
		return wire.BadRequest("Unable to read the request body.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return wire.BadRequest(fmt.Sprintf("Unable to decode the request body as JSON: %v", err))
	}
	if dec.More() {
		return wire.BadRequest("Unexpected data after the JSON body.")
	}
	return nil
}

// adminLoadIdentity loads the path's identity or answers 404/500.
func (e *Engine) adminLoadIdentity(w http.ResponseWriter, r *http.Request, id string) *sessionstore.Identity {
	ident, err := e.store.GetIdentity(r.Context(), id)
	if err == nil {
		return ident
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		wire.WriteError(w, r, wire.NotFound())
		return nil
	}
	e.logger.Error("admin: loading identity", zap.Error(err))
	wire.WriteError(w, r, wire.StoreError(err, "unable to load the identity"))
	return nil
}

// adminSelfURL is the absolute URL of the request as the client sent it (with
// any mount prefix), for Link headers.
func adminSelfURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if ru, err := url.ParseRequestURI(r.RequestURI); err == nil && ru.Path != "" {
		u.Path = ru.Path
	}
	return u
}

// adminLinkHeader sets Kratos's keyset pagination Link header: first, and next
// when there is a next page.
func adminLinkHeader(w http.ResponseWriter, r *http.Request, size int, next string) {
	mk := func(rel, token string) wire.Link {
		u := adminSelfURL(r)
		q := r.URL.Query()
		q.Del("page")
		q.Del("per_page")
		q.Set("page_size", fmt.Sprint(size))
		if token == "" {
			q.Del("page_token")
		} else {
			q.Set("page_token", token)
		}
		u.RawQuery = q.Encode()
		return wire.Link{Rel: rel, URL: u.String()}
	}
	links := []wire.Link{mk("first", "")}
	if next != "" {
		links = append(links, mk("next", next))
	}
	wire.SetLinks(w, links...)
}

// adminPage reads Kratos's pagination parameters. Keyset (page_size,
// page_token) is the default; the deprecated per_page/page pair selects
// offset pagination (page counts from 0).
type adminPage struct {
	size   int
	token  string
	offset int // page * per_page, when paged
	paged  bool
}

func parseAdminPage(q url.Values) (adminPage, *wire.Error) {
	p := adminPage{size: 250, token: q.Get("page_token")}
	atoi := func(name string) (int, *wire.Error) {
		var n int
		if _, err := fmt.Sscan(q.Get(name), &n); err != nil {
			return 0, wire.BadRequest(fmt.Sprintf("The query parameter %s must be an integer.", name))
		}
		return n, nil
	}
	if q.Get("page_size") != "" {
		n, err := atoi("page_size")
		if err != nil {
			return p, err
		}
		p.size = min(max(n, 1), 500)
	}
	if p.token == "" && (q.Get("per_page") != "" || q.Get("page") != "") {
		p.paged = true
		if q.Get("per_page") != "" {
			n, err := atoi("per_page")
			if err != nil {
				return p, err
			}
			p.size = min(max(n, 1), 1000)
		}
		if q.Get("page") != "" {
			n, err := atoi("page")
			if err != nil {
				return p, err
			}
			p.offset = max(n, 0) * p.size
		}
	}
	return p, nil
}
