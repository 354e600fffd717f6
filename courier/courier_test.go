package courier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func plainURI(addr string) string {
	return "smtp://" + addr + "/?disable_starttls=true"
}

func TestDeliverOverSMTP(t *testing.T) {
	srv := startSMTP(t, smtpOpts{})
	st := openStore(t, t.TempDir())
	cfg := fastConfig(plainURI(srv.Addr))
	cfg.Headers = map[string]string{"X-Test": "yes"}
	c := newCourier(t, st, cfg, nil)
	c.Start()

	id, err := c.Enqueue(context.Background(), Message{
		To:       "alice@example.org",
		Template: TemplateVerificationCodeValid,
		Data: TemplateData{
			VerificationCode: "482913",
			VerificationURL:  "https://auth.example.org/self-service/verification?flow=f1&code=482913",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.waitMessages(1, 5*time.Second)
	m := parseMail(t, msgs[0].Raw)

	if msgs[0].EnvelopeFrom != "no-reply@example.com" {
		t.Errorf("envelope from = %q", msgs[0].EnvelopeFrom)
	}
	if len(msgs[0].EnvelopeTo) != 1 || msgs[0].EnvelopeTo[0] != "alice@example.org" {
		t.Errorf("envelope to = %v", msgs[0].EnvelopeTo)
	}
	if m.From != `"Login" <no-reply@example.com>` && m.From != "Login <no-reply@example.com>" {
		t.Errorf("From = %q", m.From)
	}
	if !strings.Contains(m.To, "alice@example.org") {
		t.Errorf("To = %q", m.To)
	}
	if m.Subject != "Please verify your email address" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if m.Header.Get("X-Test") != "yes" {
		t.Errorf("custom header missing")
	}
	if m.Header.Get("Message-Id") == "" || m.Header.Get("Date") == "" {
		t.Errorf("Message-ID/Date missing: %v", m.Header)
	}
	wantText := "Hi,\n\nplease verify your account by entering the following code:\n\n482913\n\nor clicking the following link:\n\nhttps://auth.example.org/self-service/verification?flow=f1&code=482913\n"
	if got := strings.ReplaceAll(m.Text, "\r\n", "\n"); got != wantText {
		t.Errorf("text body = %q, want %q", got, wantText)
	}
	if !strings.Contains(m.HTML, "<strong>482913</strong>") ||
		!strings.Contains(m.HTML, `href="https://auth.example.org/self-service/verification?flow=f1&amp;code=482913"`) {
		t.Errorf("html body = %q", m.HTML)
	}

	s := waitState(t, c, id, StateSent, 5*time.Second)
	if s.Attempts != 1 || s.SentAt == nil {
		t.Errorf("status = %+v", s)
	}
	// Codes do not outlive delivery in the outbox.
	raw, err := st.GetRecord(context.Background(), Namespace, id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "482913") {
		t.Errorf("sent record still holds the code: %s", raw)
	}
}

func TestStartTLSWithAuth(t *testing.T) {
	obsCore, logs := observer.New(zapcore.DebugLevel)
	srv := startSMTP(t, smtpOpts{startTLS: selfSignedTLS(t), requireAuth: true, user: "mailer", pass: "s3cr3t-pässword"})
	st := openStore(t, t.TempDir())
	uri := "smtp://mailer:s3cr3t-p%C3%A4ssword@" + srv.Addr + "/?skip_ssl_verify=true"
	c := newCourier(t, st, fastConfig(uri), zap.New(obsCore))
	c.Start()
	if _, err := c.Enqueue(context.Background(), Message{To: "bob@example.org", Template: TemplateLoginCodeValid, Data: TemplateData{LoginCode: "777111"}}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.waitMessages(1, 5*time.Second)
	if !msgs[0].TLS {
		t.Error("message was not sent over TLS")
	}
	if msgs[0].User != "mailer" || msgs[0].Pass != "s3cr3t-pässword" {
		t.Errorf("auth = %q/%q", msgs[0].User, msgs[0].Pass)
	}
	m := parseMail(t, msgs[0].Raw)
	if m.Subject != "Login to your account" || !strings.Contains(m.Text, "please login to your account by entering the following code:\n\n777111") {
		t.Errorf("subject %q text %q", m.Subject, m.Text)
	}
	assertNoSecretInLogs(t, logs, "s3cr3t")
	if logs.FilterMessage("courier started").Len() != 1 {
		t.Errorf("no start log")
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := startSMTP(t, smtpOpts{implicitTLS: selfSignedTLS(t)})
	st := openStore(t, t.TempDir())
	c := newCourier(t, st, fastConfig("smtps://"+srv.Addr+"/?skip_ssl_verify=true"), nil)
	c.Start()
	if _, err := c.Enqueue(context.Background(), Message{To: "bob@example.org", Template: TemplateRegistrationCodeValid, Data: TemplateData{RegistrationCode: "246810"}}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.waitMessages(1, 5*time.Second)
	m := parseMail(t, msgs[0].Raw)
	if !msgs[0].TLS || m.Subject != "Complete your account registration" || !strings.Contains(m.Text, "246810") {
		t.Errorf("tls %v subject %q text %q", msgs[0].TLS, m.Subject, m.Text)
	}
}

// smtp:// without disable_starttls must refuse a server that offers no
// STARTTLS, and must not leak the password in the recorded error.
func TestStartTLSRequired(t *testing.T) {
	obsCore, logs := observer.New(zapcore.DebugLevel)
	srv := startSMTP(t, smtpOpts{})
	st := openStore(t, t.TempDir())
	cfg := fastConfig("smtp://u:topsecretpw@" + srv.Addr + "/")
	cfg.MaxAttempts = 2
	c := newCourier(t, st, cfg, zap.New(obsCore))
	c.Start()
	id, err := c.Enqueue(context.Background(), Message{To: "x@example.org", Template: TemplateRecoveryCodeValid, Data: TemplateData{RecoveryCode: "111222"}})
	if err != nil {
		t.Fatal(err)
	}
	s := waitState(t, c, id, StateAbandoned, 5*time.Second)
	if len(srv.Messages()) != 0 {
		t.Fatal("message delivered without TLS")
	}
	if s.LastError == "" || strings.Contains(s.LastError, "topsecretpw") {
		t.Errorf("last error = %q", s.LastError)
	}
	if logs.FilterMessage("mail abandoned after too many failed attempts").Len() != 1 {
		t.Errorf("abandon not logged: %v", logs.All())
	}
	assertNoSecretInLogs(t, logs, "topsecretpw")
}

func TestSMTPOutageThenRecovery(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + port
	st := openStore(t, t.TempDir())
	c := newCourier(t, st, fastConfig(plainURI(addr)), nil)
	c.Start()

	id, err := c.Enqueue(context.Background(), Message{To: "carol@example.org", Template: TemplateRecoveryCodeValid, Data: TemplateData{RecoveryCode: "908172"}})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for at least two recorded failures (queued again, error kept).
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := c.Status(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == StateAbandoned || s.State == StateSent {
			t.Fatalf("state during outage = %s", s.State)
		}
		if s.State == StateQueued && s.Attempts >= 2 {
			if s.LastError == "" {
				t.Fatalf("no last error recorded: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retries happened: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}

	srv := startSMTP(t, smtpOpts{addr: addr})
	msgs := srv.waitMessages(1, 5*time.Second)
	m := parseMail(t, msgs[0].Raw)
	if m.Subject != "Recover access to your account" || !strings.Contains(m.Text, "please recover access to your account by entering the following code:\n\n908172") {
		t.Errorf("subject %q text %q", m.Subject, m.Text)
	}
	s := waitState(t, c, id, StateSent, 5*time.Second)
	if s.LastError != "" || s.Attempts < 3 {
		t.Errorf("status = %+v", s)
	}
	time.Sleep(400 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

func TestRestartResumesQueued(t *testing.T) {
	srv := startSMTP(t, smtpOpts{})
	dir := t.TempDir()
	st := openStore(t, dir)
	cfg := fastConfig(plainURI(srv.Addr))

	// First instance enqueues but stops before its worker sends anything.
	c1, err := New(st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c1.Enqueue(context.Background(), Message{To: "dave@example.org", Template: TemplateVerificationValid, Data: TemplateData{VerificationURL: "https://x.example/v?token=abc"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	c1.Start() // no-op after Stop
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("sent %d before restart", n)
	}

	// "Restart": reopen the store, new courier.
	st2 := openStore(t, dir)
	c2 := newCourier(t, st2, cfg, nil)
	s, err := c2.Status(context.Background(), id)
	if err != nil || s.State != StateQueued {
		t.Fatalf("after reopen: %+v %v", s, err)
	}
	c2.Start()
	msgs := srv.waitMessages(1, 5*time.Second)
	m := parseMail(t, msgs[0].Raw)
	if m.Subject != "Please verify your email address" || !strings.Contains(m.Text, "https://x.example/v?token=abc") {
		t.Errorf("subject %q text %q", m.Subject, m.Text)
	}
	waitState(t, c2, id, StateSent, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

func TestTwoCouriersDeliverOnce(t *testing.T) {
	srv := startSMTP(t, smtpOpts{dataDelay: 20 * time.Millisecond})
	st := openStore(t, t.TempDir())
	cfg := fastConfig(plainURI(srv.Addr))
	cfg.PollInterval = 20 * time.Millisecond
	a := newCourier(t, st, cfg, nil)
	b := newCourier(t, st, cfg, nil)

	// Queue before starting so both workers race for the same messages.
	const n = 12
	var ids []string
	for i := 0; i < n; i++ {
		c := a
		if i%2 == 1 {
			c = b
		}
		id, err := c.Enqueue(context.Background(), Message{To: fmt.Sprintf("u%d@example.org", i), Template: TemplateLoginCodeValid, Data: TemplateData{LoginCode: fmt.Sprintf("%06d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for _, c := range []*Courier{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Start() }()
	}
	wg.Wait()
	a.Wake()
	b.Wake()

	srv.waitMessages(n, 10*time.Second)
	for _, id := range ids {
		waitState(t, a, id, StateSent, 5*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	msgs := srv.Messages()
	if len(msgs) != n {
		t.Fatalf("delivered %d messages for %d queued", len(msgs), n)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.EnvelopeTo[0]]++
	}
	for to, k := range seen {
		if k != 1 {
			t.Errorf("%s got %d copies", to, k)
		}
	}
}

func TestStopWaitsForInFlightSend(t *testing.T) {
	srv := startSMTP(t, smtpOpts{dataDelay: 300 * time.Millisecond})
	st := openStore(t, t.TempDir())
	c := newCourier(t, st, fastConfig(plainURI(srv.Addr)), nil)
	c.Start()
	id, err := c.Enqueue(context.Background(), Message{To: "eve@example.org", Template: TemplateLoginCodeValid, Data: TemplateData{LoginCode: "123123"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.mailCh:
	case <-time.After(5 * time.Second):
		t.Fatal("no SMTP transaction started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stop returned only after the send finished and was recorded.
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	s, err := c.Status(context.Background(), id)
	if err != nil || s.State != StateSent {
		t.Fatalf("status after Stop: %+v %v", s, err)
	}
}

func TestLogDelivery(t *testing.T) {
	obsCore, logs := observer.New(zapcore.DebugLevel)
	st := openStore(t, t.TempDir())
	cfg := fastConfig("")
	c := newCourier(t, st, cfg, zap.New(obsCore))
	if c.Settings().SMTP != nil {
		t.Fatal("SMTP configured")
	}
	c.Start()
	id, err := c.Enqueue(context.Background(), Message{To: "frank@example.org", Template: TemplateRecoveryCodeValid, Data: TemplateData{RecoveryCode: "654321"}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, id, StateSent, 5*time.Second)
	entries := logs.FilterMessage(DevLogMarker).All()
	if len(entries) != 1 {
		t.Fatalf("got %d dev log entries: %v", len(entries), logs.All())
	}
	e := entries[0]
	if e.Level != zapcore.WarnLevel {
		t.Errorf("level = %s", e.Level)
	}
	f := e.ContextMap()
	if f["to"] != "frank@example.org" || f["subject"] != "Recover access to your account" ||
		!strings.Contains(fmt.Sprint(f["body"]), "please recover access to your account by entering the following code:\n\n654321") {
		t.Errorf("fields = %v", f)
	}
}

func TestAbandonAfterMaxAttempts(t *testing.T) {
	obsCore, logs := observer.New(zapcore.DebugLevel)
	st := openStore(t, t.TempDir())
	cfg := fastConfig(plainURI("127.0.0.1:" + freePort(t)))
	cfg.MaxAttempts = 3
	c := newCourier(t, st, cfg, zap.New(obsCore))
	c.Start()
	id, err := c.Enqueue(context.Background(), Message{To: "gina@example.org", Template: TemplateLoginCodeValid, Data: TemplateData{LoginCode: "000111"}})
	if err != nil {
		t.Fatal(err)
	}
	s := waitState(t, c, id, StateAbandoned, 5*time.Second)
	if s.Attempts != 3 || s.LastError == "" {
		t.Errorf("status = %+v", s)
	}
	// The worker logs after it has recorded the state, so the line may
	// follow waitState by a moment.
	for deadline := time.Now().Add(2 * time.Second); logs.FilterMessage("mail abandoned after too many failed attempts").Len() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := logs.FilterMessage("mail abandoned after too many failed attempts").Len(); n != 1 {
		t.Errorf("abandon logged %d times, want once", n)
	}
	if logs.FilterMessage("mail delivery failed, will retry").Len() != 2 {
		t.Errorf("retries logged %d times", logs.FilterMessage("mail delivery failed, will retry").Len())
	}
	time.Sleep(200 * time.Millisecond)
	if s2, _ := c.Status(context.Background(), id); s2.Attempts != 3 {
		t.Errorf("attempts after abandon = %d", s2.Attempts)
	}
}

func TestEnqueueErrors(t *testing.T) {
	st := openStore(t, t.TempDir())
	c := newCourier(t, st, fastConfig(""), nil)
	ctx := context.Background()
	if _, err := c.Enqueue(ctx, Message{To: "not an address", Template: TemplateLoginCodeValid}); err == nil {
		t.Error("invalid recipient accepted")
	}
	if _, err := c.Enqueue(ctx, Message{To: "a@example.org", Template: "nope"}); err == nil {
		t.Error("unknown template accepted")
	}
	n := 0
	if err := st.ScanRecords(ctx, Namespace, func(string, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d records stored for failed enqueues", n)
	}
}

func TestEnqueueIsDurableBeforeReturn(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	c := newCourier(t, st, fastConfig(""), nil)
	id, err := c.Enqueue(context.Background(), Message{To: "h@example.org", Template: TemplateRecoveryInvalid})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetRecord(context.Background(), Namespace, id)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.State != StateQueued || rec.Subject != "Account access attempted" ||
		!strings.Contains(rec.Text, "this email address is not on our database of registered users") || rec.HTML == "" {
		t.Errorf("record = %+v", rec)
	}
	// Keys sort by enqueue time.
	id2, err := c.Enqueue(context.Background(), Message{To: "h@example.org", Template: TemplateVerificationInvalid})
	if err != nil {
		t.Fatal(err)
	}
	if id2 <= id {
		t.Errorf("ids not time-ordered: %s then %s", id, id2)
	}
	if _, err := c.Status(context.Background(), "missing"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Errorf("Status(missing) = %v", err)
	}
}

func TestBackoff(t *testing.T) {
	c := &Courier{settings: &Settings{Config: Config{RetryBase: time.Second, RetryMax: 10 * time.Minute}}}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := c.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := c.backoff(12); got != 10*time.Minute {
		t.Errorf("backoff(12) = %v", got)
	}
	if got := c.backoff(1000); got != 10*time.Minute {
		t.Errorf("backoff(1000) = %v", got)
	}
}

func assertNoSecretInLogs(t *testing.T, logs *observer.ObservedLogs, secret string) {
	t.Helper()
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, secret) {
			t.Errorf("secret in log line: %s", line)
		}
	}
}
