package event

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Type names an event.
type Type string

// The events the engine records.
const (
	LoginSucceeded        Type = "login.succeeded"
	LoginFailed           Type = "login.failed"
	RegistrationSucceeded Type = "registration.succeeded"
	RegistrationFailed    Type = "registration.failed"
	Logout                Type = "logout"
	SessionRevoked        Type = "session.revoked"
	CredentialAdded       Type = "credential.added"   // #nosec G101 -- an event's name, not a credential
	CredentialRemoved     Type = "credential.removed" // #nosec G101 -- an event's name, not a credential
	PasswordChanged       Type = "password.changed"
	ProfileChanged        Type = "profile.changed"
	RecoveryUsed          Type = "recovery.used"
	RecoveryFailed        Type = "recovery.failed"
	VerificationCompleted Type = "verification.completed"
	VerificationFailed    Type = "verification.failed"
	SettingsFailed        Type = "settings.failed"
	IdentityCreated       Type = "identity.created"
	IdentityUpdated       Type = "identity.updated"
	IdentityDeleted       Type = "identity.deleted"
	RateLimited           Type = "ratelimit.blocked"
	GateDenied            Type = "gate.denied"
)

// Types lists every type, in the order above (for validation and docs).
var Types = []Type{LoginSucceeded, LoginFailed, RegistrationSucceeded, RegistrationFailed, Logout, SessionRevoked,
	CredentialAdded, CredentialRemoved, PasswordChanged, ProfileChanged, SettingsFailed, RecoveryUsed, RecoveryFailed,
	VerificationCompleted, VerificationFailed, IdentityCreated, IdentityUpdated, IdentityDeleted, RateLimited, GateDenied}

// Who acted: the user on their own account, an operator through the
// admin API, or the engine itself (a hook revoking sessions).
const (
	ActorSelf   = "self"
	ActorAdmin  = "admin"
	ActorSystem = "system"
)

// Event is one thing that happened. Fields that do not apply are empty.
type Event struct {
	Time time.Time `json:"time"`
	Type Type      `json:"type"`
	// Flow is the self-service flow (login, registration, settings,
	// recovery, verification, logout), empty elsewhere.
	Flow string `json:"flow,omitempty"`
	// Method is the credential method (password, code, totp, …).
	Method string `json:"method,omitempty"`
	// AAL is the assurance level a sign-in reached.
	AAL string `json:"aal,omitempty"`
	// IdentityID is the identity concerned, when known.
	IdentityID string `json:"identity_id,omitempty"`
	// Identifier is the keyed hash of the identifier a client gave when
	// it names no identity (Recorder.HashIdentifier).
	Identifier string `json:"identifier_hash,omitempty"`
	// SessionID is the session concerned (revoked, logged out, issued).
	SessionID string `json:"session_id,omitempty"`
	// Count is how many things the event covers (sessions revoked at
	// once, gate denials aggregated).
	Count int `json:"count,omitempty"`
	// Actor is who acted: ActorSelf, ActorAdmin or ActorSystem.
	Actor string `json:"actor,omitempty"`
	// Reason is why: a message id (4000006), an error id, a rate-limit
	// rule, a gate's refusal.
	Reason string `json:"reason,omitempty"`
	// Gate names the gate of a gate denial.
	Gate string `json:"gate,omitempty"`
	// IP and UserAgent are the client's, as the trusted-proxy rules see
	// them.
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Changes are the administrative changes: field → before and after
	// (state, traits, metadata; never credentials).
	Changes map[string]Change `json:"changes,omitempty"`
}

// Change is a field's value before and after an administrative change.
type Change struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// Sink receives events. Record must not block the request for long (a
// sink that writes to a database queues) and must be safe for concurrent
// use.
type Sink interface {
	Record(ctx context.Context, ev *Event)
}

// Recorder hands the engine's events to its sinks, with the time and the
// client filled in. A nil *Recorder records nothing.
type Recorder struct {
	sinks    []Sink
	clientIP func(*http.Request) string
	now      func() time.Time
	key      []byte
}

// NewRecorder returns a recorder over sinks. clientIP tells the client's
// address (nil: none recorded), key keys the identifier hashes.
func NewRecorder(sinks []Sink, clientIP func(*http.Request) string, now func() time.Time, key []byte) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{sinks: sinks, clientIP: clientIP, now: now, key: key}
}

// Emit records ev for request r (nil outside a request).
func (rc *Recorder) Emit(r *http.Request, ev Event) {
	if rc == nil || len(rc.sinks) == 0 {
		return
	}
	ev.Time = rc.now().UTC()
	ctx := context.Background()
	if r != nil {
		ctx = context.WithoutCancel(r.Context())
		if rc.clientIP != nil {
			ev.IP = rc.clientIP(r)
		}
		ev.UserAgent = truncate(r.UserAgent(), 256)
	}
	for _, s := range rc.sinks {
		s.Record(ctx, &ev)
	}
}

// HashIdentifier is the keyed hash of an identifier a client typed, as
// events keep it: the same identifier gives the same hash on every node
// with the same secrets, and the hash tells nothing without them.
func (rc *Recorder) HashIdentifier(identifier string) string {
	if rc == nil || identifier == "" {
		return ""
	}
	m := hmac.New(sha256.New, rc.key)
	m.Write([]byte(strings.ToLower(strings.TrimSpace(identifier))))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
