package sessionstore

import (
	"context"
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

// Enter registers an operation; the returned func must be called when it
// ends. It fails with ErrClosed after Shut and with ctx's error when ctx
// is already done.
func (g *Guard) Enter(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.inflight.Add(1)
	if g.closed.Load() {
		g.inflight.Add(-1)
		return nil, ErrClosed
	}
	return g.leave, nil
}

func (g *Guard) leave() { g.inflight.Add(-1) }

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
