package caddymodule

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
)

// TestOIDCFlowsConfig: the providers reach the engine with their
// placeholders replaced and Validate's defaults filled in, while the app
// (whose JSON Caddy's admin API serves) keeps the placeholders.
func TestOIDCFlowsConfig(t *testing.T) {
	const secret = "google-secret-from-the-environment"
	t.Setenv("CK_TEST_GOOGLE_ID", "1234.apps.googleusercontent.com")
	t.Setenv("CK_TEST_GOOGLE_SECRET", secret)
	t.Setenv("CK_TEST_ISSUER", "https://idp.example.com/")
	mapperFile := filepath.Join(t.TempDir(), "corp.jsonnet")
	if err := os.WriteFile(mapperFile, []byte(`{identity: {traits: {email: std.extVar('claims').email}}}`), 0o600); err != nil {
		t.Fatal(err)
	}

	a := appJSON(t, `{
		"public_url": "https://auth.example.com/",
		"methods": ["oidc"],
		"oidc": {"providers": [
			{"id": "google", "provider": "google", "client_id": "{env.CK_TEST_GOOGLE_ID}", "client_secret": "{env.CK_TEST_GOOGLE_SECRET}", "label": "Google"},
			{"id": "corp", "provider": "generic", "issuer_url": "{env.CK_TEST_ISSUER}", "client_id": "caddy-kratos",
			 "client_secret": "corp-secret", "mapper_url": `+strconv.Quote("file://"+mapperFile)+`,
			 "scope": ["email"], "aal2_amr_values": ["mfa"], "requested_claims": {"id_token": {"acr": null}}}
		]}
	}`)
	got, err := a.flowsConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.Config{
		{ID: "google", Provider: "google", Label: "Google", ClientID: "1234.apps.googleusercontent.com", ClientSecret: secret,
			Scope: []string{"openid", "email", "profile"}, ClaimsSource: "id_token", PKCE: "auto"},
		{ID: "corp", Provider: "generic", IssuerURL: "https://idp.example.com/", ClientID: "caddy-kratos", ClientSecret: "corp-secret",
			MapperURL: "file://" + mapperFile, Scope: []string{"openid", "email"}, AAL2AMRValues: []string{"mfa"},
			RequestedClaims: json.RawMessage(`{"id_token": {"acr": null}}`), ClaimsSource: "id_token", PKCE: "auto"},
	}
	if !reflect.DeepEqual(got.OIDCProviders, want) {
		t.Errorf("OIDCProviders:\n got %+v\nwant %+v", got.OIDCProviders, want)
	}
	if !got.Methods["oidc"] {
		t.Errorf("Methods = %v, want oidc on", got.Methods)
	}
	js := string(caddyconfig.JSON(a, nil))
	if strings.Contains(js, secret) || !strings.Contains(js, `"client_secret":"{env.CK_TEST_GOOGLE_SECRET}"`) {
		t.Errorf("the app's JSON should keep the placeholder, not the secret: %s", js)
	}
	if p := a.OIDC.Providers[1]; len(p.Scope) != 1 || p.PKCE != "" || p.IssuerURL != "{env.CK_TEST_ISSUER}" {
		t.Errorf("flowsConfig changed the app's own provider: %+v", p)
	}
}

