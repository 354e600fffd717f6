// Package storetest is the one conformance suite of the storage engines:
// every behaviour of sessionstore.Storage is asserted here once, and every
// engine (Badger, PostgreSQL) runs it from its own tests with Run; engines
// for several nodes on one database also run RunCluster. Like Kratos's
// session/test/persistence.go, a behaviour that holds on one engine and
// not on another is a failing test, not a footnote.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Engine opens stores of one engine for Run.
type Engine struct {
	// Open returns a new, empty store that is closed when the test ends.
	Open func(t testing.TB) sessionstore.Storage
}

// Run runs the single-node conformance suite against e.
func Run(t *testing.T, e Engine) {
	tests := []struct {
		name string
		fn   func(*testing.T, Engine)
	}{
		{"IdentityCRUD", testIdentityCRUD},
		{"DuplicateCredentialSequential", testDuplicateCredentialSequential},
		{"DuplicateCredentialConcurrent", testDuplicateCredentialConcurrent},
		{"UpdateIdentityReindexes", testUpdateIdentityReindexes},
		{"DeleteIdentityRemovesSessions", testDeleteIdentityRemovesSessions},
		{"ListIdentitiesPaging", testListIdentitiesPaging},
		{"AddressIndex", testAddressIndex},
		{"IdentifiersAreBytes", testIdentifiersAreBytes},
		{"UnstorableIDsAreNotFound", testUnstorableIDs},
		{"GetIdentitySharedInvalidation", testGetIdentitySharedInvalidation},
		{"GetIdentitySharedTrimsSecrets", testGetIdentitySharedTrimsSecrets},
		{"SharedIdentityCopyIsNotStorable", testSharedIdentityCopyIsNotStorable},
		{"SharedIdentityNoStaleAfterDeactivation", testSharedIdentityNoStaleAfterDeactivation},
		{"UpdateIdentityRefusesStaleCopy", testUpdateIdentityRefusesStaleCopy},
		{"ModifyIdentityReappliesOnConflict", testModifyIdentityReappliesOnConflict},
		{"ModifyIdentityNoChangeAndErrors", testModifyIdentityNoChangeAndErrors},
		{"ModifyIdentityBoundedRetries", testModifyIdentityBoundedRetries},
		{"ModifyIdentityConcurrentWritersKeepEveryChange", testModifyIdentityConcurrentWritersKeepEveryChange},
		{"SessionLifecycle", testSessionLifecycle},
		{"SessionCacheInvalidation", testSessionCacheInvalidation},
		{"SessionCacheNoStaleRefill", testSessionCacheNoStaleRefill},
		{"ListAndRevokeSessionsOfIdentity", testListAndRevokeSessionsOfIdentity},
		{"SessionTTLFromExpiry", testSessionTTLFromExpiry},
		{"UpdateSessionMovesIndexes", testUpdateSessionMovesIndexes},
		{"ModifySessionRotatesToken", testModifySessionRotatesToken},
		{"CreateSessionRefusesInactiveIdentity", testCreateSessionRefusesInactiveIdentity},
		{"RecordsBasic", testRecordsBasic},
		{"RecordTTL", testRecordTTL},
		{"ScanRecords", testScanRecords},
		{"TakeRecordConcurrent", testTakeRecordConcurrent},
		{"UpdateRecordConcurrent", testUpdateRecordConcurrent},
		{"SecretAgreement", testSecretAgreement},
		{"CheckCleanStore", testCheckCleanStore},
		{"ExportEverything", testExport},
		{"CloseIdempotentAndErrClosed", testClose},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}

func ctxOf(t testing.TB) context.Context { return t.Context() }

// NewIdentity returns an active identity with a password credential whose
// identifier is email.
func NewIdentity(id, email string) *sessionstore.Identity {
	now := time.Now().UTC().Truncate(time.Microsecond)
	traits, _ := json.Marshal(map[string]string{"email": email})
	return &sessionstore.Identity{
		ID:             id,
		SchemaID:       "default",
		State:          "active",
		StateChangedAt: now,
		Traits:         traits,
		CreatedAt:      now,
		UpdatedAt:      now,
		Credentials: map[string]sessionstore.Credential{
			"password": {
				Type:        "password",
				Identifiers: []string{email},
				Config:      json.RawMessage(`{"hashed_password":"x"}`),
				CreatedAt:   now,
				UpdatedAt:   now,
			},
		},
	}
}

// TokenHash is the SHA-256 of tok, as the engine stores session tokens.
func TokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// NewSession returns an active aal1 session of identityID issued at
// issued, expiring ttl later, with token "tok-<id>" and logout token
// "lo-<id>".
func NewSession(id, identityID string, issued time.Time, ttl time.Duration) *sessionstore.Session {
	return &sessionstore.Session{
		ID:              id,
		IdentityID:      identityID,
		Active:          true,
		ExpiresAt:       issued.Add(ttl),
		AuthenticatedAt: issued,
		IssuedAt:        issued,
		AAL:             "aal1",
		AuthenticationMethods: []sessionstore.AuthMethod{
			{Method: "password", AAL: "aal1", CompletedAt: issued},
		},
		Devices:         []sessionstore.Device{{ID: "d-" + id, Location: "here"}},
		TokenHash:       TokenHash("tok-" + id),
		LogoutTokenHash: TokenHash("lo-" + id),
	}
}

func second[T any](_ T, err error) error { return err }
