package postgres

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func isUTF8(s string) bool { return utf8.ValidString(s) }

// unavailableError marks an error as sessionstore.ErrUnavailable while
// keeping its cause.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string {
	return "sessionstore: storage unavailable: " + e.err.Error()
}
func (e *unavailableError) Unwrap() []error {
	return []error{ss.ErrUnavailable, e.err}
}

// unavailable wraps err as ErrUnavailable when it is a connection or
// server-availability problem; other errors pass unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ss.ErrUnavailable) || !transient(err) {
		return err
	}
	return &unavailableError{err}
}

// transient reports whether err is a problem of the connection or of the
// server's state (as opposed to the request): worth retrying when the
// statement surely had no effect, else ErrUnavailable.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", // serialization_failure
			"40P01", // deadlock_detected
			"55P03", // lock_not_available
			"53300", // too_many_connections
			"57P01", // admin_shutdown
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now
			"25006": // read_only_sql_transaction: a failover in progress
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.SafeToRetry(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "conn busy") ||
		strings.Contains(msg, "unexpected EOF") || strings.Contains(msg, "broken pipe")
}

// uniqueViolation returns the constraint of a unique_violation, or "".
func uniqueViolation(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		if pgErr.ConstraintName == "" {
			return "?"
		}
		return pgErr.ConstraintName
	}
	return ""
}

// maxAttempts bounds the tries of one operation on transient errors;
// with the backoff below a database that stays down costs a request
// about half a second before it answers 503.
const maxAttempts = 4

func backoff(attempt int) time.Duration {
	d := 20 * time.Millisecond << (2 * attempt) // 20ms, 80ms, 320ms
	return d/2 + rand.N(d)                      // #nosec G404 -- retry jitter, not a secret
}

// pause waits before retry attempt (from 0; the first waits nothing) its
// backoff, or until ctx ends.
func pause(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	t := time.NewTimer(backoff(attempt - 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// callbackError carries an error of the caller's function (UpdateRecord's
// fn, ModifySession's change) through tx untouched: it is the caller's
// answer, never retried or taken for a database problem.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// errCommitUnknown marks a failure of COMMIT itself: the transaction may
// or may not have committed, so it is never retried.
type errCommitUnknown struct{ err error }

func (e *errCommitUnknown) Error() string { return "commit: " + e.err.Error() }
func (e *errCommitUnknown) Unwrap() error { return e.err }

// retryTx is an extra condition under which tx retries (besides transient
// errors before the commit), e.g. a unique violation of a concurrent
// insert that a fresh attempt will see.
type retryTx func(error) bool

// tx runs fn in a READ COMMITTED transaction and commits. A transient
// error before COMMIT (the transaction then surely rolled back) retries
// the whole transaction, so fn must keep no side effects across runs. A
// failure of COMMIT itself is not retried: it may have taken effect.
// Errors that remain are wrapped as ErrUnavailable when transient.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error, also ...retryTx) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := pause(ctx, attempt); err != nil {
			return err
		}
		err = s.tryTx(ctx, fn)
		if err == nil {
			return nil
		}
		var cb *callbackError
		if errors.As(err, &cb) {
			return cb.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var cu *errCommitUnknown
		if errors.As(err, &cu) {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
				continue // the server answered: rolled back
			}
			return unavailable(cu.err)
		}
		retry := transient(err)
		for _, f := range also {
			retry = retry || f(err)
		}
		if !retry {
			return err
		}
	}
	return unavailable(err)
}

func (s *Store) tryTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return &errCommitUnknown{err}
	}
	return nil
}

// read runs a read-only fn, retrying transient errors (a read can always
// be repeated). Its loop head is write's and tx's on purpose: what each
// may retry differs, and that rule is the part that matters.
func (s *Store) read(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := pause(ctx, attempt); err != nil {
			return err
		}
		err = fn()
		if err == nil || !transient(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return unavailable(err)
}

// write runs one autocommit statement fn, retrying only errors that show
// nothing reached the server (a statement that may have run is not
// repeated: it reports ErrUnavailable).
func (s *Store) write(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := pause(ctx, attempt); err != nil {
			return err
		}
		err = fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var connectErr *pgconn.ConnectError
		var pgErr *pgconn.PgError
		safe := pgconn.SafeToRetry(err) || errors.As(err, &connectErr) ||
			(errors.As(err, &pgErr) && transient(err)) // the server refused it: not run
		if !safe {
			return unavailable(err)
		}
	}
	return unavailable(err)
}
