package budget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBusy: the budget stayed taken for the gate's wait.
var ErrBusy = errors.New("the memory budget stayed taken")

// Gate is a FIFO weighted semaphore over a memory budget in KiB. Each
// holder takes its own need, and at least budget/procs, so that no more
// than procs holders run at once however small their needs.
type Gate struct {
	budget int64 // KiB
	min    int64 // smallest share: budget / GOMAXPROCS
	wait   time.Duration

	mu      sync.Mutex
	used    int64
	waiters []*waiter
}

type waiter struct {
	n     int64
	ready chan struct{}
}

// New returns a gate over budgetKiB for at most procs holders at once;
// Acquire gives up after wait.
func New(budgetKiB int64, procs int, wait time.Duration) *Gate {
	if procs < 1 {
		procs = 1
	}
	if budgetKiB < int64(procs) {
		budgetKiB = int64(procs)
	}
	return &Gate{budget: budgetKiB, min: budgetKiB / int64(procs), wait: wait}
}

// Acquire waits (at most g.wait, less if ctx ends first) for a share of
// needKiB and returns the function that gives it back; ErrBusy (wrapping
// the context's error when ctx ended first) when none came.
func (g *Gate) Acquire(ctx context.Context, needKiB int64) (func(), error) {
	n := min(max(needKiB, g.min), g.budget)
	g.mu.Lock()
	if len(g.waiters) == 0 && g.used+n <= g.budget {
		g.used += n
		g.mu.Unlock()
		return func() { g.release(n) }, nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	var cause error
	select {
	case <-w.ready:
		return func() { g.release(n) }, nil
	case <-t.C:
		cause = ErrBusy
	case <-ctx.Done():
		cause = fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
	g.mu.Lock()
	select {
	case <-w.ready:
		// Granted while giving up: hand the share back.
		g.mu.Unlock()
		g.release(n)
	default:
		for i, x := range g.waiters {
			if x == w {
				g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
				break
			}
		}
		g.grantLocked() // the head may have changed
		g.mu.Unlock()
	}
	return nil, cause
}

func (g *Gate) release(n int64) {
	g.mu.Lock()
	g.used -= n
	g.grantLocked()
	g.mu.Unlock()
}

// grantLocked wakes waiters in order while their share fits.
func (g *Gate) grantLocked() {
	for len(g.waiters) > 0 {
		w := g.waiters[0]
		if g.used+w.n > g.budget {
			return
		}
		g.used += w.n
		g.waiters = g.waiters[1:]
		close(w.ready)
	}
}
