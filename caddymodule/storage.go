package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
)

// PostgresOptions selects the PostgreSQL engine: several gateways on one
// database (Caddyfile `storage postgres://…` or a `storage { dsn … }`
// block). Without it the app keeps identities and sessions in the
// embedded Badger directory of Storage.
type PostgresOptions struct {
	// DSN is a PostgreSQL connection URL (postgres://user:pass@host/db?…)
	// or key=value string; placeholders such as {env.DATABASE_URL} are
	// replaced at start.
	DSN string `json:"dsn"`

	// Schema holds the gateway's tables; created when missing. Default:
	// the first schema of the DSN's search_path (normally public).
	Schema string `json:"schema,omitempty"`

	// MaxConns bounds this node's pool. Default: the DSN's
	// pool_max_conns, else max(4, CPUs).
	MaxConns int32 `json:"max_conns,omitempty"`

	// MinConns keeps this many connections open. Default: 0.
	MinConns int32 `json:"min_conns,omitempty"`

	// MaxConnLifetime closes connections older than this (so a failover
	// or a DNS change is picked up). Default: 1h.
	MaxConnLifetime caddy.Duration `json:"max_conn_lifetime,omitempty"`

	// MaxConnIdleTime closes connections idle this long. Default: 30m.
	MaxConnIdleTime caddy.Duration `json:"max_conn_idle_time,omitempty"`

	// ConnectTimeout bounds dialling the server unless the DSN sets
	// connect_timeout. Default: 5s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
}

// storageTarget is where a config keeps its data, resolved: exactly one
// of dir (Badger) and dsn (PostgreSQL) is set.
type storageTarget struct {
	dir  string
	dsn  string
	opts postgres.Options
	// cacheBytes is the compact cache's size (0: the engine's default).
	// Not part of the pool key: a Badger directory is opened once per
	// process, so a reload cannot reopen it with another size.
	cacheBytes int64
	// residentLimit bounds Badger's resident table pages (0: the
	// default, negative: none); like cacheBytes, not part of the key.
	residentLimit int64
}

// poolKey names the open store in the pool: configs (and reloads) naming
// the same directory, or the same DSN with the same options, share one
// handle. Changed pool options open a new pool; the old one closes with
// the old config.
func (t storageTarget) poolKey() string {
	if t.dsn == "" {
		return "badger:" + t.dir
	}
	o := t.opts
	return fmt.Sprintf("pg:%s\x00%s\x00%d\x00%d\x00%d\x00%d\x00%d", t.dsn, o.Schema,
		o.MaxConns, o.MinConns, o.MaxConnLifetime, o.MaxConnIdleTime, o.ConnectTimeout)
}

// String is the target for logs and errors, without the DSN's password.
func (t storageTarget) String() string {
	if t.dsn == "" {
		return t.dir
	}
	s := redactDSN(t.dsn)
	if t.opts.Schema != "" {
		s += " schema " + t.opts.Schema
	}
	return s
}

