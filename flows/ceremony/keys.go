package ceremony

import (
	"bytes"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Keys is the config of a "webauthn" or "passkey" credential: the user
// handle and the registered keys (Kratos's shape).
type Keys struct {
	UserHandle  []byte `json:"user_handle"`
	Credentials []Key  `json:"credentials"`
}

// Key is one registered authenticator: its credential id and public key,
// sign count, flags, name and whether it signs in without a password.
type Key struct {
	ID                []byte           `json:"id"`
	PublicKey         []byte           `json:"public_key"`
	AttestationType   string           `json:"attestation_type"`
	AttestationFormat string           `json:"attestation_format,omitempty"`
	Authenticator     KeyAuthenticator `json:"authenticator"`
	Transports        []string         `json:"transports,omitempty"`
	Flags             KeyFlags         `json:"flags"`
	DisplayName       string           `json:"display_name"`
	AddedAt           time.Time        `json:"added_at"`
	IsPasswordless    bool             `json:"is_passwordless"`
}

// KeyAuthenticator is what the authenticator reported about itself.
type KeyAuthenticator struct {
	AAGUID       []byte `json:"aaguid"`
	SignCount    uint32 `json:"sign_count"`
	CloneWarning bool   `json:"clone_warning"`
}

// KeyFlags are the authenticator data flags, as Kratos stores them.
type KeyFlags struct {
	UserPresent    bool `json:"user_present"`
	UserVerified   bool `json:"user_verified"`
	BackupEligible bool `json:"backup_eligible"`
	BackupState    bool `json:"backup_state"`
	Raw            byte `json:"raw"`
}

// Lib is the key as go-webauthn's credential.
func (k Key) Lib() webauthn.Credential {
	// The booleans are what Kratos stores (imported credentials have no raw
	// byte).
	fl := protocol.AuthenticatorFlags(k.Flags.Raw)
	for _, b := range []struct {
		set  bool
		flag protocol.AuthenticatorFlags
	}{{k.Flags.UserPresent, protocol.FlagUserPresent}, {k.Flags.UserVerified, protocol.FlagUserVerified},
		{k.Flags.BackupEligible, protocol.FlagBackupEligible}, {k.Flags.BackupState, protocol.FlagBackupState}} {
		if b.set {
			fl |= b.flag
		}
	}
	c := webauthn.Credential{
		ID: k.ID, PublicKey: k.PublicKey, AttestationType: k.AttestationType, AttestationFormat: k.AttestationFormat,
		Flags:         webauthn.NewCredentialFlags(fl),
		Authenticator: webauthn.Authenticator{AAGUID: k.Authenticator.AAGUID, SignCount: k.Authenticator.SignCount},
	}
	for _, t := range k.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// KeyFromLib is a new key from a credential go-webauthn verified.
func KeyFromLib(c *webauthn.Credential, displayName string, addedAt time.Time, passwordless bool) Key {
	k := Key{
		ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		DisplayName: displayName, AddedAt: addedAt, IsPasswordless: passwordless,
	}
	k.Authenticator = KeyAuthenticator{AAGUID: c.Authenticator.AAGUID, SignCount: c.Authenticator.SignCount}
	k.SetFlags(c.Flags)
	for _, t := range c.Transport {
		k.Transports = append(k.Transports, string(t))
	}
	return k
}

// SetFlags records the flags of the key's latest use.
func (k *Key) SetFlags(f webauthn.CredentialFlags) {
	k.Flags = KeyFlags{UserPresent: f.UserPresent, UserVerified: f.UserVerified,
		BackupEligible: f.BackupEligible, BackupState: f.BackupState, Raw: byte(f.ProtocolValue())}
}

// User is a webauthn.User over stored keys.
type User struct {
	// Handle is the user handle (WebAuthn's user id).
	Handle []byte
	// Name is the account name authenticators show; Display its display
	// name (default: Name).
	Name    string
	Display string
	Keys    []Key
	cache   []webauthn.Credential
}

// WebAuthnID is the user handle.
func (u *User) WebAuthnID() []byte { return u.Handle }

// WebAuthnName is the account name.
func (u *User) WebAuthnName() string { return u.Name }

// WebAuthnDisplayName is the display name, else the account name.
func (u *User) WebAuthnDisplayName() string {
	if u.Display != "" {
		return u.Display
	}
	return u.Name
}

// WebAuthnCredentials are the user's keys as go-webauthn has them.
func (u *User) WebAuthnCredentials() []webauthn.Credential {
	if u.cache == nil {
		u.cache = make([]webauthn.Credential, 0, len(u.Keys))
		for _, k := range u.Keys {
			u.cache = append(u.cache, k.Lib())
		}
	}
	return u.cache
}

// KeysOf decodes ident's credential of type typ (webauthn or passkey).
func KeysOf(ident *sessionstore.Identity, typ string) (*Keys, bool) {
	if ident == nil {
		return nil, false
	}
	c, ok := ident.Credentials[typ]
	if !ok {
		return nil, false
	}
	var cfg Keys
	if err := identity.DecodeConfig(c.Config, &cfg); err != nil {
		return nil, false
	}
	return &cfg, true
}

// Descriptors are keys as the allow/exclude lists of ceremony options.
func Descriptors(keys []Key) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(keys))
	for _, k := range keys {
		c := k.Lib()
		out = append(out, c.Descriptor())
	}
	return out
}

// HasKey reports whether cfg holds the key with credential id id.
func HasKey(cfg *Keys, id []byte) bool {
	for _, k := range cfg.Credentials {
		if bytes.Equal(k.ID, id) {
			return true
		}
	}
	return false
}

// MFAKeys are the second-factor keys of cfg.
func MFAKeys(cfg *Keys) []Key {
	var out []Key
	for _, k := range cfg.Credentials {
		if !k.IsPasswordless {
			out = append(out, k)
		}
	}
	return out
}

// PasswordlessKeys are the first-factor keys of cfg.
func PasswordlessKeys(cfg *Keys) []Key {
	var out []Key
	for _, k := range cfg.Credentials {
		if k.IsPasswordless {
			out = append(out, k)
		}
	}
	return out
}
