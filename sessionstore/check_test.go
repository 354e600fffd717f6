package sessionstore

import (
	"context"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestCheckFindsDanglingIndexes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	id := &Identity{ID: "44444444-4444-4444-8444-444444444444", Traits: []byte(`{}`),
		Credentials: map[string]Credential{"password": {Type: "password", Identifiers: []string{"c@example.com"}}}}
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, &Session{ID: "s1", IdentityID: id.ID, Active: true, ExpiresAt: time.Now().Add(time.Hour), TokenHash: []byte("0123456789abcdef0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Check(ctx)
	if err != nil || len(rep.Problems) != 0 || rep.Identities != 1 || rep.Sessions != 1 {
		t.Fatalf("clean store: %+v %v", rep, err)
	}
	// An index without its record, as a torn write would leave.
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(credKey("password", "ghost@example.com"), []byte("55555555-5555-4555-8555-555555555555"))
	}); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Check(ctx)
	if err != nil || len(rep.Problems) != 1 {
		t.Fatalf("dangling index not reported: %+v %v", rep, err)
	}
}
