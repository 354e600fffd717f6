package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Claims is what a mapper sees as std.extVar('claims'): Kratos's claims
// model, field for field and with its JSON names. Empty fields are left out
// (as in Kratos), which is why mappers write
// `{email_verified: false} + std.extVar('claims')`.
type Claims struct {
	Issuer              string `json:"iss,omitempty"`
	Subject             string `json:"sub,omitempty"`
	Object              string `json:"oid,omitempty"`
	Name                string `json:"name,omitempty"`
	GivenName           string `json:"given_name,omitempty"`
	FamilyName          string `json:"family_name,omitempty"`
	LastName            string `json:"last_name,omitempty"`
	MiddleName          string `json:"middle_name,omitempty"`
	Nickname            string `json:"nickname,omitempty"`
	PreferredUsername   string `json:"preferred_username,omitempty"`
	Profile             string `json:"profile,omitempty"`
	Picture             string `json:"picture,omitempty"`
	Website             string `json:"website,omitempty"`
	Email               string `json:"email,omitempty"`
	EmailVerified       bool   `json:"email_verified,omitempty"`
	Gender              string `json:"gender,omitempty"`
	Birthdate           string `json:"birthdate,omitempty"`
	Zoneinfo            string `json:"zoneinfo,omitempty"`
	Locale              string `json:"locale,omitempty"`
	PhoneNumber         string `json:"phone_number,omitempty"`
	PhoneNumberVerified bool   `json:"phone_number_verified,omitempty"`
	UpdatedAt           int64  `json:"updated_at,omitempty"`
	HD                  string `json:"hd,omitempty"`
	Team                string `json:"team,omitempty"`
	Nonce               string `json:"nonce,omitempty"`
	NonceSupported      bool   `json:"nonce_supported,omitempty"`
	// ACR and AMR are the authentication context and methods the provider
	// asserts (acr, amr).
	ACR string   `json:"acr,omitempty"`
	AMR []string `json:"amr,omitempty"`
	// RawClaims holds every claim as the provider sent it (the verified ID
	// token's, merged with userinfo's; the user API's for GitHub and
	// Discord).
	RawClaims map[string]any `json:"raw_claims,omitempty"`
}

// maxClaimsBytes bounds what a provider's token, userinfo or user API may
// hand us; mappers and identities never need more.
const maxClaimsBytes = 256 << 10

// decodeRaw parses a JSON object keeping numbers exact (json.Number), so
// raw_claims reaches the mapper as the provider wrote it.
func decodeRaw(b []byte) (map[string]any, error) {
	if len(b) > maxClaimsBytes {
		return nil, fmt.Errorf("claims of %d bytes exceed %d", len(b), maxClaimsBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("claims are not a JSON object: %w", err)
	}
	if m == nil {
		return nil, errors.New("claims are not a JSON object")
	}
	return m, nil
}

// claimsFromRaw fills the typed claims from a raw object, tolerating what
// providers really send: "true" for true (Apple's email_verified), numbers
// as strings, a locale object (LinkedIn). A value of the wrong type is left
// out of the typed field and stays in RawClaims.
func claimsFromRaw(raw map[string]any) *Claims {
	s := func(k string) string {
		if v, ok := raw[k].(string); ok {
			return v
		}
		return ""
	}
	c := &Claims{
		Issuer: s("iss"), Subject: s("sub"), Object: s("oid"), Name: s("name"),
		GivenName: s("given_name"), FamilyName: s("family_name"), LastName: s("last_name"),
		MiddleName: s("middle_name"), Nickname: s("nickname"), PreferredUsername: s("preferred_username"),
		Profile: s("profile"), Picture: s("picture"), Website: s("website"), Email: s("email"),
		Gender: s("gender"), Birthdate: s("birthdate"), Zoneinfo: s("zoneinfo"), Locale: s("locale"),
		PhoneNumber: s("phone_number"), HD: s("hd"), Team: s("team"), Nonce: s("nonce"),
		EmailVerified:       boolClaim(raw["email_verified"]),
		PhoneNumberVerified: boolClaim(raw["phone_number_verified"]),
		NonceSupported:      boolClaim(raw["nonce_supported"]),
		UpdatedAt:           intClaim(raw["updated_at"]),
		ACR:                 s("acr"),
		AMR:                 stringList(raw["amr"]),
		RawClaims:           raw,
	}
	// A numeric sub (some OAuth APIs) is still the subject.
	if c.Subject == "" {
		if n, ok := raw["sub"].(json.Number); ok {
			c.Subject = n.String()
		}
	}
	return c
}

func boolClaim(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		ok, err := strconv.ParseBool(strings.TrimSpace(b))
		return err == nil && ok
	}
	return false
}

func intClaim(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return int64(f)
		}
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil {
			return i
		}
	}
	return 0
}

// validate is Kratos's check: no subject or issuer, no identity.
func (c *Claims) validate() error {
	if c.Subject == "" {
		return fmt.Errorf("%w: the provider did not return a subject", ErrClaims)
	}
	if c.Issuer == "" {
		return fmt.Errorf("%w: the provider did not return an issuer", ErrClaims)
	}
	return nil
}

// stringList reads a claim that is a string or a list of strings (amr).
func stringList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// base64URLDecode reads base64url with or without padding.
func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
