package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Export calls fn for every live identity, session, record and secret
// (sessionstore.Exporter), reading in one REPEATABLE READ snapshot.
// Items are handed to fn after the snapshot is read, so fn may call the
// store.
func (s *Store) Export(ctx context.Context, fn func(*ss.Item) error) (err error) {
	defer ss.WrapError(&err, "export")
	if err := s.guard.Enter(ctx); err != nil {
		return err
	}
	defer s.guard.Leave()
	var items []*ss.Item
	err = s.read(ctx, func() error {
		items = items[:0]
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var version int64
			var data []byte
			rows, err := tx.Query(ctx, "SELECT version, data FROM kratos_identities ORDER BY id")
			if err != nil {
				return err
			}
			if _, err := pgx.ForEachRow(rows, []any{&version, &data}, func() error {
				ident, err := decodeIdentityRow(version, data)
				if err != nil {
					return err
				}
				items = append(items, &ss.Item{Kind: ss.ItemIdentity, Identity: ident})
				return nil
			}); err != nil {
				return err
			}
			sessions, err := sessionRows(tx.Query(ctx, "SELECT data FROM kratos_sessions WHERE "+liveSession+" ORDER BY id"))
			if err != nil {
				return err
			}
			for _, sess := range sessions {
				items = append(items, &ss.Item{Kind: ss.ItemSession, Session: sess})
			}
			var ns string
			var key, value []byte
			var exp *time.Time
			rows, err = tx.Query(ctx, "SELECT ns, key, value, expires_at FROM kratos_records WHERE "+liveRecord+" ORDER BY ns, key")
			if err != nil {
				return err
			}
			if _, err := pgx.ForEachRow(rows, []any{&ns, &key, &value, &exp}, func() error {
				it := &ss.Item{Kind: ss.ItemRecord, Namespace: ns, Key: string(key), Value: value}
				if it.Value == nil {
					it.Value = []byte{}
				}
				if exp != nil {
					it.ExpiresAt = *exp
				}
				items = append(items, it)
				return nil
			}); err != nil {
				return err
			}
			rows, err = tx.Query(ctx, "SELECT name, value FROM kratos_secrets ORDER BY name")
			if err != nil {
				return err
			}
			var name string
			_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
				items = append(items, &ss.Item{Kind: ss.ItemSecret, Key: name, Value: value})
				return nil
			})
			return err
		})
	})
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	return nil
}
