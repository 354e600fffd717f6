package sessionstore

import (
	"context"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// The optimistic identity writes (issue 11, item 10) are asserted for
// every engine by the conformance suite (storetest); this checks what only
// Badger has: identities stored before the version field existed.

// Identities stored before the version field existed read as version 0
// and are updated normally; the first write stores version 1.
func TestIdentityWithoutStoredVersion(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	raw := `{"id":"id-old","schema_id":"default","state":"active","traits":{"email":"old@example.com"},` +
		`"credentials":{"password":{"type":"password","identifiers":["old@example.com"],"config":{"hashed_password":"h"}}}}`
	err := s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(identityKey("id-old"), []byte(raw)); err != nil {
			return err
		}
		return txn.Set(credKey("password", "old@example.com"), []byte("id-old"))
	})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := s.GetIdentity(ctx, "id-old")
	if err != nil || stale.Version != 0 {
		t.Fatalf("old record: version %v, %v", stale, err)
	}
	up, err := s.ModifyIdentity(ctx, "id-old", func(id *Identity) error {
		id.State = "inactive"
		return nil
	})
	if err != nil || up.Version != 1 || up.State != "inactive" {
		t.Fatalf("modify old record: %+v %v", up, err)
	}
	stale.State = "active"
	if err := s.UpdateIdentity(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("a version-0 copy overwrote version 1: %v", err)
	}
	if got, _ := s.GetIdentity(ctx, "id-old"); got.State != "inactive" {
		t.Fatalf("state = %q, want inactive", got.State)
	}
}
