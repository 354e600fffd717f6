package storetest

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// BenchEngine opens stores for Bench.
type BenchEngine struct {
	// Open returns a new, empty store with its caches on.
	Open func(t testing.TB) ss.Storage
	// OpenUncached returns a new, empty store with its caches off (every
	// lookup is a cache miss).
	OpenUncached func(t testing.TB) ss.Storage
}

// Bench measures the operations the gateway's speed rests on, the same
// way on every engine: the gate's session lookup with a warm cache and
// with none, the shared identity read, registration's identity create,
// and a rate-limit style record update (spread over keys, and on one hot
// key).
func Bench(b *testing.B, e BenchEngine) {
	b.Run("SessionLookup/warm", func(b *testing.B) { benchLookup(b, e.Open(b)) })
	b.Run("SessionLookup/cold", func(b *testing.B) { benchLookup(b, e.OpenUncached(b)) })
	b.Run("IdentityShared/warm", func(b *testing.B) {
		s := e.Open(b)
		ctx := ctxOf(b)
		const n = 1000
		for i := range n {
			if err := s.CreateIdentity(ctx, NewIdentity(fmt.Sprintf("id-%d", i), fmt.Sprintf("u%d@example.com", i))); err != nil {
				b.Fatal(err)
			}
		}
		parallel(b, func(i int) error { return second(s.GetIdentityShared(ctx, "id-"+strconv.Itoa(i%n))) })
	})
	b.Run("IdentityCreate", func(b *testing.B) {
		s := e.Open(b)
		ctx := ctxOf(b)
		var seq atomic.Int64
		parallel(b, func(int) error {
			i := seq.Add(1)
			return s.CreateIdentity(ctx, NewIdentity(fmt.Sprintf("id-%d", i), fmt.Sprintf("u%d@example.com", i)))
		})
	})
	inc := func(old []byte) ([]byte, time.Duration, error) {
		n, _ := strconv.Atoi(string(old))
		return []byte(strconv.Itoa(n + 1)), time.Hour, nil
	}
	b.Run("RecordUpdate/spread", func(b *testing.B) {
		s := e.Open(b)
		ctx := ctxOf(b)
		var seq atomic.Int64
		parallel(b, func(int) error {
			return s.UpdateRecord(ctx, "limit", "k"+strconv.FormatInt(seq.Add(1)%1000, 10), inc)
		})
	})
	b.Run("RecordUpdate/hot", func(b *testing.B) {
		s := e.Open(b)
		ctx := ctxOf(b)
		parallel(b, func(int) error { return s.UpdateRecord(ctx, "limit", "hot", inc) })
	})
}

func benchLookup(b *testing.B, s ss.Storage) {
	ctx := ctxOf(b)
	const n = 1000
	hashes := make([][]byte, n)
	now := time.Now()
	for i := range n {
		sess := NewSession(fmt.Sprintf("s%d", i), "id-1", now, time.Hour)
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
		hashes[i] = sess.TokenHash
		if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
			b.Fatal(err)
		}
	}
	parallel(b, func(i int) error { return second(s.GetSessionByTokenHash(ctx, hashes[i%n])) })
}

// parallel times op on every CPU (b.RunParallel) after the setup so far;
// i counts the calls of each goroutine. An error of op fails the run.
func parallel(b *testing.B, op func(i int) error) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if err := op(i); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
