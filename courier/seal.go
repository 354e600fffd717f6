package courier

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
)

// Queued mails carry codes and links until the SMTP server takes them. With
// body secrets configured (Config.BodySecrets: the deployment's cipher or
// cookie secrets, given outside the storage), their text and HTML are kept
// sealed with AES-256-GCM, bound to the message id, so a copy of the
// storage directory does not show pending codes. Without them the bodies
// are stored as they are (the only secret would live in the same store).

// bodyKeys derives one AES-256 key per secret, the current one first.
func bodyKeys(secrets []string) ([]cipher.AEAD, error) {
	var out []cipher.AEAD
	for _, s := range secrets {
		if s == "" {
			return nil, errors.New("empty body secret")
		}
		key := sha256.Sum256([]byte("caddy-kratos outbox body v1\x00" + s))
		block, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		out = append(out, aead)
	}
	return out, nil
}

type sealedBody struct {
	Text string `json:"t"`
	HTML string `json:"h,omitempty"`
}

var errBodyUnsealable = errors.New("courier: the queued mail cannot be opened with the configured secrets")

// sealBody moves rec's text and HTML into rec.Sealed.
func (c *Courier) sealBody(rec *record) error {
	if len(c.bodyKeys) == 0 {
		return nil
	}
	plain, err := json.Marshal(sealedBody{Text: rec.Text, HTML: rec.HTML})
	if err != nil {
		return err
	}
	aead := c.bodyKeys[0]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	rec.Sealed = base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(rec.ID)))
	rec.Text, rec.HTML = "", ""
	return nil
}

// openBody restores rec's text and HTML from rec.Sealed (any configured
// secret opens it, for rotation).
func (c *Courier) openBody(rec *record) error {
	if rec.Sealed == "" {
		return nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(rec.Sealed)
	if err != nil {
		return errBodyUnsealable
	}
	for _, aead := range c.bodyKeys {
		ns := aead.NonceSize()
		if len(raw) < ns+aead.Overhead() {
			return errBodyUnsealable
		}
		plain, err := aead.Open(nil, raw[:ns], raw[ns:], []byte(rec.ID))
		if err != nil {
			continue
		}
		var b sealedBody
		if err := json.Unmarshal(plain, &b); err != nil {
			return errBodyUnsealable
		}
		rec.Text, rec.HTML = b.Text, b.HTML
		return nil
	}
	return errBodyUnsealable
}
