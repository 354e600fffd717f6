package sessionstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

const (
	prefixSession          = "sess/"
	prefixSessionID        = "sessid/"
	prefixLogout           = "lo/"
	prefixIdentitySessions = "idsess/"

	// SessionGrace is how long a session stays stored after ExpiresAt, so
	// listings still show recently expired sessions.
	SessionGrace = 24 * time.Hour
)

func sessKeyHex(hexHash string) []byte { return []byte(prefixSession + hexHash) }

func sessKey(hash []byte) []byte {
	k := make([]byte, len(prefixSession)+hex.EncodedLen(len(hash)))
	copy(k, prefixSession)
	hex.Encode(k[len(prefixSession):], hash)
	return k
}

func sessIDKey(id string) []byte { return []byte(prefixSessionID + id) }

func logoutKey(hash []byte) []byte {
	return []byte(prefixLogout + hex.EncodeToString(hash))
}

func idSessPrefix(identityID string) []byte {
	return []byte(prefixIdentitySessions + identityID + "/")
}

func idSessKey(identityID, sessionID string) []byte {
	return []byte(prefixIdentitySessions + identityID + "/" + sessionID)
}

// sessionDeadline is when the session and its indexes leave Badger:
// ExpiresAt plus SessionGrace. Zero ExpiresAt means no TTL.
func sessionDeadline(sess *Session) time.Time {
	if sess.ExpiresAt.IsZero() {
		return time.Time{}
	}
	return sess.ExpiresAt.Add(SessionGrace)
}

func sessionExpiresAt(sess *Session) uint64 {
	d := sessionDeadline(sess)
	if d.IsZero() {
		return 0
	}
	return expiresAtUnix(d)
}

// cacheDeadline mirrors Badger's TTL in unix nanoseconds (0: none).
func cacheDeadline(sess *Session) int64 {
	exp := sessionExpiresAt(sess)
	if exp == 0 {
		return 0
	}
	return int64(exp) * int64(time.Second) // #nosec G115 -- unix nanoseconds of a time.Time fit in int64 until year 2262
}

func unixNanoNow() int64 { return time.Now().UnixNano() }

func validSession(sess *Session) error {
	if sess == nil {
		return errors.New("nil session")
	}
	if err := validID("session", sess.ID); err != nil {
		return err
	}
	if err := validID("identity", sess.IdentityID); err != nil {
		return err
	}
	if len(sess.TokenHash) == 0 {
		return errors.New("session without token hash")
	}
	return nil
}

// Clone returns a deep copy of sess. Use it before modifying a session
// obtained from GetSessionByTokenHash, which is shared with the cache.
func (sess *Session) Clone() *Session {
	if sess == nil {
		return nil
	}
	c := *sess
	c.AuthenticationMethods = slices.Clone(sess.AuthenticationMethods)
	if sess.Devices != nil {
		c.Devices = make([]Device, len(sess.Devices))
		for i, d := range sess.Devices {
			if d.IPAddress != nil {
				ip := *d.IPAddress
				d.IPAddress = &ip
			}
			if d.UserAgent != nil {
				ua := *d.UserAgent
				d.UserAgent = &ua
			}
			c.Devices[i] = d
		}
	}
	c.TokenHash = bytes.Clone(sess.TokenHash)
	c.LogoutTokenHash = bytes.Clone(sess.LogoutTokenHash)
	return &c
}

// putSessionValue (re)writes sess/<hash> with the session's TTL.
func putSessionValue(txn *badger.Txn, sess *Session, data []byte) error {
	e := badger.NewEntry(sessKey(sess.TokenHash), data)
	e.ExpiresAt = sessionExpiresAt(sess)
	return txn.SetEntry(e)
}

// writeSession writes the session and all its indexes with one TTL.
func writeSession(txn *badger.Txn, sess *Session, data []byte) error {
	exp := sessionExpiresAt(sess)
	set := func(k, v []byte) error {
		e := badger.NewEntry(k, v)
		e.ExpiresAt = exp
		return txn.SetEntry(e)
	}
	if err := set(sessKey(sess.TokenHash), data); err != nil {
		return err
	}
	if err := set(sessIDKey(sess.ID), []byte(hex.EncodeToString(sess.TokenHash))); err != nil {
		return err
	}
	if len(sess.LogoutTokenHash) > 0 {
		if err := set(logoutKey(sess.LogoutTokenHash), []byte(sess.ID)); err != nil {
			return err
		}
	}
	return set(idSessKey(sess.IdentityID, sess.ID), nil)
}

