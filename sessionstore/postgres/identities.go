package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

const defaultPageSize = 250

func identifierHash(ident string) []byte {
	h := sha256.Sum256([]byte(ident))
	return h[:]
}

// indexArrays flattens an identity's index entries for unnest().
func indexArrays(idx []ss.IndexEntry) (types []string, hashes, idents [][]byte) {
	for _, e := range idx {
		types = append(types, e.Type)
		hashes = append(hashes, identifierHash(e.Identifier))
		idents = append(idents, []byte(e.Identifier))
	}
	return types, hashes, idents
}

// validIdentity checks what every stored identity needs, including that
// its id and credential types fit a text column.
func validIdentity(id *ss.Identity) ([]ss.IndexEntry, []byte, error) {
	if ss.ValidateID("identity", id.ID) == nil && !storable(id.ID) {
		return nil, nil, fmt.Errorf("identity id %q cannot be stored", id.ID)
	}
	idx, data, err := ss.EncodeIdentity(id)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range idx {
		if !storable(e.Type) {
			return nil, nil, fmt.Errorf("credential type %q cannot be stored", e.Type)
		}
	}
	return idx, data, nil
}

// claimIdentifiers makes identityID the owner of idx's entries: an entry
// already owned by identityID stays, one owned by another identity fails
// with ErrDuplicateCredential. The primary key decides races: a
// concurrent claim of the same identifier waits for the first
// transaction and then sees its row.
func claimIdentifiers(ctx context.Context, tx pgx.Tx, identityID string, idx []ss.IndexEntry) error {
	if len(idx) == 0 {
		return nil
	}
	types, hashes, idents := indexArrays(idx)
	rows, err := tx.Query(ctx, `
		INSERT INTO kratos_identifiers AS x (type, hash, identifier, identity_id)
		SELECT t, h, i, $4 FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u(t, h, i)
		ON CONFLICT (type, hash) DO UPDATE SET identity_id = EXCLUDED.identity_id
			WHERE x.identity_id = EXCLUDED.identity_id
		RETURNING x.type, x.hash`, types, hashes, idents, identityID)
	if err != nil {
		return err
	}
	owned := map[string]bool{}
	var t string
	var h []byte
	if _, err := pgx.ForEachRow(rows, []any{&t, &h}, func() error {
		owned[t+"\x00"+string(h)] = true
		return nil
	}); err != nil {
		return err
	}
	for i, e := range idx {
		if !owned[e.Type+"\x00"+string(hashes[i])] {
			return fmt.Errorf("%w: %s %q", ss.ErrDuplicateCredential, e.Type, e.Identifier)
		}
	}
	return nil
}

