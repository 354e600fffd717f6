package identity

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/budget"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hasher hashes new passwords with the configured algorithm and verifies
// stored hashes of any supported format.
type Hasher struct {
	algorithm  string // bcrypt | argon2id
	bcryptCost int
	// dummy is a hash of a random password in the configured format, used
	// to spend the same time on unknown identifiers as on wrong passwords.
	dummy string
	// gate bounds concurrent hashing (processHashGate unless a test sets
	// its own).
	gate *budget.Gate
	// overlong stands in for a password too long to match (see verify).
	overlong string
}

// MaxPasswordBytes: no password longer than this is ever hashed. New
// passwords stop at 72 bytes (the policy, bcrypt's limit); this bound is
// for verifying imported hashes of other formats.
const MaxPasswordBytes = 1024

// NewHasher returns a hasher of new passwords with algorithm (bcrypt or
// argon2id; cost is bcrypt's) that verifies every supported format.
func NewHasher(algorithm string, cost int) (*Hasher, error) {
	h := &Hasher{algorithm: algorithm, bcryptCost: cost, gate: processHashGate(), overlong: token.RandomString(24, token.Alnum)}
	d, err := h.compute(token.RandomString(24, token.Alnum))
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

// Hash hashes a new password once the gate grants the memory it needs.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.gate.Acquire(ctx, h.memKiB())
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrHashBusy, err)
	}
	defer release()
	return h.compute(password)
}

// Verify checks password against stored once the gate grants the memory
// the stored hash's parameters need.
func (h *Hasher) Verify(ctx context.Context, password, stored string) (bool, error) {
	release, err := h.gate.Acquire(ctx, hashMemKiB(stored))
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrHashBusy, err)
	}
	defer release()
	if len(password) > passwordLimit(stored) {
		// Too long to ever match: a wrong password. The long input is not
		// hashed, but the comparison still costs what a wrong password
		// costs, so the answer's timing tells nothing (a known identifier
		// with a bcrypt hash must not answer faster than an unknown one,
		// which costs the dummy hash).
		_, _ = VerifyHash(h.overlong, stored)
		return false, nil
	}
	return VerifyHash(password, stored)
}

// VerifyDummy spends on password what verifying a wrong password costs:
// for unknown identifiers, so that the answer's timing does not tell them
// from known ones.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, password, h.dummy)
	return err
}

// UseGate makes h wait for g instead of the process's hashing gate.
func (h *Hasher) UseGate(g *budget.Gate) { h.gate = g }

// passwordLimit is the longest password that can match stored: bcrypt
// compares 72 bytes, and no longer password than maxPasswordBytes is
// accepted anywhere.
func passwordLimit(stored string) int {
	if strings.HasPrefix(stored, "$2") {
		return 72
	}
	return MaxPasswordBytes
}

// memKiB is the memory one new hash takes.
func (h *Hasher) memKiB() int64 {
	if h.algorithm == "argon2id" {
		return ArgonMemory
	}
	return 0
}

// hashMemKiB estimates the memory verifying stored takes (0: negligible,
// as for bcrypt and pbkdf2).
func hashMemKiB(stored string) int64 {
	switch {
	case strings.HasPrefix(stored, "$argon2id$"), strings.HasPrefix(stored, "$argon2i$"):
		var m, t uint32
		var p uint8
		if parts := strings.Split(stored, "$"); len(parts) == 6 {
			if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err == nil {
				return int64(m)
			}
		}
	case strings.HasPrefix(stored, "$scrypt$"):
		if p, err := parseScrypt(stored); err == nil {
			return int64(128) * int64(p.n) * int64(p.r) / 1024
		}
	}
	return 0
}

// Concurrent hashing is bounded: argon2id takes 128 MiB per hash, and a
// login flood must neither exhaust memory nor queue without end. Each hash
// holds a share of a memory budget: its own memory need, and at least
// budget/GOMAXPROCS, so that no more hashes run at once than there are
// CPUs (which bounds bcrypt). A hash that cannot get its share within
// hashWait is refused with ErrHashBusy (503 with Retry-After).

