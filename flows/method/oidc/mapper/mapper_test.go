package mapper

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
)

func mustParse(t *testing.T, src string) *Mapper {
	t.Helper()
	m, err := Parse("test.jsonnet", src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, m *Mapper, c *provider.Claims) *Result {
	t.Helper()
	r, err := m.Map(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func jsonEq(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v (%s)", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("%s = %s, want %s", what, gb, wb)
	}
}

var googleClaims = &provider.Claims{
	Issuer: "https://accounts.google.com", Subject: "1234", Email: "ada@example.com", EmailVerified: true,
	GivenName: "Ada", FamilyName: "Lovelace", HD: "example.com",
	RawClaims: map[string]any{"sub": "1234", "email": "ada@example.com", "hd": "example.com"},
}

// The mappers of Kratos's documentation run as they are.
func TestKratosDocumentedMappers(t *testing.T) {
	t.Run("google", func(t *testing.T) {
		m := mustParse(t, `local claims = {
  email_verified: true,
} + std.extVar('claims');

{
  identity: {
    traits: {
      [if 'email' in claims && claims.email_verified then 'email' else null]: claims.email,
      first_name: claims.given_name,
      last_name: claims.family_name,
      [if 'hd' in claims && claims.email_verified then 'hd' else null]: claims.hd,
    },
  },
}`)
		r := run(t, m, googleClaims)
		jsonEq(t, "traits", r.Traits, `{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","hd":"example.com"}`)
		if r.VerifiedAddresses != nil || r.MetadataPublic != nil || r.MetadataAdmin != nil {
			t.Fatalf("result %+v", r)
		}
	})
	t.Run("github, unverified email left out", func(t *testing.T) {
		m := mustParse(t, `local claims = {
  email_verified: false,
} + std.extVar('claims');

{
  identity: {
    traits: {
      // Allowing unverified email addresses enables account
      // enumeration attacks, especially if the value is used for
      // e.g. verification or as a password login identifier.
      //
      // Therefore we only return the email if it (a) exists and (b) is marked verified
      // by GitHub.
      [if 'email' in claims && claims.email_verified then 'email' else null]: claims.email,
    },
  },
}`)
		// email_verified false is left out of the claims (omitempty), so the
		// mapper's default applies.
		r := run(t, m, &provider.Claims{Issuer: "https://github.com/login/oauth/access_token", Subject: "4711", Email: "ada@example.com"})
		jsonEq(t, "traits", r.Traits, `{}`)
		r = run(t, m, &provider.Claims{Issuer: "i", Subject: "4711", Email: "ada@example.com", EmailVerified: true})
		jsonEq(t, "traits", r.Traits, `{"email":"ada@example.com"}`)
	})
	t.Run("verified addresses and metadata", func(t *testing.T) {
		m := mustParse(t, `local claims = std.extVar('claims');
{
  identity: {
    traits: {
      email: claims.email,
    },
    verified_addresses: std.prune([
      // Carry over verified status from Social Sign-In provider.
      if 'email' in claims && claims.email_verified then { via: 'email', value: claims.email },
    ]),
    metadata_public: {
      hd: claims.raw_claims.hd,
    },
    metadata_admin: {
      subject: claims.sub,
    },
  },
}`)
		c := *googleClaims
		c.Email = " Ada@Example.COM"
		r := run(t, m, &c)
		jsonEq(t, "traits", r.Traits, `{"email":" Ada@Example.COM"}`)
		if len(r.VerifiedAddresses) != 1 || r.VerifiedAddresses[0] != (VerifiedAddress{Value: "ada@example.com", Via: "email"}) {
			t.Fatalf("verified addresses %+v (email values are trimmed and lower-cased, as Kratos)", r.VerifiedAddresses)
		}
		jsonEq(t, "metadata_public", r.MetadataPublic, `{"hd":"example.com"}`)
		jsonEq(t, "metadata_admin", r.MetadataAdmin, `{"subject":"1234"}`)
	})
}

func TestDefaultMapper(t *testing.T) {
	m := Default()
	for _, tc := range []struct {
		name     string
		claims   provider.Claims
		traits   string
		verified []VerifiedAddress
	}{
		{"verified email and names", provider.Claims{Subject: "1", Email: "a@example.com", EmailVerified: true, GivenName: "Ada", FamilyName: "Lovelace", Name: "Ada Lovelace"},
			`{"email":"a@example.com","name":{"first":"Ada","last":"Lovelace"}}`, []VerifiedAddress{{Value: "a@example.com", Via: "email"}}},
		{"unverified email", provider.Claims{Subject: "1", Email: "a@example.com"}, `{"email":"a@example.com"}`, []VerifiedAddress{}},
		{"only a full name (GitHub)", provider.Claims{Subject: "1", Name: "Ada L"}, `{"name":{"first":"Ada L"}}`, []VerifiedAddress{}},
		{"family name only", provider.Claims{Subject: "1", FamilyName: "Lovelace", Name: "Ada Lovelace"}, `{"name":{"last":"Lovelace"}}`, []VerifiedAddress{}},
		{"nothing", provider.Claims{Subject: "1"}, `{}`, []VerifiedAddress{}},
	} {
		r := run(t, m, &tc.claims)
		jsonEq(t, tc.name, r.Traits, tc.traits)
		if len(r.VerifiedAddresses) != len(tc.verified) || (len(tc.verified) == 1 && r.VerifiedAddresses[0] != tc.verified[0]) {
			t.Errorf("%s: verified %+v, want %+v", tc.name, r.VerifiedAddresses, tc.verified)
		}
	}
}

func TestMapperShapeErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{identity: {traits: "x"}}`, "did not return an object for key identity.traits. Please check your Jsonnet code"},
		{`{identity: {}}`, "did not return an object for key identity.traits"},
		{`{traits: {}}`, "did not return an object for key identity.traits"},
		{`{identity: {traits: {}, metadata_public: [1]}}`, "did not return an object for key identity.metadata_public"},
		{`{identity: {traits: {}, metadata_admin: null}}`, "did not return an object for key identity.metadata_admin"},
		{`{identity: {traits: {}, verified_addresses: {via: 'email'}}}`, "did not return an array for key identity.verified_addresses"},
		{`{identity: {traits: {}, verified_addresses: [1]}}`, "identity.verified_addresses: json: cannot unmarshal"},
		{`error 'no email'`, "RUNTIME ERROR: no email"},
		{`local f(x) = f(x + 1); {identity: {traits: f(0)}}`, "max stack frames exceeded"},
		{`{identity: {traits: import 'secrets.libsonnet'}}`, `imports are not allowed in mappers ("secrets.libsonnet")`},
		{`{identity: {traits: {k: importstr '/etc/passwd'}}}`, `imports are not allowed in mappers ("/etc/passwd")`},
		{`std.extVar('session')`, "Undefined external variable: session"},
	} {
		_, err := mustParse(t, tc.src).Map(context.Background(), googleClaims)
		if !errors.Is(err, ErrMapper) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestMapperClaimsAreData(t *testing.T) {
	// Claims are JSON, never Jsonnet code: a hostile name stays a string.
	m := mustParse(t, `local c = std.extVar('claims'); {identity: {traits: {name: c.name, n: std.length(std.objectFields(c))}}}`)
	r := run(t, m, &provider.Claims{Subject: "1", Name: `"} + error 'pwned' + {"`})
	jsonEq(t, "traits", r.Traits, `{"name":"\"} + error 'pwned' + {\"","n":2}`)
}

func TestMapperTimeout(t *testing.T) {
	old := timeout
	timeout = 50 * time.Millisecond
	defer func() { timeout = old }()
	m := mustParse(t, `{identity: {traits: {n: std.foldl(function(a, b) a + b, std.range(1, 300000), 0)}}}`)
	start := time.Now()
	_, err := m.Map(context.Background(), googleClaims)
	if !errors.Is(err, ErrMapper) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("runaway mapper: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the caller waited %s", d)
	}
	// Let the evaluation finish so it does not run into other tests.
	for range cap(slots) {
		slots <- struct{}{}
	}
	for range cap(slots) {
		<-slots
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	src := `local c = std.extVar('claims'); {identity: {traits: {email: c.email}}}`
	path := filepath.Join(dir, "m.jsonnet")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{path, "file://" + path, "base64://" + base64.StdEncoding.EncodeToString([]byte(src)), "base64://" + base64.RawURLEncoding.EncodeToString([]byte(src))} {
		m, err := Load(ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		jsonEq(t, ref, run(t, m, googleClaims).Traits, `{"email":"ada@example.com"}`)
	}
	if m, err := Load(""); err != nil || m.Name() != "default" {
		t.Fatalf("empty ref: %v %v", m, err)
	}
	for ref, want := range map[string]string{
		"https://example.com/m.jsonnet": "remote mappers are not fetched",
		filepath.Join(dir, "missing"):   "no such file or directory",
		"base64://%%%":                  "base64:// value does not decode",
	} {
		if _, err := Load(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want %q", ref, err, want)
		}
	}
	broken := filepath.Join(dir, "broken.jsonnet")
	if err := os.WriteFile(broken, []byte(`{identity: {traits: {`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(broken); err == nil || !strings.Contains(err.Error(), "mapper "+broken+": ") || !strings.Contains(err.Error(), "broken.jsonnet:1:") {
		t.Fatalf("syntax error: %v", err)
	}
}
