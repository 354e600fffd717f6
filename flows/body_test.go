package flows

import (
	"strings"
	"testing"
	"time"
)

// A password too long to match is a wrong password that costs what a
// wrong password costs: no early answer that would tell an identity with
// a bcrypt hash from an unknown one, and the long input is never hashed.
func TestVerifyOverlongPasswordCostsAWrongPassword(t *testing.T) {
	h, err := newHasher("bcrypt", 10)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := h.compute("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	timeOf := func(pw string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			ok, err := h.verify(ctx, pw, stored)
			if err != nil || ok {
				t.Fatalf("verify(%d bytes) = %v, %v; want a mismatch", len(pw), ok, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong := timeOf("wrong horse battery")
	for _, n := range []int{73, maxPasswordBytes + 1, 1 << 20} {
		if d := timeOf(strings.Repeat("p", n)); d < wrong/3 {
			t.Errorf("a %d-byte password took %v, a wrong password %v: the answer tells them apart", n, d, wrong)
		}
	}
	if got := passwordLimit(stored); got != 72 {
		t.Errorf("passwordLimit(bcrypt) = %d, want 72", got)
	}
	if got := passwordLimit("$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$a2V5"); got != maxPasswordBytes {
		t.Errorf("passwordLimit(argon2id) = %d, want %d", got, maxPasswordBytes)
	}
}
