package sessionstore

import (
	"context"
	"time"
)

// ErrUnavailable is returned (wrapped, with the cause) when the database
// cannot be reached or keeps failing after the engine's bounded retries: a
// PostgreSQL server that is down or restarting, a dropped connection. The
// request did not (or may not have) taken effect; the HTTP layer answers
// 503 in Kratos's error shape and the client may try again. The Badger
// engine never returns it.
//
// It reports Unavailable() == true, so the HTTP layer (flows/wire) can tell
// it by behaviour without importing this package.
var ErrUnavailable error = unavailableError{}

type unavailableError struct{}

func (unavailableError) Error() string     { return "sessionstore: storage unavailable" }
func (unavailableError) Unavailable() bool { return true }

// Storage is everything the gateway keeps: identities with their unique
// credential identifiers, sessions with their caches, records (flows,
// codes, rate-limit buckets, the mail outbox) and generated secrets. Two
// engines implement it: *Store (Badger, embedded, one node) and
// postgres.Store (several nodes on one database). Both pass the one
// conformance suite in sessionstore/storetest.
//
// The methods' documentation on *Store is the contract; every engine
// keeps it, including the ownership rule for shared values (the *Session
// of GetSessionByTokenHash and the *Identity of GetIdentityShared are
// read-only).
type Storage interface {
	IdentityStore
	SessionStore
	RecordStore
	SecretStore

	// Check verifies the store's invariants (operators, crash tests).
	Check(ctx context.Context) (*CheckReport, error)
	// Close releases the engine; later calls return ErrClosed.
	Close() error
}

// IdentityStore holds identities and the unique index of their credential
// identifiers and addresses.
type IdentityStore interface {
	CreateIdentity(ctx context.Context, id *Identity) error
	UpdateIdentity(ctx context.Context, id *Identity) error
	ModifyIdentity(ctx context.Context, id string, fn func(*Identity) error) (*Identity, error)
	GetIdentity(ctx context.Context, id string) (*Identity, error)
	GetIdentityShared(ctx context.Context, id string) (*Identity, error)
	FindIdentityByCredential(ctx context.Context, credType, identifier string) (*Identity, error)
	DeleteIdentity(ctx context.Context, id string) error
	ListIdentities(ctx context.Context, pageToken string, pageSize int) (ids []*Identity, next string, err error)
}

// SessionStore holds sessions, looked up by token hash (the hot path, in
// front of a per-node cache), id, logout-token hash and identity.
type SessionStore interface {
	CreateSession(ctx context.Context, sess *Session) error
	UpdateSession(ctx context.Context, sess *Session) error
	ModifySession(ctx context.Context, id string, tokenHash []byte, change func(*Session) error) (*Session, error)
	GetSessionByTokenHash(ctx context.Context, hash []byte) (*Session, error)
	GetSession(ctx context.Context, id string) (*Session, error)
	GetSessionByLogoutTokenHash(ctx context.Context, hash []byte) (*Session, error)
	ListSessionsByIdentity(ctx context.Context, identityID string) ([]*Session, error)
	RevokeSession(ctx context.Context, id string) error
	RevokeSessionsOfIdentity(ctx context.Context, identityID, exceptID string) (int, error)
}

// RecordStore holds opaque records by namespace and key, with an optional
// TTL. UpdateRecord is an atomic read-modify-write (rate-limit buckets,
// the courier's outbox claim) and TakeRecord an atomic read-and-delete
// (single-use codes), across every node of the engine.
type RecordStore interface {
	PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, ns, key string) ([]byte, error)
	DeleteRecord(ctx context.Context, ns, key string) error
	TakeRecord(ctx context.Context, ns, key string) ([]byte, error)
	UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) error
	ScanRecords(ctx context.Context, ns string, fn func(key string, value []byte) error) error
}

// SecretStore holds generated secrets; the first writer wins, so every
// node uses one value.
type SecretStore interface {
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}

var _ Storage = (*Store)(nil)
