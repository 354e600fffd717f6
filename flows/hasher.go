package flows

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// hasher hashes new passwords with the configured algorithm and verifies
// stored hashes of any supported format.
type hasher struct {
	algorithm  string // bcrypt | argon2id
	bcryptCost int
	// dummy is a hash of a random password in the configured format, used
	// to spend the same time on unknown identifiers as on wrong passwords.
	dummy string
}

func newHasher(algorithm string, cost int) (*hasher, error) {
	h := &hasher{algorithm: algorithm, bcryptCost: cost}
	d, err := h.hash(randomString(24, alnum))
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

const (
	argonMemory  = 128 * 1024 // KiB, Kratos's default 128 MB
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

func (h *hasher) hash(password string) (string, error) {
	switch h.algorithm {
	case "argon2id":
		salt := randomBytes(argonSaltLen)
		p := argonThreads()
		key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, p, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, p,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
	default:
		b, err := bcrypt.GenerateFromPassword([]byte(password), h.bcryptCost)
		if err != nil {
			return "", fmt.Errorf("bcrypt: %w", err)
		}
		return string(b), nil
	}
}

var errUnknownHash = errors.New("unknown password hash format")

// verify reports whether password matches stored. Comparisons are constant
// time; bcrypt limits passwords to 72 bytes, longer ones never match.
func verify(password, stored string) (bool, error) {
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
		return false, errUnknownHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return false, errUnknownHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, errUnknownHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errUnknownHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 1024 {
		return false, errUnknownHash
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

// needsRehash reports whether stored is not in the configured format, so a
// successful login upgrades it (imported hashes).
func (h *hasher) needsRehash(stored string) bool {
	if h.algorithm == "argon2id" {
		return !strings.HasPrefix(stored, "$argon2id$")
	}
	if !strings.HasPrefix(stored, "$2") {
		return true
	}
	cost, err := bcrypt.Cost([]byte(stored))
	return err != nil || cost < h.bcryptCost
}
