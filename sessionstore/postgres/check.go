package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Check verifies, in one REPEATABLE READ snapshot, the invariants the
// write paths keep (the same ones as the Badger engine's Check): every
// identifier row belongs to an identity that lists it, every identity's
// identifiers have their row, and every live session belongs to a stored
// identity.
func (s *Store) Check(ctx context.Context) (_ *ss.CheckReport, err error) {
	defer ss.WrapError(&err, "check")
	if err := s.guard.Enter(ctx); err != nil {
		return nil, err
	}
	defer s.guard.Leave()
	var rep *ss.CheckReport
	err = s.read(ctx, func() error {
		rep = &ss.CheckReport{}
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			problem := func(format string, args ...any) {
				rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
			}
			identities := map[string]*ss.Identity{}
			var id string
			var version int64
			var data []byte
			rows, err := tx.Query(ctx, "SELECT id, version, data FROM kratos_identities")
			if err != nil {
				return err
			}
			if _, err := pgx.ForEachRow(rows, []any{&id, &version, &data}, func() error {
				ident, err := decodeIdentityRow(version, data)
				if err != nil {
					problem("identity %s: undecodable: %v", id, err)
					return nil
				}
				if ident.ID != id {
					problem("identity row %s holds identity %s", id, ident.ID)
				}
				identities[id] = ident
				return nil
			}); err != nil {
				return err
			}
			rep.Identities = len(identities)
			audit := ss.IndexAudit{Report: rep, Identities: identities}
			var typ, owner string
			var hash, ident []byte
			rows, err = tx.Query(ctx, "SELECT type, hash, identifier, identity_id FROM kratos_identifiers")
			if err != nil {
				return err
			}
			if _, err := pgx.ForEachRow(rows, []any{&typ, &hash, &ident, &owner}, func() error {
				if string(identifierHash(string(ident))) != string(hash) {
					problem("identifier %s %q: hash does not match", typ, ident)
				}
				audit.Entry(fmt.Sprintf("identifier %s %q", typ, ident), owner, typ, string(ident))
				return nil
			}); err != nil {
				return err
			}
			audit.Unindexed()
			var identityID string
			rows, err = tx.Query(ctx, "SELECT id, token_hash, identity_id, data FROM kratos_sessions WHERE "+liveSession)
			if err != nil {
				return err
			}
			_, err = pgx.ForEachRow(rows, []any{&id, &hash, &identityID, &data}, func() error {
				rep.Sessions++
				sess, err := ss.DecodeSession(data)
				switch {
				case err != nil:
					problem("session %s: undecodable: %v", id, err)
					return nil
				case sess.ID != id || string(sess.TokenHash) != string(hash) || sess.IdentityID != identityID:
					problem("session %s: columns disagree with its data", id)
				}
				if _, ok := identities[identityID]; !ok {
					problem("session %s belongs to missing identity %s", id, identityID)
				}
				return nil
			})
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// SweepReport says what one Sweep removed.
type SweepReport struct {
	// Swept is false when another node held the sweep lock.
	Swept    bool
	Records  int64
	Sessions int64
	// Batches counts the transactions the sweep ran (each deletes at
	// most sweepBatch rows of each table).
	Batches int
}

// A sweep of many expired rows must not spike the tail of the requests
// served meanwhile (issue 16). Readers never wait for the rows a DELETE
// locks (MVCC), and nobody writes expired rows; what a long sweep takes
// from them is the database's CPU and I/O (on the same host, the node's
// too) and one pooled connection. So each transaction deletes at most
// sweepBatch rows of each table (short transactions: locks, WAL and
// dead tuples in small steps), and the sweeper rests between two of them
// at least sweepPause and at least as long as the last one took: it
// never uses the database more than about half the time, and a sweep of
// 50 000 expired sessions is some 50 steps of a few milliseconds
// (TestSweepInBatchesWhileServing).
const (
	sweepBatch = 1000
	sweepPause = 10 * time.Millisecond
)

// Sweep deletes expired records (flows, codes, sent mail, rate-limit
// buckets) and sessions past ExpiresAt+SessionGrace, unless another node
// is sweeping (a transaction-level advisory lock: one node at a time),
// in batches with rests between them. It stops early, without an error,
// when the store is closing. Readers already ignore such rows; sweeping
// keeps the tables bounded.
func (s *Store) Sweep(ctx context.Context) (SweepReport, error) {
	var total SweepReport
	if err := s.guard.Enter(ctx); err != nil {
		return total, fmt.Errorf("sessionstore: sweep: %w", err)
	}
	defer s.guard.Leave()
	for {
		var rep SweepReport
		start := time.Now()
		err := s.tx(ctx, func(tx pgx.Tx) error {
			rep = SweepReport{}
			if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", s.sweepID).Scan(&rep.Swept); err != nil || !rep.Swept {
				return err
			}
			tag, err := tx.Exec(ctx, `DELETE FROM kratos_records WHERE ctid = ANY(ARRAY(
				SELECT ctid FROM kratos_records WHERE expires_at <= clock_timestamp() LIMIT $1))`, sweepBatch)
			if err != nil {
				return err
			}
			rep.Records = tag.RowsAffected()
			tag, err = tx.Exec(ctx, `DELETE FROM kratos_sessions WHERE ctid = ANY(ARRAY(
				SELECT ctid FROM kratos_sessions WHERE purge_at <= clock_timestamp() LIMIT $1))`, sweepBatch)
			if err != nil {
				return err
			}
			rep.Sessions = tag.RowsAffected()
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sessionstore: sweep: %w", err)
		}
		total.Swept = total.Swept || rep.Swept
		total.Records += rep.Records
		total.Sessions += rep.Sessions
		if rep.Swept {
			total.Batches++
		}
		if !rep.Swept || (rep.Records < sweepBatch && rep.Sessions < sweepBatch) {
			return total, nil
		}
		rest := time.NewTimer(max(sweepPause, time.Since(start)))
		select {
		case <-ctx.Done():
			rest.Stop()
			return total, fmt.Errorf("sessionstore: sweep: %w", ctx.Err())
		case <-rest.C:
		}
		if s.guard.Ready(ctx) != nil {
			return total, nil // closing: the next sweep finishes the work
		}
	}
}

func (s *Store) sweepLoop(ctx context.Context) {
	defer s.bg.Done()
	interval := s.opts.SweepInterval
	if interval == 0 {
		interval = defaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.logf("warn", "sweeping expired rows failed: %v", err)
		}
	}
}
