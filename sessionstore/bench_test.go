package sessionstore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkGetSessionByTokenHash measures the gate's hot path: a hit in
// the decoded tier, a hit in the compact tier (the decoded tier holds one
// session per shard, so nearly every lookup decodes a record and moves it
// up), and a miss that costs one Badger read plus JSON decoding (caches
// disabled).
func BenchmarkGetSessionByTokenHash(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"hit", 0}, {"compact", 1}, {"miss", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openStore(b, b.TempDir(), Options{NoSync: true, SessionCacheSize: bc.cacheSize})
			ctx := context.Background()
			const n = 1000
			hashes := make([][]byte, n)
			for i := range n {
				sess := newSession(fmt.Sprintf("s%d", i), "id-1", time.Now(), time.Hour)
				if err := s.CreateSession(ctx, sess); err != nil {
					b.Fatal(err)
				}
				hashes[i] = sess.TokenHash
				if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.GetSessionByTokenHash(ctx, hashes[i%n]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkGetIdentityShared: the shared identity from the decoded tier,
// from the compact tier, and read and decoded from Badger.
func BenchmarkGetIdentityShared(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"hit", 0}, {"compact", 1}, {"miss", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openStore(b, b.TempDir(), Options{NoSync: true, SessionCacheSize: bc.cacheSize})
			ctx := context.Background()
			const n = 1000
			ids := make([]string, n)
			for i := range n {
				id := benchIdentity(b, i)
				id.trimmed = false
				if err := s.CreateIdentity(ctx, id); err != nil {
					b.Fatal(err)
				}
				ids[i] = id.ID
				if _, err := s.GetIdentityShared(ctx, id.ID); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.GetIdentityShared(ctx, ids[i%n]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
