package flows

import "github.com/caddy-kratos/caddy-kratos/flows/event"

// EventType names an event (event.Type).
type EventType = event.Type

// The types of the engine's events (flows/event), for the sinks outside
// the engine: the metrics, the audit trail.
const (
	EventLoginSucceeded        = event.LoginSucceeded
	EventLoginFailed           = event.LoginFailed
	EventRegistrationSucceeded = event.RegistrationSucceeded
	EventRegistrationFailed    = event.RegistrationFailed
	EventLogout                = event.Logout
	EventSessionRevoked        = event.SessionRevoked
	EventCredentialAdded       = event.CredentialAdded
	EventCredentialRemoved     = event.CredentialRemoved
	EventPasswordChanged       = event.PasswordChanged
	EventProfileChanged        = event.ProfileChanged
	EventRecoveryUsed          = event.RecoveryUsed
	EventRecoveryFailed        = event.RecoveryFailed
	EventVerificationCompleted = event.VerificationCompleted
	EventVerificationFailed    = event.VerificationFailed
	EventSettingsFailed        = event.SettingsFailed
	EventIdentityCreated       = event.IdentityCreated
	EventIdentityUpdated       = event.IdentityUpdated
	EventIdentityDeleted       = event.IdentityDeleted
	EventRateLimited           = event.RateLimited
	EventGateDenied            = event.GateDenied
)
