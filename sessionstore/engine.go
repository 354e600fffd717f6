package sessionstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	return decodeStored(data, "decode identity", internIdentity)
}

// DecodeSession decodes a stored session (its JSON).
func DecodeSession(data []byte) (*Session, error) {
	return decodeStored(data, "decode session", internSession)
}

// decodeStored decodes a stored identity or session and interns its
// strings; a failure is wrapped as what.
func decodeStored[T any](data []byte, what string, intern func(*T)) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	intern(v)
	return v, nil
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

// EncodeSession checks sess (ValidateSession) and returns its stored form.
func EncodeSession(sess *Session) ([]byte, error) {
	if err := validSession(sess); err != nil {
		return nil, err
	}
	return json.Marshal(sess)
}

// ChangeSession applies ModifySession's change to cur, the stored session
// id, by the rules of every engine: the caller's tokenHash (nil: any) must
// still be cur's, else ErrTokenChanged; change may not move the session to
// another id, identity or logout token. It returns the token hash cur had
// (nil when it was not the caller's) and the changed session's stored
// form; change's error is returned as it is.
func ChangeSession(cur *Session, id string, tokenHash []byte, change func(*Session) error) (oldHash, data []byte, err error) {
	if tokenHash != nil && !bytes.Equal(cur.TokenHash, tokenHash) {
		return nil, nil, ErrTokenChanged
	}
	oldHash = cur.TokenHash
	oldIdentity, oldLogout := cur.IdentityID, bytes.Clone(cur.LogoutTokenHash)
	if err := change(cur); err != nil {
		return oldHash, nil, err
	}
	if cur.ID != id || cur.IdentityID != oldIdentity || !bytes.Equal(cur.LogoutTokenHash, oldLogout) {
		return oldHash, nil, errors.New("a session's id, identity and logout token cannot be modified")
	}
	data, err = EncodeSession(cur)
	return oldHash, data, err
}

// SortSessions puts an identity's sessions in ListSessionsByIdentity's
// order: newest IssuedAt first, then by id.
func SortSessions(list []*Session) {
	slices.SortFunc(list, func(a, b *Session) int {
		if c := b.IssuedAt.Compare(a.IssuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Revocable reports whether RevokeSessionsOfIdentity revokes sess at now:
// it is active and not expired.
func Revocable(sess *Session, now time.Time) bool {
	return sess.Active && (sess.ExpiresAt.IsZero() || now.Before(sess.ExpiresAt))
}

// Revoke marks sess inactive and returns its stored form, or nil when it
// was inactive already (nothing to write).
func Revoke(sess *Session) ([]byte, error) {
	if !sess.Active {
		return nil, nil
	}
	sess.Active = false
	return json.Marshal(sess)
}

// EncodeIdentity checks an identity to be stored (ValidateID, the index
// IdentityIndexes gives) and returns that index and its stored form.
func EncodeIdentity(id *Identity) ([]IndexEntry, []byte, error) {
	if err := validID("identity", id.ID); err != nil {
		return nil, nil, err
	}
	idx, err := IdentityIndexes(id)
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(id)
	if err != nil {
		return nil, nil, err
	}
	return idx, data, nil
}

// NextVersion is what UpdateIdentity stores of id: a copy one version on.
func NextVersion(id *Identity) *Identity {
	next := *id
	next.Version = id.Version + 1
	return &next
}

// CheckVersion is UpdateIdentity's optimistic check: a copy read at
// version from may only replace the stored version; else ErrConflict.
func CheckVersion(stored, from uint64) error {
	if stored != from {
		return fmt.Errorf("%w: stored version %d, the update was made from version %d", ErrConflict, stored, from)
	}
	return nil
}

// NewSecret runs Secret's generator, which must give a non-empty secret.
func NewSecret(gen func() ([]byte, error)) ([]byte, error) {
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if len(fresh) == 0 {
		return nil, errors.New("generator returned an empty secret")
	}
	return fresh, nil
}
