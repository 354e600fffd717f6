package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// CookieCodec seals the session cookie: AES-256-GCM over the session token
// and its expiry, keyed from the cookie secrets (the first seals, all open,
// for rotation). The cookie is opaque to clients, as Kratos's is.
type CookieCodec struct {
	aeads []cipher.AEAD
	// macKey derives logout tokens (from the first secret).
	macKey []byte
}

// NewCookieCodec returns the codec of secrets (at least one).
func NewCookieCodec(secrets [][]byte) (*CookieCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no cookie secret")
	}
	mk := sha256.Sum256(append([]byte("caddy-kratos logout token v1\x00"), secrets[0]...))
	c := &CookieCodec{macKey: mk[:]}
	for _, s := range secrets {
		key := sha256.Sum256(append([]byte("caddy-kratos session cookie v1\x00"), s...))
		block, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

// ErrBadCookie: the cookie does not open, or is past its expiry.
var ErrBadCookie = errors.New("invalid session cookie")

// MACKey is the key logout tokens (and, without cipher secrets, code
// MACs) are derived with: from the first cookie secret.
func (c *CookieCodec) MACKey() []byte { return c.macKey }

// Seal returns the cookie value for token, valid until expires.
func (c *CookieCodec) Seal(token string, expires time.Time) string {
	aead := c.aeads[0]
	plain := make([]byte, 8+len(token))
	binary.BigEndian.PutUint64(plain, uint64(expires.Unix())) // #nosec G115 -- a unix time, positive until the year 292277026596
	copy(plain[8:], token)
	nonce := RandomBytes(aead.NonceSize())
	out := aead.Seal(nonce, nonce, plain, nil)
	return base64.RawURLEncoding.EncodeToString(out)
}

// Open returns the token of a cookie value that is authentic and not past
// its embedded expiry.
func (c *CookieCodec) Open(v string, now time.Time) (string, error) {
	if len(v) > 512 {
		return "", ErrBadCookie
	}
	var buf [384]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(v))
	if err != nil {
		return "", ErrBadCookie
	}
	raw := buf[:n]
	for _, aead := range c.aeads {
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead()+8 {
			return "", ErrBadCookie
		}
		plain, err := aead.Open(nil, raw[:ns], raw[ns:], nil)
		if err != nil {
			continue
		}
		if exp := int64(binary.BigEndian.Uint64(plain)); now.Unix() > exp { // #nosec G115 -- the value was authenticated by AES-GCM and written by seal
			return "", ErrBadCookie
		}
		return string(plain[8:]), nil
	}
	return "", ErrBadCookie
}

// cookieScratch is the working memory of OpenHash: the decoded cookie at
// [0:384), the plaintext at [384:768), a copy of the cookie value at
// [768:1280). Pooled, so opening a cookie allocates nothing.
type cookieScratch [1280]byte

var cookieScratchPool = sync.Pool{New: func() any { return new(cookieScratch) }}

// OpenHash is open for the hot path: it checks the cookie like open but
// returns the SHA-256 of the token (in *hash) and the cookie's embedded
// expiry (unix seconds) instead of the token, and allocates nothing. A
// token of the wrong shape is ErrBadCookie.
func (c *CookieCodec) OpenHash(v string, now time.Time, hash *[32]byte) (int64, error) {
	if len(v) > 512 {
		return 0, ErrBadCookie
	}
	sc := cookieScratchPool.Get().(*cookieScratch)
	defer cookieScratchPool.Put(sc)
	src := sc[768 : 768+copy(sc[768:], v)]
	n, err := base64.RawURLEncoding.Decode(sc[:384], src)
	if err != nil {
		return 0, ErrBadCookie
	}
	raw := sc[:n]
	for _, aead := range c.aeads {
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead()+8 {
			return 0, ErrBadCookie
		}
		// Decrypt into the scratch's plaintext area, not in place: a failed
		// Open clears its output and the next secret needs the ciphertext.
		plain, err := aead.Open(sc[384:384], raw[:ns], raw[ns:], nil)
		if err != nil {
			continue
		}
		exp := int64(binary.BigEndian.Uint64(plain)) // #nosec G115 -- the value was authenticated by AES-GCM and written by seal
		if now.Unix() > exp {
			return 0, ErrBadCookie
		}
		tok := plain[8:]
		if !ValidShape(tok) {
			return 0, ErrBadCookie
		}
		*hash = sha256.Sum256(tok)
		return exp, nil
	}
	return 0, ErrBadCookie
}

// CookieValue returns the value of the first cookie called name in the
// request's Cookie headers, as http.Request.Cookie would (surrounding
// quotes removed, cookies with invalid bytes skipped), without parsing
// the other cookies or allocating.
func CookieValue(h http.Header, name string) (string, bool) {
	var first string
	found := false
	EachCookie(h, name, func(v string) bool {
		first, found = v, true
		return false
	})
	return first, found
}

// EachCookie calls fn with the value of every cookie called name in the
// request's Cookie headers, in order, until fn returns false. Browsers send
// several cookies of one name when they were set for different domains or
// paths — a cookie tossed from a sibling subdomain, say — and put the one
// with the longest path first, so the first is not always the right one.
func EachCookie(h http.Header, name string, fn func(v string) bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			k, v, _ := strings.Cut(part, "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) && !fn(v) {
				return
			}
		}
	}
}

// validCookieValue is net/http's cookie-octet check.
func validCookieValue(v string) bool {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}