func decodeSession(item *badger.Item) (*Session, error) {
	return decodeItem(item, internSession, func() string { return "decode session" })
}

func loadSessionByKey(txn *badger.Txn, key []byte) (*Session, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeSession(item)
}

// loadSessionByID follows sessid/<id> to the session.
func loadSessionByID(txn *badger.Txn, id string) (*Session, error) {
	hexHash, err := getValue(txn, sessIDKey(id))
	if err != nil {
		return nil, err
	}
	return loadSessionByKey(txn, sessKeyHex(string(hexHash)))
}

// sessionIDsOfIdentity lists the session ids indexed under an identity.
func sessionIDsOfIdentity(txn *badger.Txn, identityID string) ([]string, error) {
	prefix := idSessPrefix(identityID)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	var ids []string
	for it.Seek(prefix); it.Valid(); it.Next() {
		ids = append(ids, string(it.Item().Key()[len(prefix):]))
	}
	return ids, nil
}

// deleteSessionKeys deletes a session of identityID and all its indexes,
// tolerating missing pieces. It returns the token hash (nil if unknown)
// for cache invalidation.
func deleteSessionKeys(txn *badger.Txn, identityID, sessionID string) ([]byte, error) {
	var tokenHash []byte
	hexHash, err := getValue(txn, sessIDKey(sessionID))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	default:
		sess, err := loadSessionByKey(txn, sessKeyHex(string(hexHash)))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if sess != nil && len(sess.LogoutTokenHash) > 0 {
			if err := txn.Delete(logoutKey(sess.LogoutTokenHash)); err != nil {
				return nil, err
			}
		}
		if err := txn.Delete(sessKeyHex(string(hexHash))); err != nil {
			return nil, err
		}
		if err := txn.Delete(sessIDKey(sessionID)); err != nil {
			return nil, err
		}
		tokenHash, _ = hex.DecodeString(string(hexHash))
	}
	return tokenHash, txn.Delete(idSessKey(identityID, sessionID))
}

// CreateSession stores a new session under its token hash, with indexes by
// id, by logout-token hash and by identity, all expiring SessionGrace after
// ExpiresAt (zero ExpiresAt: no expiry). ErrAlreadyExists if the id, token
// hash or logout hash is taken. The identity is not required to exist.
func (s *Store) CreateSession(ctx context.Context, sess *Session) (err error) {
	defer WrapError(&err, "create session")
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	data, err := EncodeSession(sess)
	if err != nil {
		return err
	}
	return s.update(ctx, func(txn *badger.Txn) error {
		// The identity must not be inactive when the session is stored,
		// read in this transaction: a deactivation that commits while a
		// login is hashing makes this transaction retry and fail here,
		// rather than leave a session the deactivation's revocation ran
		// too early to see (and that a reactivation would bring back). A
		// missing identity is left to the readers, which refuse sessions
		// without one.
		switch ident, err := loadIdentity(txn, sess.IdentityID); {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return fmt.Errorf("identity %s: %w", sess.IdentityID, err)
		case ident.State != "" && ident.State != "active":
			return fmt.Errorf("identity %s: %w", sess.IdentityID, ErrIdentityInactive)
		}
		keys := [][]byte{sessIDKey(sess.ID), sessKey(sess.TokenHash)}
		if len(sess.LogoutTokenHash) > 0 {
			keys = append(keys, logoutKey(sess.LogoutTokenHash))
		}
		for _, k := range keys {
			taken, err := exists(txn, k)
			if err != nil {
				return err
			}
			if taken {
				return fmt.Errorf("%w: %s", ErrAlreadyExists, bytes.SplitN(k, []byte("/"), 2)[0])
			}
		}
		return writeSession(txn, sess, data)
	})
}

// ErrTokenChanged is returned when a session's stored token hash is not
// the one the caller holds: the token was rotated (ModifySession) after
// the caller read the session, so the caller's token no longer works.
var ErrTokenChanged = errors.New("sessionstore: session token changed")

