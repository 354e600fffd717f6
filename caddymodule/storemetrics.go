package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// engine names the storage engine in metrics: badger or postgres.
func (t storageTarget) engine() string {
	if t.dsn != "" {
		return "postgres"
	}
	return "badger"
}

// storeOp is one operation of sessionstore.Storage, a metrics label.
type storeOp int

const (
	opCreateIdentity storeOp = iota
	opUpdateIdentity
	opModifyIdentity
	opGetIdentity
	opGetIdentityShared
	opFindIdentityByCredential
	opDeleteIdentity
	opListIdentities
	opCreateSession
	opUpdateSession
	opModifySession
	opGetSessionByTokenHash
	opGetSession
	opGetSessionByLogoutTokenHash
	opListSessionsByIdentity
	opRevokeSession
	opRevokeSessionsOfIdentity
	opPutRecord
	opGetRecord
	opDeleteRecord
	opTakeRecord
	opUpdateRecord
	opScanRecords
	opSecret
	opCheck
	storeOps
)

var storeOpLabels = [storeOps]string{
	"create_identity", "update_identity", "modify_identity", "get_identity", "get_identity_shared",
	"find_identity_by_credential", "delete_identity", "list_identities",
	"create_session", "update_session", "modify_session", "get_session_by_token_hash", "get_session",
	"get_session_by_logout_token_hash", "list_sessions_by_identity", "revoke_session", "revoke_sessions_of_identity",
	"put_record", "get_record", "delete_record", "take_record", "update_record", "scan_records",
	"secret", "check",
}

// meteredStore times every storage operation the engine and the courier
// make and counts the failed ones, per engine and operation. The series
// are resolved once, so an operation costs two clock reads and one
// histogram observation, and allocates nothing. The two lookups of every
// gated request and whoami (GetSessionByTokenHash, GetIdentityShared) are
// not timed: nearly all of them are cache hits of ~100 ns, which timing
// would make twice as slow (BenchmarkMeteredSessionLookup); their cost
// shows in caddy_kratos_cache_lookups_total (hits, misses) and their
// failures are still counted. Close is not forwarded: the pool owns the
// store.
type meteredStore struct {
	sessionstore.Storage
	duration [storeOps]prometheus.Observer
	errors   [storeOps]prometheus.Counter
}

func instrumentStore(st sessionstore.Storage, engine string) sessionstore.Storage {
	return newMeteredStore(st, kratosMetrics, engine)
}

func newMeteredStore(st sessionstore.Storage, m *metricSet, engine string) *meteredStore {
	ms := &meteredStore{Storage: st}
	for op, label := range storeOpLabels {
		ms.duration[op] = m.storeDuration.WithLabelValues(engine, label)
		ms.errors[op] = m.storeErrors.WithLabelValues(engine, label)
	}
	return ms
}

// timed runs one operation that answers a value, and records it.
func timed[T any](ms *meteredStore, op storeOp, f func() (T, error)) (T, error) {
	start := monotonic()
	v, err := f()
	ms.done(op, start, err, nil)
	return v, err
}

// timed runs one operation that answers only an error, and records it.
func (ms *meteredStore) timed(op storeOp, f func() error) error {
	start := monotonic()
	err := f()
	ms.done(op, start, err, nil)
	return err
}

// done records one operation that started at start. callerErr is the
// error the caller's callback returned (ModifyIdentity, UpdateRecord…):
// handed back, it is the caller's answer, not a storage failure.
func (ms *meteredStore) done(op storeOp, start time.Duration, err, callerErr error) {
	ms.duration[op].Observe((monotonic() - start).Seconds())
	if err != nil && !expectedStoreError(err) && (callerErr == nil || !errors.Is(err, callerErr)) {
		ms.errors[op].Inc()
	}
}

// failed counts err against op unless it is an answer, not a failure (the
// untimed hot-path lookups).
func (ms *meteredStore) failed(op storeOp, err error) {
	if !expectedStoreError(err) {
		ms.errors[op].Inc()
	}
}