// TestOIDCFlowsConfigRejects: JSON configs get the checks the Caddyfile
// gets, named by their field, and no error shows a secret.
func TestOIDCFlowsConfigRejects(t *testing.T) {
	const secret = "do-not-print-this-secret"
	t.Setenv("CK_TEST_OIDC_SECRET", secret)
	t.Setenv("CK_TEST_EMPTY", "")
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.jsonnet")
	if err := os.WriteFile(broken, []byte(`{identity: {traits: `), 0o600); err != nil {
		t.Fatal(err)
	}
	rsa := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte(secret)})
	t.Setenv("CK_TEST_APPLE_KEY", string(rsa))

	google := `{"id": "google", "provider": "google", "client_id": "x", "client_secret": "{env.CK_TEST_OIDC_SECRET}"}`
	withProviders := func(list ...string) string {
		return `{"methods": ["oidc"], "oidc": {"providers": [` + strings.Join(list, ",") + `]}}`
	}
	for _, tc := range []struct{ json, want string }{
		{withProviders(`{"id": "fb", "provider": "facebook", "client_id": "x", "client_secret": "{env.CK_TEST_OIDC_SECRET}"}`),
			`oidc.providers: oidc provider "fb": provider "facebook" is not supported`},
		{withProviders(`{"id": "google", "provider": "google", "client_secret": "{env.CK_TEST_OIDC_SECRET}"}`),
			`oidc.providers: oidc provider "google": client_id is required`},
		{withProviders(`{"id": "google", "provider": "google", "client_id": "x", "client_secret": "{env.CK_TEST_EMPTY}"}`),
			`oidc.providers: oidc provider "google": client_secret: "{env.CK_TEST_EMPTY}" is empty after replacing placeholders`},
		{withProviders(google, google), `oidc.providers: oidc provider "google" is configured twice`},
		{withProviders(`{"id": "corp", "provider": "generic", "issuer_url": "https://idp.example.com", "client_id": "x", "client_secret": "{env.CK_TEST_OIDC_SECRET}", "mapper_url": ` + strconv.Quote(broken) + `}`),
			`oidc.providers: oidc provider "corp": mapper ` + broken + `:`},
		{withProviders(`{"id": "corp", "provider": "generic", "issuer_url": "https://idp.example.com", "client_id": "x", "client_secret": "y", "mapper_url": "` + filepath.Join(dir, "missing.jsonnet") + `"}`),
			`oidc.providers: oidc provider "corp": mapper: open `},
		{withProviders(`{"id": "corp", "provider": "generic", "issuer_url": "http://idp.example.com", "client_id": "x", "client_secret": "y"}`),
			`oidc.providers: oidc provider "corp": issuer_url: "http://idp.example.com" must use https`},
		{withProviders(`{"id": "apple", "provider": "apple", "client_id": "x", "apple_team_id": "T", "apple_private_key_id": "K", "apple_private_key": "{env.CK_TEST_APPLE_KEY}"}`),
			`oidc.providers: oidc provider "apple": apple_private_key: not a PEM "PRIVATE KEY" block`},
		{withProviders(), "oidc: no provider is configured"},
		{`{"oidc": {"providers": [` + google + `]}}`, "oidc: configures the oidc method's providers, but the method is not enabled: add methods oidc"},
		{`{"methods": ["oidc"]}`, "methods: lists oidc, but no provider is configured"},
		{`{"disable_password": true, "oidc": {"providers": [` + google + `]}}`, "disable_password: the password method is disabled and no other first factor"},
	} {
		a := appJSON(t, tc.json)
		a.PublicURL = "https://auth.example.com/"
		_, err := a.flowsConfig(caddy.NewReplacer())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n err = %v\nwant one containing %q", tc.json, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows a secret: %v", tc.json, err)
		}
	}
}

// TestOIDCProvision: a JSON config's provider mistakes stop Provision
// (Caddy's start or reload); a good one provisions with the password
// turned off, the providers being the first factor.
func TestOIDCProvision(t *testing.T) {
	t.Setenv("CK_TEST_OIDC_SECRET", "s3cret-from-the-environment")
	bad := appJSON(t, `{"methods": ["oidc"], "oidc": {"providers": [
		{"id": "gh", "provider": "github", "client_id": "x", "client_secret": "{env.CK_TEST_OIDC_SECRET}", "mapper_url": "base64://e2lkZW50aXR5Og=="}
	]}}`)
	err := provisionApp(t, bad)
	if err == nil || !strings.Contains(err.Error(), `oidc.providers: oidc provider "gh": mapper base64 mapper:`) {
		t.Fatalf("Provision error = %v, want the broken base64 mapper named", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "AuthKey.p8")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	good := appJSON(t, `{"disable_password": true, "methods": ["oidc"], "oidc": {"providers": [
		{"id": "gh", "provider": "github", "client_id": "x", "client_secret": "{env.CK_TEST_OIDC_SECRET}"},
		{"id": "apple", "provider": "apple", "client_id": "com.example", "apple_team_id": "TEAM", "apple_private_key_id": "KEY",
		 "apple_private_key": "{file.`+keyFile+`}"}
	]}}`)
	if err := provisionApp(t, good); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if js := string(caddyconfig.JSON(good, nil)); strings.Contains(js, "PRIVATE KEY") || strings.Contains(js, "s3cret") {
		t.Errorf("the app's JSON shows a secret after Provision: %s", js)
	}

	// The engine serves the configured providers: their buttons, in
	// config order, and nothing of the disabled password.
	rec := httptest.NewRecorder()
	good.Engine().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://auth.example.com/self-service/login/api", nil))
	var flow struct {
		UI struct {
			Nodes []struct {
				Group      string `json:"group"`
				Attributes struct {
					Name  string `json:"name"`
					Value any    `json:"value"`
				} `json:"attributes"`
			} `json:"nodes"`
		} `json:"ui"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &flow); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("login flow: %d %v %s", rec.Code, err, rec.Body)
	}
	var buttons []string
	for _, n := range flow.UI.Nodes {
		if n.Group == "password" {
			t.Errorf("password node %q in a config with the password disabled", n.Attributes.Name)
		}
		if n.Group == "oidc" && n.Attributes.Name == "provider" {
			buttons = append(buttons, fmt.Sprint(n.Attributes.Value))
		}
	}
	if !reflect.DeepEqual(buttons, []string{"gh", "apple"}) {
		t.Errorf("provider buttons = %v, want [gh apple]\n%s", buttons, rec.Body)
	}
}
