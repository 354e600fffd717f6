package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// liveRecord is the condition of a record row that is still served.
const liveRecord = "(expires_at IS NULL OR expires_at > clock_timestamp())"

// ttlMicros converts a positive TTL to whole microseconds, rounding up so
// a record never expires before its deadline. 0 means no expiry.
func ttlMicros(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return int64((ttl + time.Microsecond - 1) / time.Microsecond)
}

// expiryExpr computes expires_at from a microsecond TTL parameter on the
// database's clock, which every node shares.
func expiryExpr(param string) string {
	return "(CASE WHEN " + param + "::bigint > 0 THEN clock_timestamp() + " + param + "::bigint * interval '1 microsecond' END)"
}

func checkRecord(ns, key string) error {
	if err := ss.ValidateNamespace(ns); err != nil {
		return err
	}
	if !storable(ns) {
		return fmt.Errorf("record namespace %q cannot be stored", ns)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("record key of %d bytes is too long", len(key))
	}
	return nil
}

// lookupRecord checks the namespace and key of a record to read or
// delete: ErrNotFound for those no write can have stored.
func lookupRecord(ns, key string) error {
	if err := ss.ValidateNamespace(ns); err != nil {
		return err
	}
	if !storable(ns) || len(key) > maxKeyLen {
		return ss.ErrNotFound
	}
	return nil
}

// PutRecord stores value under (ns, key); ttl 0 means no expiry, a
// negative ttl deletes the record.
func (s *Store) PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) (err error) {
	defer ss.WrapError(&err, "put record", ns, key)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := checkRecord(ns, key); err != nil {
		return err
	}
	if ttl < 0 {
		return s.write(ctx, func() error {
			_, err := s.pool.Exec(ctx, "DELETE FROM kratos_records WHERE ns = $1 AND key = $2", ns, []byte(key))
			return err
		})
	}
	if value == nil {
		value = []byte{}
	}
	return s.write(ctx, func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO kratos_records (ns, key, value, expires_at) VALUES ($1, $2, $3, `+expiryExpr("$4")+`)
			ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
			ns, []byte(key), value, ttlMicros(ttl))
		return err
	})
}

// GetRecord loads a record; ErrNotFound when absent or expired. The value
// is the caller's own (non-nil, possibly empty).
func (s *Store) GetRecord(ctx context.Context, ns, key string) (_ []byte, err error) {
	defer ss.WrapError(&err, "get record", ns, key)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if err := lookupRecord(ns, key); err != nil {
		return nil, err
	}
	var v []byte
	err = s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, "SELECT value FROM kratos_records WHERE ns = $1 AND key = $2 AND "+liveRecord,
			ns, []byte(key)).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ss.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// DeleteRecord removes a record (no error when absent).
func (s *Store) DeleteRecord(ctx context.Context, ns, key string) (err error) {
	defer ss.WrapError(&err, "delete record", ns, key)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := lookupRecord(ns, key); err != nil {
		if errors.Is(err, ss.ErrNotFound) {
			return nil // nothing can be stored there
		}
		return err
	}
	return s.write(ctx, func() error {
		_, err := s.pool.Exec(ctx, "DELETE FROM kratos_records WHERE ns = $1 AND key = $2", ns, []byte(key))
		return err
	})
}

