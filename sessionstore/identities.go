package sessionstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	prefixIdentity   = "id/"
	prefixCredential = "cred/"

	defaultPageSize = 250
)

func identityKey(id string) []byte { return []byte(prefixIdentity + id) }

func credKey(credType, identifier string) []byte {
	return []byte(prefixCredential + credType + "/" + identifier)
}

// validID rejects ids that would break the key layout (ids are UUIDs in
// practice; a '/' would make idsess/<identity>/ prefixes ambiguous).
func validID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("empty %s id", kind)
	}
	if strings.IndexByte(id, '/') >= 0 {
		return fmt.Errorf("%s id %q contains '/'", kind, id)
	}
	return nil
}

// IndexEntry is one entry of the unique identifier index of an identity
// (Badger: cred/<type>/<identifier>): a credential identifier under its
// credential type, or an address under AddressIndexType. Each (Type,
// Identifier) belongs to at most one identity, in every engine.
type IndexEntry struct {
	Type, Identifier string
}

// IdentityIndexes lists the index entries an identity needs, without
// duplicates. The map key of Identity.Credentials is the type; empty
// identifiers are not indexed. Every engine indexes exactly these.
func IdentityIndexes(id *Identity) ([]IndexEntry, error) {
	var out []IndexEntry
	seen := make(map[IndexEntry]struct{})
	for t, c := range id.Credentials {
		if t == "" {
			t = c.Type
		}
		if t == "" || strings.IndexByte(t, '/') >= 0 {
			return nil, fmt.Errorf("invalid credential type %q", t)
		}
		for _, ident := range c.Identifiers {
			if ident == "" {
				continue
			}
			ci := IndexEntry{t, ident}
			if _, dup := seen[ci]; dup {
				continue
			}
			seen[ci] = struct{}{}
			out = append(out, ci)
		}
	}
	// Addresses are unique too (Kratos has unique indexes on them) and
	// recovery/verification look identities up by address.
	for _, a := range id.VerifiableAddresses {
		if ci := (IndexEntry{AddressIndexType("verification", a.Via), a.Value}); a.Value != "" {
			if _, dup := seen[ci]; !dup {
				seen[ci] = struct{}{}
				out = append(out, ci)
			}
		}
	}
	for _, a := range id.RecoveryAddresses {
		if ci := (IndexEntry{AddressIndexType("recovery", a.Via), a.Value}); a.Value != "" {
			if _, dup := seen[ci]; !dup {
				seen[ci] = struct{}{}
				out = append(out, ci)
			}
		}
	}
	return out, nil
}

// AddressIndexType is the pseudo credential type under which addresses
// are indexed: FindIdentityByCredential(AddressIndexType("recovery",
// "email"), "a@example.com") finds the owner of a recovery address.
func AddressIndexType(kind, via string) string {
	return "address." + kind + "." + strings.ReplaceAll(via, "/", "_")
}

// claimCredentials checks that every index entry is free or already owned by
// identityID and writes it. The Get registers each key in the transaction's
// read set, so a concurrent claim of the same identifier makes one of the
// two commits fail with ErrConflict; on retry the loser sees the winner's
// entry and gets ErrDuplicateCredential.
func claimCredentials(txn *badger.Txn, identityID string, idx []IndexEntry) error {
	owner := []byte(identityID)
	for _, ci := range idx {
		k := credKey(ci.Type, ci.Identifier)
		v, err := getValue(txn, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case !bytes.Equal(v, owner):
			return fmt.Errorf("%w: %s %q", ErrDuplicateCredential, ci.Type, ci.Identifier)
		default:
			continue // already ours
		}
		if err := txn.Set(k, owner); err != nil {
			return err
		}
	}
	return nil
}

