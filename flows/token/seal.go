package token

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Credential secrets at rest (TOTP keys, lookup codes, pending ceremony
// state kept on flows) are sealed with AES-256-GCM. The keys are derived
// from the cipher secrets when they are configured, else from the cookie
// secrets: the configured ones, or the secret generated once and persisted
// in the store. The first root seals; every root opens, so listing an old
// secret after a new one — or adding cipher secrets to a deployment that
// sealed under its cookie secrets — keeps existing credentials readable
// (they are re-sealed under the current root when next used). A copy of the
// store alone therefore does not reveal TOTP seeds or recovery codes when
// the secrets are configured outside it.

const sealPrefix = "sealed.v1."

// ErrUnsealable: no configured secret opens the sealed value.
var ErrUnsealable = errors.New("sealed value cannot be opened with any configured secret")

// Sealer seals and opens credential secrets under the root secrets.
type Sealer struct {
	// configured are the cipher secrets, then the configured cookie
	// secrets.
	configured [][]byte
	// persisted reads the cookie secret generated once and kept in the
	// store; nil when cookie secrets are configured.
	persisted func(context.Context) ([]byte, error)
}

// NewSealer returns the sealer of these secrets. persisted is asked for
// the store's generated cookie secret when no cookie secret is configured.
func NewSealer(cipherSecrets, cookieSecrets []string, persisted func(context.Context) ([]byte, error)) *Sealer {
	s := &Sealer{}
	for _, c := range cipherSecrets {
		s.configured = append(s.configured, []byte(c))
	}
	for _, c := range cookieSecrets {
		s.configured = append(s.configured, []byte(c))
	}
	if len(cookieSecrets) == 0 {
		s.persisted = persisted
	}
	return s
}

// roots returns the root secrets, primary first: the cipher secrets,
// then the cookie secrets (configured or persisted).
func (s *Sealer) roots(ctx context.Context) ([][]byte, error) {
	out := make([][]byte, 0, len(s.configured)+1)
	out = append(out, s.configured...)
	if s.persisted == nil {
		return out, nil
	}
	sec, err := s.persisted(ctx)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return append(out, sec), nil
}

// PurposeKey derives the 32-byte key for purpose from root.
func PurposeKey(root []byte, purpose string) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte("caddy-kratos credential v1\x00" + purpose))
	return m.Sum(nil)
}

func gcmFor(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plain for purpose, bound to aad (an identity or flow id,
// so a sealed value cannot be moved to another record).
func (s *Sealer) Seal(ctx context.Context, purpose, aad string, plain []byte) (string, error) {
	roots, err := s.roots(ctx)
	if err != nil {
		return "", err
	}
	aead, err := gcmFor(PurposeKey(roots[0], purpose))
	if err != nil {
		return "", err
	}
	nonce := RandomBytes(aead.NonceSize())
	out := aead.Seal(nonce, nonce, plain, []byte(aad))
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by seal. stale reports that it was sealed
// under an older secret (callers may re-seal it with the current one).
func (s *Sealer) Open(ctx context.Context, purpose, aad, sealed string) (plain []byte, stale bool, err error) {
	if !strings.HasPrefix(sealed, sealPrefix) {
		return nil, false, ErrUnsealable
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(sealPrefix):])
	if err != nil {
		return nil, false, ErrUnsealable
	}
	roots, err := s.roots(ctx)
	if err != nil {
		return nil, false, err
	}
	for i, root := range roots {
		aead, err := gcmFor(PurposeKey(root, purpose))
		if err != nil {
			return nil, false, err
		}
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead() {
			return nil, false, ErrUnsealable
		}
		if p, err := aead.Open(nil, raw[:ns], raw[ns:], []byte(aad)); err == nil {
			return p, i > 0, nil
		}
	}
	return nil, false, ErrUnsealable
}

// MACs returns the hex HMAC of msg for purpose under every root secret,
// primary first: stored values are made with the first, checked against
// all.
func (s *Sealer) MACs(ctx context.Context, purpose, msg string) ([]string, error) {
	roots, err := s.roots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(roots))
	for _, root := range roots {
		m := hmac.New(sha256.New, PurposeKey(root, purpose))
		m.Write([]byte(msg))
		out = append(out, hex.EncodeToString(m.Sum(nil)))
	}
	return out, nil
}
