package provider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// The provider kinds, as Kratos names them in `provider`.
const (
	KindGeneric   = "generic"
	KindGoogle    = "google"
	KindGitHub    = "github"
	KindMicrosoft = "microsoft"
	KindGitLab    = "gitlab"
	KindApple     = "apple"
	KindDiscord   = "discord"
)

// Kinds lists the supported provider kinds in the order errors name them.
var Kinds = []string{KindGeneric, KindGoogle, KindGitHub, KindMicrosoft, KindGitLab, KindApple, KindDiscord}

// Values of claims_source, subject_source and pkce.
const (
	ClaimsSourceIDToken   = "id_token"
	ClaimsSourceUserinfo  = "userinfo"
	SubjectSourceUserinfo = "userinfo"
	SubjectSourceMe       = "me"
	PKCEAuto              = "auto"
	PKCENever             = "never"
	PKCEForce             = "force"
)

// Config is one provider of selfservice.methods.oidc.config.providers[], with
// Kratos's JSON names so a Kratos provider block decodes as it is. Icon and
// HostedDomains are ours (Kratos has no equivalent) and say so.
type Config struct {
	// ID names the provider in the callback path, in the `provider` node
	// value and in the identity's oidc credential; it never changes once
	// identities are linked to it.
	ID string `json:"id"`
	// Provider is the kind: generic, google, github, microsoft, gitlab,
	// apple or discord.
	Provider     string `json:"provider"`
	Label        string `json:"label,omitempty"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// IssuerURL is required for generic (discovery at
	// <issuer>/.well-known/openid-configuration), optional for gitlab
	// (self-managed instances, default https://gitlab.com).
	IssuerURL string `json:"issuer_url,omitempty"`
	// AuthURL and TokenURL replace the discovered endpoints (generic only;
	// discovery is still needed for the issuer and its keys).
	AuthURL  string   `json:"auth_url,omitempty"`
	TokenURL string   `json:"token_url,omitempty"`
	Scope    []string `json:"scope,omitempty"`
	// MapperURL is the Jsonnet mapper: a path, file://… or base64://…
	// (empty: the default mapper).
	MapperURL string `json:"mapper_url,omitempty"`
	// MicrosoftTenant is common, organizations, consumers, a tenant id or a
	// tenant domain (microsoft only, required).
	MicrosoftTenant string `json:"microsoft_tenant,omitempty"`
	// SubjectSource is userinfo (the ID token's sub, default) or me (the
	// Graph API's /me id) for microsoft.
	SubjectSource     string `json:"subject_source,omitempty"`
	AppleTeamID       string `json:"apple_team_id,omitempty"`
	ApplePrivateKeyID string `json:"apple_private_key_id,omitempty"`
	// ApplePrivateKey is the PEM (PKCS #8, P-256) key that signs the client
	// secret JWT; client_secret is not used for apple.
	ApplePrivateKey string `json:"apple_private_key,omitempty"`
	// RequestedClaims is sent as the `claims` authorization parameter.
	RequestedClaims json.RawMessage `json:"requested_claims,omitempty"`
	// ClaimsSource is id_token (default) or userinfo (generic, gitlab):
	// with userinfo the userinfo response is authoritative and the ID
	// token's claims fill what it lacks; its sub must equal the ID token's.
	ClaimsSource string `json:"claims_source,omitempty"`
	// PKCE is auto (when discovery advertises S256, or the provider is
	// known to support it), never or force.
	PKCE string `json:"pkce,omitempty"`

	// Icon is ours: an image URL (https, or an absolute path on the site)
	// the built-in pages show on the provider's button.
	Icon string `json:"icon,omitempty"`
	// HostedDomains is ours (google only): the Google Workspace domains
	// allowed to sign in. The first is sent as `hd` (or `*` when several),
	// and the verified ID token's hd claim must be one of them; consumer
	// accounts, which carry no hd, are refused.
	HostedDomains []string `json:"hd,omitempty"`
	// AAL2ACRValues and AAL2AMRValues (Kratos's names): the provider's
	// assurance is trusted as aal2 when the verified ID token's acr is one
	// of AAL2ACRValues, or its amr has one of AAL2AMRValues (RFC 8176, e.g.
	// mfa, otp, hwk). Empty: sessions from this provider are aal1.
	AAL2ACRValues []string `json:"aal2_acr_values,omitempty"`
	AAL2AMRValues []string `json:"aal2_amr_values,omitempty"`

	set map[string]bool // options seen by SetOption, to refuse repeats
}

// DisplayName is what the buttons say: the label, or the id (as Kratos).
func (c *Config) DisplayName() string {
	if c.Label != "" {
		return c.Label
	}
	return c.ID
}

// SetOption sets one Caddyfile subdirective of a `provider <id> { … }`
// block by its Kratos name. Single-valued options may appear once; scope,
// hd and the aal2_* lists may repeat and are joined. The error names the
// option; the caller adds the Caddyfile line.
func (c *Config) SetOption(name string, args []string) error {
	list := func(dst *[]string) error {
		if len(args) == 0 {
			return fmt.Errorf("%s needs at least one value", name)
		}
		*dst = append(*dst, args...)
		return nil
	}
	switch name {
	case "scope":
		return list(&c.Scope)
	case "hd":
		return list(&c.HostedDomains)
	case "aal2_acr_values":
		return list(&c.AAL2ACRValues)
	case "aal2_amr_values":
		return list(&c.AAL2AMRValues)
	}
	key := name
	if key == "mapper" {
		key = "mapper_url"
	}
	var dst *string
	switch key {
	case "provider":
		dst = &c.Provider
	case "label":
		dst = &c.Label
	case "client_id":
		dst = &c.ClientID
	case "client_secret":
		dst = &c.ClientSecret
	case "issuer_url":
		dst = &c.IssuerURL
	case "auth_url":
		dst = &c.AuthURL
	case "token_url":
		dst = &c.TokenURL
	case "mapper_url":
		dst = &c.MapperURL
	case "microsoft_tenant":
		dst = &c.MicrosoftTenant
	case "subject_source":
		dst = &c.SubjectSource
	case "apple_team_id":
		dst = &c.AppleTeamID
	case "apple_private_key_id":
		dst = &c.ApplePrivateKeyID
	case "apple_private_key":
		dst = &c.ApplePrivateKey
	case "claims_source":
		dst = &c.ClaimsSource
	case "pkce":
		dst = &c.PKCE
	case "icon":
		dst = &c.Icon
	case "requested_claims":
		if len(args) != 1 {
			return fmt.Errorf("%s takes one JSON object", name)
		}
		if c.set[key] {
			return fmt.Errorf("%s may appear once", name)
		}
		c.RequestedClaims = json.RawMessage(args[0])
		c.mark(key)
		return nil
	default:
		return fmt.Errorf("unknown oidc provider option %q", name)
	}
	if len(args) != 1 {
		return fmt.Errorf("%s takes exactly one value", name)
	}
	if c.set[key] {
		return fmt.Errorf("%s may appear once", name)
	}
	*dst = args[0]
	c.mark(key)
	return nil
}

func (c *Config) mark(key string) {
	if c.set == nil {
		c.set = map[string]bool{}
	}
	c.set[key] = true
}

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	scopePattern  = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`) // RFC 6749 scope-token
	tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)
	domainPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$`)
)

// Validate checks the configuration and fills the defaults (scope,
// claims_source, pkce, subject_source). Errors name the option, e.g.
// `oidc provider "google": client_id is required`.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		if c.ID != "" {
			return fmt.Errorf("oidc provider %q: %w", c.ID, err)
		}
		return fmt.Errorf("oidc provider: %w", err)
	}
	return nil
}

func (c *Config) validate() error {
	if !idPattern.MatchString(c.ID) {
		return fmt.Errorf("id %q must be 1 to 64 letters, digits, '-' or '_' (it is part of the callback path)", c.ID)
	}
	if c.Provider == "" {
		return fmt.Errorf("provider is required (one of %s)", strings.Join(Kinds, ", "))
	}
	if !slices.Contains(Kinds, c.Provider) {
		return fmt.Errorf("provider %q is not supported (one of %s; any other OpenID Connect provider works as generic with issuer_url)", c.Provider, strings.Join(Kinds, ", "))
	}
	if strings.TrimSpace(c.ClientID) == "" {
		return errors.New("client_id is required")
	}
	only := func(opt string, set bool, kinds ...string) error {
		if set && !slices.Contains(kinds, c.Provider) {
			return fmt.Errorf("%s is not used by provider %s (only by %s)", opt, c.Provider, strings.Join(kinds, ", "))
		}
		return nil
	}
	for _, e := range []error{
		only("auth_url", c.AuthURL != "", KindGeneric),
		only("token_url", c.TokenURL != "", KindGeneric),
		only("microsoft_tenant", c.MicrosoftTenant != "", KindMicrosoft),
		only("subject_source", c.SubjectSource != "", KindMicrosoft),
		only("apple_team_id", c.AppleTeamID != "", KindApple),
		only("apple_private_key_id", c.ApplePrivateKeyID != "", KindApple),
		only("apple_private_key", c.ApplePrivateKey != "", KindApple),
		only("hd", len(c.HostedDomains) > 0, KindGoogle),
		only("claims_source userinfo", c.ClaimsSource == ClaimsSourceUserinfo, KindGeneric, KindGitLab),
		only("claims_source", c.ClaimsSource != "", KindGeneric, KindGitLab, KindGoogle, KindMicrosoft, KindApple),
		only("aal2_acr_values", len(c.AAL2ACRValues) > 0, KindGeneric, KindGoogle, KindMicrosoft, KindGitLab, KindApple),
		only("aal2_amr_values", len(c.AAL2AMRValues) > 0, KindGeneric, KindGoogle, KindMicrosoft, KindGitLab, KindApple),
		only("requested_claims", len(c.RequestedClaims) > 0, KindGeneric, KindGoogle, KindMicrosoft, KindGitLab, KindApple),
	} {
		if e != nil {
			return e
		}
	}
	if c.Provider == KindApple {
		if c.ClientSecret != "" {
			return errors.New("client_secret is not used by provider apple: the client secret is a JWT signed with apple_private_key")
		}
		if c.AppleTeamID == "" || c.ApplePrivateKeyID == "" || c.ApplePrivateKey == "" {
			return errors.New("apple needs apple_team_id, apple_private_key_id and apple_private_key")
		}
		if _, err := parseAppleKey(c.ApplePrivateKey); err != nil {
			return fmt.Errorf("apple_private_key: %w", err)
		}
	} else if strings.TrimSpace(c.ClientSecret) == "" {
		return errors.New("client_secret is required")
	}

	switch c.Provider {
	case KindGeneric:
		if c.IssuerURL == "" {
			return errors.New("issuer_url is required for provider generic (its discovery document names the endpoints and keys)")
		}
		if (c.AuthURL == "") != (c.TokenURL == "") {
			return errors.New("auth_url and token_url go together")
		}
	case KindGitLab:
		// issuer_url: a self-managed GitLab; default gitlab.com.
	case KindGoogle:
		if c.IssuerURL != "" && strings.TrimSuffix(c.IssuerURL, "/") != googleIssuer {
			return fmt.Errorf("issuer_url of provider google is %s (leave it out)", googleIssuer)
		}
		c.IssuerURL = ""
	case KindApple:
		if c.IssuerURL != "" && strings.TrimSuffix(c.IssuerURL, "/") != appleIssuer {
			return fmt.Errorf("issuer_url of provider apple is %s (leave it out)", appleIssuer)
		}
		c.IssuerURL = ""
	default:
		if c.IssuerURL != "" {
			return fmt.Errorf("issuer_url is not used by provider %s", c.Provider)
		}
	}
	for _, u := range [][2]string{{"issuer_url", c.IssuerURL}, {"auth_url", c.AuthURL}, {"token_url", c.TokenURL}} {
		if u[1] == "" {
			continue
		}
		if err := checkEndpointURL(u[1]); err != nil {
			return fmt.Errorf("%s: %w", u[0], err)
		}
	}
	if c.Icon != "" {
		if err := checkIconURL(c.Icon); err != nil {
			return fmt.Errorf("icon: %w", err)
		}
	}

	if c.Provider == KindMicrosoft {
		switch {
		case c.MicrosoftTenant == "":
			return errors.New("microsoft_tenant is required for provider microsoft (common, organizations, consumers, a tenant id or a tenant domain)")
		case !tenantPattern.MatchString(c.MicrosoftTenant):
			return fmt.Errorf("microsoft_tenant %q is not common, organizations, consumers, a tenant id or a tenant domain", c.MicrosoftTenant)
		}
		switch c.SubjectSource {
		case "":
			c.SubjectSource = SubjectSourceUserinfo
		case SubjectSourceUserinfo, SubjectSourceMe:
		default:
			return fmt.Errorf("subject_source %q must be userinfo or me", c.SubjectSource)
		}
	}
	switch c.ClaimsSource {
	case "":
		if !c.isOIDC() {
			break // GitHub and Discord: their user API
		}
		c.ClaimsSource = ClaimsSourceIDToken
		if c.Provider == KindGitLab {
			c.ClaimsSource = ClaimsSourceUserinfo // GitLab's ID token lacks the profile (Kratos reads its userinfo)
		}
	case ClaimsSourceIDToken, ClaimsSourceUserinfo:
	default:
		return fmt.Errorf("claims_source %q must be id_token or userinfo", c.ClaimsSource)
	}
	switch c.PKCE {
	case "":
		c.PKCE = PKCEAuto
	case PKCEAuto, PKCENever, PKCEForce:
	default:
		return fmt.Errorf("pkce %q must be auto, never or force", c.PKCE)
	}
	for _, s := range c.Scope {
		if !scopePattern.MatchString(s) {
			return fmt.Errorf("scope %q is not a valid scope token", s)
		}
	}
	if len(c.Scope) == 0 {
		c.Scope = defaultScope(c.Provider)
	}
	if c.isOIDC() && !slices.Contains(c.Scope, "openid") {
		c.Scope = append([]string{"openid"}, c.Scope...)
	}
	if len(c.RequestedClaims) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c.RequestedClaims, &obj); err != nil {
			return fmt.Errorf("requested_claims must be a JSON object (%v)", err)
		}
	}
	for _, d := range c.HostedDomains {
		if !domainPattern.MatchString(d) {
			return fmt.Errorf("hd %q is not a domain name", d)
		}
	}
	for _, v := range append(slices.Clone(c.AAL2ACRValues), c.AAL2AMRValues...) {
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " \t\r\n") {
			return fmt.Errorf("aal2 value %q must be one token without spaces", v)
		}
	}
	return nil
}

// onLoopback reports whether the provider is configured on this machine
// (a local IdP, tests): its client may then dial loopback.
func (c *Config) onLoopback() bool {
	for _, u := range []string{c.IssuerURL, c.AuthURL, c.TokenURL} {
		if u != "" && isLoopbackURL(u) {
			return true
		}
	}
	return false
}

// isOIDC reports whether the kind issues ID tokens (GitHub and Discord are
// plain OAuth 2.0 with a user API).
func (c *Config) isOIDC() bool {
	return c.Provider != KindGitHub && c.Provider != KindDiscord
}

// defaultScope is what a provider without `scope` asks for: enough for the
// default mapper (email, whether it is verified, name).
func defaultScope(kind string) []string {
	switch kind {
	case KindGitHub:
		return []string{"user:email"}
	case KindDiscord:
		return []string{"identify", "email"}
	case KindApple:
		return []string{"openid", "email", "name"}
	default:
		return []string{"openid", "email", "profile"}
	}
}

// ValidateAll validates each provider and refuses two with one id.
func ValidateAll(list []Config) error {
	seen := map[string]bool{}
	for i := range list {
		if err := list[i].Validate(); err != nil {
			return err
		}
		if seen[list[i].ID] {
			return fmt.Errorf("oidc provider %q is configured twice", list[i].ID)
		}
		seen[list[i].ID] = true
	}
	return nil
}

// checkEndpointURL accepts absolute https URLs, and http only on loopback
// (a provider on the same machine, tests): codes, tokens and client secrets
// never cross a network in clear text.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("%q must be an absolute URL without user info, query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http only on loopback)", raw)
	}
	return fmt.Errorf("%q must be an https URL", raw)
}

func isLoopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	// 0.0.0.0 and :: reach this machine's listeners too.
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

func checkIconURL(raw string) error {
	if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
		if _, err := url.Parse(raw); err != nil {
			return fmt.Errorf("%q is not a path: %w", raw, err)
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q must be an https URL or an absolute path", raw)
	}
	return nil
}

// parseAppleKey reads the PKCS #8 P-256 key Apple issues (a .p8 file).
func parseAppleKey(pemText string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" block (the .p8 file Apple issues)")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 EC key")
	}
	return ec, nil
}
