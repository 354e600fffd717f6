package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
)

// CSRFCookieName is csrf_token_ + hex(sha256(public base URL)).
func CSRFCookieName(base string) string {
	h := sha256.Sum256([]byte(base))
	const hexd = "0123456789abcdef"
	b := make([]byte, 0, 11+64)
	b = append(b, "csrf_token_"...)
	for _, x := range h {
		b = append(b, hexd[x>>4], hexd[x&15])
	}
	return string(b)
}

// MaskCSRF returns base64(pad ‖ token XOR pad): a different string for
// every flow bound to the same raw token (BREACH mitigation across flows;
// a flow keeps its mask on its CSRF node).
func MaskCSRF(raw []byte) string {
	pad := RandomBytes(len(raw))
	out := make([]byte, 2*len(raw))
	copy(out, pad)
	for i := range raw {
		out[len(raw)+i] = raw[i] ^ pad[i]
	}
	return base64.StdEncoding.EncodeToString(out)
}

// IsMaskOf reports whether s is a masked form (not the raw form) of raw.
func IsMaskOf(s string, raw []byte) bool {
	if len(s) != 88 { // base64 of pad ‖ masked token, 2×32 bytes
		return false
	}
	m, err := UnmaskCSRF(s)
	return err == nil && Equal(m, raw)
}

// UnmaskCSRF accepts a masked (64-byte) or raw (32-byte) token.
func UnmaskCSRF(s string) ([]byte, error) {
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

// Equal compares two tokens in constant time.
func Equal(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
