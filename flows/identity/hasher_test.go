package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/budget"
)

// A password too long to match is a wrong password that costs what a
// wrong password costs: no early answer that would tell an identity with
// a bcrypt hash from an unknown one, and the long input is never hashed.
func TestVerifyOverlongPasswordCostsAWrongPassword(t *testing.T) {
	h, err := NewHasher("bcrypt", 10)
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
			ok, err := h.Verify(ctx, pw, stored)
			if err != nil || ok {
				t.Fatalf("verify(%d bytes) = %v, %v; want a mismatch", len(pw), ok, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong := timeOf("wrong horse battery")
	for _, n := range []int{73, MaxPasswordBytes + 1, 1 << 20} {
		if d := timeOf(strings.Repeat("p", n)); d < wrong/3 {
			t.Errorf("a %d-byte password took %v, a wrong password %v: the answer tells them apart", n, d, wrong)
		}
	}
	if got := passwordLimit(stored); got != 72 {
		t.Errorf("passwordLimit(bcrypt) = %d, want 72", got)
	}
	if got := passwordLimit("$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$a2V5"); got != MaxPasswordBytes {
		t.Errorf("passwordLimit(argon2id) = %d, want %d", got, MaxPasswordBytes)
	}
}

// A real hasher goes through its gate: with every slot taken, hash and
// verify give up after the gate's wait with ErrHashBusy.
func TestHasherWaitsBoundedForTheGate(t *testing.T) {
	h, err := NewHasher("bcrypt", 4)
	if err != nil {
		t.Fatal(err)
	}
	h.gate = budget.New(ArgonMemory, 1, 50*time.Millisecond)
	release, err := h.gate.Acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := h.Hash(context.Background(), "a-password"); !errors.Is(err, ErrHashBusy) {
		t.Fatalf("hash with the gate full: %v, want ErrHashBusy", err)
	}
	if _, err := h.Verify(context.Background(), "a-password", h.dummy); !errors.Is(err, ErrHashBusy) {
		t.Fatalf("verify with the gate full: %v, want ErrHashBusy", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %s for a full gate", d)
	}
	release()
	if _, err := h.Hash(context.Background(), "a-password"); err != nil {
		t.Fatalf("hash with the gate free: %v", err)
	}
}
