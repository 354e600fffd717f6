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
	var hashes [benchKeys][]byte
	benchTiers(b, func(s *Store, i int) error {
		sess := newSession(fmt.Sprintf("s%d", i), "id-1", time.Now(), time.Hour)
		hashes[i] = sess.TokenHash
		return s.CreateSession(context.Background(), sess)
	}, func(s *Store, i int) error {
		_, err := s.GetSessionByTokenHash(context.Background(), hashes[i])
		return err
	})
}

// BenchmarkGetIdentityShared: the shared identity from the decoded tier,
// from the compact tier, and read and decoded from Badger.
func BenchmarkGetIdentityShared(b *testing.B) {
	var ids [benchKeys]string
	benchTiers(b, func(s *Store, i int) error {
		id := benchIdentity(b, i)
		id.trimmed = false
		ids[i] = id.ID
		return s.CreateIdentity(context.Background(), id)
	}, func(s *Store, i int) error {
		_, err := s.GetIdentityShared(context.Background(), ids[i])
		return err
	})
}

// benchKeys is how many sessions or identities benchTiers stores.
const benchKeys = 1000

// benchTiers stores benchKeys keys with create and reads each once with
// get, then times get of all in parallel: with the decoded tier holding
// them all (hit), with a decoded tier of one entry per shard in front of
// the compact tier (compact), and with no caches (miss).
func benchTiers(b *testing.B, create, get func(s *Store, i int) error) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"hit", 0}, {"compact", 1}, {"miss", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openStore(b, b.TempDir(), Options{NoSync: true, SessionCacheSize: bc.cacheSize})
			for i := range benchKeys {
				if err := create(s, i); err != nil {
					b.Fatal(err)
				}
				if err := get(s, i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if err := get(s, i%benchKeys); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
