package budget

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// argonMemory is what one argon2id hash takes (KiB), as identity's hasher
// asks of its gate.
const argonMemory = 128 * 1024

// No more hashes run at once than the gate allows: argon2id's 128 MiB
// against the budget, and at most one per CPU for cheap hashes.
func TestGateBoundsConcurrentHolders(t *testing.T) {
	for _, c := range []struct {
		name  string
		need  int64
		procs int
		want  int64
	}{
		{"argon2id, budget for 3", argonMemory, 8, 3},
		{"bcrypt, 4 CPUs", 0, 4, 4},
		{"argon2id over budget runs alone", 8 * argonMemory, 8, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := New(3*argonMemory, c.procs, 10*time.Second)
			var inflight, peak atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 40; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					release, err := g.Acquire(context.Background(), c.need)
					if err != nil {
						t.Error(err)
						return
					}
					n := inflight.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					time.Sleep(2 * time.Millisecond)
					inflight.Add(-1)
					release()
				}()
			}
			wg.Wait()
			if peak.Load() > c.want {
				t.Fatalf("%d hashes ran at once, the bound is %d", peak.Load(), c.want)
			}
			if peak.Load() < c.want {
				t.Fatalf("only %d hashes ran at once, the bound %d was never used", peak.Load(), c.want)
			}
		})
	}
}