// UpdateSession replaces a session (extension, revocation), refreshing the
// TTL of its indexes and moving the logout-token index if it changed.
// ErrNotFound if no session with sess.ID exists; ErrTokenChanged if
// sess.TokenHash is not the stored one: a stale copy must never bring a
// rotated-out token back (rotate with ModifySession). The cached copy is
// dropped after the commit; sess itself is not retained.
func (s *Store) UpdateSession(ctx context.Context, sess *Session) (err error) {
	defer WrapError(&err, "update session")
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	data, err := EncodeSession(sess)
	if err != nil {
		return err
	}
	var oldHash []byte
	err = s.update(ctx, func(txn *badger.Txn) error {
		oldHash = nil
		old, err := loadSessionByID(txn, sess.ID)
		if err != nil {
			return err
		}
		oldHash = old.TokenHash
		if !bytes.Equal(old.TokenHash, sess.TokenHash) {
			return ErrTokenChanged
		}
		if !bytes.Equal(old.LogoutTokenHash, sess.LogoutTokenHash) {
			if len(sess.LogoutTokenHash) > 0 {
				owner, err := getValue(txn, logoutKey(sess.LogoutTokenHash))
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				if err == nil && string(owner) != sess.ID {
					return fmt.Errorf("%w: lo", ErrAlreadyExists)
				}
			}
			if len(old.LogoutTokenHash) > 0 {
				if err := txn.Delete(logoutKey(old.LogoutTokenHash)); err != nil {
					return err
				}
			}
		}
		if old.IdentityID != sess.IdentityID {
			if err := txn.Delete(idSessKey(old.IdentityID, old.ID)); err != nil {
				return err
			}
		}
		return writeSession(txn, sess, data)
	})
	s.caches.InvalidateSessions(oldHash, sess.TokenHash)
	return err
}

// ModifySession changes the stored session id in one transaction and
// returns the stored result (the caller's own copy). change receives the
// current stored session, never a stale copy, so concurrent writers (an
// extension and an AAL upgrade) do not undo each other; it may be called
// more than once when the transaction is retried, and an error from it
// aborts without writing (errors.Is finds it in the returned error).
//
// tokenHash is the hash the caller knows the session by: if the stored one
// differs (rotated meanwhile) nothing is written and ErrTokenChanged is
// returned; nil skips the check. When change sets a new TokenHash, the
// token is rotated atomically: from the commit on the old hash resolves to
// nothing, in Badger and in the session cache. ErrNotFound if there is no
// such session; ErrAlreadyExists if the new hash is taken. change may not
// move the session to another id or identity.
func (s *Store) ModifySession(ctx context.Context, id string, tokenHash []byte, change func(*Session) error) (_ *Session, err error) {
	defer WrapError(&err, "modify session", id)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	var out *Session
	var oldHash, newHash []byte
	err = s.update(ctx, func(txn *badger.Txn) error {
		out, oldHash, newHash = nil, nil, nil
		cur, err := loadSessionByID(txn, id)
		if err != nil {
			return err
		}
		var data []byte
		oldHash, data, err = ChangeSession(cur, id, tokenHash, change)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur.TokenHash, oldHash) {
			taken, err := exists(txn, sessKey(cur.TokenHash))
			if err != nil {
				return err
			}
			if taken {
				return fmt.Errorf("%w: sess", ErrAlreadyExists)
			}
			if err := txn.Delete(sessKey(oldHash)); err != nil {
				return err
			}
		}
		if err := writeSession(txn, cur, data); err != nil {
			return err
		}
		out, newHash = cur, cur.TokenHash
		return nil
	})
	// After the commit (or a failed attempt): the old token must not be
	// served from the cache a moment longer than from Badger.
	s.caches.InvalidateSessions(oldHash, newHash)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetSessionByTokenHash is the hot path: cache, then one Badger read.
