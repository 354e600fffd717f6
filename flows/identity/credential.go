package identity

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// NormalizeIdentifier lower-cases and trims identifiers, as Kratos does for
// email-like identifiers.
func NormalizeIdentifier(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// PasswordConfig is the stored configuration of a password credential.
type PasswordConfig struct {
	HashedPassword string `json:"hashed_password"`
}

// DecodeConfig decodes a credential's stored configuration into v (an
// empty one leaves v as it is).
func DecodeConfig(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// EncodeConfig is the stored form of a credential's configuration.
func EncodeConfig(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// SetCredential stores c as ident's credential of type typ.
func SetCredential(ident *sessionstore.Identity, typ string, c sessionstore.Credential) {
	if ident.Credentials == nil {
		ident.Credentials = map[string]sessionstore.Credential{}
	}
	ident.Credentials[typ] = c
}

// HasIdentifier reports whether ident has a typ credential whose
// identifiers include identifier: the one that method's sign-in looks up.
func HasIdentifier(ident *sessionstore.Identity, typ, identifier string) bool {
	c, ok := ident.Credentials[typ]
	if !ok {
		return false
	}
	want := NormalizeIdentifier(identifier)
	return slices.ContainsFunc(c.Identifiers, func(s string) bool { return NormalizeIdentifier(s) == want })
}

// HasCredential reports whether ident has a credential of type typ.
func HasCredential(ident *sessionstore.Identity, typ string) bool {
	if ident == nil {
		return false
	}
	_, ok := ident.Credentials[typ]
	return ok
}
