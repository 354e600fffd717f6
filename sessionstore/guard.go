package sessionstore

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Guard is the close guard every engine puts around its operations: an
// operation enters (and leaves when it ends), Close shuts the guard and
// drains the operations in flight. It is lock-free, unlike an RWMutex: a
// callback (ScanRecords, UpdateRecord) that calls back into the store
// while Close is draining gets ErrClosed instead of deadlocking. The zero
// Guard is open.
type Guard struct {
	closed   atomic.Bool
	inflight atomic.Int64
}

// Enter registers an operation, which must call Leave when it ends (when
// Enter succeeded). It fails with ErrClosed after Shut and with ctx's
// error when ctx is already done.
func (g *Guard) Enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.inflight.Add(1)
	if g.closed.Load() {
		g.inflight.Add(-1)
		return ErrClosed
	}
	return nil
}

// Leave ends an operation that entered.
func (g *Guard) Leave() { g.inflight.Add(-1) }

// Ready is Enter's check without registering, for an answer served from
// memory (a cache hit) that needs nothing the engine's Close releases.
func (g *Guard) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if g.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Shut makes every later Enter fail with ErrClosed.
func (g *Guard) Shut() { g.closed.Store(true) }

// Drain waits until the operations that entered before Shut have left.
func (g *Guard) Drain() {
	for g.inflight.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
}

// WrapError gives the error of a failed Storage method the shape every
// engine's errors have: "sessionstore: <op> <subjects joined by '/'>:
// <cause>", or without subjects "sessionstore: <op>: <cause>". A method
// defers it with its named error result; a nil error stays nil.
//
// Every Storage method of both engines opens with the same frame (defer
// WrapError, Guard.Enter, defer Guard.Leave, then its own key checks), so
// the first lines of methods look alike by design.
func WrapError(errp *error, op string, subjects ...string) {
	if *errp == nil {
		return
	}
	if len(subjects) > 0 {
		op += " " + strings.Join(subjects, "/")
	}
	*errp = fmt.Errorf("sessionstore: %s: %w", op, *errp)
}
