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
// histogram observation, and allocates nothing (the gate's session
// lookup stays allocation-free). Close is not forwarded: the pool owns
// the store.
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

// done records one operation that started at start. callerErr is the
// error the caller's callback returned (ModifyIdentity, UpdateRecord…):
// handed back, it is the caller's answer, not a storage failure.
func (ms *meteredStore) done(op storeOp, start time.Time, err, callerErr error) {
	ms.duration[op].Observe(time.Since(start).Seconds())
	if err != nil && !expectedStoreError(err) && (callerErr == nil || !errors.Is(err, callerErr)) {
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
	start := time.Now()
	err := ms.Storage.CreateIdentity(ctx, id)
	ms.done(opCreateIdentity, start, err, nil)
	return err
}

func (ms *meteredStore) UpdateIdentity(ctx context.Context, id *sessionstore.Identity) error {
	start := time.Now()
	err := ms.Storage.UpdateIdentity(ctx, id)
	ms.done(opUpdateIdentity, start, err, nil)
	return err
}

func (ms *meteredStore) ModifyIdentity(ctx context.Context, id string, fn func(*sessionstore.Identity) error) (*sessionstore.Identity, error) {
	var fnErr error
	start := time.Now()
	ident, err := ms.Storage.ModifyIdentity(ctx, id, func(i *sessionstore.Identity) error {
		fnErr = fn(i)
		return fnErr
	})
	ms.done(opModifyIdentity, start, err, fnErr)
	return ident, err
}

func (ms *meteredStore) GetIdentity(ctx context.Context, id string) (*sessionstore.Identity, error) {
	start := time.Now()
	ident, err := ms.Storage.GetIdentity(ctx, id)
	ms.done(opGetIdentity, start, err, nil)
	return ident, err
}

func (ms *meteredStore) GetIdentityShared(ctx context.Context, id string) (*sessionstore.Identity, error) {
	start := time.Now()
	ident, err := ms.Storage.GetIdentityShared(ctx, id)
	ms.done(opGetIdentityShared, start, err, nil)
	return ident, err
}

func (ms *meteredStore) FindIdentityByCredential(ctx context.Context, credType, identifier string) (*sessionstore.Identity, error) {
	start := time.Now()
	ident, err := ms.Storage.FindIdentityByCredential(ctx, credType, identifier)
	ms.done(opFindIdentityByCredential, start, err, nil)
	return ident, err
}

func (ms *meteredStore) DeleteIdentity(ctx context.Context, id string) error {
	start := time.Now()
	err := ms.Storage.DeleteIdentity(ctx, id)
	ms.done(opDeleteIdentity, start, err, nil)
	return err
}

func (ms *meteredStore) ListIdentities(ctx context.Context, pageToken string, pageSize int) ([]*sessionstore.Identity, string, error) {
	start := time.Now()
	ids, next, err := ms.Storage.ListIdentities(ctx, pageToken, pageSize)
	ms.done(opListIdentities, start, err, nil)
	return ids, next, err
}

func (ms *meteredStore) CreateSession(ctx context.Context, sess *sessionstore.Session) error {
	start := time.Now()
	err := ms.Storage.CreateSession(ctx, sess)
	ms.done(opCreateSession, start, err, nil)
	return err
}

func (ms *meteredStore) UpdateSession(ctx context.Context, sess *sessionstore.Session) error {
	start := time.Now()
	err := ms.Storage.UpdateSession(ctx, sess)
	ms.done(opUpdateSession, start, err, nil)
	return err
}

func (ms *meteredStore) ModifySession(ctx context.Context, id string, tokenHash []byte, change func(*sessionstore.Session) error) (*sessionstore.Session, error) {
	var fnErr error
	start := time.Now()
	sess, err := ms.Storage.ModifySession(ctx, id, tokenHash, func(s *sessionstore.Session) error {
		fnErr = change(s)
		return fnErr
	})
	ms.done(opModifySession, start, err, fnErr)
	return sess, err
}

func (ms *meteredStore) GetSessionByTokenHash(ctx context.Context, hash []byte) (*sessionstore.Session, error) {
	start := time.Now()
	sess, err := ms.Storage.GetSessionByTokenHash(ctx, hash)
	ms.done(opGetSessionByTokenHash, start, err, nil)
	return sess, err
}

func (ms *meteredStore) GetSession(ctx context.Context, id string) (*sessionstore.Session, error) {
	start := time.Now()
	sess, err := ms.Storage.GetSession(ctx, id)
	ms.done(opGetSession, start, err, nil)
	return sess, err
}

func (ms *meteredStore) GetSessionByLogoutTokenHash(ctx context.Context, hash []byte) (*sessionstore.Session, error) {
	start := time.Now()
	sess, err := ms.Storage.GetSessionByLogoutTokenHash(ctx, hash)
	ms.done(opGetSessionByLogoutTokenHash, start, err, nil)
	return sess, err
}

func (ms *meteredStore) ListSessionsByIdentity(ctx context.Context, identityID string) ([]*sessionstore.Session, error) {
	start := time.Now()
	sessions, err := ms.Storage.ListSessionsByIdentity(ctx, identityID)
	ms.done(opListSessionsByIdentity, start, err, nil)
	return sessions, err
}

func (ms *meteredStore) RevokeSession(ctx context.Context, id string) error {
	start := time.Now()
	err := ms.Storage.RevokeSession(ctx, id)
	ms.done(opRevokeSession, start, err, nil)
	return err
}

func (ms *meteredStore) RevokeSessionsOfIdentity(ctx context.Context, identityID, exceptID string) (int, error) {
	start := time.Now()
	n, err := ms.Storage.RevokeSessionsOfIdentity(ctx, identityID, exceptID)
	ms.done(opRevokeSessionsOfIdentity, start, err, nil)
	return n, err
}

func (ms *meteredStore) PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := ms.Storage.PutRecord(ctx, ns, key, value, ttl)
	ms.done(opPutRecord, start, err, nil)
	return err
}

func (ms *meteredStore) GetRecord(ctx context.Context, ns, key string) ([]byte, error) {
	start := time.Now()
	b, err := ms.Storage.GetRecord(ctx, ns, key)
	ms.done(opGetRecord, start, err, nil)
	return b, err
}

func (ms *meteredStore) DeleteRecord(ctx context.Context, ns, key string) error {
	start := time.Now()
	err := ms.Storage.DeleteRecord(ctx, ns, key)
	ms.done(opDeleteRecord, start, err, nil)
	return err
}

func (ms *meteredStore) TakeRecord(ctx context.Context, ns, key string) ([]byte, error) {
	start := time.Now()
	b, err := ms.Storage.TakeRecord(ctx, ns, key)
	ms.done(opTakeRecord, start, err, nil)
	return b, err
}

func (ms *meteredStore) UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) error {
	var fnErr error
	start := time.Now()
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
	start := time.Now()
	err := ms.Storage.ScanRecords(ctx, ns, func(key string, value []byte) error {
		fnErr = fn(key, value)
		return fnErr
	})
	ms.done(opScanRecords, start, err, fnErr)
	return err
}

func (ms *meteredStore) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var genErr error
	start := time.Now()
	b, err := ms.Storage.Secret(ctx, name, func() ([]byte, error) {
		b, err := gen()
		genErr = err
		return b, err
	})
	ms.done(opSecret, start, err, genErr)
	return b, err
}

func (ms *meteredStore) Check(ctx context.Context) (*sessionstore.CheckReport, error) {
	start := time.Now()
	rep, err := ms.Storage.Check(ctx)
	ms.done(opCheck, start, err, nil)
	return rep, err
}
