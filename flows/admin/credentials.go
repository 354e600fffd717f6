package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// importCredentials is identityWithCredentials, the credentials of a
// create or update body. Only password can be imported; the other kinds
// are recognised so that they are refused with a clear reason rather than
// as unknown fields.
type importCredentials struct {
	Password     *importPassword `json:"password"`
	OIDC         json.RawMessage `json:"oidc"`
	SAML         json.RawMessage `json:"saml"`
	TOTP         json.RawMessage `json:"totp"`
	LookupSecret json.RawMessage `json:"lookup_secret"`
	WebAuthn     json.RawMessage `json:"webauthn"`
	Passkey      json.RawMessage `json:"passkey"`
}

type importPassword struct {
	Config importPasswordConfig `json:"config"`
}

type importPasswordConfig struct {
	HashedPassword           string `json:"hashed_password"`
	Password                 string `json:"password"`
	UsePasswordMigrationHook bool   `json:"use_password_migration_hook"`
}

// importCredentialsInto applies the credentials of a create/update body:
// a password (plaintext, hashed with the configured hasher, or an imported
// hash in a supported format) replaces the password credential.
func (a *API) importCredentialsInto(ident *sessionstore.Identity, traits map[string]any, c *importCredentials, now time.Time) *wire.Error {
	if c == nil {
		return nil
	}
	for name, raw := range map[string]json.RawMessage{"oidc": c.OIDC, "saml": c.SAML, "totp": c.TOTP,
		"lookup_secret": c.LookupSecret, "webauthn": c.WebAuthn, "passkey": c.Passkey} {
		if len(raw) > 0 && string(raw) != "null" {
			return wire.BadRequest(fmt.Sprintf("Importing %s credentials is not supported; only password credentials can be imported.", name))
		}
	}
	if c.Password == nil {
		return nil
	}
	cfg := c.Password.Config
	if cfg.UsePasswordMigrationHook {
		return wire.BadRequest("use_password_migration_hook is not supported: import the password hash or the password itself.")
	}
	hashed := cfg.HashedPassword
	if cfg.Password != "" {
		if len(cfg.Password) > 72 && a.cfg.PasswordHasher == "bcrypt" {
			return wire.BadRequest("The password is longer than 72 bytes, which bcrypt cannot hash.")
		}
		if len(cfg.Password) > identity.MaxPasswordBytes {
			return wire.BadRequest(fmt.Sprintf("The password is longer than %d bytes.", identity.MaxPasswordBytes))
		}
		// The admin API has no client to go away; the gate still bounds
		// concurrent hashing.
		h, err := a.hasher.Hash(context.Background(), cfg.Password)
		if errors.Is(err, identity.ErrHashBusy) {
			return identity.HashersBusy()
		}
		if err != nil {
			return wire.StoreError(err, "unable to hash the password")
		}
		hashed = h
	}
	if hashed == "" {
		return wire.BadRequest("credentials.password.config needs a password or a hashed_password.")
	}
	if err := identity.ValidateImportedHash(hashed); err != nil {
		if errors.Is(err, identity.ErrUnknownHash) {
			return wire.BadRequest("The imported password does not match any known hash format. For more information see https://www.ory.sh/dr/2")
		}
		return wire.BadRequest("The imported password hash is malformed: " + err.Error())
	}
	identifiers := a.schemas.Of(ident).Identifiers(traits, "password")
	if len(identifiers) == 0 {
		return wire.BadRequest("The identity has no password identifier: no trait marked as a password identifier in the identity schema has a value.")
	}
	cred := sessionstore.Credential{Type: "password", Identifiers: identifiers,
		Config: identity.EncodeConfig(identity.PasswordConfig{HashedPassword: hashed}), CreatedAt: now, UpdatedAt: now}
	if old, ok := ident.Credentials["password"]; ok && !old.CreatedAt.IsZero() {
		cred.CreatedAt = old.CreatedAt
	}
	if ident.Credentials == nil {
		ident.Credentials = map[string]sessionstore.Credential{}
	}
	ident.Credentials["password"] = cred
	return nil
}
