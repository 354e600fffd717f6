package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// liveSession is the condition of a session row that is still served.
const liveSession = "(purge_at IS NULL OR purge_at > clock_timestamp())"

// purgeAt is the session's purge_at column (nil: never).
func purgeAt(sess *ss.Session) *time.Time {
	d := ss.SessionDeadline(sess)
	if d.IsZero() {
		return nil
	}
	return &d
}

// cacheDeadline is when a cached session stops being served (unix
// nanoseconds; 0: never): its purge time, as in the database.
func cacheDeadline(sess *ss.Session) int64 {
	d := ss.SessionDeadline(sess)
	if d.IsZero() {
		return 0
	}
	return d.UnixNano()
}

// nilIfEmpty stores an absent logout hash as NULL (UNIQUE ignores NULLs).
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// validSession is EncodeSession for a session whose ids fit text columns.
func validSession(sess *ss.Session) ([]byte, error) {
	if err := ss.ValidateSession(sess); err != nil {
		return nil, err
	}
	if !storable(sess.ID) || !storable(sess.IdentityID) {
		return nil, fmt.Errorf("session %q of identity %q cannot be stored", sess.ID, sess.IdentityID)
	}
	return ss.EncodeSession(sess)
}

// sessionConflict names the unique key a session write collided with.
func sessionConflict(err error) error {
	switch c := uniqueViolation(err); {
	case c == "":
		return err
	case strings.Contains(c, "logout"):
		return fmt.Errorf("%w: lo", ss.ErrAlreadyExists)
	case strings.Contains(c, "token"):
		return fmt.Errorf("%w: sess", ss.ErrAlreadyExists)
	default:
		return fmt.Errorf("%w: sessid", ss.ErrAlreadyExists)
	}
}

// CreateSession stores a new session (see sessionstore.Store). The
// identity's state is read under a share lock in the same transaction, so
// a deactivation committing meanwhile either makes this fail with
// ErrIdentityInactive or waits for it (and its revocation then sees the
// session).
func (s *Store) CreateSession(ctx context.Context, sess *ss.Session) (err error) {
	defer ss.WrapError(&err, "create session")
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	data, err := validSession(sess)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, "SELECT state FROM kratos_identities WHERE id = $1 FOR SHARE", sess.IdentityID).Scan(&state)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("identity %s: %w", sess.IdentityID, err)
		case state != "" && state != "active":
			return fmt.Errorf("identity %s: %w", sess.IdentityID, ss.ErrIdentityInactive)
		}
		// A purged-but-not-yet-swept row holding one of the keys is gone
		// for readers; it must not block the new session either.
		if _, err := tx.Exec(ctx, `DELETE FROM kratos_sessions WHERE (id = $1 OR token_hash = $2 OR logout_hash = $3)
			AND NOT `+liveSession, sess.ID, sess.TokenHash, nilIfEmpty(sess.LogoutTokenHash)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO kratos_sessions (id, token_hash, logout_hash, identity_id, purge_at, data)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			sess.ID, sess.TokenHash, nilIfEmpty(sess.LogoutTokenHash), sess.IdentityID, purgeAt(sess), data)
		return sessionConflict(err)
	})
}

// sessionRows decodes the sessions of a query selecting their data.
func sessionRows(rows pgx.Rows, err error) ([]*ss.Session, error) {
	if err != nil {
		return nil, err
	}
	var none []*ss.Session // no rows: nil, as the engines list no sessions
	return pgx.AppendRows(none, rows, func(row pgx.CollectableRow) (*ss.Session, error) {
		var data []byte
		if err := row.Scan(&data); err != nil {
			return nil, err
		}
		return ss.DecodeSession(data)
	})
}

