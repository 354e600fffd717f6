package courier

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConnectionURI(t *testing.T) {
	tests := []struct {
		uri                     string
		disable                 bool
		host                    string
		port                    int
		user, pass              string
		implicit, start, insecu bool
	}{
		{uri: "smtp://user:pass@mail.example.com:587/", host: "mail.example.com", port: 587, user: "user", pass: "pass", start: true},
		{uri: "smtp://mail.example.com", host: "mail.example.com", port: 25, start: true},
		{uri: "smtp://mail.example.com/?disable_starttls=true", host: "mail.example.com", port: 25},
		{uri: "smtp://mail.example.com/", disable: true, host: "mail.example.com", port: 25},
		{uri: "smtps://u:p%40ss@mail.example.com/?skip_ssl_verify=true", host: "mail.example.com", port: 465, user: "u", pass: "p@ss", implicit: true, insecu: true},
		{uri: "smtps://mail.example.com:2465/?disable_starttls=true", host: "mail.example.com", port: 2465, implicit: true},
	}
	for _, tt := range tests {
		s, err := ParseConnectionURI(tt.uri, tt.disable)
		if err != nil {
			t.Errorf("%s: %v", tt.uri, err)
			continue
		}
		if s.Host != tt.host || s.Port != tt.port || s.Username != tt.user || s.Password != tt.pass ||
			s.ImplicitTLS != tt.implicit || s.StartTLS != tt.start || s.SkipSSLVerify != tt.insecu {
			t.Errorf("%s: got %+v", tt.uri, s)
		}
		if tt.pass != "" && strings.Contains(s.Redacted, tt.pass) {
			t.Errorf("%s: redacted form %q has the password", tt.uri, s.Redacted)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.gotmpl")
	unknownField := filepath.Join(dir, "unknown.gotmpl")
	_ = os.WriteFile(broken, []byte("{{ .RecoveryCode "), 0o600)
	_ = os.WriteFile(unknownField, []byte("{{ .NoSuchField }}"), 0o600)
	notADir := filepath.Join(dir, "file")
	_ = os.WriteFile(notADir, []byte("x"), 0o600)

	tests := []struct {
		name  string
		cfg   Config
		field string
		want  string
	}{
		{"bad scheme", Config{ConnectionURI: "http://user:hunter2@mail.example.com/"}, "connection_uri", "unsupported scheme"},
		{"no scheme", Config{ConnectionURI: "mail.example.com:25"}, "connection_uri", ""},
		{"missing host", Config{ConnectionURI: "smtp://user:hunter2@:25/"}, "connection_uri", "missing host"},
		{"bad port", Config{ConnectionURI: "smtp://user:hunter2@mail.example.com:99999/"}, "connection_uri", "port"},
		{"unparseable", Config{ConnectionURI: "smtp://user:hunter2@[::1/"}, "connection_uri", "not a valid URL"},
		{"bad bool", Config{ConnectionURI: "smtp://mail.example.com/?skip_ssl_verify=maybe"}, "connection_uri", "not a boolean"},
		{"unknown query", Config{ConnectionURI: "smtp://mail.example.com/?skip_ssl_verfy=true"}, "connection_uri", "unknown query parameter"},
		{"bad from", Config{From: "not an address"}, "from_address", ""},
		{"bad from 2", Config{From: "Login <no-reply@>"}, "from_address", ""},
		{"unreadable template", Config{Templates: map[string]TemplateFiles{"recovery_code.valid": {BodyPlaintext: filepath.Join(dir, "missing.gotmpl")}}}, "templates.recovery_code_valid", "no such file"},
		{"broken template", Config{Templates: map[string]TemplateFiles{"recovery_code_valid": {Subject: broken}}}, "templates.recovery_code_valid", ""},
		{"unknown field", Config{Templates: map[string]TemplateFiles{"login_code_valid": {BodyHTML: "file://" + unknownField}}}, "templates.login_code_valid", "NoSuchField"},
		{"unknown template", Config{Templates: map[string]TemplateFiles{"welcome.valid": {Subject: broken}}}, "templates", "unknown template"},
		{"bad source", Config{Templates: map[string]TemplateFiles{"login_code_valid": {Subject: "https://example.com/x"}}}, "templates.login_code_valid", "unsupported template source"},
		{"override dir missing", Config{TemplateOverridePath: filepath.Join(dir, "nope")}, "template_override_path", ""},
		{"override dir is file", Config{TemplateOverridePath: notADir}, "template_override_path", "not a directory"},
		{"bad header", Config{Headers: map[string]string{"X-A": "b\r\nBcc: evil@example.com"}}, "headers", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("not a ConfigError: %v", err)
			}
			if ce.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", ce.Field, tt.field, err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks password: %v", err)
			}
			if _, err := New(nopStore{}, tt.cfg, nil); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := ParseConfig(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.SMTP != nil || s.FromAddr.Address != DefaultFromAddress || s.LocalName != "localhost" ||
		s.RetryBase != time.Second || s.RetryMax != 10*time.Minute || s.MaxAttempts != 30 || s.RetainTTL != 24*time.Hour {
		t.Errorf("defaults = %+v", s)
	}
	s, err = ParseConfig(Config{From: "no-reply@example.com", FromName: "Example"})
	if err != nil {
		t.Fatal(err)
	}
	if s.FromAddr.Name != "Example" || s.FromAddr.Address != "no-reply@example.com" {
		t.Errorf("from = %+v", s.FromAddr)
	}
}

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"smtp://user:hunter2@host:25/":   "smtp://user:xxxxx@host:25/",
		"smtp://user:hunt er2@[::1/":     "smtp://user:xxxxx@[::1/",
		"smtp://host:25/":                "smtp://host:25/",
		"smtps://user@host/?x=y":         "smtps://user@host/?x=y",
		"smtp:user:hunter2@host":         "smtp:<redacted>",
		"user:hunter2@host no-scheme at": "user:<redacted>",
	} {
		if got := RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuiltinTemplates(t *testing.T) {
	s, err := ParseConfig(Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := TemplateData{
		RecoveryCode: "111111", RecoveryURL: "https://r.example/r?t=1",
		VerificationCode: "222222", VerificationURL: "https://v.example/v?t=2",
		LoginCode: "333333", RegistrationCode: "444444",
	}
	tests := []struct {
		id       TemplateID
		subject  string
		text     string
		htmlPart string
	}{
		{TemplateRecoveryCodeValid, "Recover access to your account", "Hi,\n\nplease recover access to your account by entering the following code:\n\n111111\n", "111111"},
		{TemplateRecoveryValid, "Recover access to your account", "Hi,\n\nplease recover access to your account by clicking the following link:\n\nhttps://r.example/r?t=1\n", `href="https://r.example/r?t=1"`},
		{TemplateRecoveryCodeInvalid, "Account access attempted", "you (or someone else) entered this email address when trying to recover access to an account", "not on our database"},
		{TemplateRecoveryInvalid, "Account access attempted", "not on our database of registered users", "not on our database"},
		{TemplateVerificationCodeValid, "Please verify your email address", "Hi,\n\nplease verify your account by entering the following code:\n\n222222\n\nor clicking the following link:\n\nhttps://v.example/v?t=2\n", "222222"},
		{TemplateVerificationValid, "Please verify your email address", "Hi,\n\nplease verify your account by clicking the following link:\n\nhttps://v.example/v?t=2\n", `href="https://v.example/v?t=2"`},
		{TemplateVerificationCodeInvalid, "Someone tried to verify this email address", "someone asked to verify this email address, but we were unable to find an account for this address", "unable to find an account"},
		{TemplateVerificationInvalid, "Someone tried to verify this email address", "someone asked to verify this email address", "unable to find an account"},
		{TemplateLoginCodeValid, "Login to your account", "Hi,\n\nplease login to your account by entering the following code:\n\n333333\n", "333333"},
		{TemplateRegistrationCodeValid, "Complete your account registration", "444444", "444444"},
	}
	for _, tt := range tests {
		r, err := s.templates.render(tt.id, d)
		if err != nil {
			t.Errorf("%s: %v", tt.id, err)
			continue
		}
		if r.Subject != tt.subject {
			t.Errorf("%s: subject %q", tt.id, r.Subject)
		}
		if strings.HasPrefix(tt.text, "Hi,") && r.Text != tt.text || !strings.Contains(r.Text, tt.text) {
			t.Errorf("%s: text %q, want %q", tt.id, r.Text, tt.text)
		}
		if !strings.Contains(r.HTML, tt.htmlPart) || !strings.Contains(r.HTML, "<html>") {
			t.Errorf("%s: html %q", tt.id, r.HTML)
		}
	}
	// Expiry line only when given; HTML escapes data.
	d.ExpiresInMinutes = 15
	d.LoginCode = "<b>x</b>"
	r, err := s.templates.render(TemplateLoginCodeValid, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "This code expires in 15 minutes.") || strings.Contains(r.HTML, "<b>x</b>") {
		t.Errorf("text %q html %q", r.Text, r.HTML)
	}
}

func TestTemplateOverrides(t *testing.T) {
	dir := t.TempDir()
	// Per-template files.
	subj := filepath.Join(dir, "subject.gotmpl")
	text := filepath.Join(dir, "text.gotmpl")
	html := filepath.Join(dir, "body.html.gotmpl")
	_ = os.WriteFile(subj, []byte("Your {{ .Identity.traits.name }} code\n"), 0o600)
	_ = os.WriteFile(text, []byte("Code: {{ .RecoveryCode }} for {{ .To }} ({{ .TransientPayload.lang | default \"en\" }})"), 0o600)
	_ = os.WriteFile(html, []byte("<p>Code: <b>{{ .RecoveryCode }}</b> {{ .RequestURL }}</p>"), 0o600)
	// Kratos-style override directory: only the login_code subject.
	od := filepath.Join(dir, "overrides")
	_ = os.MkdirAll(filepath.Join(od, "login_code", "valid"), 0o755)
	_ = os.WriteFile(filepath.Join(od, "login_code", "valid", "email.subject.gotmpl"), []byte("Sign in to Example"), 0o600)

	srv := startSMTP(t, smtpOpts{})
	st := openStore(t, t.TempDir())
	cfg := fastConfig(plainURI(srv.Addr))
	cfg.TemplateOverridePath = od
	cfg.Templates = map[string]TemplateFiles{
		"recovery_code.valid": {Subject: subj, BodyPlaintext: "file://" + text, BodyHTML: html},
		"login_code_valid":    {BodyPlaintext: "base64://" + base64.StdEncoding.EncodeToString([]byte("Login code {{ .LoginCode }}"))},
	}
	c := newCourier(t, st, cfg, nil)
	c.Start()

	ctx := context.Background()
	if _, err := c.Enqueue(ctx, Message{To: "ida@example.org", Template: TemplateRecoveryCodeValid, Data: TemplateData{
		RecoveryCode:     "135790",
		Identity:         map[string]any{"traits": map[string]any{"name": "Ida's"}},
		RequestURL:       "https://auth.example.org/self-service/recovery/browser",
		TransientPayload: map[string]any{"lang": "de"},
	}}); err != nil {
		t.Fatal(err)
	}
	m := parseMail(t, srv.waitMessages(1, 5*time.Second)[0].Raw)
	if m.Subject != "Your Ida's code" {
		t.Errorf("subject %q", m.Subject)
	}
	if m.Text != "Code: 135790 for ida@example.org (de)" {
		t.Errorf("text %q", m.Text)
	}
	if m.HTML != "<p>Code: <b>135790</b> https://auth.example.org/self-service/recovery/browser</p>" {
		t.Errorf("html %q", m.HTML)
	}

	subject, txt, htm, err := c.Render(TemplateLoginCodeValid, TemplateData{LoginCode: "999000"})
	if err != nil {
		t.Fatal(err)
	}
	if subject != "Sign in to Example" || txt != "Login code 999000" || !strings.Contains(htm, "999000") {
		t.Errorf("login override: %q %q %q", subject, txt, htm)
	}
	// Untouched templates keep the built-in.
	subject, _, _, err = c.Render(TemplateVerificationCodeValid, TemplateData{})
	if err != nil || subject != "Please verify your email address" {
		t.Errorf("builtin: %q %v", subject, err)
	}
}

// nopStore satisfies Store for config-only tests.
type nopStore struct{}

func (nopStore) PutRecord(context.Context, string, string, []byte, time.Duration) error { return nil }
func (nopStore) GetRecord(context.Context, string, string) ([]byte, error)              { return nil, nil }
func (nopStore) UpdateRecord(context.Context, string, string, func([]byte) ([]byte, time.Duration, error)) error {
	return nil
}
func (nopStore) ScanRecords(context.Context, string, func(string, []byte) error) error { return nil }