// expectedStoreError reports the errors that answer a request (absent,
// taken, changed meanwhile) or end it (the client went away) rather than
// tell of a failing storage.
func expectedStoreError(err error) bool {
	for _, e := range []error{sessionstore.ErrNotFound, sessionstore.ErrAlreadyExists, sessionstore.ErrDuplicateCredential,
		sessionstore.ErrConflict, sessionstore.ErrIdentityInactive, sessionstore.ErrNoChange, sessionstore.ErrTokenChanged,
		context.Canceled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Close is the pool's business (pooledStore.Destruct), never a config's.
func (ms *meteredStore) Close() error { return nil }

func (ms *meteredStore) CreateIdentity(ctx context.Context, id *sessionstore.Identity) error {
	return ms.timed(opCreateIdentity, func() error { return ms.Storage.CreateIdentity(ctx, id) })
}

func (ms *meteredStore) UpdateIdentity(ctx context.Context, id *sessionstore.Identity) error {
	return ms.timed(opUpdateIdentity, func() error { return ms.Storage.UpdateIdentity(ctx, id) })
}

func (ms *meteredStore) ModifyIdentity(ctx context.Context, id string, fn func(*sessionstore.Identity) error) (*sessionstore.Identity, error) {
	var fnErr error
	start := monotonic()
	ident, err := ms.Storage.ModifyIdentity(ctx, id, func(i *sessionstore.Identity) error {
		fnErr = fn(i)
		return fnErr
	})
	ms.done(opModifyIdentity, start, err, fnErr)
	return ident, err
}

func (ms *meteredStore) GetIdentity(ctx context.Context, id string) (*sessionstore.Identity, error) {
	return timed(ms, opGetIdentity, func() (*sessionstore.Identity, error) { return ms.Storage.GetIdentity(ctx, id) })
}

func (ms *meteredStore) GetIdentityShared(ctx context.Context, id string) (*sessionstore.Identity, error) {
	ident, err := ms.Storage.GetIdentityShared(ctx, id)
	if err != nil {
		ms.failed(opGetIdentityShared, err)
	}
	return ident, err
}

func (ms *meteredStore) FindIdentityByCredential(ctx context.Context, credType, identifier string) (*sessionstore.Identity, error) {
	return timed(ms, opFindIdentityByCredential, func() (*sessionstore.Identity, error) {
		return ms.Storage.FindIdentityByCredential(ctx, credType, identifier)
	})
}

func (ms *meteredStore) DeleteIdentity(ctx context.Context, id string) error {
	return ms.timed(opDeleteIdentity, func() error { return ms.Storage.DeleteIdentity(ctx, id) })
}

func (ms *meteredStore) ListIdentities(ctx context.Context, pageToken string, pageSize int) ([]*sessionstore.Identity, string, error) {
	start := monotonic()
	ids, next, err := ms.Storage.ListIdentities(ctx, pageToken, pageSize)
	ms.done(opListIdentities, start, err, nil)
	return ids, next, err
}

func (ms *meteredStore) CreateSession(ctx context.Context, sess *sessionstore.Session) error {
	return ms.timed(opCreateSession, func() error { return ms.Storage.CreateSession(ctx, sess) })
}

func (ms *meteredStore) UpdateSession(ctx context.Context, sess *sessionstore.Session) error {
	return ms.timed(opUpdateSession, func() error { return ms.Storage.UpdateSession(ctx, sess) })
}

func (ms *meteredStore) ModifySession(ctx context.Context, id string, tokenHash []byte, change func(*sessionstore.Session) error) (*sessionstore.Session, error) {
	var fnErr error
	start := monotonic()
	sess, err := ms.Storage.ModifySession(ctx, id, tokenHash, func(s *sessionstore.Session) error {
		fnErr = change(s)
		return fnErr
	})
	ms.done(opModifySession, start, err, fnErr)
	return sess, err
}

func (ms *meteredStore) GetSessionByTokenHash(ctx context.Context, hash []byte) (*sessionstore.Session, error) {
	sess, err := ms.Storage.GetSessionByTokenHash(ctx, hash)
	if err != nil {
		ms.failed(opGetSessionByTokenHash, err)
	}
	return sess, err
}

func (ms *meteredStore) GetSession(ctx context.Context, id string) (*sessionstore.Session, error) {
	return timed(ms, opGetSession, func() (*sessionstore.Session, error) { return ms.Storage.GetSession(ctx, id) })
}

func (ms *meteredStore) GetSessionByLogoutTokenHash(ctx context.Context, hash []byte) (*sessionstore.Session, error) {
	return timed(ms, opGetSessionByLogoutTokenHash, func() (*sessionstore.Session, error) { return ms.Storage.GetSessionByLogoutTokenHash(ctx, hash) })
}

func (ms *meteredStore) ListSessionsByIdentity(ctx context.Context, identityID string) ([]*sessionstore.Session, error) {
	return timed(ms, opListSessionsByIdentity, func() ([]*sessionstore.Session, error) { return ms.Storage.ListSessionsByIdentity(ctx, identityID) })
}

func (ms *meteredStore) RevokeSession(ctx context.Context, id string) error {
	return ms.timed(opRevokeSession, func() error { return ms.Storage.RevokeSession(ctx, id) })
}

func (ms *meteredStore) RevokeSessionsOfIdentity(ctx context.Context, identityID, exceptID string) (int, error) {
	return timed(ms, opRevokeSessionsOfIdentity, func() (int, error) { return ms.Storage.RevokeSessionsOfIdentity(ctx, identityID, exceptID) })
}

func (ms *meteredStore) PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	return ms.timed(opPutRecord, func() error { return ms.Storage.PutRecord(ctx, ns, key, value, ttl) })
}

func (ms *meteredStore) GetRecord(ctx context.Context, ns, key string) ([]byte, error) {
	return timed(ms, opGetRecord, func() ([]byte, error) { return ms.Storage.GetRecord(ctx, ns, key) })
}

func (ms *meteredStore) DeleteRecord(ctx context.Context, ns, key string) error {
	return ms.timed(opDeleteRecord, func() error { return ms.Storage.DeleteRecord(ctx, ns, key) })
}

func (ms *meteredStore) TakeRecord(ctx context.Context, ns, key string) ([]byte, error) {
	return timed(ms, opTakeRecord, func() ([]byte, error) { return ms.Storage.TakeRecord(ctx, ns, key) })
}

func (ms *meteredStore) UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	var fnErr error
	start := monotonic()
	err := ms.Storage.UpdateRecord(ctx, ns, key, func(old []byte) ([]byte, time.Duration, error) {
		b, ttl, err := fn(old)
		fnErr = err
		return b, ttl, err
	})
	ms.done(opUpdateRecord, start, err, fnErr)
	return err
}

func (ms *meteredStore) ScanRecords(ctx context.Context, ns string, fn func(key string, value []byte) error) error {
	var fnErr error
	start := monotonic()
	err := ms.Storage.ScanRecords(ctx, ns, func(key string, value []byte) error {
		fnErr = fn(key, value)
		return fnErr
	})
	ms.done(opScanRecords, start, err, fnErr)
	return err
}

func (ms *meteredStore) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var genErr error
	start := monotonic()
	b, err := ms.Storage.Secret(ctx, name, func() ([]byte, error) {
		b, err := gen()
		genErr = err
		return b, err
	})
	ms.done(opSecret, start, err, genErr)
	return b, err
}

func (ms *meteredStore) Check(ctx context.Context) (*sessionstore.CheckReport, error) {
	return timed(ms, opCheck, func() (*sessionstore.CheckReport, error) { return ms.Storage.Check(ctx) })
}
