package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

func TestFlowsConfigMapsEveryOption(t *testing.T) {
	t.Setenv("CK_TEST_SECRET", "from-the-environment-0123456789")
	t.Setenv("CK_TEST_HOST", "auth.example.com")
	schema := filepath.Join(t.TempDir(), "identity.schema.json")
	if err := os.WriteFile(schema, []byte(`{"$id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	a := &App{
		PublicURL:      "https://{env.CK_TEST_HOST}/",
		IdentitySchema: schema,
		IdentitySchemas: []*IdentitySchemaEntry{
			{ID: "email", Path: "file://" + schema},
			{ID: "inline", Path: "base64://eyIkaWQiOiJ5In0=", SelfserviceSelectable: true},
		},
		DefaultIdentitySchema:   "email",
		Dev:                     true,
		DefaultReturnURL:        "https://app.example.com/",
		AllowedReturnURLs:       []string{"https://app.example.com/", "https://*.example.org/"},
		UIURLs:                  map[string]string{"login": "https://ui.example.com/login", "error": "https://ui.example.com/error"},
		UIPrefix:                "/auth-ui/",
		SessionLifespan:         caddy.Duration(720 * time.Hour),
		FlowLifespan:            caddy.Duration(30 * time.Minute),
		PrivilegedSessionMaxAge: caddy.Duration(15 * time.Minute),
		CookieName:              "my_session",
		CookieDomain:            ".example.com",
		CookiePath:              "/",
		CookieSameSite:          "strict",
		CookieSecrets:           []string{"{env.CK_TEST_SECRET}", "an-older-secret-still-valid"},
		CipherSecrets:           []string{"{env.CK_TEST_SECRET}-cipher"},
		RegistrationStyle:       "unified",
		DisableRegistration:     true,
		PasswordHasher:          "argon2id",
		BcryptCost:              10,

		Recovery:                   "link",
		Verification:               "code",
		CodeLifespan:               caddy.Duration(15 * time.Minute),
		CodeMaxSubmissions:         3,
		NotifyUnknownRecipients:    true,
		UseContinueWithTransitions: true,
		RequireVerifiedAddress:     true,
		LoginStyle:                 "identifier_first",
		MitigateAccountEnumeration: true,
		Methods:                    []string{"totp", "lookup_secret", "webauthn", "passkey", "code"},
		RequiredAAL:                "aal1",
		TOTPIssuer:                 "{env.CK_TEST_HOST}",
		WebAuthn: &WebAuthnConfig{
			RPID:          "example.com",
			RPDisplayName: "Example",
			RPOrigins:     []string{"https://{env.CK_TEST_HOST}", "https://app.example.com"},
			Passwordless:  true,
		},
		Code: &CodeConfig{Passwordless: true, MFA: true},
		// The courier options do not reach flows.Config (see courierConfig).
		SMTP: "smtp://127.0.0.1:2525/",
		From: "Login <no-reply@example.com>",
	}
	got, err := a.flowsConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	want := flows.Config{
		PublicURL:               "https://auth.example.com/",
		Dev:                     true,
		DefaultReturnURL:        "https://app.example.com/",
		AllowedReturnURLs:       []string{"https://app.example.com/", "https://*.example.org/"},
		UIURLs:                  map[string]string{"login": "https://ui.example.com/login", "error": "https://ui.example.com/error"},
		UIPrefix:                "/auth-ui/",
		SessionLifespan:         720 * time.Hour,
		FlowLifespan:            30 * time.Minute,
		PrivilegedSessionMaxAge: 15 * time.Minute,
		CookieName:              "my_session",
		CookieDomain:            ".example.com",
		CookiePath:              "/",
		CookieSameSite:          http.SameSiteStrictMode,
		CookieSecrets:           []string{"from-the-environment-0123456789", "an-older-secret-still-valid"},
		CipherSecrets:           []string{"from-the-environment-0123456789-cipher"},
		DisableRegistration:     true,
		RegistrationStyle:       "unified",
		PasswordHasher:          "argon2id",
		BcryptCost:              10,
		IdentitySchema:          []byte(`{"$id":"x"}`),
		IdentitySchemas: []flows.IdentitySchemaConfig{
			{ID: "email", Raw: []byte(`{"$id":"x"}`)},
			{ID: "inline", Raw: []byte(`{"$id":"y"}`), SelfserviceSelectable: true},
		},
		DefaultIdentitySchemaID: "email",

		RecoveryEnabled:            true,
		RecoveryUse:                "link",
		VerificationEnabled:        true,
		VerificationUse:            "code",
		CodeLifespan:               15 * time.Minute,
		CodeMaxSubmissions:         3,
		NotifyUnknownRecipients:    true,
		UseContinueWithTransitions: true,
		RequireVerifiedAddress:     true,
		LoginStyle:                 "identifier_first",
		MitigateAccountEnumeration: true,
		Methods:                    map[string]bool{"totp": true, "lookup_secret": true, "webauthn": true, "passkey": true, "code": true},
		RequiredAAL:                "aal1",
		TOTPIssuer:                 "auth.example.com",
		WebAuthnRPID:               "example.com",
		WebAuthnRPDisplayName:      "Example",
		WebAuthnRPOrigins:          []string{"https://auth.example.com", "https://app.example.com"},
		WebAuthnPasswordless:       true,
		CodePasswordless:           true,
		CodeMFA:                    true,
	}
	got = withoutFuncs(t, got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flowsConfig:\n got %+v\nwant %+v", got, want)
	}
}

func TestFlowsConfigDefaultsStayZero(t *testing.T) {
	got, err := (&App{PublicURL: "https://auth.example.com/"}).flowsConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	got = withoutFuncs(t, got)
	if !reflect.DeepEqual(got, flows.Config{PublicURL: "https://auth.example.com/"}) {
		t.Errorf("an empty app should leave every default to the engine, got %+v", got)
	}
}

// withoutFuncs checks that flowsConfig always wires Caddy's client IP
// into the engine and clears that function, which reflect.DeepEqual cannot
// compare.
func withoutFuncs(t *testing.T, c flows.Config) flows.Config {
	t.Helper()
	if c.ClientIP == nil {
		t.Error("flowsConfig did not set ClientIP")
	}
	c.ClientIP = nil
	return c
}

// TestFlowsConfigRequiresPublicURL: a JSON config without public_url (or
// with one that a placeholder empties) does not load; nothing falls back
// to the request's Host header.
func TestFlowsConfigRequiresPublicURL(t *testing.T) {
	t.Setenv("CK_TEST_EMPTY", "")
	for app, want := range map[*App]string{
		{}:                                   "public_url is required",
		{Recovery: "code"}:                   "public_url is required",
		{PublicURL: "{env.CK_TEST_EMPTY}"}:   `public_url: "{env.CK_TEST_EMPTY}" is empty after replacing placeholders`,
		{PublicURL: "https://auth.example/"}: "",
	} {
		_, err := app.flowsConfig(caddy.NewReplacer())
		switch {
		case want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", app, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%+v: err = %v, want one containing %q", app, err, want)
		}
	}
}

func TestFlowsConfigRejectsBadJSONValues(t *testing.T) {
	t.Setenv("CK_TEST_EMPTY", "")
	for _, tc := range []struct {
		app  App
		want string
	}{
		{App{PublicURL: "auth.example.com"}, "public_url"},
		{App{PublicURL: "{env.CK_TEST_EMPTY}/x"}, "public_url"},
		{App{DefaultReturnURL: "ftp://x/"}, "default_return_url"},
		{App{AllowedReturnURLs: []string{"/relative"}}, "allowed_return_urls"},
		{App{AllowedReturnURLs: []string{"javascript://example.com/%0aalert(1)"}}, "allowed_return_urls"},
		{App{AllowedReturnURLs: []string{"exp://*.example.com/"}}, "allowed_return_urls"},
		{App{UIURLs: map[string]string{"logout": "https://x/"}}, "ui_urls"},
		{App{UIURLs: map[string]string{"login": "login.html"}}, "ui_urls.login"},
		{App{UIPrefix: "ui/"}, "ui_prefix"},
		{App{SessionLifespan: caddy.Duration(-time.Second)}, "session_lifespan"},
		{App{CookieName: "a b"}, "cookie_name"},
		{App{CookieDomain: "example.com/x"}, "cookie_domain"},
		{App{CookiePath: "x"}, "cookie_path"},
		{App{CookieSameSite: "lenient"}, "cookie_same_site"},
		{App{CookieSecrets: []string{"short"}}, "cookie_secrets"},
		{App{CookieSecrets: []string{"{env.CK_TEST_EMPTY}"}}, "cookie_secrets"},
		{App{CipherSecrets: []string{"short"}}, "cipher_secrets"},
		{App{RegistrationStyle: "two_step"}, "registration_style"},
		{App{LoginStyle: "two_step"}, "login_style"},
		{App{PasswordHasher: "md5"}, "password_hasher"},
		{App{BcryptCost: 3}, "bcrypt_cost"},
		{App{IdentitySchema: "/does/not/exist.json"}, "identity_schema"},
		{App{IdentitySchema: "https://example.com/identity.schema.json"}, "identity_schema"},
		{App{IdentitySchemas: []*IdentitySchemaEntry{{ID: "email", Path: "/does/not/exist.json"}}}, "identity_schemas.email"},
		{App{IdentitySchemas: []*IdentitySchemaEntry{{ID: "a b", Path: "base64://e30="}}}, "identity_schemas"},
		{App{IdentitySchemas: []*IdentitySchemaEntry{{ID: "email", Path: "base64://!!"}}}, "identity_schemas.email"},
		{App{Recovery: "email"}, "recovery"},
		{App{Verification: "sms"}, "verification"},
		{App{CodeLifespan: caddy.Duration(-time.Minute)}, "code_lifespan"},
		{App{CodeMaxSubmissions: -1}, "code_max_submissions"},
		{App{Methods: []string{"oidc"}}, "methods"},
		{App{Methods: []string{"password", "password"}}, "methods"},
		{App{DisablePassword: true, Methods: []string{"totp", "webauthn", "code"}}, "disable_password"},
		{App{DisablePassword: true, Methods: []string{"password", "passkey"}}, "disable_password"},
		{App{Methods: []string{"totp", "totp"}}, "methods"},
		{App{RequiredAAL: "aal2"}, "required_aal"},
		{App{TOTPIssuer: "{env.CK_TEST_EMPTY}"}, "totp_issuer"},
		{App{WebAuthn: &WebAuthnConfig{RPID: "https://example.com"}}, "webauthn.rp_id"},
		{App{WebAuthn: &WebAuthnConfig{RPOrigins: []string{"example.com"}}}, "webauthn.rp_origins"},
		{App{WebAuthn: &WebAuthnConfig{RPOrigins: []string{"https://example.com/path"}}}, "webauthn.rp_origins"},
		{App{Passkey: &PasskeyConfig{RPDisplayName: "x"}}, "passkey"},
		{App{Methods: []string{"passkey"}, Passkey: &PasskeyConfig{RPID: "127.0.0.1"}}, "passkey.rp_id"},
		{App{Methods: []string{"passkey"}, Passkey: &PasskeyConfig{RPOrigins: []string{"auth.example.com"}}}, "passkey.rp_origins"},
		{App{Methods: []string{"passkey"}, Passkey: &PasskeyConfig{AuthenticatorSelection: &PasskeySelection{ResidentKey: "discouraged"}}}, "passkey.authenticator_selection"},
		{App{Methods: []string{"passkey"}, Passkey: &PasskeyConfig{AuthenticatorSelection: &PasskeySelection{UserVerification: "always"}}}, "passkey.authenticator_selection"},
		{App{Methods: []string{"passkey"}, Passkey: &PasskeyConfig{AuthenticatorSelection: &PasskeySelection{Attachment: "usb"}}}, "passkey.authenticator_selection"},
		{App{MailTemplates: map[string]*MailTemplate{"welcome": {Subject: "x"}}}, "mail_templates"},
		{App{SMTP: "http://mail.example.com/"}, "smtp"},
		{App{From: "nobody"}, "from"},
		{App{MailRetryBase: caddy.Duration(-time.Second)}, "mail_retry_base"},
	} {
		_, err := tc.app.flowsConfig(caddy.NewReplacer())
		if err == nil || !strings.Contains(err.Error(), tc.want+":") {
			t.Errorf("%+v: err = %v, want one naming %s", tc.app, err, tc.want)
		}
	}
}

func TestStorageDir(t *testing.T) {
	t.Setenv("CK_TEST_DIR", "/srv/kratos")
	repl := caddy.NewReplacer()
	for _, tc := range []struct{ storage, want string }{
		{"", filepath.Join(caddy.AppDataDir(), "kratos")},
		{"{env.CK_TEST_DIR}", "/srv/kratos"},
		{"/var/lib/ck/../ck", "/var/lib/ck"},
	} {
		tgt, err := (&App{Storage: tc.storage}).storage(repl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tgt.dir; tgt.dsn != "" || !filepath.IsAbs(got) || got != tc.want {
			t.Errorf("storage(%q) = %+v, want the directory %q", tc.storage, tgt, tc.want)
		}
	}
	relTgt, err := (&App{Storage: "data/kratos"}).storage(repl)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if rel := relTgt.dir; rel != filepath.Join(wd, "data/kratos") {
		t.Errorf("relative storage resolved to %q, want it under %q", rel, wd)
	}
}
