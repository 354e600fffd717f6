package flows

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

var errUnsealable = errors.New("sealed value cannot be opened with any configured secret")

// sealRoots returns the root secrets, primary first: the cipher secrets,
// then the cookie secrets (configured or persisted).
func (e *Engine) sealRoots(ctx context.Context) ([][]byte, error) {
	out := make([][]byte, 0, len(e.cfg.CipherSecrets)+len(e.cfg.CookieSecrets)+1)
	for _, s := range e.cfg.CipherSecrets {
		out = append(out, []byte(s))
	}
	if len(e.cfg.CookieSecrets) > 0 {
		for _, s := range e.cfg.CookieSecrets {
			out = append(out, []byte(s))
		}
		return out, nil
	}
	sec, err := e.store.Secret(ctx, "cookie", func() ([]byte, error) {
		return nil, errors.New("the persisted cookie secret is missing")
	})
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	return append(out, sec), nil
}

// purposeKey derives the 32-byte key for purpose from root.
func purposeKey(root []byte, purpose string) []byte {
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

// seal encrypts plain for purpose, bound to aad (an identity or flow id,
// so a sealed value cannot be moved to another record).
func (e *Engine) seal(ctx context.Context, purpose, aad string, plain []byte) (string, error) {
	roots, err := e.sealRoots(ctx)
	if err != nil {
		return "", err
	}
	aead, err := gcmFor(purposeKey(roots[0], purpose))
	if err != nil {
		return "", err
	}
	nonce := randomBytes(aead.NonceSize())
	out := aead.Seal(nonce, nonce, plain, []byte(aad))
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// open decrypts a value made by seal. stale reports that it was sealed
// under an older secret (callers may re-seal it with the current one).
func (e *Engine) open(ctx context.Context, purpose, aad, sealed string) (plain []byte, stale bool, err error) {
	if !strings.HasPrefix(sealed, sealPrefix) {
		return nil, false, errUnsealable
	}
	raw, err := base64.RawURLEncoding.DecodeString(sealed[len(sealPrefix):])
	if err != nil {
		return nil, false, errUnsealable
	}
	roots, err := e.sealRoots(ctx)
	if err != nil {
		return nil, false, err
	}
	for i, root := range roots {
		aead, err := gcmFor(purposeKey(root, purpose))
		if err != nil {
			return nil, false, err
		}
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead() {
			return nil, false, errUnsealable
		}
		if p, err := aead.Open(nil, raw[:ns], raw[ns:], []byte(aad)); err == nil {
			return p, i > 0, nil
		}
	}
	return nil, false, errUnsealable
}

// macs returns the hex HMAC of msg for purpose under every root secret,
// primary first: stored values are made with the first, checked against
// all.
func (e *Engine) macs(ctx context.Context, purpose, msg string) ([]string, error) {
	roots, err := e.sealRoots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(roots))
	for _, root := range roots {
		m := hmac.New(sha256.New, purposeKey(root, purpose))
		m.Write([]byte(msg))
		out = append(out, hex.EncodeToString(m.Sum(nil)))
	}
	return out, nil
}