// schemeRE matches a value that starts with a URL scheme. Such a value is
// never taken for a directory: `storage postgres:/…` or a misspelt
// scheme must not silently create a Badger store of that name.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// isPostgresDSN reports whether s names a PostgreSQL database.
func isPostgresDSN(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// checkStorageValue refuses a storage value with a URL scheme that is
// not a PostgreSQL DSN (the Caddyfile parser and Provision share it).
// A Windows drive letter (C:\…, C:/…) is a path.
func checkStorageValue(s string) error {
	if isPostgresDSN(s) || !schemeRE.MatchString(s) {
		return nil
	}
	if len(s) >= 3 && s[1] == ':' && (s[2] == '\\' || s[2] == '/') {
		return nil
	}
	scheme, _, _ := strings.Cut(s, ":")
	return fmt.Errorf("storage %q: a value with a URL scheme (%s:) must be a PostgreSQL DSN (postgres://…); a directory is a plain path", redactDSN(s), scheme)
}

// storage resolves the configured storage.
func (a *App) storage(repl *caddy.Replacer) (storageTarget, error) {
	t, err := a.storageOnly(repl)
	if err != nil {
		return t, err
	}
	if err := checkSessionCacheSize(a.SessionCacheSize); err != nil {
		return t, fmt.Errorf("session_cache_size: %w", err)
	}
	t.cacheBytes = a.SessionCacheSize
	if err := checkResidentLimit(a.StorageResidentLimit); err != nil {
		return t, fmt.Errorf("storage_resident_limit: %w", err)
	}
	if a.StorageResidentLimit != 0 && t.dsn != "" {
		return t, errors.New("storage_resident_limit: applies to the embedded (Badger) storage only; PostgreSQL keeps its pages in its own process")
	}
	t.residentLimit = a.StorageResidentLimit
	return t, nil
}

// storageOnly resolves the engine and its location.
func (a *App) storageOnly(repl *caddy.Replacer) (storageTarget, error) {
	r := func(s string) string { return repl.ReplaceKnown(s, "") }
	if a.Postgres != nil {
		if a.Storage != "" {
			return storageTarget{}, errors.New("storage: both a directory and postgres are configured; give one")
		}
		p := a.Postgres
		dsn := strings.TrimSpace(r(p.DSN))
		if dsn == "" {
			return storageTarget{}, fmt.Errorf("storage: postgres dsn %q is empty after replacing placeholders", p.DSN)
		}
		if schemeRE.MatchString(dsn) && !isPostgresDSN(dsn) {
			return storageTarget{}, fmt.Errorf("storage: dsn %q is not a PostgreSQL URL (postgres://…)", redactDSN(dsn))
		}
		if p.MaxConns < 0 || p.MinConns < 0 || (p.MaxConns > 0 && p.MinConns > p.MaxConns) {
			return storageTarget{}, fmt.Errorf("storage: min_conns %d, max_conns %d: need 0 <= min_conns <= max_conns", p.MinConns, p.MaxConns)
		}
		for name, d := range map[string]caddy.Duration{"max_conn_lifetime": p.MaxConnLifetime, "max_conn_idle_time": p.MaxConnIdleTime, "connect_timeout": p.ConnectTimeout} {
			if d < 0 {
				return storageTarget{}, fmt.Errorf("storage: %s %s is negative", name, time.Duration(d))
			}
		}
		return storageTarget{dsn: dsn, opts: postgres.Options{
			Schema:          r(p.Schema),
			MaxConns:        p.MaxConns,
			MinConns:        p.MinConns,
			MaxConnLifetime: time.Duration(p.MaxConnLifetime),
			MaxConnIdleTime: time.Duration(p.MaxConnIdleTime),
			ConnectTimeout:  time.Duration(p.ConnectTimeout),
		}}, nil
	}
	v := strings.TrimSpace(r(a.Storage))
	if err := checkStorageValue(v); err != nil {
		return storageTarget{}, err
	}
	if isPostgresDSN(v) {
		return storageTarget{dsn: v}, nil
	}
	if v == "" {
		v = filepath.Join(caddy.AppDataDir(), "kratos")
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		return storageTarget{}, fmt.Errorf("storage %q: %w", v, err)
	}
	return storageTarget{dir: abs}, nil
}

// openStorage opens the engine of t. The store outlives the config that
// opened it (it is pooled), so it logs to Caddy's default logger.
func openStorage(t storageTarget) (sessionstore.Storage, error) {
	logf := storeLogf(caddy.Log().Named("kratos.store"))
	if t.dsn == "" {
		return sessionstore.Open(t.dir, sessionstore.Options{Logf: logf, SessionCacheBytes: t.cacheBytes, ResidentTableLimit: t.residentLimit})
	}
	opts := t.opts
	opts.Logf = logf
	opts.SessionCacheBytes = t.cacheBytes
	// Connecting and migrating are bounded: a database that does not
	// answer stops Caddy at start with the cause instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, t.dsn, opts)
	if err != nil {
		return nil, err
	}
	// From now on `storage copy` refuses this database: a copy would roll
	// back what the gateways did here (revocations, used codes).
	if err := st.MarkServed(ctx); err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}

// passwordRE finds a password in a key=value DSN.
var passwordRE = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN hides the password of a DSN (URL or key=value form) for logs
// and errors.
func redactDSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			scheme, _, _ := strings.Cut(dsn, "://")
			return scheme + "://(unparsable URL)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return passwordRE.ReplaceAllString(dsn, "${1}xxxxx")
}

