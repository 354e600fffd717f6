package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// appJSON decodes the kratos app from its JSON as Caddy does (unknown
// fields are errors), so the tests also pin the JSON names.
func appJSON(t *testing.T, js string) *App {
	t.Helper()
	a := new(App)
	if err := caddy.StrictUnmarshalJSON([]byte(js), a); err != nil {
		t.Fatalf("decoding %s: %v", js, err)
	}
	return a
}

func TestFlowsConfigMapsEveryOption(t *testing.T) {
	t.Setenv("CK_TEST_SECRET", "from-the-environment-0123456789")
	t.Setenv("CK_TEST_HOST", "auth.example.com")
	schema := filepath.Join(t.TempDir(), "identity.schema.json")
	if err := os.WriteFile(schema, []byte(`{"$id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	a := appJSON(t, `{
		"public_url": "https://{env.CK_TEST_HOST}/",
		"identity_schema": `+strconv.Quote(schema)+`,
		"identity_schemas": [
			{"id": "email", "path": `+strconv.Quote("file://"+schema)+`},
			{"id": "inline", "path": "base64://eyIkaWQiOiJ5In0=", "selfservice_selectable": true}
		],
		"default_identity_schema": "email",
		"dev": true,
		"default_return_url": "https://app.example.com/",
		"allowed_return_urls": ["https://app.example.com/", "https://*.example.org/"],
		"ui_urls": {"login": "https://ui.example.com/login", "error": "https://ui.example.com/error"},
		"ui_prefix": "/auth-ui/",
		"session_lifespan": "720h",
		"earliest_possible_extend": "1h",
		"flow_lifespan": "30m",
		"privileged_session_max_age": 900000000000,
		"cookie_name": "my_session",
		"cookie_domain": ".example.com",
		"cookie_path": "/",
		"cookie_same_site": "strict",
		"cookie_host_prefix": true,
		"cookie_secrets": ["{env.CK_TEST_SECRET}", "an-older-secret-still-valid"],
		"cipher_secrets": ["{env.CK_TEST_SECRET}-cipher"],
		"registration_style": "unified",
		"login_style": "identifier_first",
		"mitigate_account_enumeration": true,
		"rate_limits": {"login_failures_per_ip": 20, "flows_per_ip": 100},
		"disable_breached_password_check": true,
		"disable_registration": true,
		"password_hasher": "argon2id",
		"bcrypt_cost": 10,
		"recovery": "link",
		"verification": "code",
		"code_lifespan": "15m",
		"code_max_submissions": 3,
		"notify_unknown_recipients": true,
		"use_continue_with_transitions": true,
		"require_verified_address": true,
		"keep_sessions_after_recovery": true,
		"revoke_sessions_after_password_change": true,
		"methods": ["totp", "lookup_secret", "webauthn", "passkey", "code"],
		"required_aal": "aal1",
		"totp_issuer": "{env.CK_TEST_HOST}",
		"webauthn": {
			"rp_id": "example.com",
			"rp_display_name": "Example",
			"rp_origins": ["https://{env.CK_TEST_HOST}", "https://app.example.com"],
			"passwordless": true
		},
		"code": {"passwordless": true, "mfa": true},
		"smtp": "smtp://127.0.0.1:2525/",
		"from": "Login <no-reply@example.com>"
	}`) // the courier options do not reach flows.Config (see courierConfig)
	got, err := a.flowsConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	want := flows.Config{
		SiteOptions:   flows.SiteOptions{PublicURL: "https://auth.example.com/"},
		SchemaOptions: flows.SchemaOptions{DefaultIdentitySchemaID: "email"},
		BrowserOptions: flows.BrowserOptions{
			Dev:               true,
			DefaultReturnURL:  "https://app.example.com/",
			AllowedReturnURLs: []string{"https://app.example.com/", "https://*.example.org/"},
			UIURLs:            map[string]string{"login": "https://ui.example.com/login", "error": "https://ui.example.com/error"},
			UIPrefix:          "/auth-ui/",
		},
		LifespanOptions: flows.LifespanOptions[time.Duration]{
			SessionLifespan:         720 * time.Hour,
			EarliestPossibleExtend:  time.Hour,
			FlowLifespan:            30 * time.Minute,
			PrivilegedSessionMaxAge: 15 * time.Minute,
		},
		CookieOptions: flows.CookieOptions{CookieName: "my_session", CookieDomain: ".example.com", CookiePath: "/"},
		SecretOptions: flows.SecretOptions{
			CookieHostPrefix: true,
			CookieSecrets:    []string{"from-the-environment-0123456789", "an-older-secret-still-valid"},
			CipherSecrets:    []string{"from-the-environment-0123456789-cipher"},
		},
		FormOptions: flows.FormOptions{RegistrationStyle: "unified", LoginStyle: "identifier_first", MitigateAccountEnumeration: true},
		PasswordOptions: flows.PasswordOptions{
			DisableBreachedPasswordCheck: true,
			DisableRegistration:          true,
			PasswordHasher:               "argon2id",
			BcryptCost:                   10,
		},
		CodeOptions: flows.CodeOptions[time.Duration]{CodeLifespan: 15 * time.Minute, CodeMaxSubmissions: 3, NotifyUnknownRecipients: true},
		HookOptions: flows.HookOptions{
			UseContinueWithTransitions:        true,
			RequireVerifiedAddress:            true,
			KeepSessionsAfterRecovery:         true,
			RevokeSessionsAfterPasswordChange: true,
		},
		MFAOptions: flows.MFAOptions{RequiredAAL: "aal1", TOTPIssuer: "auth.example.com"},

		CookieSameSite: http.SameSiteStrictMode,
		IdentitySchema: []byte(`{"$id":"x"}`),
		IdentitySchemas: []flows.IdentitySchemaConfig{
			{ID: "email", Raw: []byte(`{"$id":"x"}`)},
			{ID: "inline", Raw: []byte(`{"$id":"y"}`), SelfserviceSelectable: true},
		},
		RateLimits: flows.RateLimits{LoginFailuresPerIP: 20, FlowsPerIP: 100},

		RecoveryEnabled:       true,
		RecoveryUse:           "link",
		VerificationEnabled:   true,
		VerificationUse:       "code",
		Methods:               map[string]bool{"totp": true, "lookup_secret": true, "webauthn": true, "passkey": true, "code": true},
		WebAuthnRPID:          "example.com",
		WebAuthnRPDisplayName: "Example",
		WebAuthnRPOrigins:     []string{"https://auth.example.com", "https://app.example.com"},
		WebAuthnPasswordless:  true,
		CodePasswordless:      true,
		CodeMFA:               true,
	}
	got = withoutFuncs(t, got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flowsConfig:\n got %+v\nwant %+v", got, want)
	}
	if a.PublicURL != "https://{env.CK_TEST_HOST}/" || a.CookieSecrets[0] != "{env.CK_TEST_SECRET}" {
		t.Errorf("flowsConfig replaced placeholders in the app itself: %q, %q", a.PublicURL, a.CookieSecrets[0])
	}
}

func TestFlowsConfigDefaultsStayZero(t *testing.T) {
	got, err := appJSON(t, `{"public_url": "https://auth.example.com/"}`).flowsConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	got = withoutFuncs(t, got)
	if !reflect.DeepEqual(got, flows.Config{SiteOptions: flows.SiteOptions{PublicURL: "https://auth.example.com/"}}) {
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
	for js, want := range map[string]string{
		`{}`:                                    "public_url is required",
		`{"recovery": "code"}`:                  "public_url is required",
		`{"public_url": "{env.CK_TEST_EMPTY}"}`: `public_url: "{env.CK_TEST_EMPTY}" is empty after replacing placeholders`,
		`{"public_url": "https://auth.example/"}`: "",
	} {
		_, err := appJSON(t, js).flowsConfig(caddy.NewReplacer())
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", js, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: err = %v, want one containing %q", js, err, want)
		}
	}
}

func TestFlowsConfigRejectsBadJSONValues(t *testing.T) {
	t.Setenv("CK_TEST_EMPTY", "")
	for _, tc := range []struct {
		json string
		want string
	}{
		{`{"public_url": "auth.example.com"}`, "public_url"},
		{`{"public_url": "{env.CK_TEST_EMPTY}/x"}`, "public_url"},
		{`{"default_return_url": "ftp://x/"}`, "default_return_url"},
		{`{"allowed_return_urls": ["/relative"]}`, "allowed_return_urls"},
		{`{"allowed_return_urls": ["javascript://example.com/%0aalert(1)"]}`, "allowed_return_urls"},
		{`{"allowed_return_urls": ["exp://*.example.com/"]}`, "allowed_return_urls"},
		{`{"ui_urls": {"logout": "https://x/"}}`, "ui_urls"},
		{`{"ui_urls": {"login": "login.html"}}`, "ui_urls.login"},
		{`{"ui_prefix": "ui/"}`, "ui_prefix"},
		{`{"session_lifespan": "-1s"}`, "session_lifespan"},
		{`{"cookie_name": "a b"}`, "cookie_name"},
		{`{"cookie_domain": "example.com/x"}`, "cookie_domain"},
		{`{"cookie_path": "x"}`, "cookie_path"},
		{`{"cookie_same_site": "lenient"}`, "cookie_same_site"},
		{`{"cookie_secrets": ["short"]}`, "cookie_secrets"},
		{`{"cookie_secrets": ["{env.CK_TEST_EMPTY}"]}`, "cookie_secrets"},
		{`{"cipher_secrets": ["short"]}`, "cipher_secrets"},
		{`{"registration_style": "two_step"}`, "registration_style"},
		{`{"login_style": "two_step"}`, "login_style"},
		{`{"password_hasher": "md5"}`, "password_hasher"},
		{`{"bcrypt_cost": 3}`, "bcrypt_cost"},
		{`{"identity_schema": "/does/not/exist.json"}`, "identity_schema"},
		{`{"identity_schema": "https://example.com/identity.schema.json"}`, "identity_schema"},
		{`{"identity_schemas": [{"id": "email", "path": "/does/not/exist.json"}]}`, "identity_schemas.email"},
		{`{"identity_schemas": [{"id": "a b", "path": "base64://e30="}]}`, "identity_schemas"},
		{`{"identity_schemas": [{"id": "email", "path": "base64://!!"}]}`, "identity_schemas.email"},
		{`{"recovery": "email"}`, "recovery"},
		{`{"verification": "sms"}`, "verification"},
		{`{"code_lifespan": "-1m"}`, "code_lifespan"},
		{`{"code_max_submissions": -1}`, "code_max_submissions"},
		{`{"methods": ["saml"]}`, "methods"},
		{`{"methods": ["password", "password"]}`, "methods"},
		{`{"disable_password": true, "methods": ["totp", "webauthn", "code"]}`, "disable_password"},
		{`{"disable_password": true, "methods": ["password", "passkey"]}`, "disable_password"},
		{`{"methods": ["totp", "totp"]}`, "methods"},
		{`{"required_aal": "aal2"}`, "required_aal"},
		{`{"totp_issuer": "{env.CK_TEST_EMPTY}"}`, "totp_issuer"},
		{`{"webauthn": {"rp_id": "https://example.com"}}`, "webauthn.rp_id"},
		{`{"webauthn": {"rp_origins": ["example.com"]}}`, "webauthn.rp_origins"},
		{`{"webauthn": {"rp_origins": ["https://example.com/path"]}}`, "webauthn.rp_origins"},
		{`{"passkey": {"rp_display_name": "x"}}`, "passkey"},
		{`{"methods": ["passkey"], "passkey": {"rp_id": "127.0.0.1"}}`, "passkey.rp_id"},
		{`{"methods": ["passkey"], "passkey": {"rp_origins": ["auth.example.com"]}}`, "passkey.rp_origins"},
		{`{"methods": ["passkey"], "passkey": {"authenticator_selection": {"resident_key": "discouraged"}}}`, "passkey.authenticator_selection"},
		{`{"methods": ["passkey"], "passkey": {"authenticator_selection": {"user_verification": "always"}}}`, "passkey.authenticator_selection"},
		{`{"methods": ["passkey"], "passkey": {"authenticator_selection": {"attachment": "usb"}}}`, "passkey.authenticator_selection"},
		{`{"mail_templates": {"welcome": {"subject": "x"}}}`, "mail_templates"},
		{`{"smtp": "http://mail.example.com/"}`, "smtp"},
		{`{"from": "nobody"}`, "from"},
		{`{"mail_retry_base": "-1s"}`, "mail_retry_base"},
	} {
		_, err := appJSON(t, tc.json).flowsConfig(caddy.NewReplacer())
		if err == nil || !strings.Contains(err.Error(), tc.want+":") {
			t.Errorf("%s: err = %v, want one naming %s", tc.json, err, tc.want)
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
