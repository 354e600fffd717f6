package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// CopyOptions tune CopyFrom.
type CopyOptions struct {
	// ReplaceSecrets lets the source's secrets overwrite different ones
	// already in the database. Off, a differing secret stops the copy:
	// the database then belongs to a cluster that already issued cookies
	// with its own keys, and overwriting them would log those users out.
	ReplaceSecrets bool
	// Progress, if set, is called after each committed batch.
	Progress func(CopyReport)
}

// CopyReport counts what CopyFrom read from the source; after a
// successful copy every one of them was found in the database.
type CopyReport struct {
	Identities int
	Sessions   int
	Records    int
	Secrets    int
}

func (r CopyReport) String() string {
	return fmt.Sprintf("%d identities, %d sessions, %d records, %d secrets", r.Identities, r.Sessions, r.Records, r.Secrets)
}

// metaNS holds the database's own bookkeeping records. CopyFrom never
// copies them and they are no user's data.
const metaNS = "kratos_meta"

// servedKey names the record a serving gateway leaves (MarkServed).
const servedKey = "served"

// ErrServed is returned by CopyFrom when gateways have already served from
// the database: copying a Badger store over it now would bring back what
// happened there since (logged-out sessions, used one-time codes,
// delivered mail, changed passwords).
var ErrServed = errors.New("gateways have served from this database since the copy")

// MarkServed records, once, that a gateway serves from this database, so
// a later `storage copy` cannot roll its state back. Gateways call it at
// start; the CLI's copy does not.
func (s *Store) MarkServed(ctx context.Context) error {
	now := []byte(time.Now().UTC().Format(time.RFC3339))
	return s.UpdateRecord(ctx, metaNS, servedKey, func(old []byte) ([]byte, time.Duration, error) {
		if old != nil {
			return old, 0, nil
		}
		return now, 0, nil
	})
}

// copyBatch is how many items one transaction of CopyFrom writes.
const copyBatch = 200

