package session

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// IdentityWire is an identity in the frontend API's answers.
type IdentityWire struct {
	ID             string          `json:"id"`
	SchemaID       string          `json:"schema_id"`
	SchemaURL      string          `json:"schema_url"`
	State          string          `json:"state"`
	StateChangedAt time.Time       `json:"state_changed_at"`
	Traits         json.RawMessage `json:"traits"`
	// The address lists are interfaces so the slim identity of session
	// listings can leave them out (nil) while others send [] when empty.
	VerifiableAddresses any             `json:"verifiable_addresses,omitempty"`
	RecoveryAddresses   any             `json:"recovery_addresses,omitempty"`
	MetadataPublic      json.RawMessage `json:"metadata_public"`
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
	OrganizationID      *string         `json:"organization_id"`
}

// IdentityJSON is the frontend API's identity: no credentials, no admin
// metadata.
func (m *Manager) IdentityJSON(r *http.Request, id *sessionstore.Identity) *IdentityWire {
	w := &IdentityWire{
		ID: id.ID, SchemaID: id.SchemaID,
		SchemaURL: m.urls.Schema(id.SchemaID),
		State:     id.State, StateChangedAt: id.StateChangedAt, Traits: id.Traits,
		MetadataPublic: id.MetadataPublic, CreatedAt: id.CreatedAt, UpdatedAt: id.UpdatedAt,
	}
	ver, rec := id.VerifiableAddresses, id.RecoveryAddresses
	if ver == nil {
		ver = []sessionstore.VerifiableAddress{}
	}
	if rec == nil {
		rec = []sessionstore.RecoveryAddress{}
	}
	w.VerifiableAddresses, w.RecoveryAddresses = ver, rec
	if len(w.MetadataPublic) == 0 {
		w.MetadataPublic = json.RawMessage("null")
	}
	if len(w.Traits) == 0 {
		w.Traits = json.RawMessage("{}")
	}
	return w
}

// SessionWire is a session in the frontend API's answers.
type SessionWire struct {
	ID                    string                    `json:"id"`
	Active                bool                      `json:"active"`
	ExpiresAt             time.Time                 `json:"expires_at"`
	AuthenticatedAt       time.Time                 `json:"authenticated_at"`
	AAL                   string                    `json:"authenticator_assurance_level"`
	AuthenticationMethods []sessionstore.AuthMethod `json:"authentication_methods"`
	IssuedAt              time.Time                 `json:"issued_at"`
	Identity              *IdentityWire             `json:"identity"`
	Devices               []sessionstore.Device     `json:"devices"`
}

// SessionJSON is s in the frontend API's shape, with its identity idw.
func (m *Manager) SessionJSON(s *sessionstore.Session, idw *IdentityWire) *SessionWire {
	w := &SessionWire{
		ID: s.ID, Active: m.Active(s), ExpiresAt: s.ExpiresAt, AuthenticatedAt: s.AuthenticatedAt,
		AAL: s.AAL, AuthenticationMethods: s.AuthenticationMethods, IssuedAt: s.IssuedAt,
		Identity: idw, Devices: s.Devices,
	}
	if w.AuthenticationMethods == nil {
		w.AuthenticationMethods = []sessionstore.AuthMethod{}
	}
	if w.Devices == nil {
		w.Devices = []sessionstore.Device{}
	}
	return w
}
