package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Flow is the stored state of any self-service flow. Kind picks which wire
// fields are emitted (flowWire).
type Flow struct {
	ID               string         `json:"id"`
	Kind             string         `json:"kind"`
	Type             string         `json:"type"`
	ExpiresAt        time.Time      `json:"expires_at"`
	IssuedAt         time.Time      `json:"issued_at"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	RequestURL       string         `json:"request_url"`
	ReturnTo         string         `json:"return_to,omitempty"`
	UI               node.Container `json:"ui"`
	State            string         `json:"state"`
	Active           string         `json:"active,omitempty"`
	Refresh          bool           `json:"refresh"`
	RequestedAAL     string         `json:"requested_aal,omitempty"`
	TransientPayload map[string]any `json:"transient_payload,omitempty"`
	ContinueWith     []any          `json:"continue_with,omitempty"`
	// IdentitySchema is the schema a registration flow was asked for
	// (?identity_schema=); empty: the default schema.
	IdentitySchema string `json:"identity_schema,omitempty"`

	// Never on the wire.
	CSRFToken        []byte         `json:"csrf_token,omitempty"`
	CSRFMasked       string         `json:"csrf_masked,omitempty"` // the node's mask of CSRFToken (setCSRFNode)
	IdentityID       string         `json:"identity_id,omitempty"`
	SessionID        string         `json:"session_id,omitempty"`
	ExchangeCodeHash []byte         `json:"exchange_code_hash,omitempty"`
	Internal         map[string]any `json:"internal,omitempty"`
	// ExchangeCode is shown once, in the create answer.
	ExchangeCode string `json:"-"`
	// Identity is the settings flow's identity, set before writing.
	Identity *session.IdentityWire `json:"-"`
}

const FlowNS = "flow"

// flowGrace keeps expired flows around so they answer 410, not 404.
const flowGrace = time.Hour

func (e *Kernel) NewFlow(r *http.Request, kind, typ string) *Flow {
	now := e.now().UTC()
	id := uuid.NewString()
	return &Flow{
		ID: id, Kind: kind, Type: typ,
		IssuedAt: now, CreatedAt: now, UpdatedAt: now,
		ExpiresAt:  now.Add(e.cfg.FlowLifespan),
		RequestURL: e.urls.Request(r),
		UI: node.Container{
			Action: e.urls.Public("self-service/" + kind + "?flow=" + id),
			Method: "POST",
			Nodes:  []*node.Node{},
		},
	}
}

func (e *Kernel) Save(ctx context.Context, f *Flow) error {
	f.UpdatedAt = e.now().UTC()
	stored := f
	for _, mask := range e.masks {
		stored = mask(stored)
	}
	b, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("encode flow: %w", err)
	}
	ttl := time.Until(f.ExpiresAt) + flowGrace
	if ttl <= 0 {
		ttl = flowGrace
	}
	if err := e.store.PutRecord(ctx, FlowNS, f.ID, b, ttl); err != nil {
		return fmt.Errorf("store flow: %w", err)
	}
	return nil
}

var ErrNotFound = errors.New("flow not found")

// Load loads a flow of the given kind; other kinds count as not found.
func (e *Kernel) Load(ctx context.Context, id, kind string) (*Flow, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound
	}
	b, err := e.store.GetRecord(ctx, FlowNS, id)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load flow: %w", err)
	}
	var f Flow
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode flow: %w", err)
	}
	if f.Kind != kind {
		return nil, ErrNotFound
	}
	if f.UI.Nodes == nil {
		f.UI.Nodes = []*node.Node{}
	}
	return &f, nil
}

// wire returns the flow's Kratos JSON shape for its kind.
func (f *Flow) wire() any {
	type base struct {
		ID             string         `json:"id"`
		OrganizationID orgID          `json:"organization_id,omitzero"`
		Type           string         `json:"type"`
		ExpiresAt      time.Time      `json:"expires_at"`
		IssuedAt       time.Time      `json:"issued_at"`
		RequestURL     string         `json:"request_url"`
		ReturnTo       string         `json:"return_to,omitempty"`
		Active         string         `json:"active,omitempty"`
		UI             node.Container `json:"ui"`
	}
	// A nil map stays absent; an empty one (after a submit) is {}.
	var tp any
	if f.TransientPayload != nil {
		tp = f.TransientPayload
	}
	b := base{ID: f.ID, Type: f.Type, ExpiresAt: f.ExpiresAt, IssuedAt: f.IssuedAt, RequestURL: f.RequestURL,
		ReturnTo: f.ReturnTo, Active: f.Active, UI: f.UI}
	// Recovery and verification flows have no organization_id in Kratos.
	b.OrganizationID.present = f.Kind == "login" || f.Kind == "registration" || f.Kind == "settings"
	switch f.Kind {
	case "login":
		return struct {
			base
			CreatedAt        time.Time `json:"created_at"`
			UpdatedAt        time.Time `json:"updated_at"`
			Refresh          bool      `json:"refresh"`
			RequestedAAL     string    `json:"requested_aal"`
			ExchangeCode     string    `json:"session_token_exchange_code,omitempty"`
			State            string    `json:"state"`
			TransientPayload any       `json:"transient_payload,omitempty"`
		}{b, f.CreatedAt, f.UpdatedAt, f.Refresh, f.RequestedAAL, f.ExchangeCode, f.State, tp}
	case "registration":
		return struct {
			base
			ExchangeCode     string `json:"session_token_exchange_code,omitempty"`
			TransientPayload any    `json:"transient_payload,omitempty"`
			State            string `json:"state"`
			IdentitySchema   string `json:"identity_schema,omitempty"`
		}{b, f.ExchangeCode, tp, f.State, f.IdentitySchema}
	case "settings":
		return struct {
			base
			Identity         *session.IdentityWire `json:"identity"`
			ContinueWith     []any                 `json:"continue_with,omitempty"`
			TransientPayload any                   `json:"transient_payload,omitempty"`
			State            string                `json:"state"`
		}{b, f.Identity, f.ContinueWith, tp, f.State}
	default:
		return struct {
			base
			ContinueWith     []any  `json:"continue_with,omitempty"`
			TransientPayload any    `json:"transient_payload,omitempty"`
			State            string `json:"state"`
		}{b, f.ContinueWith, tp, f.State}
	}
}

// WriteFlow answers a flow as JSON.
func WriteFlow(w http.ResponseWriter, status int, f *Flow) {
	wire.WriteJSON(w, status, f.wire())
}

// --- create / get ---

// Create serves create{Browser,Native}{Login,Registration}Flow.
func (e *Kernel) Create(w http.ResponseWriter, r *http.Request, kind, typ string) {
	// Every flow is stored for its lifespan: creations per client are
	// limited so they cannot fill the store.
	if _, lerr := e.Reserve(r.Context(), "flow_ip", e.LimitIP(r)); lerr != nil {
		e.Refuse(w, r, nil, lerr)
		return
	}
	var csrf []byte
	if typ == "browser" {
		csrf = e.EnsureCSRF(w, r)
	}
	k := e.kinds[kind]
	if c, ok := k.(Creator); ok {
		c.Create(w, r, typ)
		return
	}
	f, ferr := k.Init(r, typ)
	if ferr != nil {
		if ferr.ID == "session_already_available" && typ == "browser" && wire.PrefersHTML(r) {
			// Already signed in: go where the user wanted to go.
			to := e.urls.DefaultReturn()
			if rt, err := e.ValidateReturnTo(r, r.URL.Query().Get("return_to")); err == nil && rt != "" {
				to = rt
			}
			code := http.StatusSeeOther
			if kind == "registration" || kind == "recovery" {
				code = http.StatusFound
			}
			wire.Redirect(w, r, code, to)
			return
		}
		e.WriteError(w, r, typ, ferr)
		return
	}
	f.CSRFToken = csrf
	e.SetCSRFNode(f, csrf)
	if err := e.Save(r.Context(), f); err != nil {
		e.logger.Error("saving flow", zap.Error(err))
		wire.WriteError(w, r, wire.Internal("unable to store the flow"))
		return
	}
	if typ == "browser" && wire.PrefersHTML(r) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(e.urls.UI(kind), "flow", f.ID))
		return
	}
	WriteFlow(w, http.StatusOK, f)
}

// SetCSRFNode puts the (masked, for browsers) CSRF token on the flow's node.
// A flow shows one masked value for as long as it is bound to the same
// token: Kratos stores the flow's token, and UIs compare and cache it, so
// every read of the flow answers the value it was created with. Any mask
// of the token verifies against the cookie (checkCSRF).
func (e *Kernel) SetCSRFNode(f *Flow, raw []byte) {
	v := ""
	if f.Type == "browser" && raw != nil {
		cur := f.CSRFMasked
		if n := f.UI.Find("csrf_token"); cur == "" && n != nil {
			cur, _ = n.Input().Value.(string) // a flow stored before csrf_masked
		}
		if !token.IsMaskOf(cur, raw) {
			cur = token.MaskCSRF(raw)
		}
		f.CSRFMasked, v = cur, cur
	}
	if n := f.UI.Find("csrf_token"); n != nil {
		n.Input().Value = v
		return
	}
	if f.Kind == "verification" && f.Type == "api" {
		return // Kratos's native verification flows carry no csrf_token node
	}
	f.UI.Nodes = append([]*node.Node{node.CSRF(v)}, f.UI.Nodes...)
}

// Get serves get{Login,Registration,Recovery,Verification}Flow.
func (e *Kernel) Get(w http.ResponseWriter, r *http.Request, kind string) {
	k := e.kinds[kind]
	if g, ok := k.(Getter); ok {
		g.Get(w, r)
		return
	}
	// GETs of flows issue the CSRF cookie when missing (Kratos's nosurf
	// does, whatever the flow's type).
	e.EnsureCSRF(w, r)
	id := r.URL.Query().Get("id")
	f, err := e.Load(r.Context(), id, kind)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			wire.WriteError(w, r, wire.NotFound())
			return
		}
		e.logger.Error("loading flow", zap.Error(err))
		wire.WriteError(w, r, wire.Internal("unable to load the flow"))
		return
	}
	if derr := k.Disabled(); derr != nil {
		wire.WriteError(w, r, derr)
		return
	}
	if f.Type == "browser" && !e.HoldsCSRF(r, f) {
		wire.WriteError(w, r, wire.CSRFViolation(CSRFMismatch))
		return
	}
	if e.now().After(f.ExpiresAt) {
		details := map[string]any{}
		if f.Type == "browser" {
			to := e.urls.Public("self-service/" + kind + "/browser")
			if f.ReturnTo != "" {
				to = wire.WithQuery(to, "return_to", f.ReturnTo)
			}
			details["redirect_to"] = to
			if f.ReturnTo != "" {
				details["return_to"] = f.ReturnTo
			}
		} else {
			details["api"] = e.urls.Public("self-service/" + kind + "/api")
		}
		wire.WriteError(w, r, wire.FlowExpired(f.ExpiresAt, details))
		return
	}
	// The flow's own mask (setCSRFNode), the same on every read.
	e.SetCSRFNode(f, f.CSRFToken)
	WriteFlow(w, http.StatusOK, f)
}

// orgID is organization_id: null when present, absent otherwise (organisations
// are an Ory Network feature; Kratos OSS always sends null on the flows that
// carry the field).
type orgID struct{ present bool }

func (o orgID) IsZero() bool { return !o.present }

func (o orgID) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// KeepTransient marks answers where Kratos's strategy stored the flow
// itself (a step moved on): those carry transient_payload, {} when none
// was sent.
func (f *Flow) KeepTransient() {
	if f.TransientPayload == nil {
		f.TransientPayload = map[string]any{}
	}
}

// submitSchema is the schema that types a flow's form traits: the
// identity's for a settings flow, else the flow's own (registration).
func (e *Kernel) submitSchema(ctx context.Context, f *Flow) *identity.Schema {
	if f.Kind == "settings" && f.IdentityID != "" {
		if ident, err := e.store.GetIdentityShared(ctx, f.IdentityID); err == nil {
			return e.schemas.Of(ident)
		}
	}
	return e.FlowSchema(f)
}

// FlowSchema is the schema a registration flow creates its identity with.
func (e *Kernel) FlowSchema(f *Flow) *identity.Schema {
	return e.schemas.For(f.IdentitySchema)
}

// Complete marks a flow done so it cannot be replayed.
func (e *Kernel) Complete(ctx context.Context, f *Flow) {
	f.State = "passed_challenge"
	if err := e.Save(ctx, f); err != nil {
		e.logger.Warn("marking flow complete", zap.Error(err))
	}
}

// Internals returns f.Internal, creating it.
func (f *Flow) Internals() map[string]any {
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	return f.Internal
}

// InternalString returns f.Internal[k] as a string.
func (f *Flow) InternalString(k string) string {
	s, _ := f.Internal[k].(string)
	return s
}
