package sessionstore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkGetSessionByTokenHash measures the gate's hot path: a cache hit,
// and a miss that costs one Badger read plus JSON decoding (cache disabled).
func BenchmarkGetSessionByTokenHash(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"hit", 0}, {"miss", -1}} {
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
