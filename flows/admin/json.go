package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// identityWire is Kratos's identity as the admin API shows it: with
// metadata_admin and credentials (config only when declassified with
// include_credential).
type identityWire struct {
	ID                  string                           `json:"id"`
	Credentials         map[string]credentialWire        `json:"credentials,omitempty"`
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

type credentialWire struct {
	Type        string          `json:"type"`
	Identifiers []string        `json:"identifiers"`
	Config      json.RawMessage `json:"config,omitempty"`
	Version     int             `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// credentialTypes are the values Kratos accepts for include_credential.
var credentialTypes = map[string]bool{
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
			if !credentialTypes[t] {
				return nil, wire.BadRequest(fmt.Sprintf("Invalid value `%s` for parameter `include_credential`.", t))
			}
			out[t] = true
		}
	}
	return out, nil
}

// identityJSON renders id in the admin shape; the config of the
// credential types in declassify is included as stored (Kratos does the
// same: for password that is hashed_password).
func (a *API) identityJSON(ctx context.Context, id *sessionstore.Identity, declassify map[string]bool) *identityWire {
	w := &identityWire{
		ID: id.ID, SchemaID: id.SchemaID, SchemaURL: a.urls.Schema(id.SchemaID),
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
		w.Credentials = make(map[string]credentialWire, len(id.Credentials))
		for t, c := range id.Credentials {
			ac := credentialWire{Type: c.Type, Identifiers: c.Identifiers, Version: c.Version,
				CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
			if ac.Type == "" {
				ac.Type = t
			}
			if ac.Identifiers == nil {
				ac.Identifiers = []string{}
			}
			if declassify[t] {
				ac.Config = c.Config
				if a.shared.OpenCredential != nil {
					if opened := a.shared.OpenCredential(ctx, t, c.Config); opened != nil {
						ac.Config = opened
					}
				}
			}
			w.Credentials[t] = ac
		}
	}
	return w
}

// sessionWire is Kratos's session for the admin API: the frontend API's
// session (session.SessionWire), whose identity and devices appear only
// when expanded. The outer fields hide the embedded ones of the same
// name, and encoding/json keeps the embedded fields' order, so the shape
// is the frontend one but for those omitempty fields.
type sessionWire struct {
	*session.SessionWire
	Identity *session.IdentityWire `json:"identity,omitempty"`
	Devices  []sessionstore.Device `json:"devices,omitempty"`
}

// sessionJSON renders s with the identity idw (nil: not expanded) and,
// when devices, its devices.
func (a *API) sessionJSON(s *sessionstore.Session, idw *session.IdentityWire, devices bool) *sessionWire {
	w := &sessionWire{SessionWire: a.sessions.SessionJSON(s, nil), Identity: idw}
	if devices {
		w.Devices = s.Devices
	}
	return w
}
