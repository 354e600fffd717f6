// Package sessionstore keeps identities, credentials, sessions, flows,
// one-time codes and other records in an embedded Badger database on disk.
// It imports nothing from Caddy.
package sessionstore

import (
	"context"
	"time"
)

// Options tune Open.
type Options struct {
	// SyncWrites makes every committed write durable before the call
	// returns. Open always syncs unless NoSync is set (tests of speed only).
	NoSync bool
	// SessionCacheSize bounds the in-memory session cache (entries).
	// Default: 100000.
	SessionCacheSize int
	// Logf receives Badger's warnings and errors. Nil: discarded.
	Logf func(level, format string, args ...any)
}

// Store is the Badger-backed store. Safe for concurrent use.
type Store struct{}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) { panic("TODO") }

// Close flushes and closes the database and stops background GC.
func (s *Store) Close() error { panic("TODO") }

// CreateIdentity stores a new identity and its credential indexes in one
// transaction; ErrDuplicateCredential if any identifier is taken.
func (s *Store) CreateIdentity(ctx context.Context, id *Identity) error { panic("TODO") }

// UpdateIdentity replaces an identity, re-indexing its credentials.
func (s *Store) UpdateIdentity(ctx context.Context, id *Identity) error { panic("TODO") }

// GetIdentity loads an identity by id.
func (s *Store) GetIdentity(ctx context.Context, id string) (*Identity, error) { panic("TODO") }

// FindIdentityByCredential loads the identity owning identifier for
// credential type credType (identifiers are compared as stored; callers
// normalise, e.g. lower-case emails).
func (s *Store) FindIdentityByCredential(ctx context.Context, credType, identifier string) (*Identity, error) {
	panic("TODO")
}

// DeleteIdentity removes an identity, its indexes and its sessions.
func (s *Store) DeleteIdentity(ctx context.Context, id string) error { panic("TODO") }

// ListIdentities pages through identities ordered by id. pageToken "" is
// the first page; the returned next is "" on the last page.
func (s *Store) ListIdentities(ctx context.Context, pageToken string, pageSize int) (ids []*Identity, next string, err error) {
	panic("TODO")
}

// CreateSession stores a new session under its token hash, with indexes by
// id, by logout-token hash and by identity.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error { panic("TODO") }

// UpdateSession replaces a session (extension, AAL upgrade, revocation).
func (s *Store) UpdateSession(ctx context.Context, sess *Session) error { panic("TODO") }

// GetSessionByTokenHash is the hot path: cache, then one Badger read.
func (s *Store) GetSessionByTokenHash(ctx context.Context, hash []byte) (*Session, error) {
	panic("TODO")
}

// GetSession loads a session by id.
func (s *Store) GetSession(ctx context.Context, id string) (*Session, error) { panic("TODO") }

// GetSessionByLogoutTokenHash loads a session by its logout token hash.
func (s *Store) GetSessionByLogoutTokenHash(ctx context.Context, hash []byte) (*Session, error) {
	panic("TODO")
}

// ListSessionsByIdentity returns all stored sessions of an identity,
// newest first.
func (s *Store) ListSessionsByIdentity(ctx context.Context, identityID string) ([]*Session, error) {
	panic("TODO")
}

// RevokeSession marks a session inactive.
func (s *Store) RevokeSession(ctx context.Context, id string) error { panic("TODO") }

// RevokeSessionsOfIdentity marks every active session of an identity except
// exceptID inactive and returns how many it revoked.
func (s *Store) RevokeSessionsOfIdentity(ctx context.Context, identityID, exceptID string) (int, error) {
	panic("TODO")
}

// PutRecord stores value under (ns, key); ttl 0 means no expiry.
func (s *Store) PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	panic("TODO")
}

// GetRecord loads a record; ErrNotFound when absent or expired.
func (s *Store) GetRecord(ctx context.Context, ns, key string) ([]byte, error) { panic("TODO") }

// DeleteRecord removes a record (no error when absent).
func (s *Store) DeleteRecord(ctx context.Context, ns, key string) error { panic("TODO") }

// TakeRecord atomically reads and deletes a record: of concurrent callers
// exactly one gets it, the others ErrNotFound.
func (s *Store) TakeRecord(ctx context.Context, ns, key string) ([]byte, error) { panic("TODO") }

// UpdateRecord runs fn on the current value (nil when absent) inside a
// transaction, retrying on conflicts, and stores what fn returns with ttl.
// fn returning a nil value deletes the record.
func (s *Store) UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	panic("TODO")
}

// ScanRecords calls fn for every live record of namespace ns in key order.
func (s *Store) ScanRecords(ctx context.Context, ns string, fn func(key string, value []byte) error) error {
	panic("TODO")
}

// Secret returns the persisted secret called name, creating it with gen on
// first use (atomically, so concurrent first calls agree).
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	panic("TODO")
}
