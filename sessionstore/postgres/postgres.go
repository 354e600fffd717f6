// Package postgres is the PostgreSQL engine of sessionstore.Storage, for
// several gateways on one database (pgx/v5: a connection pool, statements
// prepared and cached per connection).
//
// Tables (prefix kratos_, in Options.Schema or the DSN's search_path):
//
//	kratos_identities   id, version, state, data (identity JSON)
//	kratos_identifiers  (type, sha256 of identifier) unique → identity id
//	kratos_sessions     id; token_hash, logout_hash unique; identity_id;
//	                    purge_at (ExpiresAt + SessionGrace); data (JSON)
//	kratos_records      (ns, key) → value, expires_at
//	kratos_secrets      name → value (first writer wins)
//	kratos_schema_migrations  applied migration versions
//
// Migrations are embedded, versioned and forward-only, applied by Open
// under an advisory lock (so nodes starting together migrate once).
//
// Every node keeps the same in-memory session and identity caches as the
// Badger engine. A write that changes a cached session or identity
// publishes its key with NOTIFY in the writing transaction, and every
// node's listener drops the entry; a node whose notification connection
// is down empties its caches and reads through to the database until it
// is back. Expired rows are swept by one node at a time.
//
// Transient errors (a dropped connection, a deadlock, a server shutting
// down) are retried a bounded number of times when the statement surely
// did not take effect; what still fails wraps sessionstore.ErrUnavailable,
// which the HTTP layer answers with 503.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Options tune Open. Pool sizes may also come from the DSN
// (pool_max_conns, pool_min_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time, pool_health_check_period); a non-zero option
// here wins.
type Options struct {
	// Schema holds the tables; it is created when missing. Default: the
	// first schema of the DSN's search_path (normally public).
	Schema string
	// MaxConns bounds the pool. Default: the DSN's pool_max_conns, else
	// pgxpool's default (4 or the number of CPUs, whichever is larger).
	MaxConns int32
	// MinConns keeps this many connections open. Default: 0.
	MinConns int32
	// MaxConnLifetime closes connections older than this. Default: 1h.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime closes connections idle longer than this.
	// Default: 30m.
	MaxConnIdleTime time.Duration
	// ConnectTimeout bounds dialling the server, unless the DSN sets
	// connect_timeout. Default: 5s.
	ConnectTimeout time.Duration
	// SessionCacheSize bounds the decoded tier of the per-node session
	// and identity caches (sessionstore.Caches): entries of each kind.
	// Default (0): 4096. Negative disables both tiers.
	SessionCacheSize int
	// SessionCacheBytes bounds the compact tier of the per-node caches:
	// every cached session and identity as a binary record the garbage
	// collector does not scan. Default (0): 64 MiB. Negative: none.
	SessionCacheBytes int64
	// SweepInterval is how often a node tries to sweep expired rows (one
	// node at a time). Default: 1 minute. Negative: never.
	SweepInterval time.Duration
	// NoMigrate makes Open fail when migrations are pending instead of
	// applying them.
	NoMigrate bool
	// HeartbeatInterval is how long the notification connection may stay
	// silent before it is pinged; a failed ping counts as a lost
	// connection. Default: 5s.
	HeartbeatInterval time.Duration
	// ReconnectDelay is the first wait before reconnecting a lost
	// notification connection; it doubles up to 2s. Default: 100ms.
	ReconnectDelay time.Duration
	// Logf receives warnings and errors (lost notification connection,
	// failed sweeps). Nil: discarded.
	Logf func(level, format string, args ...any)
}

const (
	defaultSweepInterval  = time.Minute
	defaultHeartbeat      = 5 * time.Second
	defaultReconnectDelay = 100 * time.Millisecond
	defaultConnectTimeout = 5 * time.Second
	maxReconnectDelay     = 2 * time.Second
)

// Store is the PostgreSQL engine. Safe for concurrent use; one Store per
// node and DSN (it owns a pool and a notification connection).
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the notification connection
	schema  string
	channel string // NOTIFY channel of this schema
	sweepID int64  // advisory lock key of the sweeper
	opts    Options
	logf    func(level, format string, args ...any)

	// caches is nil when disabled.
	caches *ss.Caches
	// cacheLive is true while the notification connection listens: only
	// then may the caches serve or take entries.
	cacheLive atomic.Bool
	// listenPID is the backend pid of the notification connection (0:
	// none); listenGen counts (re)connections.
	listenPID atomic.Uint32
	listenGen atomic.Uint64
	// holdListen keeps the listener from reconnecting (tests).
	holdListen atomic.Bool
	listenWake chan struct{}

	guard ss.Guard
	stop  context.CancelFunc
	bg    sync.WaitGroup

	closeOnce sync.Once
}

