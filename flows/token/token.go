package token

import (
	"crypto/rand"
	"crypto/sha256"
)

// Alnum is the alphabet of tokens and codes.
const Alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomString returns n characters drawn uniformly from alphabet
// (rejection sampling, no modulo bias).
func RandomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("token: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if int(b) < limit {
				out = append(out, alphabet[int(b)%len(alphabet)])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out)
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("token: crypto/rand failed: " + err.Error())
	}
	return b
}

// NewSessionToken is a new session token (ory_st_…, Kratos ≥ 1.0's
// format).
func NewSessionToken() string { return "ory_st_" + RandomString(32, Alnum) }

// NewExchangeCode is a new session token exchange code.
func NewExchangeCode() string { return RandomString(64, Alnum) }

// Hash is how tokens are kept at rest: only their SHA-256.
func Hash(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// HashTo is hashToken into a caller's array, without allocating for
// tokens up to 128 bytes (every valid shape): the hot path's variant.
func HashTo(t string, out *[32]byte) {
	var buf [128]byte
	if len(t) > len(buf) {
		*out = sha256.Sum256([]byte(t))
		return
	}
	*out = sha256.Sum256(buf[:copy(buf[:], t)])
}

// ValidShape rejects obviously malformed tokens before any store
// access (also keeps garbage out of the cache).
func ValidShape[T string | []byte](t T) bool {
	if len(t) < 16 || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
