package provider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
)

func appleKeyPEM(t testing.TB) (string, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), k
}

func TestConfigValidate(t *testing.T) {
	applePEM, _ := appleKeyPEM(t)
	rsaDER := func() string {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}()
	ok := func(c Config) Config { return c }
	generic := Config{ID: "corp", Provider: "generic", ClientID: "c", ClientSecret: "s", IssuerURL: "https://idp.example.com"}
	with := func(f func(*Config)) Config { c := generic; f(&c); return c }
	cases := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"valid generic", ok(generic), ""},
		{"no id", with(func(c *Config) { c.ID = "" }), `id "" must be`},
		{"id with slash", with(func(c *Config) { c.ID = "a/b" }), `id "a/b" must be`},
		{"id dot dot", with(func(c *Config) { c.ID = ".." }), `id ".." must be`},
		{"no provider", with(func(c *Config) { c.Provider = "" }), "provider is required"},
		{"unknown provider", with(func(c *Config) { c.Provider = "facebook" }), `provider "facebook" is not supported`},
		{"no client_id", with(func(c *Config) { c.ClientID = " " }), "client_id is required"},
		{"no client_secret", with(func(c *Config) { c.ClientSecret = "" }), "client_secret is required"},
		{"generic without issuer", with(func(c *Config) { c.IssuerURL = "" }), "issuer_url is required for provider generic"},
		{"http issuer off loopback", with(func(c *Config) { c.IssuerURL = "http://idp.example.com" }), "must use https (http only on loopback)"},
		{"http issuer on loopback", with(func(c *Config) { c.IssuerURL = "http://127.0.0.1:4444/" }), ""},
		{"issuer with query", with(func(c *Config) { c.IssuerURL = "https://idp.example.com/?a=b" }), "without user info, query or fragment"},
		{"ftp issuer", with(func(c *Config) { c.IssuerURL = "ftp://idp.example.com" }), "must be an https URL"},
		{"auth_url alone", with(func(c *Config) { c.AuthURL = "https://idp.example.com/auth" }), "auth_url and token_url go together"},
		{"auth_url on google", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", AuthURL: "https://x.example.com"}, "auth_url is not used by provider google"},
		{"google foreign issuer", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", IssuerURL: "https://evil.example.com"}, "issuer_url of provider google is https://accounts.google.com"},
		{"google canonical issuer", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", IssuerURL: "https://accounts.google.com/"}, ""},
		{"github issuer", Config{ID: "gh", Provider: "github", ClientID: "c", ClientSecret: "s", IssuerURL: "https://github.example.com"}, "issuer_url is not used by provider github"},
		{"microsoft no tenant", Config{ID: "ms", Provider: "microsoft", ClientID: "c", ClientSecret: "s"}, "microsoft_tenant is required"},
		{"microsoft bad tenant", Config{ID: "ms", Provider: "microsoft", ClientID: "c", ClientSecret: "s", MicrosoftTenant: "../x"}, `microsoft_tenant "../x" is not`},
		{"microsoft subject_source", Config{ID: "ms", Provider: "microsoft", ClientID: "c", ClientSecret: "s", MicrosoftTenant: "common", SubjectSource: "graph"}, `subject_source "graph" must be userinfo or me`},
		{"tenant on google", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", MicrosoftTenant: "common"}, "microsoft_tenant is not used by provider google"},
		{"apple without key", Config{ID: "a", Provider: "apple", ClientID: "c", AppleTeamID: "T"}, "apple needs apple_team_id, apple_private_key_id and apple_private_key"},
		{"apple with secret", Config{ID: "a", Provider: "apple", ClientID: "c", ClientSecret: "s", AppleTeamID: "T", ApplePrivateKeyID: "K", ApplePrivateKey: applePEM}, "client_secret is not used by provider apple"},
		{"apple garbage key", Config{ID: "a", Provider: "apple", ClientID: "c", AppleTeamID: "T", ApplePrivateKeyID: "K", ApplePrivateKey: "nope"}, `apple_private_key: not a PEM "PRIVATE KEY" block`},
		{"apple P-384 key", Config{ID: "a", Provider: "apple", ClientID: "c", AppleTeamID: "T", ApplePrivateKeyID: "K", ApplePrivateKey: rsaDER}, "apple_private_key: not a P-256 EC key"},
		{"apple valid", Config{ID: "a", Provider: "apple", ClientID: "c", AppleTeamID: "T", ApplePrivateKeyID: "K", ApplePrivateKey: applePEM}, ""},
		{"claims_source bad", with(func(c *Config) { c.ClaimsSource = "both" }), `claims_source "both" must be id_token or userinfo`},
		{"claims_source on github", Config{ID: "gh", Provider: "github", ClientID: "c", ClientSecret: "s", ClaimsSource: "userinfo"}, "claims_source userinfo is not used by provider github"},
		{"claims_source id_token on github", Config{ID: "gh", Provider: "github", ClientID: "c", ClientSecret: "s", ClaimsSource: "id_token"}, "claims_source is not used by provider github"},
		{"claims_source userinfo on google", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", ClaimsSource: "userinfo"}, "claims_source userinfo is not used by provider google (only by generic, gitlab)"},
		{"claims_source id_token on google", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", ClaimsSource: "id_token"}, ""},
		{"pkce bad", with(func(c *Config) { c.PKCE = "sometimes" }), `pkce "sometimes" must be auto, never or force`},
		{"scope with quote", with(func(c *Config) { c.Scope = []string{`a"b`} }), `scope "a\"b" is not a valid scope token`},
		{"requested_claims not object", with(func(c *Config) { c.RequestedClaims = []byte(`[1]`) }), "requested_claims must be a JSON object"},
		{"hd on github", Config{ID: "gh", Provider: "github", ClientID: "c", ClientSecret: "s", HostedDomains: []string{"example.com"}}, "hd is not used by provider github"},
		{"hd not a domain", Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s", HostedDomains: []string{"exa mple"}}, `hd "exa mple" is not a domain name`},
		{"aal2 on discord", Config{ID: "d", Provider: "discord", ClientID: "c", ClientSecret: "s", AAL2AMRValues: []string{"mfa"}}, "aal2_amr_values is not used by provider discord"},
		{"aal2 value with space", with(func(c *Config) { c.AAL2ACRValues = []string{"a b"} }), `aal2 value "a b" must be one token`},
		{"icon javascript", with(func(c *Config) { c.Icon = "javascript:alert(1)" }), "icon: \"javascript:alert(1)\" must be an https URL or an absolute path"},
		{"icon protocol-relative", with(func(c *Config) { c.Icon = "//evil.example.com/x.svg" }), "must be an https URL or an absolute path"},
		{"icon path", with(func(c *Config) { c.Icon = "/static/corp.svg" }), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if c.ID != "" && idPattern.MatchString(c.ID) && !strings.HasPrefix(err.Error(), `oidc provider "`+c.ID+`": `) {
				t.Fatalf("error %q does not name the provider", err)
			}
		})
	}
}

var testApplePEM = func() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}()

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		cfg                Config
		scope              []string
		claimsSource, pkce string
	}{
		{Config{ID: "g", Provider: "google", ClientID: "c", ClientSecret: "s"}, []string{"openid", "email", "profile"}, "id_token", "auto"},
		{Config{ID: "gh", Provider: "github", ClientID: "c", ClientSecret: "s"}, []string{"user:email"}, "", "auto"},
		{Config{ID: "d", Provider: "discord", ClientID: "c", ClientSecret: "s"}, []string{"identify", "email"}, "", "auto"},
		{Config{ID: "ap", Provider: "apple", ClientID: "c", AppleTeamID: "T", ApplePrivateKeyID: "K", ApplePrivateKey: testApplePEM}, []string{"openid", "email", "name"}, "id_token", "auto"},
		{Config{ID: "ms", Provider: "microsoft", ClientID: "c", ClientSecret: "s", MicrosoftTenant: "organizations"}, []string{"openid", "email", "profile"}, "id_token", "auto"},
		{Config{ID: "gl", Provider: "gitlab", ClientID: "c", ClientSecret: "s"}, []string{"openid", "email", "profile"}, "userinfo", "auto"},
		// openid is added to an OpenID Connect provider's scope, as Kratos.
		{Config{ID: "x", Provider: "generic", ClientID: "c", ClientSecret: "s", IssuerURL: "https://i.example.com", Scope: []string{"email"}, PKCE: "never"}, []string{"openid", "email"}, "id_token", "never"},
	} {
		c := tc.cfg
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Scope, tc.scope) || c.ClaimsSource != tc.claimsSource || c.PKCE != tc.pkce {
			t.Errorf("%s: scope %v claims_source %q pkce %q, want %v %q %q", c.Provider, c.Scope, c.ClaimsSource, c.PKCE, tc.scope, tc.claimsSource, tc.pkce)
		}
		// Validating again (caddymodule, then New) changes nothing.
		again := c
		if err := again.Validate(); err != nil || !slices.Equal(again.Scope, c.Scope) || again.ClaimsSource != c.ClaimsSource || again.IssuerURL != c.IssuerURL {
			t.Errorf("%s: second Validate: %v %+v", c.Provider, err, again)
		}
	}
	ms := Config{ID: "ms", Provider: "microsoft", ClientID: "c", ClientSecret: "s", MicrosoftTenant: "common"}
	if err := ms.Validate(); err != nil || ms.SubjectSource != "userinfo" {
		t.Fatalf("microsoft: %v, subject_source %q", err, ms.SubjectSource)
	}
	if got := (&Config{ID: "corp"}).DisplayName(); got != "corp" {
		t.Fatalf("DisplayName without label = %q", got)
	}
	if got := (&Config{ID: "corp", Label: "Corp SSO"}).DisplayName(); got != "Corp SSO" {
		t.Fatalf("DisplayName = %q", got)
	}
}