// lockSession reads a live session by id FOR UPDATE.
func lockSession(ctx context.Context, tx pgx.Tx, id string) (*ss.Session, error) {
	var data []byte
	err := tx.QueryRow(ctx, "SELECT data FROM kratos_sessions WHERE id = $1 AND "+liveSession+" FOR UPDATE", id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ss.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return ss.DecodeSession(data)
}

// writeSession rewrites a session row (all columns) inside tx.
func writeSession(ctx context.Context, tx pgx.Tx, sess *ss.Session, data []byte) error {
	_, err := tx.Exec(ctx, `UPDATE kratos_sessions SET token_hash = $2, logout_hash = $3, identity_id = $4,
		purge_at = $5, data = $6 WHERE id = $1`,
		sess.ID, sess.TokenHash, nilIfEmpty(sess.LogoutTokenHash), sess.IdentityID, purgeAt(sess), data)
	return sessionConflict(err)
}

// UpdateSession replaces a session (see sessionstore.Store.UpdateSession):
// ErrNotFound if absent, ErrTokenChanged if sess.TokenHash is not the
// stored one. Every node drops its cached copy.
func (s *Store) UpdateSession(ctx context.Context, sess *ss.Session) (err error) {
	defer ss.WrapError(&err, "update session")
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := ss.ValidateSession(sess); err != nil {
		return err
	}
	if !storable(sess.ID) {
		return ss.ErrNotFound
	}
	data, err := validSession(sess)
	if err != nil {
		return err
	}
	var oldHash []byte
	err = s.tx(ctx, func(tx pgx.Tx) error {
		oldHash = nil
		old, err := lockSession(ctx, tx, sess.ID)
		if err != nil {
			return err
		}
		oldHash = old.TokenHash
		if !bytes.Equal(old.TokenHash, sess.TokenHash) {
			return ss.ErrTokenChanged
		}
		if err := writeSession(ctx, tx, sess, data); err != nil {
			return err
		}
		return s.publish(ctx, tx, kindSession, oldHash)
	})
	s.caches.InvalidateSessions(oldHash, sess.TokenHash)
	return err
}

// ModifySession changes the stored session id in one transaction (row
// locked), rotating its token atomically when change sets a new TokenHash;
// see sessionstore.Store.ModifySession for the contract.
func (s *Store) ModifySession(ctx context.Context, id string, tokenHash []byte, change func(*ss.Session) error) (_ *ss.Session, err error) {
	defer ss.WrapError(&err, "modify session", id)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if !storable(id) {
		return nil, ss.ErrNotFound
	}
	var out *ss.Session
	var oldHash, newHash []byte
	err = s.tx(ctx, func(tx pgx.Tx) error {
		out, oldHash, newHash = nil, nil, nil
		cur, err := lockSession(ctx, tx, id)
		if err != nil {
			return err
		}
		var data []byte
		oldHash, data, err = ss.ChangeSession(cur, id, tokenHash, func(cur *ss.Session) error {
			if err := change(cur); err != nil {
				return &callbackError{err}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := writeSession(ctx, tx, cur, data); err != nil {
			return err
		}
		if err := s.publish(ctx, tx, kindSession, oldHash, cur.TokenHash); err != nil {
			return err
		}
		out, newHash = cur, cur.TokenHash
		return nil
	})
	// After the commit (or a failed attempt): the old token must not be
	// served from this node's cache a moment longer than from the table.
	s.caches.InvalidateSessions(oldHash, newHash)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetSessionByTokenHash is the hot path: this node's cache (while its
// notification connection listens), then one indexed query. The result
// is shared: read-only. ErrNotFound if absent or past purge.
func (s *Store) GetSessionByTokenHash(ctx context.Context, hash []byte) (*ss.Session, error) {
	return s.liveCaches().ServeSession(ctx, &s.guard, hash, func() (*ss.Session, error) { return s.getSessionBy(ctx, "token_hash", hash) }, cacheDeadline)
}

// getSessionBy loads a live session by a unique column.
func (s *Store) getSessionBy(ctx context.Context, column string, key any) (*ss.Session, error) {
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	var data []byte
	err := s.read(ctx, func() error {
		// column is one of three constants of this file.
		return s.pool.QueryRow(ctx, "SELECT data FROM kratos_sessions WHERE "+column+" = $1 AND "+liveSession, key).Scan(&data)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ss.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return ss.DecodeSession(data)
}

// GetSession loads a session by id; ErrNotFound if absent. The result is
// the caller's own copy.
func (s *Store) GetSession(ctx context.Context, id string) (*ss.Session, error) {
	if !storable(id) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sessionstore: get session %s: %w", id, err)
		}
		return nil, fmt.Errorf("sessionstore: get session %s: %w", id, ss.ErrNotFound)
	}
	sess, err := s.getSessionBy(ctx, "id", id)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: get session %s: %w", id, err)
	}
	return sess, nil
}

// GetSessionByLogoutTokenHash loads a session by its logout token hash;
// ErrNotFound if absent.
func (s *Store) GetSessionByLogoutTokenHash(ctx context.Context, hash []byte) (*ss.Session, error) {
	if len(hash) == 0 {
		return nil, fmt.Errorf("sessionstore: get session by logout token: %w", ss.ErrNotFound)
	}
	sess, err := s.getSessionBy(ctx, "logout_hash", hash)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: get session by logout token: %w", err)
	}
	return sess, nil
}

// ListSessionsByIdentity returns the stored sessions of an identity,
// newest IssuedAt first (then by id).
func (s *Store) ListSessionsByIdentity(ctx context.Context, identityID string) (_ []*ss.Session, err error) {
	defer ss.WrapError(&err, "list sessions of", identityID)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if !storable(identityID) {
		return nil, nil
	}
	var out []*ss.Session
	err = s.read(ctx, func() error {
		var err error
		out, err = sessionRows(s.pool.Query(ctx, "SELECT data FROM kratos_sessions WHERE identity_id = $1 AND "+liveSession, identityID))
		return err
	})
	if err != nil {
		return nil, err
	}
	ss.SortSessions(out)
	return out, nil
}

// RevokeSession marks a session inactive (idempotent) on every node;
// ErrNotFound when unknown.
func (s *Store) RevokeSession(ctx context.Context, id string) (err error) {
	defer ss.WrapError(&err, "revoke session", id)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if !storable(id) {
		return ss.ErrNotFound
	}
	var hash []byte
	err = s.tx(ctx, func(tx pgx.Tx) error {
		sess, err := lockSession(ctx, tx, id)
		if err != nil {
			return err
		}
		hash = sess.TokenHash
		data, err := ss.Revoke(sess)
		if data == nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE kratos_sessions SET data = $2 WHERE id = $1", id, data); err != nil {
			return err
		}
		return s.publish(ctx, tx, kindSession, hash)
	})
	s.caches.InvalidateSession(hash)
	return err
}

// RevokeSessionsOfIdentity marks every active, unexpired session of an
// identity except exceptID inactive, on every node, and returns how many.
func (s *Store) RevokeSessionsOfIdentity(ctx context.Context, identityID, exceptID string) (_ int, err error) {
	defer ss.WrapError(&err, "revoke sessions of", identityID)
	if err := s.guard.Enter(ctx); err != nil {
		return 0, err
	}
	defer s.guard.Leave()
	if !storable(identityID) {
		return 0, nil
	}
	var hashes [][]byte
	err = s.tx(ctx, func(tx pgx.Tx) error {
		hashes = hashes[:0]
		sessions, err := sessionRows(tx.Query(ctx, "SELECT data FROM kratos_sessions WHERE identity_id = $1 AND id <> $2 AND "+liveSession+
			" ORDER BY id FOR UPDATE", identityID, exceptID))
		if err != nil {
			return err
		}
		now := time.Now()
		var ids []string
		var values [][]byte
		for _, sess := range sessions {
			if !ss.Revocable(sess, now) {
				continue
			}
			data, err := ss.Revoke(sess)
			if err != nil {
				return err
			}
			ids = append(ids, sess.ID)
			values = append(values, data)
			hashes = append(hashes, sess.TokenHash)
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE kratos_sessions AS s SET data = u.data
			FROM unnest($1::text[], $2::json[]) AS u(id, data) WHERE s.id = u.id`, ids, values); err != nil {
			return err
		}
		return s.publish(ctx, tx, kindSession, hashes...)
	})
	s.caches.InvalidateSessions(hashes...)
	if err != nil {
		return 0, err
	}
	return len(hashes), nil
}