// CreateIdentity stores a new identity and claims its identifiers in one
// transaction; ErrDuplicateCredential if any identifier is taken (also
// under a race), ErrAlreadyExists if the id is.
func (s *Store) CreateIdentity(ctx context.Context, id *ss.Identity) (err error) {
	if id == nil {
		return errors.New("sessionstore: create identity: nil identity")
	}
	defer ss.WrapError(&err, "create identity", id.ID)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	idx, data, err := validIdentity(id)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO kratos_identities (id, version, state, data) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO NOTHING`, id.ID, int64(id.Version), id.State, data) // #nosec G115 -- versions count writes
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ss.ErrAlreadyExists
		}
		return claimIdentifiers(ctx, tx, id.ID, idx)
	})
}

// UpdateIdentity replaces an identity read at its current Version
// (optimistic: else ErrConflict), re-indexing its identifiers;
// ErrNotFound if it does not exist. On success id.Version is the new
// version. Callers should use ModifyIdentity.
func (s *Store) UpdateIdentity(ctx context.Context, id *ss.Identity) (err error) {
	if id == nil {
		return errors.New("sessionstore: update identity: nil identity")
	}
	defer ss.WrapError(&err, "update identity", id.ID)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if id.IsShared() {
		return ss.ErrSharedIdentity
	}
	if err := ss.ValidateID("identity", id.ID); err != nil {
		return err
	}
	if !storable(id.ID) {
		return ss.ErrNotFound
	}
	next := ss.NextVersion(id)
	idx, data, err := validIdentity(next)
	if err != nil {
		return err
	}
	// Dropped after the commit (deferred calls run after s.tx): a reader
	// that missed the cache before then cannot insert its old copy.
	defer s.caches.InvalidateIdentity([]byte(id.ID))
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var version int64
		err := tx.QueryRow(ctx, "SELECT version FROM kratos_identities WHERE id = $1 FOR UPDATE", id.ID).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return ss.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := ss.CheckVersion(uint64(version), id.Version); err != nil { // #nosec G115 -- versions are never negative
			return err
		}
		types, hashes, _ := indexArrays(idx)
		if _, err := tx.Exec(ctx, `DELETE FROM kratos_identifiers WHERE identity_id = $1
			AND (type, hash) NOT IN (SELECT * FROM unnest($2::text[], $3::bytea[]))`, id.ID, types, hashes); err != nil {
			return err
		}
		if err := claimIdentifiers(ctx, tx, id.ID, idx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE kratos_identities SET version = $2, state = $3, data = $4 WHERE id = $1",
			id.ID, int64(next.Version), next.State, data); err != nil { // #nosec G115 -- versions count writes
			return err
		}
		return s.publish(ctx, tx, kindIdentity, []byte(id.ID))
	})
	if err != nil {
		return err
	}
	id.Version = next.Version
	return nil
}

// ModifyIdentity applies fn to the current identity and stores the result
// with UpdateIdentity's version check, re-reading and re-applying on a
// conflict (sessionstore.IdentityModifier: the same rules as Badger).
// Colliding writers back off exponentially (0.2ms doubling up to 40ms):
// a write here costs round trips, and a burst of writers to one identity
// must not use up its attempts on collisions.
func (s *Store) ModifyIdentity(ctx context.Context, id string, fn func(*ss.Identity) error) (*ss.Identity, error) {
	return ss.IdentityModifier{Get: s.GetIdentity, Update: s.UpdateIdentity, Backoff: modifyBackoff}.Modify(ctx, id, fn)
}

func modifyBackoff(attempt int) time.Duration {
	return min(200*time.Microsecond<<min(attempt, 10), 40*time.Millisecond)
}

// decodeIdentityRow decodes a stored identity; the version column is
// authoritative.
func decodeIdentityRow(version int64, data []byte) (*ss.Identity, error) {
	ident, err := ss.DecodeIdentity(data)
	if err != nil {
		return nil, err
	}
	ident.Version = uint64(version) // #nosec G115 -- versions are never negative
	return ident, nil
}

// GetIdentity loads an identity by id; ErrNotFound if absent.
func (s *Store) GetIdentity(ctx context.Context, id string) (_ *ss.Identity, err error) {
	defer ss.WrapError(&err, "get identity", id)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if !storable(id) {
		return nil, ss.ErrNotFound
	}
	return s.identityRow(ctx, "SELECT version, data FROM kratos_identities WHERE id = $1", id)
}

// identityRow reads the identity a query selects (its version and data
// columns); ErrNotFound when it selects none.
func (s *Store) identityRow(ctx context.Context, query string, args ...any) (*ss.Identity, error) {
	var version int64
	var data []byte
	err := s.read(ctx, func() error { return s.pool.QueryRow(ctx, query, args...).Scan(&version, &data) })
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ss.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeIdentityRow(version, data)
}

// GetIdentityShared is GetIdentity for hot paths, served from this node's
// identity cache (kept coherent across nodes); the result is shared and
// trimmed (sessionstore.ShareIdentity): read-only.
func (s *Store) GetIdentityShared(ctx context.Context, id string) (*ss.Identity, error) {
	if err := s.guard.Ready(ctx); err != nil {
		return nil, fmt.Errorf("sessionstore: get identity %s: %w", id, err)
	}
	return s.liveCaches().ServeIdentity(id, func() (*ss.Identity, error) { return s.GetIdentity(ctx, id) })
}

// FindIdentityByCredential loads the identity owning identifier for
// credType (compared byte for byte); ErrNotFound if nobody owns it.
func (s *Store) FindIdentityByCredential(ctx context.Context, credType, identifier string) (_ *ss.Identity, err error) {
	defer ss.WrapError(&err, "find identity by", credType)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if !storable(credType) {
		return nil, ss.ErrNotFound
	}
	return s.identityRow(ctx, `SELECT i.version, i.data FROM kratos_identifiers x
		JOIN kratos_identities i ON i.id = x.identity_id
		WHERE x.type = $1 AND x.hash = $2 AND x.identifier = $3`,
		credType, identifierHash(identifier), []byte(identifier))
}

// DeleteIdentity removes an identity, its identifiers and all its
// sessions, on every node's caches too. ErrNotFound if absent.
func (s *Store) DeleteIdentity(ctx context.Context, id string) (err error) {
	defer ss.WrapError(&err, "delete identity", id)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := ss.ValidateID("identity", id); err != nil {
		return err
	}
	if !storable(id) {
		return ss.ErrNotFound
	}
	var hashes [][]byte
	err = s.tx(ctx, func(tx pgx.Tx) error {
		hashes = hashes[:0]
		tag, err := tx.Exec(ctx, "DELETE FROM kratos_identities WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ss.ErrNotFound
		}
		rows, err := tx.Query(ctx, "DELETE FROM kratos_sessions WHERE identity_id = $1 RETURNING token_hash", id)
		if err != nil {
			return err
		}
		hashes, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return err
		}
		if err := s.publish(ctx, tx, kindSession, hashes...); err != nil {
			return err
		}
		return s.publish(ctx, tx, kindIdentity, []byte(id))
	})
	s.caches.InvalidateSessions(hashes...)
	s.caches.InvalidateIdentity([]byte(id))
	return err
}

// ListIdentities pages through identities ordered by id (bytes); see
// sessionstore.Store.ListIdentities.
func (s *Store) ListIdentities(ctx context.Context, pageToken string, pageSize int) (_ []*ss.Identity, _ string, err error) {
	defer ss.WrapError(&err, "list identities")
	if err := s.guard.Enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.guard.Leave()
	if pageSize <= 0 {
		pageSize = defaultPageSize
	}
	// A token that is no storable id (nobody's: it came from outside)
	// still pages from where it sorts, compared as bytes, without the
	// index; our own tokens are ids and use it.
	query := "SELECT id, version, data FROM kratos_identities WHERE id > $1 ORDER BY id LIMIT $2"
	var arg any = pageToken
	if !storable(pageToken) {
		query = "SELECT id, version, data FROM kratos_identities WHERE convert_to(id, 'UTF8') > $1 ORDER BY id LIMIT $2"
		arg = []byte(pageToken)
	}
	var out []*ss.Identity
	var last string
	err = s.read(ctx, func() error {
		out, last = out[:0], ""
		rows, err := s.pool.Query(ctx, query, arg, pageSize+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var version int64
			var data []byte
			if err := rows.Scan(&id, &version, &data); err != nil {
				return err
			}
			if len(out) == pageSize {
				return nil // one more exists
			}
			ident, err := decodeIdentityRow(version, data)
			if err != nil {
				return err
			}
			out = append(out, ident)
			last = id
		}
		last = ""
		return rows.Err()
	})
	if err != nil {
		return nil, "", err
	}
	return out, last, nil
}
