package identity

import (
	"crypto/pbkdf2"
	"crypto/sha1" // #nosec G505 -- SHA-1 only verifies imported legacy PBKDF2 hashes, which are upgraded at the next login
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Imported password hashes (createIdentity / batchPatchIdentities with
// credentials.password.config.hashed_password). Besides the formats this
// engine writes (bcrypt, argon2id) and argon2i, which VerifyHash handles
// itself, these are accepted, as Kratos accepts them:
//
//	$pbkdf2-<sha1|sha224|sha256|sha384|sha512>$i=<iterations>,l=<key length>$<salt>$<key>
//	    Kratos's PHC form; salt and key in base64 (unpadded or padded)
//	$pbkdf2[-<digest>]$<iterations>$<salt>$<key>
//	    passlib's form; salt and key in passlib's "adapted" base64 ('.' for '+')
//	$scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<key>
//	    Kratos's form: ln is the cost N itself (ln=16384). A value below 32
//	    cannot be a usable N and is read as log2(N), as passlib and most
//	    PHC writers mean it (ln=14 → N=16384). Salt and key in base64.
//
// Every imported hash is upgraded to the configured hasher on the next
// successful login (Hasher.NeedsRehash is true for any hash that is not in
// the configured format).
//
// Parameters are bounded at import so that a hostile or broken export
// cannot make a later login allocate gigabytes or spin for minutes.

var errHashParams = errors.New("password hash parameters out of the supported range")

const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 1 << 30 // bytes: 128 * N * r
	maxScryptP          = 64
	maxArgonMemoryKiB   = 1 << 20 // 1 GiB
	maxArgonTime        = 64
	maxKeyLen           = 512
)

// verifyImported verifies the formats VerifyHash does not know itself;
// errUnknownHash for anything else.
func verifyImported(password, stored string) (bool, error) {
	switch {
	case strings.HasPrefix(stored, "$pbkdf2"):
		p, err := parsePBKDF2(stored)
		if err != nil {
			return false, err
		}
		got, err := pbkdf2.Key(p.digest, password, p.salt, p.iterations, len(p.key))
		if err != nil {
			return false, nil
		}
		return subtle.ConstantTimeCompare(got, p.key) == 1, nil
	case strings.HasPrefix(stored, "$scrypt$"):
		p, err := parseScrypt(stored)
		if err != nil {
			return false, err
		}
		got, err := scrypt.Key([]byte(password), p.salt, p.n, p.r, p.p, len(p.key))
		if err != nil {
			return false, nil
		}
		return subtle.ConstantTimeCompare(got, p.key) == 1, nil
	}
	return false, ErrUnknownHash
}

// ValidateImportedHash checks that stored is a hash this engine can verify
// and that its parameters are within bounds. It returns errUnknownHash for
// unknown formats and errHashParams (wrapped) for malformed ones.
func ValidateImportedHash(stored string) error {
	switch {
	case strings.HasPrefix(stored, "$2a$"), strings.HasPrefix(stored, "$2b$"), strings.HasPrefix(stored, "$2y$"):
		if _, err := bcrypt.Cost([]byte(stored)); err != nil {
			return fmt.Errorf("%w: bcrypt: %v", errHashParams, err)
		}
		if len(stored) != 60 {
			return fmt.Errorf("%w: bcrypt hashes are 60 characters long", errHashParams)
		}
		return nil
	case strings.HasPrefix(stored, "$argon2id$"), strings.HasPrefix(stored, "$argon2i$"):
		return validateArgon2(stored)
	case strings.HasPrefix(stored, "$pbkdf2"):
		_, err := parsePBKDF2(stored)
		return err
	case strings.HasPrefix(stored, "$scrypt$"):
		_, err := parseScrypt(stored)
		return err
	}
	return ErrUnknownHash
}

func validateArgon2(stored string) error {
	parts := strings.Split(stored, "$")
	if len(parts) != 6 {
		return fmt.Errorf("%w: argon2: want $argon2id$v=19$m=…,t=…,p=…$salt$key", errHashParams)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return fmt.Errorf("%w: argon2: version must be v=%d", errHashParams, argon2.Version)
	}
	kv, err := phcParams(parts[3])
	if err != nil {
		return fmt.Errorf("%w: argon2: %v", errHashParams, err)
	}
	m, t, p := kv["m"], kv["t"], kv["p"]
	if m < 8 || m > maxArgonMemoryKiB || t < 1 || t > maxArgonTime || p < 1 || p > 255 || len(kv) != 3 {
		return fmt.Errorf("%w: argon2: m=%d,t=%d,p=%d", errHashParams, m, t, p)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(key) == 0 || len(key) > maxKeyLen {
		return fmt.Errorf("%w: argon2: salt and key must be unpadded base64", errHashParams)
	}
	return nil
}

type pbkdf2Params struct {
	digest     func() hash.Hash
	iterations int
	salt, key  []byte
}

var pbkdf2Digests = map[string]func() hash.Hash{
	"sha1": sha1.New, "sha224": sha256.New224, "sha256": sha256.New,
	"sha384": sha512.New384, "sha512": sha512.New,
}

func parsePBKDF2(stored string) (*pbkdf2Params, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 5 || parts[0] != "" {
		return nil, fmt.Errorf("%w: pbkdf2: want $pbkdf2-<digest>$i=…,l=…$salt$key", errHashParams)
	}
	name := strings.TrimPrefix(parts[1], "pbkdf2")
	digestName := "sha1" // passlib's plain $pbkdf2$
	if name != "" {
		if name[0] != '-' {
			return nil, ErrUnknownHash
		}
		digestName = name[1:]
	}
	digest, ok := pbkdf2Digests[digestName]
	if !ok {
		return nil, fmt.Errorf("%w: pbkdf2: unsupported digest %q", errHashParams, digestName)
	}
	p := &pbkdf2Params{digest: digest}
	var err error
	if strings.HasPrefix(parts[2], "i=") {
		// Kratos: i=<iterations>,l=<key length>, standard base64.
		kv, perr := phcParams(parts[2])
		if perr != nil {
			return nil, fmt.Errorf("%w: pbkdf2: %v", errHashParams, perr)
		}
		p.iterations = kv["i"]
		if p.salt, err = decodePHCBase64(parts[3]); err != nil {
			return nil, fmt.Errorf("%w: pbkdf2: salt is not base64", errHashParams)
		}
		if p.key, err = decodePHCBase64(parts[4]); err != nil {
			return nil, fmt.Errorf("%w: pbkdf2: key is not base64", errHashParams)
		}
		if l, ok := kv["l"]; ok && l != len(p.key) {
			return nil, fmt.Errorf("%w: pbkdf2: l=%d but the key has %d bytes", errHashParams, l, len(p.key))
		}
	} else {
		// passlib: <rounds>$<ab64 salt>$<ab64 key>.
		n, perr := strconv.Atoi(parts[2])
		if perr != nil {
			return nil, fmt.Errorf("%w: pbkdf2: iterations %q", errHashParams, parts[2])
		}
		p.iterations = n
		ab64 := func(s string) ([]byte, error) {
			return base64.RawStdEncoding.DecodeString(strings.ReplaceAll(strings.TrimRight(s, "="), ".", "+"))
		}
		if p.salt, err = ab64(parts[3]); err != nil {
			return nil, fmt.Errorf("%w: pbkdf2: salt is not base64", errHashParams)
		}
		if p.key, err = ab64(parts[4]); err != nil {
			return nil, fmt.Errorf("%w: pbkdf2: key is not base64", errHashParams)
		}
	}
	if p.iterations < 1 || p.iterations > maxPBKDF2Iterations || len(p.salt) == 0 || len(p.key) == 0 || len(p.key) > maxKeyLen {
		return nil, fmt.Errorf("%w: pbkdf2: iterations=%d, salt %d bytes, key %d bytes", errHashParams, p.iterations, len(p.salt), len(p.key))
	}
	return p, nil
}

type scryptParams struct {
	n, r, p   int
	salt, key []byte
}

func parseScrypt(stored string) (*scryptParams, error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 5 || parts[0] != "" {
		return nil, fmt.Errorf("%w: scrypt: want $scrypt$ln=…,r=…,p=…$salt$key", errHashParams)
	}
	kv, err := phcParams(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: scrypt: %v", errHashParams, err)
	}
	ln, okN := kv["ln"]
	r, okR := kv["r"]
	p, okP := kv["p"]
	if !okN || !okR || !okP || len(kv) != 3 {
		return nil, fmt.Errorf("%w: scrypt: want ln, r and p", errHashParams)
	}
	n := ln
	if ln > 0 && ln < 32 {
		n = 1 << ln // log2 form
	}
	if n < 2 || bits.OnesCount(uint(n)) != 1 {
		return nil, fmt.Errorf("%w: scrypt: N=%d is not a power of two", errHashParams, n)
	}
	if r < 1 || p < 1 || p > maxScryptP || uint64(n)*uint64(r)*128 > maxScryptMemory {
		return nil, fmt.Errorf("%w: scrypt: N=%d, r=%d, p=%d", errHashParams, n, r, p)
	}
	sp := &scryptParams{n: n, r: r, p: p}
	if sp.salt, err = decodePHCBase64(parts[3]); err != nil || len(sp.salt) == 0 {
		return nil, fmt.Errorf("%w: scrypt: salt is not base64", errHashParams)
	}
	if sp.key, err = decodePHCBase64(parts[4]); err != nil || len(sp.key) == 0 || len(sp.key) > maxKeyLen {
		return nil, fmt.Errorf("%w: scrypt: key is not base64", errHashParams)
	}
	return sp, nil
}

// phcParams parses "a=1,b=2" into integers; every value must be a
// non-negative decimal and every name unique.
func phcParams(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parameter %q is not name=value", f)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("parameter %q repeated", k)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("parameter %s=%q is not a number", k, v)
		}
		out[k] = n
	}
	return out, nil
}

// decodePHCBase64 accepts standard base64 with or without padding.
func decodePHCBase64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
