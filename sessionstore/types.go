package sessionstore

import (
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound is returned when a record does not exist (or has expired).
	ErrNotFound = errors.New("sessionstore: not found")
	// ErrDuplicateCredential is returned when a credential identifier is
	// already taken by another identity. The check runs inside the write
	// transaction, so two concurrent registrations of one identifier give
	// exactly one identity.
	ErrDuplicateCredential = errors.New("sessionstore: duplicate credential identifier")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("sessionstore: closed")
	// ErrConflict is returned by UpdateIdentity when the stored identity
	// changed since the caller read it (its Version moved on), and by
	// ModifyIdentity when its retries ran out. Writing the old copy back
	// would undo the other writer's change (a deactivation, a new
	// credential), so the caller must re-read and re-apply its change.
	ErrConflict = errors.New("sessionstore: identity changed concurrently")
	// ErrIdentityInactive is returned by CreateSession for an identity
	// that is not active (deactivated meanwhile): it gets no session.
	ErrIdentityInactive = errors.New("sessionstore: identity is not active")
	// ErrNoChange, returned by a ModifyIdentity function, ends it without
	// a write: the change is already there or no longer applies.
	ErrNoChange = errors.New("sessionstore: nothing to change")
)

// Identity is the stored identity. Its JSON shape is Kratos's identity model
// (admin shape, credentials included); the frontend API strips credentials
// and metadata_admin before answering.
type Identity struct {
	ID                  string                `json:"id"`
	SchemaID            string                `json:"schema_id"`
	State               string                `json:"state"`
	StateChangedAt      time.Time             `json:"state_changed_at"`
	Traits              json.RawMessage       `json:"traits"`
	VerifiableAddresses []VerifiableAddress   `json:"verifiable_addresses"`
	RecoveryAddresses   []RecoveryAddress     `json:"recovery_addresses"`
	MetadataPublic      json.RawMessage       `json:"metadata_public"`
	MetadataAdmin       json.RawMessage       `json:"metadata_admin"`
	CreatedAt           time.Time             `json:"created_at"`
	UpdatedAt           time.Time             `json:"updated_at"`
	Credentials         map[string]Credential `json:"credentials"`
	// Version counts the identity's stored writes. UpdateIdentity stores
	// only a copy read at the current version (optimistic concurrency) and
	// bumps it; identities stored before the field existed read as 0.
	Version uint64 `json:"version,omitempty"`

	// trimmed marks the read-only copies of GetIdentityShared, which lack
	// the password credential and admin metadata: storing one would drop
	// them, so UpdateIdentity refuses it.
	trimmed bool
}

// Credential is one credential of an identity (password, totp, …), keyed in
// Identity.Credentials by its Type. Identifiers are unique per Type across
// all identities (index cred/<type>/<identifier>).
type Credential struct {
	Type        string          `json:"type"`
	Identifiers []string        `json:"identifiers"`
	Config      json.RawMessage `json:"config"`
	Version     int             `json:"version"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// The types below mirror Kratos's JSON model field by field: where they
// look alike (the two addresses), it is the model's likeness, kept on
// purpose for the wire shape.

// VerifiableAddress mirrors Kratos's verifiable address.
type VerifiableAddress struct {
	ID         string     `json:"id"`
	Value      string     `json:"value"`
	Verified   bool       `json:"verified"`
	Via        string     `json:"via"`
	Status     string     `json:"status"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// RecoveryAddress mirrors Kratos's recovery address.
type RecoveryAddress struct {
	ID        string    `json:"id"`
	Value     string    `json:"value"`
	Via       string    `json:"via"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AuthMethod is one completed authentication step of a session.
type AuthMethod struct {
	Method      string    `json:"method"`
	AAL         string    `json:"aal"`
	CompletedAt time.Time `json:"completed_at"`
	// Provider is the social sign-in provider's id of an oidc method
	// (Kratos's authentication_methods[].provider); empty otherwise.
	Provider string `json:"provider,omitempty"`
}

// Device is where a session was created or extended.
type Device struct {
	ID        string  `json:"id"`
	IPAddress *string `json:"ip_address"`
	UserAgent *string `json:"user_agent"`
	Location  string  `json:"location"`
}

// Session is a stored session. It never holds the session token or the
// logout token themselves, only their SHA-256 hashes (TokenHash,
// LogoutTokenHash), which are not part of the wire JSON.
type Session struct {
	ID                    string       `json:"id"`
	IdentityID            string       `json:"identity_id"`
	Active                bool         `json:"active"`
	ExpiresAt             time.Time    `json:"expires_at"`
	AuthenticatedAt       time.Time    `json:"authenticated_at"`
	IssuedAt              time.Time    `json:"issued_at"`
	AAL                   string       `json:"authenticator_assurance_level"`
	AuthenticationMethods []AuthMethod `json:"authentication_methods"`
	Devices               []Device     `json:"devices"`
	TokenHash             []byte       `json:"token_hash"`
	LogoutTokenHash       []byte       `json:"logout_token_hash"`
}