func TestSetOption(t *testing.T) {
	var c Config
	c.ID = "corp"
	for _, o := range [][]string{
		{"provider", "generic"}, {"client_id", "c"}, {"client_secret", "s"}, {"issuer_url", "https://idp.example.com"},
		{"scope", "openid", "email"}, {"scope", "profile"}, {"mapper", "/etc/m.jsonnet"}, {"label", "Corp"},
		{"requested_claims", `{"id_token":{"email":null}}`}, {"aal2_amr_values", "mfa", "hwk"},
	} {
		if err := c.SetOption(o[0], o[1:]); err != nil {
			t.Fatalf("%v: %v", o, err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Scope, []string{"openid", "email", "profile"}) || c.MapperURL != "/etc/m.jsonnet" || !slices.Equal(c.AAL2AMRValues, []string{"mfa", "hwk"}) {
		t.Fatalf("config %+v", c)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"client_id", []string{"again"}, "client_id may appear once"},
		{"mapper_url", []string{"x"}, "mapper_url may appear once"}, // mapper and mapper_url are one option
		{"label", nil, "label takes exactly one value"},
		{"label", []string{"a", "b"}, "label takes exactly one value"},
		{"scope", nil, "scope needs at least one value"},
		{"requested_claims", []string{"{}"}, "requested_claims may appear once"},
		{"tenant", []string{"x"}, `unknown oidc provider option "tenant"`},
	} {
		if err := c.SetOption(tc.name, tc.args); err == nil || err.Error() != tc.want {
			t.Errorf("SetOption(%s, %v) = %v, want %q", tc.name, tc.args, err, tc.want)
		}
	}
}

func TestValidateAllDuplicate(t *testing.T) {
	p := Config{ID: "corp", Provider: "generic", ClientID: "c", ClientSecret: "s", IssuerURL: "https://idp.example.com"}
	err := ValidateAll([]Config{p, p})
	if err == nil || err.Error() != `oidc provider "corp" is configured twice` {
		t.Fatalf("err = %v", err)
	}
}
