package flows

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
)

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString returns n characters drawn uniformly from alphabet
// (rejection sampling, no modulo bias).
func randomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("flows: crypto/rand failed: " + err.Error())
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

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("flows: crypto/rand failed: " + err.Error())
	}
	return b
}

// Token formats, as Kratos ≥ 1.0.
func newSessionToken() string { return "ory_st_" + randomString(32, alnum) }
func newExchangeCode() string { return randomString(64, alnum) }

// hashToken is how tokens are kept at rest: only their SHA-256.
func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// hashTokenTo is hashToken into a caller's array, without allocating for
// tokens up to 128 bytes (every valid shape): the hot path's variant.
func hashTokenTo(t string, out *[32]byte) {
	var buf [128]byte
	if len(t) > len(buf) {
		*out = sha256.Sum256([]byte(t))
		return
	}
	*out = sha256.Sum256(buf[:copy(buf[:], t)])
}

// validTokenShape rejects obviously malformed tokens before any store
// access (also keeps garbage out of the cache).
func validTokenShape[T string | []byte](t T) bool {
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

// --- CSRF double submit (security.md §2) ---

// csrfCookieName is csrf_token_ + hex(sha256(public base URL)).
func csrfCookieName(base string) string {
	h := sha256.Sum256([]byte(base))
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 11+64)
	b = append(b, "csrf_token_"...)
	for _, x := range h {
		b = append(b, hexd[x>>4], hexd[x&15])
	}
	return string(b)
}

// maskCSRF returns base64(pad ‖ token XOR pad): a different string for
// every flow bound to the same raw token (BREACH mitigation across flows;
// a flow keeps its mask, setCSRFNode).
func maskCSRF(raw []byte) string {
	pad := randomBytes(len(raw))
	out := make([]byte, 2*len(raw))
	copy(out, pad)
	for i := range raw {
		out[len(raw)+i] = raw[i] ^ pad[i]
	}
	return base64.StdEncoding.EncodeToString(out)
}

// isMaskOf reports whether s is a masked form (not the raw form) of raw.
func isMaskOf(s string, raw []byte) bool {
	if len(s) != 88 { // base64 of pad ‖ masked token, 2×32 bytes
		return false
	}
	m, err := unmaskCSRF(s)
	return err == nil && equalTokens(m, raw)
}

// unmaskCSRF accepts a masked (64-byte) or raw (32-byte) token.
func unmaskCSRF(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("csrf token is not base64")
	}
	switch len(b) {
	case 32:
		return b, nil
	case 64:
		out := make([]byte, 32)
		for i := range out {
			out[i] = b[i] ^ b[32+i]
		}
		return out, nil
	}
	return nil, errors.New("csrf token has the wrong length")
}

func equalTokens(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