// logStorage says which storage this config uses.
func (a *App) logStorage(t storageTarget, reused bool) {
	if t.dsn == "" {
		a.logger.Info("kratos storage", zap.String("engine", "badger"), zap.String("dir", t.dir), zap.Bool("reused", reused))
		return
	}
	a.logger.Info("kratos storage", zap.String("engine", "postgres"), zap.String("dsn", t.String()), zap.Bool("reused", reused))
}

// Bounds of session_cache_size (0: the default, 64 MiB).
const (
	minSessionCacheSize = 1 << 20
	maxSessionCacheSize = 64 << 30
)

func checkSessionCacheSize(n int64) error {
	if n != 0 && (n < minSessionCacheSize || n > maxSessionCacheSize) {
		return fmt.Errorf("%d bytes: want 1MiB to 64GiB", n)
	}
	return nil
}

// checkResidentLimit: storage_resident_limit is 0 (the default), -1 (no
// bound) or 1 MiB to 64 GiB.
func checkResidentLimit(n int64) error {
	if n != 0 && n != -1 && (n < minSessionCacheSize || n > maxSessionCacheSize) {
		return fmt.Errorf("%d bytes: want 1MiB to 64GiB, or off", n)
	}
	return nil
}

// parseByteSize reads a size the way Caddy's Caddyfile sizes read: a
// number of bytes with an optional unit, decimal (KB, MB, GB: powers of
// 1000; K, M, G alike) or binary (KiB, MiB, GiB), case-insensitive, a
// space allowed before the unit.
func parseByteSize(s string) (int64, error) {
	num := strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 64MB or 128MiB)", s)
	}
	mult := map[string]int64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (B, KB, MB, GB, KiB, MiB, GiB)", s, unit)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// stores holds one open store per storage (absolute Badger directory, or
// PostgreSQL DSN and pool options). Caddy provisions a new config before
// it cleans up the old one, so a reload must reuse the open database
// rather than open it again (Badger locks its directory; a PostgreSQL
// pool would be opened twice).
var stores = caddy.NewUsagePool()

// pooledStore is a store in the pool; the pool closes it when the last
// config using it is cleaned up.
type pooledStore struct {
	store sessionstore.Storage

	mu       sync.Mutex
	couriers []*courier.Courier // of the configs using the store
}

// Destruct closes the store.
func (p *pooledStore) Destruct() error { return p.store.Close() }

// addCourier registers the courier of a config using the store.
func (p *pooledStore) addCourier(c *courier.Courier) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.couriers = append(p.couriers, c)
}

// removeCourier unregisters a stopped courier and wakes the others: a mail
// the stopped one had put off (a failed attempt, or one it held while the
// next config's courier scanned the outbox) is then retried by the next
// config at once instead of at its next poll.
func (p *pooledStore) removeCourier(c *courier.Courier) {
	p.mu.Lock()
	p.couriers = slices.DeleteFunc(p.couriers, func(o *courier.Courier) bool { return o == c })
	others := slices.Clone(p.couriers)
	p.mu.Unlock()
	for _, o := range others {
		o.Wake()
	}
}

