package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	prefixRecord = "rec/"
	prefixSecret = "secret/"
)

func recPrefix(ns string) []byte { return []byte(prefixRecord + ns + "/") }

func recKey(ns, key string) []byte { return []byte(prefixRecord + ns + "/" + key) }

// validNS rejects namespaces that would overlap: with a '/' in ns, "a"'s
// scan prefix rec/a/ would also cover namespace "a/b".
func validNS(ns string) error {
	if ns == "" {
		return errors.New("empty record namespace")
	}
	if strings.IndexByte(ns, '/') >= 0 {
		return fmt.Errorf("record namespace %q contains '/'", ns)
	}
	return nil
}

// setRecord writes value with ttl (0: no expiry; negative: already
// expired, so the record is deleted).
func setRecord(txn *badger.Txn, k, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return txn.Delete(k)
	}
	if value == nil {
		value = []byte{}
	}
	e := badger.NewEntry(k, value)
	if ttl > 0 {
		e.ExpiresAt = expiresAtUnix(time.Now().Add(ttl))
	}
	return txn.SetEntry(e)
}

// PutRecord stores value under (ns, key); ttl 0 means no expiry, a
// negative ttl deletes the record. Badger expires at whole seconds; the
// deadline is rounded up, never down.
func (s *Store) PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	err := s.withUpdate(ctx, ns, func(txn *badger.Txn) error {
		return setRecord(txn, recKey(ns, key), value, ttl)
	})
	if err != nil {
		return fmt.Errorf("sessionstore: put record %s/%s: %w", ns, key, err)
	}
	return nil
}

// withUpdate guards, validates ns and runs fn in a retried update.
func (s *Store) withUpdate(ctx context.Context, ns string, fn func(txn *badger.Txn) error) error {
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := validNS(ns); err != nil {
		return err
	}
	return s.update(ctx, fn)
}

// GetRecord loads a record; ErrNotFound when absent or expired. The value
// is the caller's own copy (non-nil, possibly empty).
func (s *Store) GetRecord(ctx context.Context, ns, key string) (_ []byte, err error) {
	defer WrapError(&err, "get record", ns, key)
	return view(s, ctx, func(txn *badger.Txn) ([]byte, error) {
		if err := validNS(ns); err != nil {
			return nil, err
		}
		return getValue(txn, recKey(ns, key))
	})
}

// DeleteRecord removes a record (no error when absent).
func (s *Store) DeleteRecord(ctx context.Context, ns, key string) error {
	err := s.withUpdate(ctx, ns, func(txn *badger.Txn) error {
		return txn.Delete(recKey(ns, key))
	})
	if err != nil {
		return fmt.Errorf("sessionstore: delete record %s/%s: %w", ns, key, err)
	}
	return nil
}

// TakeRecord atomically reads and deletes a record: of concurrent callers
// exactly one gets it, the others ErrNotFound. (Reading the key puts it in
// the transaction's read set, so all but the first committer conflict,
// retry, and then find it gone.)
func (s *Store) TakeRecord(ctx context.Context, ns, key string) ([]byte, error) {
	var v []byte
	err := s.withUpdate(ctx, ns, func(txn *badger.Txn) error {
		k := recKey(ns, key)
		var err error
		v, err = getValue(txn, k)
		if err != nil {
			return err
		}
		return txn.Delete(k)
	})
	if err != nil {
		return nil, fmt.Errorf("sessionstore: take record %s/%s: %w", ns, key, err)
	}
	return v, nil
}

// UpdateRecord runs fn on the current value (nil when absent) inside a
// transaction, retrying on conflicts, and stores what fn returns with ttl
// (0: no expiry, as PutRecord). fn returning a nil value deletes the
// record; fn returning an error aborts and UpdateRecord returns it
// (wrapped). fn may run several times, so it must be free of side effects;
// old is a copy fn may keep or modify.
func (s *Store) UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	err := s.withUpdate(ctx, ns, func(txn *badger.Txn) error {
		k := recKey(ns, key)
		old, err := getValue(txn, k)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		nv, ttl, err := fn(old)
		if err != nil {
			return err
		}
		if nv == nil {
			return txn.Delete(k)
		}
		return setRecord(txn, k, nv, ttl)
	})
	if err != nil {
		return fmt.Errorf("sessionstore: update record %s/%s: %w", ns, key, err)
	}
	return nil
}

// ScanRecords calls fn for every live record of namespace ns in key order,
// with the key stripped of its namespace. key and value are copies fn may
// keep. An error from fn stops the scan and is returned (wrapped). fn runs
// inside a read snapshot; it may call other Store methods.
func (s *Store) ScanRecords(ctx context.Context, ns string, fn func(key string, value []byte) error) (err error) {
	defer WrapError(&err, "scan records", ns)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := validNS(ns); err != nil {
		return err
	}
	prefix := recPrefix(ns)
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			// The iterator already skips expired and deleted entries.
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
			if err := fn(string(item.Key()[len(prefix):]), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return nil
}

// Secret returns the persisted secret called name, creating it with gen on
// first use (atomically, so concurrent first calls agree on one value; gen
// may still run in several of them, and only one result is kept).
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) (_ []byte, err error) {
	defer WrapError(&err, "secret", name)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if name == "" {
		return nil, errors.New("empty secret name")
	}
	k := []byte(prefixSecret + name)
	var v []byte
	err = s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = getValue(txn, k)
		return err
	})
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	fresh, err := NewSecret(gen)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(txn *badger.Txn) error {
		var err error
		v, err = getValue(txn, k)
		if err == nil {
			return nil // someone else created it first; use theirs
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		v = fresh
		return txn.Set(k, fresh)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
