package sessionstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The functions in this file are the rules every engine shares (validation,
// decoding, trimming, the index an identity needs), exported for the
// engines in sub-packages (postgres) so each rule stays in one place.

// MaxModifyAttempts bounds ModifyIdentity's re-reads in every engine.
const MaxModifyAttempts = maxModifyAttempts

// ValidateID rejects an identity or session id that no engine stores: empty,
// or containing '/' (it would make Badger's key prefixes ambiguous).
func ValidateID(kind, id string) error { return validID(kind, id) }

// ValidateSession checks the fields every stored session needs.
func ValidateSession(sess *Session) error { return validSession(sess) }

// ValidateNamespace rejects a record namespace that could overlap another.
func ValidateNamespace(ns string) error { return validNS(ns) }

// DecodeIdentity decodes a stored identity (its JSON), sharing the
// well-known short strings (see intern.go).
func DecodeIdentity(data []byte) (*Identity, error) {
	ident := new(Identity)
	if err := json.Unmarshal(data, ident); err != nil {
		return nil, fmt.Errorf("decode identity: %w", err)
	}
	internIdentity(ident)
	return ident, nil
}

// DecodeSession decodes a stored session (its JSON).
func DecodeSession(data []byte) (*Session, error) {
	sess := new(Session)
	if err := json.Unmarshal(data, sess); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	internSession(sess)
	return sess, nil
}

// ShareIdentity turns an identity (the caller's own copy) into the
// read-only copy GetIdentityShared serves: without the password credential
// and the admin metadata, and marked so that UpdateIdentity refuses it.
func ShareIdentity(id *Identity) *Identity { return sharedIdentity(id) }

// IsShared reports whether id is a trimmed copy from GetIdentityShared,
// which no engine may store.
func (id *Identity) IsShared() bool { return id.trimmed }

// ErrSharedIdentity is returned when a trimmed shared identity is passed
// to UpdateIdentity.
var ErrSharedIdentity = errors.New("refusing to store a shared identity copy (it lacks the password credential and admin metadata)")

// SessionDeadline is when an engine drops a session: ExpiresAt plus
// SessionGrace; zero when the session has no ExpiresAt (kept until
// deleted).
func SessionDeadline(sess *Session) time.Time { return sessionDeadline(sess) }