// unmarshalStorageOption reads `storage` (see parseStorage),
// `session_cache_size <size>` (e.g. 64MiB) and
// `storage_resident_limit <size>|off`.
func (a *App) unmarshalStorageOption(o *globalOption) (bool, error) {
	switch o.name {
	case "storage":
		return true, a.parseStorage(o.d)
	case "session_cache_size":
		v, err := o.one()
		if err != nil {
			return true, err
		}
		n, err := parseByteSize(v)
		if err != nil {
			return true, o.d.Errf("session_cache_size: %v", err)
		}
		a.SessionCacheSize = n
		return true, o.check(checkSessionCacheSize(n))
	case "storage_resident_limit":
		o.mark()
		v, err := o.one()
		if err != nil {
			return true, err
		}
		if v == "off" {
			a.StorageResidentLimit = -1
			return true, nil
		}
		n, err := parseByteSize(v)
		if err != nil {
			return true, o.d.Errf("storage_resident_limit: %v, or off", err)
		}
		a.StorageResidentLimit = n
		return true, o.check(checkResidentLimit(n))
	}
	return false, nil
}

// parseStorage reads the storage option:
//
//	storage <dir>                   the embedded Badger engine
//	storage postgres://…            PostgreSQL with default pool options
//	storage {                       PostgreSQL with pool options
//		dsn                {env.DATABASE_URL}
//		schema             kratos
//		max_conns          20
//		min_conns          2
//		max_conn_lifetime  1h
//		max_conn_idle_time 30m
//		connect_timeout    5s
//	}
//
// A value with a URL scheme other than postgres(ql):// is an error naming
// the line, never a directory.
func (a *App) parseStorage(d *caddyfile.Dispenser) error {
	if a.Storage != "" || a.Postgres != nil {
		return d.Err("storage: given twice")
	}
	args := d.RemainingArgs()
	if len(args) > 1 {
		return d.ArgErr()
	}
	if len(args) == 1 {
		if d.NextBlock(d.Nesting()) {
			return d.Err("storage: give either a value or a block, not both")
		}
		if !hasPlaceholder(args[0]) {
			if err := checkStorageValue(args[0]); err != nil {
				return d.Errf("%v", err)
			}
		}
		a.Storage = args[0]
		return nil
	}
	p := &PostgresOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var v string
		if !d.AllArgs(&v) {
			return d.ArgErr()
		}
		var err error
		switch sub {
		case "dsn":
			if !hasPlaceholder(v) && !isPostgresDSN(v) && schemeRE.MatchString(v) {
				err = fmt.Errorf("%q is not a PostgreSQL URL (postgres://…)", redactDSN(v))
			}
			p.DSN = v
		case "schema":
			p.Schema = v
		case "max_conns", "min_conns":
			n, convErr := strconv.ParseInt(v, 10, 32)
			switch {
			case convErr != nil || n < 0 || n > 10000:
				err = fmt.Errorf("%q is not a connection count (0 to 10000)", v)
			case sub == "max_conns":
				p.MaxConns = int32(n)
			default:
				p.MinConns = int32(n)
			}
		case "max_conn_lifetime", "max_conn_idle_time", "connect_timeout":
			dur, durErr := caddy.ParseDuration(v)
			if durErr != nil || dur <= 0 {
				err = fmt.Errorf("invalid duration %q (want e.g. 5s, 30m or 1h)", v)
			}
			switch sub {
			case "max_conn_lifetime":
				p.MaxConnLifetime = caddy.Duration(dur)
			case "max_conn_idle_time":
				p.MaxConnIdleTime = caddy.Duration(dur)
			default:
				p.ConnectTimeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("storage: unknown option %q (want dsn, schema, max_conns, min_conns, max_conn_lifetime, max_conn_idle_time or connect_timeout)", sub)
		}
		if err != nil {
			return d.Errf("storage: %s: %v", sub, err)
		}
	}
	if p.DSN == "" {
		return d.Err("storage: the block needs a dsn (postgres://…)")
	}
	if p.MaxConns > 0 && p.MinConns > p.MaxConns {
		return d.Errf("storage: min_conns %d is above max_conns %d", p.MinConns, p.MaxConns)
	}
	a.Postgres = p
	return nil
}
