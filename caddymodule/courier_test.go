package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/emersion/go-smtp"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
)

func TestCourierConfigMapsMailOptions(t *testing.T) {
	t.Setenv("CK_TEST_SMTP_PASSWORD", "s3cret")
	t.Setenv("CK_TEST_MAIL_DIR", "/etc/mail")
	a := &App{
		SMTP:            "smtp://postmaster:{env.CK_TEST_SMTP_PASSWORD}@mail.example.com:587/",
		DisableStartTLS: true,
		From:            "Login <no-reply@example.com>",
		MailTemplates: map[string]*MailTemplate{
			"recovery_code_valid": {Subject: "{env.CK_TEST_MAIL_DIR}/subject.gotmpl", Text: "/t.gotmpl"},
			"verification_valid":  {HTML: "/h.gotmpl"},
		},
		MailRetryBase: caddy.Duration(250 * time.Millisecond),
	}
	got, err := a.courierConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	want := courier.Config{
		ConnectionURI:   "smtp://postmaster:s3cret@mail.example.com:587/",
		DisableStartTLS: true,
		From:            "Login <no-reply@example.com>",
		RetryBase:       250 * time.Millisecond,
		Templates: map[string]courier.TemplateFiles{
			"recovery_code_valid": {Subject: "/etc/mail/subject.gotmpl", BodyPlaintext: "/t.gotmpl"},
			"verification_valid":  {BodyHTML: "/h.gotmpl"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("courierConfig:\n got %+v\nwant %+v", got, want)
	}

	// No mail options: the courier's zero Config, which logs instead of
	// sending (DEV ONLY).
	got, err = new(App).courierConfig(caddy.NewReplacer())
	if err != nil || !reflect.DeepEqual(got, courier.Config{}) {
		t.Errorf("empty app: courierConfig = %+v, %v; want the zero Config", got, err)
	}
}

// provisionApp provisions a on a fresh storage directory; the app is
// cleaned up when t ends.
func provisionApp(t *testing.T, a *App) error {
	t.Helper()
	if a.Storage == "" && a.Postgres == nil {
		a.Storage = filepath.Join(t.TempDir(), "data")
	}
	if a.PublicURL == "" {
		a.PublicURL = "https://auth.example.com/"
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := a.Provision(ctx)
	t.Cleanup(func() {
		if err := a.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return err
}

// TestProvisionRejectsBadCourierConfig: courier problems fail start-up,
// naming the option, and never print the SMTP password.
func TestProvisionRejectsBadCourierConfig(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.gotmpl")
	if err := os.WriteFile(broken, []byte("{{ .RecoveryCode "), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownField := filepath.Join(dir, "unknown.gotmpl")
	if err := os.WriteFile(unknownField, []byte("{{ .NoSuchField }}"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CK_TEST_BAD_SMTP", "smtpx://user:hunter2@mail.example.com/")
	t.Setenv("CK_TEST_BAD_FROM", "Login <no-reply>")
	t.Setenv("CK_TEST_EMPTY", "")
	for _, tc := range []struct {
		name string
		app  App
		want string
	}{
		{"missing template file", App{MailTemplates: map[string]*MailTemplate{"recovery_code_valid": {Text: filepath.Join(dir, "missing.gotmpl")}}}, "mail_template recovery_code_valid:"},
		{"template syntax error", App{MailTemplates: map[string]*MailTemplate{"verification_code_valid": {Subject: broken}}}, "mail_template verification_code_valid:"},
		{"template with an unknown field", App{MailTemplates: map[string]*MailTemplate{"recovery_valid": {HTML: unknownField}}}, "mail_template recovery_valid:"},
		{"smtp from the environment", App{SMTP: "{env.CK_TEST_BAD_SMTP}"}, "smtp: smtpx://user:xxxxx@mail.example.com/: unsupported scheme"},
		{"smtp empty after placeholders", App{SMTP: "{env.CK_TEST_EMPTY}"}, "smtp:"},
		{"from from the environment", App{From: "{env.CK_TEST_BAD_FROM}"}, "from:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.app
			err := provisionApp(t, &a)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision error = %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the SMTP password: %v", err)
			}
		})
	}
}

// TestCourierMailerDeliversEveryField provisions and starts the app with a
// real SMTP server and an inline template that prints every field the
// engine hands to the courier.
func TestCourierMailerDeliversEveryField(t *testing.T) {
	srv := startTestSMTP(t)
	tpl := "To={{.To}} RC={{.RecoveryCode}} RU={{.RecoveryURL}} VC={{.VerificationCode}} VU={{.VerificationURL}} " +
		"LC={{.LoginCode}} GC={{.RegistrationCode}} ID={{index .Identity \"id\"}} RQ={{.RequestURL}} " +
		"TP={{index .TransientPayload \"k\"}} EX={{.ExpiresInMinutes}}"
	a := &App{
		SMTP:            "smtp://" + srv.addr + "/",
		DisableStartTLS: true,
		From:            "Login <no-reply@example.com>",
		MailTemplates: map[string]*MailTemplate{
			"recovery_code_valid": {
				Subject: "base64://" + base64.StdEncoding.EncodeToString([]byte("Your code")),
				Text:    "base64://" + base64.StdEncoding.EncodeToString([]byte(tpl)),
			},
		},
		MailRetryBase: caddy.Duration(50 * time.Millisecond),
	}
	if err := provisionApp(t, a); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	m := courierMailer{a.courier}
	err := m.Send(context.Background(), flows.Mail{
		To: "user@example.com", Template: "recovery_code_valid",
		RecoveryCode: "123456", RecoveryURL: "https://r", VerificationCode: "654321", VerificationURL: "https://v",
		LoginCode: "111111", RegistrationCode: "222222", Identity: map[string]any{"id": "ident-1"},
		RequestURL: "https://req", TransientPayload: map[string]any{"k": "tp"}, ExpiresInMinutes: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.wait(t, 1)
	hdr, text := plainPart(t, msgs[0].data)
	want := "To=user@example.com RC=123456 RU=https://r VC=654321 VU=https://v LC=111111 GC=222222 ID=ident-1 RQ=https://req TP=tp EX=60"
	if strings.TrimSpace(text) != want {
		t.Errorf("text body does not carry every field\n got %s\nwant %s", text, want)
	}
	if hdr.Get("Subject") != "Your code" || !strings.Contains(hdr.Get("From"), "<no-reply@example.com>") {
		t.Errorf("Subject = %q, From = %q", hdr.Get("Subject"), hdr.Get("From"))
	}
	if msgs[0].to != "user@example.com" {
		t.Errorf("envelope recipient = %q", msgs[0].to)
	}

	// An unknown template is refused when the mail is queued, so the flow
	// answers with an error rather than losing the mail silently.
	if err := m.Send(context.Background(), flows.Mail{To: "user@example.com", Template: "nope"}); err == nil {
		t.Error("Send with an unknown template succeeded")
	}

	if err := a.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// TestCourierQueuedAcrossConfigs: a mail queued by one config is sent by
// the next one on the same storage (a reload or restart), once.
func TestCourierQueuedAcrossConfigs(t *testing.T) {
	srv := startTestSMTP(t)
	storage := filepath.Join(t.TempDir(), "data")
	newApp := func(smtpAddr string) *App {
		a := &App{Storage: storage, SMTP: "smtp://" + smtpAddr + "/", DisableStartTLS: true, MailRetryBase: caddy.Duration(50 * time.Millisecond)}
		if err := provisionApp(t, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	// The old config points at a server that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	old := newApp(dead)
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	if err := (courierMailer{old.courier}).Send(context.Background(), flows.Mail{To: "a@example.com", Template: "verification_code_valid", VerificationCode: "123456"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a few failed attempts

	// Reload: the new config is provisioned and started before the old one
	// is stopped and cleaned up.
	next := newApp(srv.addr)
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	if err := old.Stop(); err != nil {
		t.Errorf("old Stop: %v", err)
	}
	if err := old.Cleanup(); err != nil {
		t.Errorf("old Cleanup: %v", err)
	}
	srv.wait(t, 1)
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.messages()); n != 1 {
		t.Errorf("delivered %d messages, want exactly 1", n)
	}
}

// plainPart returns the headers and the decoded text/plain part of a
// multipart message.
func plainPart(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, raw)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no text/plain part: %v\n%s", err, raw)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			b, err := io.ReadAll(p) // quoted-printable is decoded by NextPart
			if err != nil {
				t.Fatal(err)
			}
			return m.Header, string(b)
		}
	}
}

// --- a minimal SMTP server (emersion/go-smtp) ---

type testMail struct {
	from, to string
	data     []byte
}

type testSMTP struct {
	addr string
	mu   sync.Mutex
	msgs []testMail
}

func startTestSMTP(t *testing.T) *testSMTP {
	t.Helper()
	ts := &testSMTP{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &testSMTPSession{srv: ts}, nil }))
	s.Domain = "mx.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ts
}

func (ts *testSMTP) messages() []testMail {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]testMail(nil), ts.msgs...)
}

func (ts *testSMTP) wait(t *testing.T, n int) []testMail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := ts.messages(); len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %d mail(s), got %d", n, len(ts.messages()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testSMTPSession struct {
	srv      *testSMTP
	from, to string
}

func (s *testSMTPSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *testSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *testSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, testMail{from: s.from, to: s.to, data: b})
	s.srv.mu.Unlock()
	return nil
}
func (s *testSMTPSession) Reset()        { s.from, s.to = "", "" }
func (s *testSMTPSession) Logout() error { return nil }