// releaseCredentials deletes index entries that still point at identityID.
func releaseCredentials(txn *badger.Txn, identityID string, idx []IndexEntry) error {
	for _, ci := range idx {
		k := credKey(ci.Type, ci.Identifier)
		v, err := getValue(txn, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if string(v) != identityID {
			continue // owned by someone else since; not ours to delete
		}
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func loadIdentity(txn *badger.Txn, id string) (*Identity, error) {
	item, err := txn.Get(identityKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeIdentity(item)
}

func decodeIdentity(item *badger.Item) (*Identity, error) {
	return decodeItem(item, internIdentity, func() string { return fmt.Sprintf("decode identity %q", item.Key()) })
}

// decodeItem decodes the identity or session Badger holds in item; a
// failure is wrapped as what() says.
func decodeItem[T any](item *badger.Item, intern func(*T), what func() string) (*T, error) {
	v := new(T)
	if err := item.Value(func(data []byte) error { return json.Unmarshal(data, v) }); err != nil {
		return nil, fmt.Errorf("%s: %w", what(), err)
	}
	intern(v)
	return v, nil
}

// CreateIdentity stores a new identity and its credential indexes in one
// transaction; ErrDuplicateCredential if any identifier is taken,
// ErrAlreadyExists if the id is.
func (s *Store) CreateIdentity(ctx context.Context, id *Identity) (err error) {
	if id == nil {
		return errors.New("sessionstore: create identity: nil identity")
	}
	defer WrapError(&err, "create identity", id.ID)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	idx, data, err := EncodeIdentity(id)
	if err != nil {
		return err
	}
	return s.update(ctx, func(txn *badger.Txn) error {
		taken, err := exists(txn, identityKey(id.ID))
		if err != nil {
			return err
		}
		if taken {
			return ErrAlreadyExists
		}
		if err := claimCredentials(txn, id.ID, idx); err != nil {
			return err
		}
		return txn.Set(identityKey(id.ID), data)
	})
}

// UpdateIdentity replaces an identity, re-indexing its credentials:
// identifiers no longer present are released, new ones claimed
// (ErrDuplicateCredential if another identity owns one). ErrNotFound if the
// identity does not exist.
//
// The write is optimistic: id must have been read at the identity's
// current Version, checked inside the write transaction; otherwise nothing
// is written and the error wraps ErrConflict (someone else wrote the
// identity since, and storing this copy would undo their change). On
// success the stored Version is one higher and id.Version is set to it, so
// the caller's copy stays current. Callers that change an identity should
// use ModifyIdentity, which re-reads and re-applies on a conflict.
func (s *Store) UpdateIdentity(ctx context.Context, id *Identity) (err error) {
	if id == nil {
		return errors.New("sessionstore: update identity: nil identity")
	}
	defer WrapError(&err, "update identity", id.ID)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := validID("identity", id.ID); err != nil {
		return err
	}
	if id.trimmed {
		return ErrSharedIdentity
	}
	next := NextVersion(id)
	newIdx, data, err := EncodeIdentity(next)
	if err != nil {
		return err
	}
	// Invalidated after the commit (deferred calls run after s.update):
	// a reader that missed the cache before then cannot insert its old
	// copy (see Caches).
	defer s.caches.InvalidateIdentity([]byte(id.ID))
	err = s.update(ctx, func(txn *badger.Txn) error {
		// Reading the key puts it in the transaction's read set: a write
		// that commits between this read and our commit makes Badger
		// retry us, and the retry sees the new version.
		old, err := loadIdentity(txn, id.ID)
		if err != nil {
			return err
		}
		if err := CheckVersion(old.Version, id.Version); err != nil {
			return err
		}
		oldIdx, err := IdentityIndexes(old)
		if err != nil {
			return err
		}
		keep := make(map[IndexEntry]struct{}, len(newIdx))
		for _, ci := range newIdx {
			keep[ci] = struct{}{}
		}
		var gone []IndexEntry
		for _, ci := range oldIdx {
			if _, ok := keep[ci]; !ok {
				gone = append(gone, ci)
			}
		}
		if err := releaseCredentials(txn, id.ID, gone); err != nil {
			return err
		}
		if err := claimCredentials(txn, id.ID, newIdx); err != nil {
			return err
		}
		return txn.Set(identityKey(id.ID), data)
	})
	if err != nil {
		return err
	}
	id.Version = next.Version
	return nil
}

// maxModifyAttempts bounds ModifyIdentity's re-reads. Each conflict means
// another write of the identity committed, so running out takes a burst
// of writers to one identity; the caller then answers 409.
const maxModifyAttempts = 32

// ModifyIdentity applies fn to the current identity and stores the result
// with UpdateIdentity's version check. On a conflict (another write
// committed in between) it reads the identity again and re-applies fn, up
// to maxModifyAttempts times, then fails with ErrConflict. So a change is
// always made to the identity as it is now: fields fn does not touch
// (state, other credentials, addresses) are never reverted to an older
// copy.
//
// fn gets a fresh copy it may modify; it may run several times and must
// keep no side effects across runs (reset what it records at its start).
// Its error aborts and is returned wrapped; ErrNoChange aborts without a
// write and ModifyIdentity returns the identity as read, so fn must not
// have modified it then. fn must not change ID or Version. Returned: the
// stored identity (the caller's own copy).
func (s *Store) ModifyIdentity(ctx context.Context, id string, fn func(*Identity) error) (*Identity, error) {
	return IdentityModifier{Get: s.GetIdentity, Update: s.UpdateIdentity}.Modify(ctx, id, fn)
}

// IdentityModifier is ModifyIdentity's re-read and re-apply loop over an
// engine's GetIdentity and optimistic UpdateIdentity (which must wrap
// ErrConflict on a version mismatch), so every engine modifies identities
// by the same rules.
type IdentityModifier struct {
	Get    func(context.Context, string) (*Identity, error)
	Update func(context.Context, *Identity) error
	// Backoff is the wait after the attempt-th conflict (0-based), before
	// jitter. Default: (attempt+1)×100µs up to 5ms, which suits an engine
	// whose writes take microseconds; an engine whose writes take a
	// round trip spreads colliding writers further.
	Backoff func(attempt int) time.Duration
}

// Modify is ModifyIdentity (see Store.ModifyIdentity).
func (m IdentityModifier) Modify(ctx context.Context, id string, fn func(*Identity) error) (*Identity, error) {
	var err error
	for attempt := 0; attempt < maxModifyAttempts; attempt++ {
		var cur *Identity
		cur, err = m.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		version := cur.Version
		if ferr := fn(cur); ferr != nil {
			if errors.Is(ferr, ErrNoChange) {
				return cur, nil
			}
			return nil, fmt.Errorf("sessionstore: modify identity %s: %w", id, ferr)
		}
		if cur.ID != id {
			return nil, fmt.Errorf("sessionstore: modify identity %s: the change altered the id", id)
		}
		cur.Version = version
		err = m.Update(ctx, cur)
		if err == nil {
			return cur, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, err
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("sessionstore: modify identity %s: %w", id, cerr)
		}
		// Jittered backoff keeps colliding writers from colliding again.
		backoff := time.Duration(attempt+1) * 100 * time.Microsecond
		if backoff > 5*time.Millisecond {
			backoff = 5 * time.Millisecond
		}
		if m.Backoff != nil {
			backoff = max(m.Backoff(attempt), time.Microsecond)
		}
		time.Sleep(backoff/2 + rand.N(backoff)) // #nosec G404 -- retry jitter, not a secret
	}
	return nil, err
}

// GetIdentity loads an identity by id; ErrNotFound if absent.
func (s *Store) GetIdentity(ctx context.Context, id string) (_ *Identity, err error) {
	defer WrapError(&err, "get identity", id)
	return view(s, ctx, func(txn *badger.Txn) (*Identity, error) { return loadIdentity(txn, id) })
}

// GetIdentityShared is GetIdentity for hot paths (the gate's AAL and
// state checks, whoami): it serves from an in-memory cache that
// UpdateIdentity and DeleteIdentity invalidate, and the returned *Identity
// is shared — callers must not modify it. The shared copy has no password
// credential and no admin metadata (see sharedIdentity).
func (s *Store) GetIdentityShared(ctx context.Context, id string) (*Identity, error) {
	return s.caches.ServeIdentity(id, func() (*Identity, error) { return s.GetIdentity(ctx, id) })
}

// sharedIdentity trims an identity (the caller's own copy) for the shared
// cache: hot paths never verify passwords, so the password credential (its
// hash) stays out of long-lived memory, and so does the admin metadata.
// For the common password-only identity this drops the credentials map,
// about half of what a cached identity costs.
func sharedIdentity(id *Identity) *Identity {
	id.trimmed = true
	id.MetadataAdmin = nil
	if _, ok := id.Credentials["password"]; ok {
		if len(id.Credentials) == 1 {
			id.Credentials = nil
		} else {
			delete(id.Credentials, "password")
		}
	}
	return id
}

// FindIdentityByCredential loads the identity owning identifier for
// credential type credType (identifiers are compared as stored; callers
// normalise, e.g. lower-case emails). ErrNotFound if nobody owns it.
func (s *Store) FindIdentityByCredential(ctx context.Context, credType, identifier string) (_ *Identity, err error) {
	defer WrapError(&err, "find identity by", credType)
	return view(s, ctx, func(txn *badger.Txn) (*Identity, error) {
		owner, err := getValue(txn, credKey(credType, identifier))
		if err != nil {
			return nil, err
		}
		return loadIdentity(txn, string(owner))
	})
}

// DeleteIdentity removes an identity, its credential indexes and all its
// sessions (with their indexes), and drops those sessions from the cache.
// ErrNotFound if the identity does not exist.
func (s *Store) DeleteIdentity(ctx context.Context, id string) (err error) {
	defer WrapError(&err, "delete identity", id)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := validID("identity", id); err != nil {
		return err
	}
	var hashes [][]byte
	err = s.update(ctx, func(txn *badger.Txn) error {
		hashes = hashes[:0]
		ident, err := loadIdentity(txn, id)
		if err != nil {
			return err
		}
		idx, err := IdentityIndexes(ident)
		if err != nil {
			return err
		}
		if err := releaseCredentials(txn, id, idx); err != nil {
			return err
		}
		if err := txn.Delete(identityKey(id)); err != nil {
			return err
		}
		sessIDs, err := sessionIDsOfIdentity(txn, id)
		if err != nil {
			return err
		}
		for _, sid := range sessIDs {
			h, err := deleteSessionKeys(txn, id, sid)
			if err != nil {
				return err
			}
			if h != nil {
				hashes = append(hashes, h)
			}
		}
		return nil
	})
	// Invalidate even on error: harmless, and a partially observed commit
	// must never leave a stale cached session behind.
	s.caches.InvalidateSessions(hashes...)
	s.caches.InvalidateIdentity([]byte(id))
	return err
}

// ListIdentities pages through identities ordered by id. pageToken "" is
// the first page; otherwise it is the next value of the previous call (the
// last id of that page). The returned next is "" on the last page.
// pageSize <= 0 means 250.
func (s *Store) ListIdentities(ctx context.Context, pageToken string, pageSize int) (ids []*Identity, next string, err error) {
	defer WrapError(&err, "list identities")
	if err := s.guard.Enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.guard.Leave()
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	prefix := []byte(prefixIdentity)
	start := identityKey(pageToken)
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.PrefetchSize = min(pageSize+1, 100)
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Seek(start)
		if pageToken != "" && it.Valid() && bytes.Equal(it.Item().Key(), start) {
			it.Next() // the token is the last id already returned
		}
		var last string
		for ; it.Valid(); it.Next() {
			if len(ids) == pageSize {
				next = last
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			ident, err := decodeIdentity(it.Item())
			if err != nil {
				return err
			}
			ids = append(ids, ident)
			last = string(it.Item().Key()[len(prefix):])
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return ids, next, nil
}