// TakeRecord atomically reads and deletes a record: of concurrent callers
// on any nodes exactly one gets it, the others ErrNotFound (one DELETE …
// RETURNING; the row lock decides).
func (s *Store) TakeRecord(ctx context.Context, ns, key string) (_ []byte, err error) {
	defer ss.WrapError(&err, "take record", ns, key)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if err := lookupRecord(ns, key); err != nil {
		return nil, err
	}
	var v []byte
	var live bool
	err = s.write(ctx, func() error {
		return s.pool.QueryRow(ctx, "DELETE FROM kratos_records WHERE ns = $1 AND key = $2 RETURNING value, "+liveRecord,
			ns, []byte(key)).Scan(&v, &live)
	})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !live) {
		return nil, ss.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// maxInsertRaces bounds UpdateRecord's retries after losing the race to
// create an absent record (each loss means another writer's insert
// committed, which the next attempt locks and sees).
const maxInsertRaces = 16

// UpdateRecord runs fn on the current value (nil when absent) with the
// row locked (SELECT … FOR UPDATE), so concurrent updates of one record on
// any nodes apply one after the other: rate-limit buckets and the
// courier's outbox claims are exact across nodes. fn's nil value deletes
// the record, its error aborts (returned wrapped). fn may run several
// times (a lost insert race, a dropped connection) and must be free of
// side effects; old is a copy fn may keep.
func (s *Store) UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) (err error) {
	defer ss.WrapError(&err, "update record", ns, key)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := checkRecord(ns, key); err != nil {
		return err
	}
	k := []byte(key)
	races := 0
	insertRace := func(err error) bool {
		if uniqueViolation(err) == "" || races >= maxInsertRaces {
			return false
		}
		races++
		return true
	}
	for {
		err = s.tx(ctx, func(tx pgx.Tx) error {
			var old []byte
			var live bool
			err := tx.QueryRow(ctx, "SELECT value, "+liveRecord+" FROM kratos_records WHERE ns = $1 AND key = $2 FOR UPDATE",
				ns, k).Scan(&old, &live)
			exists := err == nil
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				old = nil
			case err != nil:
				return err
			case !live:
				old = nil
			case old == nil:
				old = []byte{}
			}
			nv, ttl, err := fn(old)
			if err != nil {
				return &callbackError{err}
			}
			switch {
			case nv == nil || ttl < 0:
				if exists {
					_, err = tx.Exec(ctx, "DELETE FROM kratos_records WHERE ns = $1 AND key = $2", ns, k)
				}
			case exists:
				_, err = tx.Exec(ctx, "UPDATE kratos_records SET value = $3, expires_at = "+expiryExpr("$4")+
					" WHERE ns = $1 AND key = $2", ns, k, nv, ttlMicros(ttl))
			default:
				// A plain INSERT: if another writer created the record
				// meanwhile, this fails and the retry locks theirs
				// (an upsert would overwrite it unseen).
				_, err = tx.Exec(ctx, "INSERT INTO kratos_records (ns, key, value, expires_at) VALUES ($1, $2, $3, "+
					expiryExpr("$4")+")", ns, k, nv, ttlMicros(ttl))
			}
			return err
		})
		if err == nil || !insertRace(err) {
			return err
		}
	}
}

// scanPage is how many records ScanRecords reads per query; fn runs
// between queries, with no connection held.
const scanPage = 256

// ScanRecords calls fn for every live record of ns in key order (bytes).
// It reads in pages, so fn may call the store (even delete the record it
// sees) and sees the records of each page as of that page's read, not one
// snapshot of the namespace.
func (s *Store) ScanRecords(ctx context.Context, ns string, fn func(key string, value []byte) error) (err error) {
	defer ss.WrapError(&err, "scan records", ns)
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	if err := ss.ValidateNamespace(ns); err != nil {
		return err
	}
	if !storable(ns) {
		return nil
	}
	type kv struct{ k, v []byte }
	var after []byte // nil: from the start (the empty key included)
	for {
		var page []kv
		err := s.read(ctx, func() error {
			page = page[:0]
			q := "SELECT key, value FROM kratos_records WHERE ns = $1 AND key > $2 AND " + liveRecord + " ORDER BY key LIMIT $3"
			args := []any{ns, after, scanPage}
			if after == nil {
				q = "SELECT key, value FROM kratos_records WHERE ns = $1 AND " + liveRecord + " ORDER BY key LIMIT $2"
				args = []any{ns, scanPage}
			}
			rows, err := s.pool.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var r kv
				if err := rows.Scan(&r.k, &r.v); err != nil {
					return err
				}
				page = append(page, r)
			}
			return rows.Err()
		})
		if err != nil {
			return err
		}
		// ctx is checked per record: a scan of many records ends soon
		// after its caller gives up.
		for _, r := range page {
			if err := ctx.Err(); err != nil {
				return err
			}
			if r.v == nil {
				r.v = []byte{}
			}
			if err := fn(string(r.k), r.v); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		after = page[len(page)-1].k
	}
}

// Secret returns the secret called name, creating it with gen on first
// use. The first writer on any node wins (INSERT … ON CONFLICT DO
// NOTHING), and every node reads that one value.
func (s *Store) Secret(ctx context.Context, name string, gen func() ([]byte, error)) (_ []byte, err error) {
	defer ss.WrapError(&err, "secret", name)
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	if name == "" {
		return nil, errors.New("empty secret name")
	}
	if !storable(name) {
		return nil, fmt.Errorf("secret name %q cannot be stored", name)
	}
	load := func() ([]byte, error) {
		var v []byte
		err := s.read(ctx, func() error {
			return s.pool.QueryRow(ctx, "SELECT value FROM kratos_secrets WHERE name = $1", name).Scan(&v)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ss.ErrNotFound
		}
		return v, err
	}
	v, err := load()
	if !errors.Is(err, ss.ErrNotFound) {
		return v, err
	}
	fresh, err := ss.NewSecret(gen)
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func() error {
		_, err := s.pool.Exec(ctx, "INSERT INTO kratos_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, fresh)
		return err
	})
	if err != nil && !errors.Is(err, ss.ErrUnavailable) {
		return nil, err
	}
	// Whoever won, the stored value is the one (a new statement sees a
	// row committed by a concurrent first writer).
	return load()
}
