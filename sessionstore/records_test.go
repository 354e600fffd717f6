package sessionstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The behaviour of records is asserted for every engine by the
// conformance suite (storetest, run by conformance_test.go); this checks
// what only Badger has: the TTL it gives an entry.
func TestRecordTTLInBadger(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	before := time.Now()
	if err := s.PutRecord(ctx, "code", "long", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "code", "forever", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(recKey("code", "long"))
		if err != nil {
			return err
		}
		exp := time.Unix(int64(item.ExpiresAt()), 0)
		if exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour+time.Second)) {
			return fmt.Errorf("expires at %v, want ~%v", exp, before.Add(time.Hour))
		}
		item, err = txn.Get(recKey("code", "forever"))
		if err != nil {
			return err
		}
		if item.ExpiresAt() != 0 {
			return fmt.Errorf("ttl 0 record expires at %d", item.ExpiresAt())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