// ErrHashBusy: every hashing slot stayed taken for hashWait.
var ErrHashBusy = errors.New("password hashing is saturated")

const hashWait = 10 * time.Second

// HashersBusy is the answer when ErrHashBusy refused a request.
func HashersBusy() *wire.Error {
	ee := wire.NewError(http.StatusServiceUnavailable, "", "", "The server is busy checking other passwords; this one was not checked. Please try again in a few seconds.")
	ee.WithRetryAfter(5)
	return ee
}

// BusyOnly keeps ErrHashBusy and drops other verification errors (an
// unreadable stored hash counts as a mismatch).
func BusyOnly(err error) error {
	if errors.Is(err, ErrHashBusy) {
		return err
	}
	return nil
}

var (
	hashGateOnce sync.Once
	hashGateProc *budget.Gate
)

// processHashGate is shared by every engine of the process (old and new
// configs during a reload hash on the same machine). Its budget is a
// quarter of GOMEMLIMIT when one is set (Caddy sets it from the cgroup
// limit), else 1 GiB.
func processHashGate() *budget.Gate {
	hashGateOnce.Do(func() {
		kib := int64(1 << 20)
		if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
			kib = min(kib, l/4/1024)
		}
		hashGateProc = budget.New(max(kib, ArgonMemory), runtime.GOMAXPROCS(0), hashWait)
	})
	return hashGateProc
}

const (
	ArgonMemory  = 128 * 1024 // KiB, Kratos's default 128 MB
	argonTime    = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

func argonThreads() uint8 {
	n := 2 * runtime.NumCPU()
	if n > 255 {
		n = 255
	}
	return uint8(n)
}

// compute hashes password in the configured format, ungated.
func (h *Hasher) compute(password string) (string, error) {
	switch h.algorithm {
	case "argon2id":
		salt := token.RandomBytes(argonSaltLen)
		p := argonThreads()
		key := argon2.IDKey([]byte(password), salt, argonTime, ArgonMemory, p, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, ArgonMemory, argonTime, p,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
	default:
		b, err := bcrypt.GenerateFromPassword([]byte(password), h.bcryptCost)
		if err != nil {
			return "", fmt.Errorf("bcrypt: %w", err)
		}
		return string(b), nil
	}
}

// ErrUnknownHash: the stored hash is in no supported format.
var ErrUnknownHash = errors.New("unknown password hash format")

// VerifyHash reports whether password matches stored. Comparisons are constant
// time; bcrypt limits passwords to 72 bytes, longer ones never match.
func VerifyHash(password, stored string) (bool, error) {
	switch {
	case strings.HasPrefix(stored, "$2a$"), strings.HasPrefix(stored, "$2b$"), strings.HasPrefix(stored, "$2y$"):
		if len(password) > 72 {
			return false, nil
		}
		err := bcrypt.CompareHashAndPassword([]byte(stored), []byte(password))
		return err == nil, nil
	case strings.HasPrefix(stored, "$argon2id$"), strings.HasPrefix(stored, "$argon2i$"):
		return verifyArgon2(password, stored)
	}
	return verifyImported(password, stored) // pbkdf2, scrypt: hasher_import.go
}

func verifyArgon2(password, stored string) (bool, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 6 {
		return false, ErrUnknownHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return false, ErrUnknownHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, ErrUnknownHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, ErrUnknownHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 1024 {
		return false, ErrUnknownHash
	}
	keyLen := uint32(len(want)) // #nosec G115 -- bounded to 1024 just above
	var got []byte
	if parts[1] == "argon2id" {
		got = argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
	} else {
		got = argon2.Key([]byte(password), salt, t, m, p, keyLen)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether stored is not in the configured format, so a
// successful login upgrades it (imported hashes).
func (h *Hasher) NeedsRehash(stored string) bool {
	if h.algorithm == "argon2id" {
		return !strings.HasPrefix(stored, "$argon2id$")
	}
	if !strings.HasPrefix(stored, "$2") {
		return true
	}
	cost, err := bcrypt.Cost([]byte(stored))
	return err != nil || cost < h.bcryptCost
}
