// Package sessionstore keeps identities, credentials, sessions, flows,
// one-time codes and other records in an embedded Badger database on disk.
// It imports nothing from Caddy.
//
// Storage (storage.go) is what the gateway needs of any engine; *Store is
// the Badger engine (one node), sessionstore/postgres the PostgreSQL one
// (several nodes on one database). Both pass the conformance suite in
// sessionstore/storetest.
//
// Key layout (ASCII prefixes):
//
//	id/<identity id>                       identity JSON (credentials inside)
//	cred/<type>/<identifier>               identity id (unique per type)
//	sess/<hex token hash>                  session JSON (TTL: ExpiresAt+24h)
//	sessid/<session id>                    hex token hash (same TTL)
//	lo/<hex logout token hash>             session id (same TTL)
//	idsess/<identity id>/<session id>      empty (same TTL)
//	rec/<ns>/<key>                         opaque record (optional TTL)
//	secret/<name>                          generated secret
//
// Ownership of returned values: everything returned is a fresh value the
// caller owns, except the *Session returned by GetSessionByTokenHash, which
// is shared with the session cache and must be treated as read-only (use
// Session.Clone before modifying it).
package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ErrAlreadyExists is returned when creating an identity or a session whose
// id (or token hash) is already stored.
var ErrAlreadyExists = errors.New("sessionstore: already exists")

// Options tune Open.
type Options struct {
	// SyncWrites makes every committed write durable before the call
	// returns. Open always syncs unless NoSync is set (tests of speed only).
	NoSync bool
	// SessionCacheSize bounds the decoded tier of the session and
	// identity caches (see Caches): entries of each kind. Default (0):
	// 4096. Negative disables both tiers.
	SessionCacheSize int
	// SessionCacheBytes bounds the compact tier of the caches: every
	// cached session and identity as a binary record the garbage
	// collector does not scan. Default (0): 64 MiB. Negative: none.
	SessionCacheBytes int64
	// Logf receives Badger's warnings and errors. Nil: discarded.
	Logf func(level, format string, args ...any)
	// GCInterval is how often the value-log GC runs. Default: 5 minutes.
	GCInterval time.Duration
	// ResidentTableLimit bounds, in bytes, the resident pages of Badger's
	// mapped table files (see tabletrim.go): over it, their data blocks
	// are paged out. Default (0): DefaultResidentTableLimit (32 MiB).
	// Negative: no bound (the kernel reclaims them under memory pressure
	// only). Linux only; elsewhere there is no bound.
	ResidentTableLimit int64
}

const (
	defaultGCInterval = 5 * time.Minute
	// maxTxnAttempts bounds conflict retries; with n concurrent writers of
	// one key at least one commits per round, so this is far above need.
	maxTxnAttempts = 1000
)

// Store is the Badger-backed store. Safe for concurrent use.
type Store struct {
	db *badger.DB
	// caches serve GetSessionByTokenHash and GetIdentityShared; nil when
	// disabled.
	caches *Caches

	guard Guard

	stopGC chan struct{}
	gcDone chan struct{}
	// trim bounds the resident table pages; nil when there is no bound.
	trim      *tableTrimmer
	trimDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("sessionstore: open: empty directory")
	}
	bo := badgerOptions(dir, opts)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: open %s: %w", dir, err)
	}
	s := &Store{
		db:     db,
		stopGC: make(chan struct{}),
		gcDone: make(chan struct{}),
	}
	s.caches = NewCaches(opts.SessionCacheSize, opts.SessionCacheBytes)
	interval := opts.GCInterval
	if interval <= 0 {
		interval = defaultGCInterval
	}
	go s.gcLoop(interval)
	if limit := opts.ResidentTableLimit; tableTrimSupported && limit >= 0 {
		if limit == 0 {
			limit = DefaultResidentTableLimit
		}
		if s.trim, err = newTableTrimmer(dir, limit, opts.Logf); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("sessionstore: open %s: %w", dir, err)
		}
		s.trimDone = make(chan struct{})
		go s.trim.run(defaultTrimInterval, s.stopGC, s.trimDone)
	}
	return s, nil
}