var (
	_ ss.Storage  = (*Store)(nil)
	_ ss.Exporter = (*Store)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), applies pending migrations under an advisory lock
// (unless Options.NoMigrate), starts the notification listener and the
// sweeper, and returns the store. It fails when the database cannot be
// reached within ctx (wrapping sessionstore.ErrUnavailable).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := poolConfig(dsn, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, fmt.Errorf("sessionstore/postgres: open: %w", err)
	}
	s := &Store{
		pool:       pool,
		connCfg:    cfg.ConnConfig,
		opts:       opts,
		logf:       opts.Logf,
		listenWake: make(chan struct{}, 1),
	}
	if s.logf == nil {
		s.logf = func(string, string, ...any) {}
	}
	if err := s.setup(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.caches = ss.NewCaches(opts.SessionCacheSize, opts.SessionCacheBytes)
	bgCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	up := make(chan struct{})
	s.bg.Add(1)
	go s.listen(bgCtx, up)
	if opts.SweepInterval >= 0 {
		s.bg.Add(1)
		go s.sweepLoop(bgCtx)
	}
	// Serve from the caches from the start: wait for the first LISTEN
	// (briefly; until it is up, reads go to the database).
	select {
	case <-up:
	case <-ctx.Done():
	case <-time.After(s.connectTimeout()):
	}
	return s, nil
}

// poolConfig parses dsn and applies opts.
func poolConfig(dsn string, opts Options) (*pgxpool.Config, error) {
	if dsn == "" {
		return nil, errors.New("sessionstore/postgres: empty DSN")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors redact the password.
		return nil, fmt.Errorf("sessionstore/postgres: parse DSN: %w", err)
	}
	if opts.Schema != "" {
		if err := validSchema(opts.Schema); err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
		if opts.ConnectTimeout > 0 {
			cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
		}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "caddy-kratos"
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("sessionstore/postgres: pool min conns %d above max conns %d", cfg.MinConns, cfg.MaxConns)
	}
	if opts.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = opts.MaxConnLifetime
	}
	if opts.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	}
	return cfg, nil
}

// validSchema accepts schema names that need no thought: letters, digits
// and underscores, not starting with a digit, at most 63 bytes.
func validSchema(name string) error {
	ok := len(name) > 0 && len(name) <= 63 && (name[0] < '0' || name[0] > '9')
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	}
	if !ok {
		return fmt.Errorf("sessionstore/postgres: invalid schema name %q (letters, digits and _ only)", name)
	}
	return nil
}

func (s *Store) connectTimeout() time.Duration {
	if d := s.connCfg.ConnectTimeout; d > 0 {
		return d
	}
	return defaultConnectTimeout
}

// setup migrates (or checks) the schema and learns its name.
func (s *Store) setup(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return fmt.Errorf("sessionstore/postgres: connect: %w", unavailable(err))
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	schema, err := runMigrations(ctx, conn, s.opts.Schema, s.opts.NoMigrate, false)
	if err != nil {
		return err
	}
	s.schema = schema.name
	s.channel = "caddy_kratos_" + schema.hash
	s.sweepID = lockKey("sweep", schema.name)
	return nil
}

// lockKey is the advisory lock id of purpose in schema.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("caddy-kratos/" + purpose + "/" + schema))
	return int64(h.Sum64()) // #nosec G115 -- a hash; any int64 is a valid lock id
}

// Schema returns the schema holding the tables.
func (s *Store) Schema() string { return s.schema }

// Close stops the listener and the sweeper, waits for operations in
// flight and closes the pool. Calling it again returns nil; every other
// method returns ErrClosed after Close.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.guard.Shut()
		s.stop()
		s.bg.Wait()
		s.guard.Drain()
		s.pool.Close()
	})
	return nil
}

// storable reports whether a key that came from outside (an id in a URL,
// a token) can name a stored row: PostgreSQL text holds neither NUL nor
// invalid UTF-8, and btree entries are bounded. Writes refuse such keys,
// so reads answer ErrNotFound for them without asking the database.
func storable(s string) bool {
	if len(s) > maxKeyLen || strings.IndexByte(s, 0) >= 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return isUTF8(s)
		}
	}
	return true
}

// maxKeyLen bounds ids, namespaces and record keys (btree entries must
// fit a third of a page).
const maxKeyLen = 2048
