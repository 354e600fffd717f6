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
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
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

// AdminCreated is the Internal key that marks a recovery flow an
// administrator created (createRecoveryCodeForIdentity).
const AdminCreated = "admin_created"

// FlowNS is the store namespace of flows.
const FlowNS = "flow"

// flowGrace keeps expired flows around so they answer 410, not 404.
const flowGrace = time.Hour

// NewFlow builds a flow of kind and type typ (api or browser), not yet
// stored: its id, times, request URL and empty form.
func (k *Kernel) NewFlow(r *http.Request, kind, typ string) *Flow {
	now := k.now().UTC()
	id := uuid.NewString()
	return &Flow{
		ID: id, Kind: kind, Type: typ,
		IssuedAt: now, CreatedAt: now, UpdatedAt: now,
		ExpiresAt:  now.Add(k.cfg.FlowLifespan),
		RequestURL: k.urls.Request(r),
		UI: node.Container{
			Action: k.urls.Public("self-service/" + kind + "?flow=" + id),
			Method: "POST",
			Nodes:  []*node.Node{},
		},
	}
}

// Save stores f until its expiry and FlowGrace, keeping out what a
// method showed once (the kernel's masks).
func (k *Kernel) Save(ctx context.Context, f *Flow) error {
	f.UpdatedAt = k.now().UTC()
	stored := f
	for _, mask := range k.masks {
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
	if err := k.store.PutRecord(ctx, FlowNS, f.ID, b, ttl); err != nil {
		return fmt.Errorf("store flow: %w", err)
	}
	return nil
}

// ErrNotFound: no flow of that id and kind.
var ErrNotFound = errors.New("flow not found")

// Load loads a flow of the given kind; other kinds count as not found.
func (k *Kernel) Load(ctx context.Context, id, kind string) (*Flow, error) {
	return k.LoadAny(ctx, id, kind)
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

// Wire is the flow's public JSON shape (what WriteFlow writes), for
// answers that carry a flow inside another layer's (the token exchange's
// 422).
func (f *Flow) Wire() any { return f.wire() }

// WriteFlow answers a flow as JSON.
func WriteFlow(w http.ResponseWriter, status int, f *Flow) {
	wire.WriteJSON(w, status, f.wire())
}

// --- create / get ---

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

// FlowSchema is the schema a registration flow creates its identity with.
func (k *Kernel) FlowSchema(f *Flow) *identity.Schema {
	return k.schemas.For(f.IdentitySchema)
}

// Complete marks a flow done so it cannot be replayed.
func (k *Kernel) Complete(ctx context.Context, f *Flow) {
	f.State = "passed_challenge"
	if err := k.Save(ctx, f); err != nil {
		k.logger.Warn("marking flow complete", zap.Error(err))
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