// CopyFrom copies everything src exports (identities with their
// credentials and versions, sessions with their token hashes, records
// with their expiry — flows, codes, pending mail, rate-limit buckets —
// and secrets) into this database, so a Badger installation moves to a
// cluster without logging anyone out (`caddy-kratos kratos storage copy
// --from <dir> --to postgres://…`). The source wins over rows of the same
// key, so a copy interrupted midway is simply run again. Afterwards it
// verifies that every source item is present, and every node of the
// cluster is told to empty its caches.
func (s *Store) CopyFrom(ctx context.Context, src ss.Exporter, opts CopyOptions) (CopyReport, error) {
	var rep CopyReport
	if err := s.guard.Enter(ctx); err != nil {
		return rep, fmt.Errorf("sessionstore: copy: %w", err)
	}
	defer s.guard.Leave()
	switch since, err := s.GetRecord(ctx, metaNS, servedKey); {
	case err == nil:
		return rep, fmt.Errorf("sessionstore: copy: %w (first start %s): copy into an empty database or schema instead", ErrServed, since)
	case !errors.Is(err, ss.ErrNotFound):
		return rep, fmt.Errorf("sessionstore: copy: %w", err)
	}
	var (
		batch      []*ss.Item
		identities []string
		sessions   []string
		recNS      []string
		recKeys    [][]byte
		recExp     []time.Time
		secrets    = map[string][]byte{}
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.tx(ctx, func(tx pgx.Tx) error {
			for _, it := range batch {
				if err := s.importItem(ctx, tx, it, opts); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		batch = batch[:0]
		if opts.Progress != nil {
			opts.Progress(rep)
		}
		return nil
	}
	err := src.Export(ctx, func(it *ss.Item) error {
		switch it.Kind {
		case ss.ItemIdentity:
			rep.Identities++
			identities = append(identities, it.Identity.ID)
		case ss.ItemSession:
			rep.Sessions++
			sessions = append(sessions, it.Session.ID)
		case ss.ItemRecord:
			if it.Namespace == metaNS {
				return nil
			}
			rep.Records++
			recNS = append(recNS, it.Namespace)
			recKeys = append(recKeys, []byte(it.Key))
			recExp = append(recExp, it.ExpiresAt)
		case ss.ItemSecret:
			rep.Secrets++
			secrets[it.Key] = it.Value
		default:
			return fmt.Errorf("unknown item kind %v", it.Kind)
		}
		batch = append(batch, it)
		if len(batch) >= copyBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return rep, fmt.Errorf("sessionstore: copy (%v read so far): %w", rep, err)
	}
	if err := s.verifyCopy(ctx, identities, sessions, recNS, recKeys, recExp, secrets); err != nil {
		return rep, fmt.Errorf("sessionstore: copy of %v: verify: %w", rep, err)
	}
	if err := s.publishAll(ctx); err != nil {
		return rep, fmt.Errorf("sessionstore: copy: %w", err)
	}
	s.flushCaches()
	return rep, nil
}

func (s *Store) importItem(ctx context.Context, tx pgx.Tx, it *ss.Item, opts CopyOptions) error {
	switch it.Kind {
	case ss.ItemIdentity:
		id := it.Identity
		idx, data, err := validIdentity(id)
		if err != nil {
			return fmt.Errorf("identity %s: %w", id.ID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kratos_identities (id, version, state, data) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state, data = EXCLUDED.data`,
			id.ID, int64(id.Version), id.State, data); err != nil { // #nosec G115 -- versions count writes
			return fmt.Errorf("identity %s: %w", id.ID, err)
		}
		types, hashes, _ := indexArrays(idx)
		if _, err := tx.Exec(ctx, `DELETE FROM kratos_identifiers WHERE identity_id = $1
			AND (type, hash) NOT IN (SELECT * FROM unnest($2::text[], $3::bytea[]))`, id.ID, types, hashes); err != nil {
			return fmt.Errorf("identity %s: %w", id.ID, err)
		}
		if err := claimIdentifiers(ctx, tx, id.ID, idx); err != nil {
			return fmt.Errorf("identity %s: %w (the database holds another identity with this identifier)", id.ID, err)
		}
	case ss.ItemSession:
		sess := it.Session
		data, err := validSession(sess)
		if err != nil {
			return fmt.Errorf("session %s: %w", sess.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO kratos_sessions (id, token_hash, logout_hash, identity_id, purge_at, data)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, logout_hash = EXCLUDED.logout_hash,
				identity_id = EXCLUDED.identity_id, purge_at = EXCLUDED.purge_at, data = EXCLUDED.data`,
			sess.ID, sess.TokenHash, nilIfEmpty(sess.LogoutTokenHash), sess.IdentityID, purgeAt(sess), data)
		if err != nil {
			return fmt.Errorf("session %s: %w", sess.ID, sessionConflict(err))
		}
	case ss.ItemRecord:
		if err := checkRecord(it.Namespace, it.Key); err != nil {
			return err
		}
		var exp *time.Time
		if !it.ExpiresAt.IsZero() {
			exp = &it.ExpiresAt
		}
		value := it.Value
		if value == nil {
			value = []byte{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kratos_records (ns, key, value, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
			it.Namespace, []byte(it.Key), value, exp); err != nil {
			return fmt.Errorf("record %s/%s: %w", it.Namespace, it.Key, err)
		}
	case ss.ItemSecret:
		if len(it.Value) == 0 || !storable(it.Key) || it.Key == "" {
			return fmt.Errorf("secret %q: invalid", it.Key)
		}
		var cur []byte
		err := tx.QueryRow(ctx, `INSERT INTO kratos_secrets (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING value`, it.Key, it.Value).Scan(&cur)
		if err != nil {
			return fmt.Errorf("secret %s: %w", it.Key, err)
		}
		if string(cur) != string(it.Value) {
			if !opts.ReplaceSecrets {
				return fmt.Errorf("secret %s: %w", it.Key, ErrSecretDiffers)
			}
			if _, err := tx.Exec(ctx, "UPDATE kratos_secrets SET value = $2 WHERE name = $1", it.Key, it.Value); err != nil {
				return fmt.Errorf("secret %s: %w", it.Key, err)
			}
		}
	}
	return nil
}

// ErrSecretDiffers stops a copy into a database whose secret of the same
// name has another value (see CopyOptions.ReplaceSecrets).
var ErrSecretDiffers = errors.New("the database already holds a different secret of this name (CopyOptions.ReplaceSecrets overwrites it)")

// verifyCopy checks that every copied key is in the database (records
// that expired meanwhile excepted: the sweeper may have taken them).
func (s *Store) verifyCopy(ctx context.Context, identities, sessions, recNS []string, recKeys [][]byte, recExp []time.Time, secrets map[string][]byte) error {
	const chunk = 1000
	count := func(q string, args ...any) (int, error) {
		var n int
		err := s.read(ctx, func() error { return s.pool.QueryRow(ctx, q, args...).Scan(&n) })
		return n, err
	}
	for _, kind := range []struct {
		name, query string
		ids         []string
	}{
		{"identities", "SELECT count(*) FROM kratos_identities WHERE id = ANY($1)", identities},
		{"sessions", "SELECT count(*) FROM kratos_sessions WHERE id = ANY($1)", sessions},
	} {
		for i := 0; i < len(kind.ids); i += chunk {
			part := kind.ids[i:min(i+chunk, len(kind.ids))]
			n, err := count(kind.query, part)
			if err != nil {
				return err
			}
			if n != len(part) {
				return fmt.Errorf("%d of %d %s missing", len(part)-n, len(part), kind.name)
			}
		}
	}
	now := time.Now()
	for i := 0; i < len(recNS); i += chunk {
		end := min(i+chunk, len(recNS))
		var ns []string
		var keys [][]byte
		for j := i; j < end; j++ {
			if recExp[j].IsZero() || recExp[j].After(now) {
				ns, keys = append(ns, recNS[j]), append(keys, recKeys[j])
			}
		}
		n, err := count(`SELECT count(*) FROM kratos_records r JOIN unnest($1::text[], $2::bytea[]) AS u(ns, key)
			ON r.ns = u.ns AND r.key = u.key`, ns, keys)
		if err != nil {
			return err
		}
		if n != len(ns) {
			return fmt.Errorf("%d of %d records missing", len(ns)-n, len(ns))
		}
	}
	for name, want := range secrets {
		var got []byte
		err := s.read(ctx, func() error {
			return s.pool.QueryRow(ctx, "SELECT value FROM kratos_secrets WHERE name = $1", name).Scan(&got)
		})
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		if string(got) != string(want) {
			return fmt.Errorf("secret %s differs", name)
		}
	}
	return nil
}
