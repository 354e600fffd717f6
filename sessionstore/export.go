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
	return s.db.View(func(txn *badger.Txn) error {
		for _, part := range []struct {
			prefix string
			item   func(item *badger.Item, rest string) (*Item, error)
		}{
			{prefixIdentity, exportIdentity},
			{prefixSession, exportSession},
			{prefixRecord, exportRecord},
			{prefixSecret, exportSecret},
		} {
			if err := exportPrefix(ctx, txn, part.prefix, part.item, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// exportPrefix hands fn the item of every live key under prefix; item
// makes it from Badger's item and the key after prefix.
func exportPrefix(ctx context.Context, txn *badger.Txn, prefix string, item func(*badger.Item, string) (*Item, error), fn func(*Item) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if it.Item().IsDeletedOrExpired() {
			continue
		}
		x, err := item(it.Item(), string(it.Item().Key()[len(prefix):]))
		if err != nil {
			return err
		}
		if err := fn(x); err != nil {
			return err
		}
	}
	return nil
}

func exportIdentity(item *badger.Item, _ string) (*Item, error) {
	id, err := decodeIdentity(item)
	if err != nil {
		return nil, err
	}
	return &Item{Kind: ItemIdentity, Identity: id}, nil
}

func exportSession(item *badger.Item, _ string) (*Item, error) {
	sess, err := decodeSession(item)
	if err != nil {
		return nil, err
	}
	return &Item{Kind: ItemSession, Session: sess}, nil
}

func exportRecord(item *badger.Item, rest string) (*Item, error) {
	ns, key, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, fmt.Errorf("record key %q without namespace", item.Key())
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	var exp time.Time
	if e := item.ExpiresAt(); e > 0 {
		exp = time.Unix(int64(e), 0) // #nosec G115 -- Badger stores unix seconds of a time.Time
	}
	return &Item{Kind: ItemRecord, Namespace: ns, Key: key, Value: v, ExpiresAt: exp}, nil
}

func exportSecret(item *badger.Item, name string) (*Item, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, errors.New("empty secret " + name)
	}
	return &Item{Kind: ItemSecret, Key: name, Value: v}, nil
}
