package courier

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestStatsAndOnAttempt: the outbox's pending count and oldest age, and
// the outcome of every attempt told to OnAttempt, with an SMTP server
// that refuses connections (two retries, then abandoned).
func TestStatsAndOnAttempt(t *testing.T) {
	st := openStore(t, t.TempDir())
	var mu sync.Mutex
	var got []State
	cfg := fastConfig(plainURI("127.0.0.1:" + freePort(t)))
	cfg.MaxAttempts = 3
	cfg.OnAttempt = func(s State) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	c := newCourier(t, st, cfg, nil)
	ctx := context.Background()
	if s, err := c.Stats(ctx); err != nil || s != (OutboxStats{}) {
		t.Fatalf("empty outbox: %+v, %v", s, err)
	}
	before := time.Now().Add(-time.Second)
	id, err := c.Enqueue(ctx, Message{To: "hal@example.org", Template: TemplateLoginCodeValid, Data: TemplateData{LoginCode: "000222"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(ctx)
	if err != nil || s.Pending != 1 || s.OldestPending.Before(before) || s.OldestPending.After(time.Now()) {
		t.Fatalf("one queued message: %+v, %v", s, err)
	}
	c.Start()
	waitState(t, c, id, StateAbandoned, 5*time.Second)
	if s, err := c.Stats(ctx); err != nil || s.Pending != 0 || !s.OldestPending.IsZero() {
		t.Fatalf("abandoned message still pending: %+v, %v", s, err)
	}
	// The worker tells OnAttempt after it has recorded the state.
	told := func() []State {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	for deadline := time.Now().Add(2 * time.Second); len(told()) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := told(), []State{StateQueued, StateQueued, StateAbandoned}; !slices.Equal(got, want) {
		t.Fatalf("attempts told %v, want %v", got, want)
	}
}
