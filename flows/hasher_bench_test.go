package flows

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkBcryptCost12 is the raw cost of a password check at the default
// bcrypt cost, the yardstick of the login throughput in docs/benchmarks.md
// (scripts/bench.sh runs it with -cpu 1 on the server's core).
func BenchmarkBcryptCost12(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("Bench-Horse-Battery-42!"), 12)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hash", func(b *testing.B) {
		for b.Loop() {
			if _, err := bcrypt.GenerateFromPassword([]byte("Bench-Horse-Battery-42!"), 12); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compare", func(b *testing.B) {
		for b.Loop() {
			if err := bcrypt.CompareHashAndPassword(hash, []byte("Bench-Horse-Battery-42!")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
