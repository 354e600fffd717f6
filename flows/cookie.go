package flows

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// cookieCodec seals the session cookie: AES-256-GCM over the session token
// and its expiry, keyed from the cookie secrets (the first seals, all open,
// for rotation). The cookie is opaque to clients, as Kratos's is.
type cookieCodec struct {
	aeads []cipher.AEAD
	// macKey derives logout tokens (from the first secret).
	macKey []byte
}

func newCookieCodec(secrets [][]byte) (*cookieCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no cookie secret")
	}
	mk := sha256.Sum256(append([]byte("caddy-kratos logout token v1\x00"), secrets[0]...))
	c := &cookieCodec{macKey: mk[:]}
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

var errBadCookie = errors.New("invalid session cookie")

// seal returns the cookie value for token, valid until expires.
func (c *cookieCodec) seal(token string, expires time.Time) string {
	aead := c.aeads[0]
	plain := make([]byte, 8+len(token))
	binary.BigEndian.PutUint64(plain, uint64(expires.Unix()))
	copy(plain[8:], token)
	nonce := randomBytes(aead.NonceSize())
	out := aead.Seal(nonce, nonce, plain, nil)
	return base64.RawURLEncoding.EncodeToString(out)
}

// open returns the token of a cookie value that is authentic and not past
// its embedded expiry.
func (c *cookieCodec) open(v string, now time.Time) (string, error) {
	if len(v) > 512 {
		return "", errBadCookie
	}
	var buf [384]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(v))
	if err != nil {
		return "", errBadCookie
	}
	raw := buf[:n]
	for _, aead := range c.aeads {
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead()+8 {
			return "", errBadCookie
		}
		plain, err := aead.Open(nil, raw[:ns], raw[ns:], nil)
		if err != nil {
			continue
		}
		if exp := int64(binary.BigEndian.Uint64(plain)); now.Unix() > exp {
			return "", errBadCookie
		}
		return string(plain[8:]), nil
	}
	return "", errBadCookie
}