// badgerOptions opens Badger for this workload: small values (sessions,
// identities, flows of a few hundred bytes to a few KiB), read mostly
// through the caches in front (Caches), written at the rate of logins.
// What Badger holds in memory is bounded and stated here (see also
// docs/benchmarks.md, "Memory at a million sessions"):
//
//   - Memtables: 8 MiB each, at most 3 (one being written, two being
//     flushed); each is an arena of ~9.4 MiB on the Go heap plus its
//     write-ahead log, a 16 MiB file mapping. Badger's default is 64 MiB
//     x5. Logins write ~2 KiB per session, so one memtable holds
//     thousands of logins; only bulk loads (benchtool seed) fill them
//     faster, and then flush more often.
//   - Block cache: 16 MiB (default 256 MiB) of decompressed 4 KiB blocks
//     (tables are Snappy-compressed, which needs a block cache). Repeated
//     reads of a session or identity are served by the caches in front,
//     so the block cache mostly serves index lookups of the write paths.
//   - Index cache: none. Badger uses it only for encrypted tables; ours are
//     not encrypted, so table indexes and bloom filters are read in place
//     from the mapped table files.
//   - Table loading: Badger v4 always memory-maps table files (the
//     FileIO/LoadToRAM modes of v1/v2 are gone), so the pages of the
//     tables a process has read count as file-backed RSS: up to the
//     store's size on disk (~450 MiB for a million sessions). On Linux a
//     trimmer (tabletrim.go) keeps them under ResidentTableLimit (32 MiB
//     by default) by paging out the tables' data blocks.
//   - Value log: values up to the value threshold (1 MiB, Badger's
//     default, stated here) stay in the tree; ours are all far smaller, so
//     the value log receives nothing and its file (16 MiB, default 1 GiB)
//     is a sparse mapping that is never touched.
func badgerOptions(dir string, opts Options) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(!opts.NoSync).
		WithLogger(badgerLogger{logf: opts.Logf}).
		WithMetricsEnabled(false).
		WithMemTableSize(8 << 20).
		WithNumMemtables(3).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(0).
		WithValueThreshold(1 << 20).
		WithValueLogFileSize(16 << 20).
		WithNumCompactors(2).
		WithDetectConflicts(true)
}

// Close flushes and closes the database and stops background GC. It waits
// for operations in flight. Calling it again returns nil; every other
// method returns ErrClosed after Close.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.guard.Shut()
		close(s.stopGC)
		<-s.gcDone
		if s.trimDone != nil {
			<-s.trimDone
		}
		s.guard.Drain()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("sessionstore: close: %w", err)
		}
	})
	return s.closeErr
}

// gcLoop runs value-log GC until Close. RunValueLogGC rewrites at most one
// file per call, so it is repeated until it reports nothing to do.
func (s *Store) gcLoop(interval time.Duration) {
	defer close(s.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopGC:
			return
		case <-t.C:
		}
		for {
			select {
			case <-s.stopGC:
				return
			default:
			}
			if s.db.RunValueLogGC(0.5) != nil {
				break
			}
		}
	}
}

// update runs fn in a read-write transaction, retrying the whole
// transaction when Badger reports a conflict (a key fn read was written by
// a transaction that committed first). fn must not keep side effects across
// attempts.
func (s *Store) update(ctx context.Context, fn func(txn *badger.Txn) error) error {
	var err error
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		err = s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		// Jittered backoff keeps colliding writers from colliding again.
		backoff := time.Duration(attempt+1) * 50 * time.Microsecond
		if backoff > 5*time.Millisecond {
			backoff = 5 * time.Millisecond
		}
		time.Sleep(backoff/2 + rand.N(backoff)) // #nosec G404 -- retry jitter, not a secret
	}
	return err
}

// view runs read in a read-only transaction under the guard and returns
// its result.
func view[T any](s *Store, ctx context.Context, read func(txn *badger.Txn) (T, error)) (T, error) {
	var v T
	if err := s.guard.Enter(ctx); err != nil {
		return v, err
	}
	defer s.guard.Leave()
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = read(txn)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// getValue returns a copy of key's value; ErrNotFound when absent or expired.
func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{} // present but empty: distinguish from absent
	}
	return v, nil
}

// exists reports whether key is present (and, in an update transaction,
// registers the read for conflict detection).
func exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// expiresAtUnix converts an absolute deadline to Badger's ExpiresAt (unix
// seconds), rounding up so an entry never expires before its deadline.
func expiresAtUnix(deadline time.Time) uint64 {
	sec := deadline.Unix()
	if deadline.Nanosecond() > 0 {
		sec++
	}
	if sec <= 0 {
		return 1 // already expired; 0 would mean "never"
	}
	return uint64(sec)
}

// badgerLogger forwards Badger's warnings and errors to Logf and drops its
// chatty info and debug output.
type badgerLogger struct {
	logf func(level, format string, args ...any)
}

func (l badgerLogger) Errorf(format string, args ...any) {
	if l.logf != nil {
		l.logf("error", strings.TrimSuffix(format, "\n"), args...)
	}
}

func (l badgerLogger) Warningf(format string, args ...any) {
	if l.logf != nil {
		l.logf("warn", strings.TrimSuffix(format, "\n"), args...)
	}
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
