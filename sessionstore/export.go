package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ItemKind says what an exported Item holds.
type ItemKind uint8

// Kinds of exported items.
const (
	ItemIdentity ItemKind = iota + 1
	ItemSession
	ItemRecord
	ItemSecret
)

func (k ItemKind) String() string {
	switch k {
	case ItemIdentity:
		return "identity"
	case ItemSession:
		return "session"
	case ItemRecord:
		return "record"
	case ItemSecret:
		return "secret"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Item is one stored thing, as Export hands it to `storage copy`: an
// identity (credentials and version included), a session (token hashes
// included), a record with its absolute expiry, or a secret.
type Item struct {
	Kind     ItemKind
	Identity *Identity // ItemIdentity
	Session  *Session  // ItemSession
	// Namespace and Key name a record; Key alone names a secret.
	Namespace, Key string
	// Value is the record's or the secret's value.
	Value []byte
	// ExpiresAt is when a record expires; zero: never.
	ExpiresAt time.Time
}

// Exporter is an engine that can list everything it holds, for `storage
// copy`.
type Exporter interface {
	Export(ctx context.Context, fn func(*Item) error) error
}

var _ Exporter = (*Store)(nil)

// Export calls fn for every live identity, session, record and secret, in
// one read snapshot (identities first, then sessions, records, secrets).
// The items are fn's own. An error from fn stops the export and is
// returned wrapped.
func (s *Store) Export(ctx context.Context, fn func(*Item) error) (err error) {
	defer WrapError(&err, "export")
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	err = s.db.View(func(txn *badger.Txn) error {
		each := func(prefix string, f func(item *badger.Item, rest string) error) error {
			opts := badger.DefaultIteratorOptions
			opts.Prefix = []byte(prefix)
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if err := ctx.Err(); err != nil {
					return err
				}
				item := it.Item()
				if item.IsDeletedOrExpired() {
					continue
				}
				if err := f(item, string(item.Key()[len(prefix):])); err != nil {
					return err
				}
			}
			return nil
		}
		if err := each(prefixIdentity, func(item *badger.Item, _ string) error {
			id, err := decodeIdentity(item)
			if err != nil {
				return err
			}
			return fn(&Item{Kind: ItemIdentity, Identity: id})
		}); err != nil {
			return err
		}
		if err := each(prefixSession, func(item *badger.Item, _ string) error {
			sess, err := decodeSession(item)
			if err != nil {
				return err
			}
			return fn(&Item{Kind: ItemSession, Session: sess})
		}); err != nil {
			return err
		}
		if err := each(prefixRecord, func(item *badger.Item, rest string) error {
			ns, key, ok := strings.Cut(rest, "/")
			if !ok {
				return fmt.Errorf("record key %q without namespace", item.Key())
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
			var exp time.Time
			if e := item.ExpiresAt(); e > 0 {
				exp = time.Unix(int64(e), 0) // #nosec G115 -- Badger stores unix seconds of a time.Time
			}
			return fn(&Item{Kind: ItemRecord, Namespace: ns, Key: key, Value: v, ExpiresAt: exp})
		}); err != nil {
			return err
		}
		return each(prefixSecret, func(item *badger.Item, name string) error {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) == 0 {
				return errors.New("empty secret " + name)
			}
			return fn(&Item{Kind: ItemSecret, Key: name, Value: v})
		})
	})
	if err != nil {
		return err
	}
	return nil
}
