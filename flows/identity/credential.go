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

// HasPasswordHash reports whether ident has a password to sign in with.
func HasPasswordHash(ident *sessionstore.Identity) bool {
	c, ok := ident.Credentials["password"]
	if !ok {
		return false
	}
	var pc PasswordConfig
	return DecodeConfig(c.Config, &pc) == nil && pc.HashedPassword != ""
}

// SignInHints lists how ident signs in: its first-factor credential types
// (Kratos's names, in a fixed order) and the social sign-in providers it
// is linked to.
func SignInHints(ident *sessionstore.Identity) (types, providers []string) {
	types, providers = []string{}, []string{}
	if HasPasswordHash(ident) {
		types = append(types, "password")
	}
	if c, ok := ident.Credentials["oidc"]; ok {
		types = append(types, "oidc")
		var cc struct {
			Providers []struct {
				Provider string `json:"provider"`
			} `json:"providers"`
		}
		_ = DecodeConfig(c.Config, &cc)
		for _, p := range cc.Providers {
			if !slices.Contains(providers, p.Provider) {
				providers = append(providers, p.Provider)
			}
		}
	}
	for _, t := range []string{"passkey", "webauthn", "code"} {
		if HasCredential(ident, t) {
			types = append(types, t)
		}
	}
	return types, providers
}

// DuplicateHintText is the text of 4000028: the identifier is taken, and
// how its account signs in.
func DuplicateHintText(identifier string, types, providers []string) string {
	if identifier == "" {
		identifier = "an email, phone, or username"
	}
	s := "You tried signing in with " + identifier + " which is already in use by another account."
	var ways []string
	for _, t := range types {
		switch t {
		case "password":
			ways = append(ways, "your password")
		case "oidc":
			ways = append(ways, "social sign in")
		case "webauthn":
			ways = append(ways, "your PassKey or a security key")
		case "passkey":
			ways = append(ways, "your passkey")
		case "code":
			ways = append(ways, "a code sent to you")
		}
	}
	if len(ways) > 1 {
		ways[len(ways)-1] = "or " + ways[len(ways)-1]
	}
	if len(ways) > 0 {
		s += " You can sign in using " + strings.Join(ways, ", ") + "."
	}
	if len(providers) > 0 {
		s += " You can sign in using one of the following social sign in providers: " + strings.Join(providers, ", ") + "."
	}
	return s
}