//
// The returned *Session is shared with the cache and with other callers:
// treat it as read-only (call Clone to get a modifiable copy). Writes
// through this Store (UpdateSession, RevokeSession, RevokeSessionsOfIdentity,
// DeleteIdentity) invalidate the cache, so the next call after they return
// sees the new state. ErrNotFound if absent or past ExpiresAt+SessionGrace;
// callers still check Active and ExpiresAt themselves.
func (s *Store) GetSessionByTokenHash(ctx context.Context, hash []byte) (*Session, error) {
	return s.caches.ServeSession(ctx, &s.guard, hash, func() (*Session, error) { return s.loadSession(ctx, hash) }, cacheDeadline)
}

// loadSession reads the session of a token hash from Badger.
func (s *Store) loadSession(ctx context.Context, hash []byte) (*Session, error) {
	return view(s, ctx, func(txn *badger.Txn) (*Session, error) { return loadSessionByKey(txn, sessKey(hash)) })
}

// GetSession loads a session by id; ErrNotFound if absent. The result is
// the caller's own copy.
func (s *Store) GetSession(ctx context.Context, id string) (_ *Session, err error) {
	defer WrapError(&err, "get session", id)
	return view(s, ctx, func(txn *badger.Txn) (*Session, error) { return loadSessionByID(txn, id) })
}

// GetSessionByLogoutTokenHash loads a session by its logout token hash;
// ErrNotFound if absent. The result is the caller's own copy.
func (s *Store) GetSessionByLogoutTokenHash(ctx context.Context, hash []byte) (_ *Session, err error) {
	defer WrapError(&err, "get session by logout token")
	return view(s, ctx, func(txn *badger.Txn) (*Session, error) {
		if len(hash) == 0 {
			return nil, ErrNotFound
		}
		id, err := getValue(txn, logoutKey(hash))
		if err != nil {
			return nil, err
		}
		return loadSessionByID(txn, string(id))
	})
}

// ListSessionsByIdentity returns all stored sessions of an identity
// (including inactive and recently expired ones), newest IssuedAt first.
// The results are the caller's own copies.
func (s *Store) ListSessionsByIdentity(ctx context.Context, identityID string) (_ []*Session, err error) {
	defer WrapError(&err, "list sessions of", identityID)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	var out []*Session
	err = s.db.View(func(txn *badger.Txn) error {
		ids, err := sessionIDsOfIdentity(txn, identityID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			sess, err := loadSessionByID(txn, id)
			if errors.Is(err, ErrNotFound) {
				continue // dangling index entry
			}
			if err != nil {
				return err
			}
			out = append(out, sess)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortSessions(out)
	return out, nil
}

// RevokeSession marks a session inactive (idempotent); ErrNotFound when
// unknown.
func (s *Store) RevokeSession(ctx context.Context, id string) (err error) {
	defer WrapError(&err, "revoke session", id)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	var hash []byte
	err = s.update(ctx, func(txn *badger.Txn) error {
		sess, err := loadSessionByID(txn, id)
		if err != nil {
			return err
		}
		hash = sess.TokenHash
		data, err := Revoke(sess)
		if data == nil {
			return err
		}
		return putSessionValue(txn, sess, data)
	})
	s.caches.InvalidateSession(hash)
	return err
}

// RevokeSessionsOfIdentity marks every active, unexpired session of an
// identity except exceptID inactive and returns how many it revoked.
func (s *Store) RevokeSessionsOfIdentity(ctx context.Context, identityID, exceptID string) (_ int, err error) {
	defer WrapError(&err, "revoke sessions of", identityID)
	if err := s.guard.Enter(ctx); err != nil {
		return 0, err
	}
	defer s.guard.Leave()
	var hashes [][]byte
	count := 0
	err = s.update(ctx, func(txn *badger.Txn) error {
		hashes, count = hashes[:0], 0
		ids, err := sessionIDsOfIdentity(txn, identityID)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, id := range ids {
			if id == exceptID {
				continue
			}
			sess, err := loadSessionByID(txn, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !Revocable(sess, now) {
				continue
			}
			data, err := Revoke(sess)
			if err != nil {
				return err
			}
			if err := putSessionValue(txn, sess, data); err != nil {
				return err
			}
			hashes = append(hashes, sess.TokenHash)
			count++
		}
		return nil
	})
	s.caches.InvalidateSessions(hashes...)
	if err != nil {
		return 0, err
	}
	return count, nil
}
