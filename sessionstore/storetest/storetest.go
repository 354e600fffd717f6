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
	"errors"
	"sync"
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

// together runs fn(0) … fn(n-1), each in its own goroutine, released at
// once, and returns when all have returned.
func together(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// successes counts the nil errors of racing calls; each other error must
// be lost (errors.Is), or the test fails.
func successes(t testing.TB, errs []error, lost error) int {
	t.Helper()
	n := 0
	for i, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, lost):
			t.Errorf("call %d: %v, want success or %v", i, err, lost)
		}
	}
	return n
}

// hammer calls fn over and over in n goroutines until the returned stop
// is called; stop returns when they have ended. An error of fn fails the
// test and ends its goroutine.
func hammer(t testing.TB, n int, fn func() error) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := fn(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
