package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	ory "github.com/ory/client-go"
)

// Mail subjects of the built-in templates (courier/templates).
const (
	subjectRecovery     = "Recover access to your account"
	subjectVerification = "Please verify your email address"
)

// ---------------------------------------------------------------------------
// An SMTP server inside the test process

// mailMsg is one delivered message, decoded.
type mailMsg struct {
	EnvelopeTo []string
	From       string
	To         string
	Subject    string
	Text       string
	HTML       string
	Err        error // decoding problem
}

// mailServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1 that
// records every delivered message. It can be stopped and started again on
// the same port to simulate an outage.
type mailServer struct {
	addr string

	mu   sync.Mutex
	srv  *smtp.Server
	ln   net.Listener
	msgs []mailMsg
}

// startMailServer listens on a free port; the server is closed when t ends.
func startMailServer(t *testing.T) *mailServer {
	t.Helper()
	m := &mailServer{}
	if err := m.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	return m
}

func (m *mailServer) listen(addr string) error {
	var ln net.Listener
	var err error
	// After a stop the port may take a moment to be free again.
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("SMTP listen %s: %w", addr, err)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{srv: m}, nil }))
	s.Domain = "mx.e2e.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	m.mu.Lock()
	m.srv, m.ln, m.addr = s, ln, ln.Addr().String()
	m.mu.Unlock()
	go func() { _ = s.Serve(ln) }()
	return nil
}

// uri is the smtp subdirective's value for this server (plain SMTP; the
// instance adds disable_starttls).
func (m *mailServer) uri() string { return "smtp://" + m.addr + "/" }

// stop closes the listener and every connection: deliveries fail until
// start is called.
func (m *mailServer) stop() {
	m.mu.Lock()
	s, ln := m.srv, m.ln
	m.srv, m.ln = nil, nil
	m.mu.Unlock()
	if ln != nil {
		// Closed here too: Server.Close misses a listener that Serve
		// (in its goroutine) has not registered yet.
		_ = ln.Close()
	}
	if s != nil {
		_ = s.Close()
	}
}

// start listens again on the same address.
func (m *mailServer) start(t *testing.T) {
	t.Helper()
	if err := m.listen(m.addr); err != nil {
		t.Fatal(err)
	}
}

// to returns the messages delivered to addr whose subject is subject
// (any subject when empty), in delivery order.
func (m *mailServer) to(addr, subject string) []mailMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []mailMsg
	for _, msg := range m.msgs {
		for _, rcpt := range msg.EnvelopeTo {
			if strings.EqualFold(rcpt, addr) && (subject == "" || msg.Subject == subject) {
				out = append(out, msg)
				break
			}
		}
	}
	return out
}

// wait waits up to 15 s until n messages with subject reached addr and
// returns them all.
func (m *mailServer) wait(t *testing.T, addr, subject string, n int) []mailMsg {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs := m.to(addr, subject)
		if len(msgs) >= n {
			for _, msg := range msgs {
				if msg.Err != nil {
					t.Fatalf("undecodable mail to %s: %v", addr, msg.Err)
				}
			}
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 15s for %d mail(s) %q to %s, got %d", n, subject, addr, len(msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// last waits for the n-th message with subject to addr and returns it.
func (m *mailServer) last(t *testing.T, addr, subject string, n int) mailMsg {
	t.Helper()
	msgs := m.wait(t, addr, subject, n)
	return msgs[n-1]
}

// none fails if any message with subject reached addr, after waiting a
// little for stragglers.
func (m *mailServer) none(t *testing.T, addr, subject string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if msgs := m.to(addr, subject); len(msgs) > 0 {
		t.Errorf("%d unexpected mail(s) %q to %s: %+v", len(msgs), subject, addr, msgs)
	}
}

type mailSession struct {
	srv  *mailServer
	from string
	to   []string
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = append(s.to, to); return nil }
func (s *mailSession) Reset()                                      { s.from, s.to = "", nil }
func (s *mailSession) Logout() error                               { return nil }
func (s *mailSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg := decodeMail(raw)
	msg.EnvelopeTo = s.to
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, msg)
	s.srv.mu.Unlock()
	return nil
}

// decodeMail reads the headers and the text and HTML parts.
func decodeMail(raw []byte) mailMsg {
	var out mailMsg
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		out.Err = err
		return out
	}
	dec := new(mime.WordDecoder)
	out.Subject, _ = dec.DecodeHeader(m.Header.Get("Subject"))
	out.From, _ = dec.DecodeHeader(m.Header.Get("From"))
	out.To, _ = dec.DecodeHeader(m.Header.Get("To"))
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		out.Err = err
		return out
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(m.Body)
		out.Text = string(b)
		return out
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.Err = err
			return out
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by NextPart
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			out.Text = strings.ReplaceAll(string(b), "\r\n", "\n")
		case "text/html":
			out.HTML = strings.ReplaceAll(string(b), "\r\n", "\n")
		}
	}
	return out
}

var (
	mailCodeRe = regexp.MustCompile(`(?m)^\s*([0-9]{6})\s*$`)
	mailLinkRe = regexp.MustCompile(`https?://\S+/self-service/(?:recovery|verification)\?\S+`)
)

// code is the six-digit code of a code mail.
func (msg mailMsg) code(t *testing.T) string {
	t.Helper()
	m := mailCodeRe.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no six-digit code in the mail %q:\n%s", msg.Subject, msg.Text)
	}
	return m[1]
}

// link is the self-service link of a mail.
func (msg mailMsg) link(t *testing.T) string {
	t.Helper()
	l := mailLinkRe.FindString(msg.Text)
	if l == "" {
		t.Fatalf("no self-service link in the mail %q:\n%s", msg.Subject, msg.Text)
	}
	return l
}

// wrongCode returns a six-digit code that differs from code.
func wrongCode(code string) string {
	var n int
	fmt.Sscanf(code, "%d", &n)
	return fmt.Sprintf("%06d", (n+1)%1000000)
}

// ---------------------------------------------------------------------------
// Instances with mail

// mailLines are the kratos lines that send mail to m.
func mailLines(m *mailServer) []string {
	return []string{
		"smtp " + m.uri(),
		"disable_starttls",
		`from "Login <no-reply@example.com>"`,
		"mail_retry_base 100ms",
	}
}

// startMailInstance starts an SMTP server and a dedicated instance that
// mails through it, with extra kratos lines.
func startMailInstance(t *testing.T, extra ...string) (*instance, *mailServer) {
	t.Helper()
	m := startMailServer(t)
	in := startInstance(t, instanceOptions{GlobalKratos: append(mailLines(m), extra...)})
	return in, m
}

// sharedMailInstance is an instance with mail shared by several tests.
type sharedMailInstance struct {
	once sync.Once
	in   *instance
	srv  *mailServer
	err  error
}

var sharedMailInstances sync.Map // name → *sharedMailInstance

// sharedMailWith returns the instance called name, started on first use
// with its own SMTP server and the extra kratos lines, and stopped after
// all tests. Tests on it must use their own addresses.
func sharedMailWith(t *testing.T, name string, extra ...string) (*instance, *mailServer) {
	t.Helper()
	v, _ := sharedMailInstances.LoadOrStore(name, new(sharedMailInstance))
	s := v.(*sharedMailInstance)
	s.once.Do(func() {
		m := &mailServer{}
		if s.err = m.listen("127.0.0.1:0"); s.err != nil {
			return
		}
		atExit(func(bool) { m.stop() })
		s.srv = m
		// Every test on it submits wrong codes and asks for mails from
		// 127.0.0.1: the abuse limits would trip with -count=N.
		lines := append(mailLines(m), "rate_limits off")
		s.in, s.err = newSharedInstance("caddy-kratos-mail-"+name+"-", instanceOptions{GlobalKratos: append(lines, extra...)})
	})
	if s.err != nil {
		var logs string
		if s.in != nil {
			logs = s.in.logs.tail(16 << 10)
		}
		t.Fatalf("shared mail instance %s did not start: %v\n--- output ---\n%s", name, s.err, logs)
	}
	return s.in, s.srv
}

// sharedMail: recovery and verification by code.
func sharedMail(t *testing.T) (*instance, *mailServer) {
	t.Helper()
	return sharedMailWith(t, "code", "recovery", "verification")
}

// sharedLinkMail: recovery and verification by link.
func sharedLinkMail(t *testing.T) (*instance, *mailServer) {
	t.Helper()
	return sharedMailWith(t, "link", "recovery link", "verification link")
}

// sharedShortCodeMail: recovery and verification by code, codes valid for
// two seconds.
func sharedShortCodeMail(t *testing.T) (*instance, *mailServer) {
	t.Helper()
	return sharedMailWith(t, "short", "recovery", "verification", "code_lifespan 2s")
}

// ---------------------------------------------------------------------------
// Courier robustness

// startRecovery submits email to a new native recovery flow and returns
// the flow id; the answer must be 200 sent_email.
func startRecovery(t *testing.T, in *instance, email string) string {
	t.Helper()
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	f, resp, err := c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flow.Id).UpdateRecoveryFlowBody(recoveryEmailBody(email, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if f.State != "sent_email" {
		t.Fatalf("recovery state = %q, want sent_email", f.State)
	}
	return flow.Id
}

// wantRecovered submits code to the native flow and expects Kratos's
// default success answer (422 browser_location_change_required).
func wantRecovered(t *testing.T, in *instance, flowID, code string) {
	t.Helper()
	_, resp, err := in.api().FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).UpdateRecoveryFlowBody(recoveryCodeBody(code, "")).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("recovery with the mailed code: %v %v (want 422)", resp, err)
	}
	if e := decodeError(t, 422, sdkErrBody(t, err)); e.Error.ID != "browser_location_change_required" {
		t.Errorf("error.id = %q, want browser_location_change_required", e.Error.ID)
	}
}

// TestMailSMTPOutage: the SMTP server is down when the address is
// submitted. The flow still answers sent_email (the mail is queued), the
// courier retries, and the mail arrives once the server is back on the same
// port; its code works.
func TestMailSMTPOutage(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "recovery")
	u := registerNative(t, in)

	mails.stop()
	flowID := startRecovery(t, in, u.Email)
	time.Sleep(700 * time.Millisecond) // several failed attempts (100ms, 200ms, 400ms…)
	if n := len(mails.to(u.Email, "")); n != 0 {
		t.Fatalf("%d mail(s) delivered while the server was down", n)
	}
	mails.start(t)

	msg := mails.last(t, u.Email, subjectRecovery, 1)
	wantRecovered(t, in, flowID, msg.code(t))
	time.Sleep(300 * time.Millisecond) // the retries must not duplicate it
	if n := len(mails.to(u.Email, subjectRecovery)); n != 1 {
		t.Errorf("delivered %d recovery mails, want exactly 1", n)
	}
}

// TestMailQueuedAcrossRestart: a mail queued while the SMTP server is down
// survives a graceful restart of the gateway and is delivered once after
// it, and its code still works on the (persisted) flow.
func TestMailQueuedAcrossRestart(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "recovery")
	u := registerNative(t, in)

	mails.stop()
	flowID := startRecovery(t, in, u.Email)
	time.Sleep(300 * time.Millisecond)
	if !in.stop() {
		t.Error("caddy-kratos did not exit within 5s of SIGTERM (killed)")
	}
	if n := len(mails.to(u.Email, "")); n != 0 {
		t.Fatalf("%d mail(s) delivered while the server was down", n)
	}
	mails.start(t)
	if err := in.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}

	msg := mails.last(t, u.Email, subjectRecovery, 1)
	wantRecovered(t, in, flowID, msg.code(t))
	time.Sleep(500 * time.Millisecond)
	if n := len(mails.to(u.Email, subjectRecovery)); n != 1 {
		t.Errorf("delivered %d recovery mails after the restart, want exactly 1", n)
	}
}

// TestMailReload: a mail queued while the configured SMTP server is down
// is delivered by the next configuration (loaded through the admin API)
// to its server, once: old and new couriers share the outbox.
func TestMailReload(t *testing.T) {
	t.Parallel()
	dead := startMailServer(t)
	dead.stop()
	live := startMailServer(t)
	in := startInstance(t, instanceOptions{GlobalKratos: append(mailLines(dead), "recovery")})
	u := registerNative(t, in)
	flowID := startRecovery(t, in, u.Email)
	time.Sleep(300 * time.Millisecond) // a few failed attempts

	in.loadConfig(t, instanceOptions{GlobalKratos: append(mailLines(live), "recovery", "code_max_submissions 4")})
	msg := live.last(t, u.Email, subjectRecovery, 1)
	wantRecovered(t, in, flowID, msg.code(t))
	time.Sleep(500 * time.Millisecond)
	if n := len(live.to(u.Email, subjectRecovery)); n != 1 {
		t.Errorf("delivered %d recovery mails after the reload, want exactly 1", n)
	}
	if n := len(dead.to(u.Email, "")); n != 0 {
		t.Errorf("the old server got %d mails", n)
	}
	if !in.stop() {
		t.Error("caddy-kratos did not exit within 5s of SIGTERM after the reload (killed)")
	}
}

// TestMailSenderAndTemplateOverride: the SMTP URI from an {env.X}
// placeholder, the from address (with display name) and a subject override
// from a file reach the delivered mail.
func TestMailSenderAndTemplateOverride(t *testing.T) {
	t.Parallel()
	subject := writeTemp(t, "subject.gotmpl", `Your code for {{ .To }}`)
	mails := startMailServer(t)
	in := startInstance(t, instanceOptions{
		GlobalKratos: []string{
			"smtp {env.CK_E2E_SMTP_URI}",
			`from "Login <no-reply@example.com>"`,
			"recovery",
			"mail_template recovery_code_valid subject " + subject,
		},
		Env: []string{"CK_E2E_SMTP_URI=" + mails.uri() + "?disable_starttls=true"},
	})
	u := registerNative(t, in)
	startRecovery(t, in, u.Email)
	msgs := mails.wait(t, u.Email, "Your code for "+u.Email, 1)
	if got := msgs[0].From; got != `"Login" <no-reply@example.com>` && got != "Login <no-reply@example.com>" {
		t.Errorf("From = %q, want Login <no-reply@example.com>", got)
	}
	if !strings.Contains(msgs[0].HTML, msgs[0].code(t)) {
		t.Errorf("the HTML part does not carry the code:\n%s", msgs[0].HTML)
	}
}

// writeTemp writes a file into t's temporary directory and returns its
// path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMailBadConfigStopsStartup: courier configuration errors stop Caddy
// at start-up, naming the option, instead of failing at the first mail.
func TestMailBadConfigStopsStartup(t *testing.T) {
	t.Parallel()
	broken := writeTemp(t, "broken.gotmpl", "{{ .RecoveryCode ")
	for _, tc := range []struct {
		name string
		opts instanceOptions
		want string
	}{
		{"broken template", instanceOptions{GlobalKratos: []string{"mail_template recovery_code_valid text " + broken}}, "mail_template recovery_code_valid"},
		{"missing template", instanceOptions{GlobalKratos: []string{"mail_template verification_valid html " + broken + ".missing"}}, "mail_template verification_valid"},
		{"smtp URI from the environment", instanceOptions{
			GlobalKratos: []string{"smtp {env.CK_E2E_BAD_SMTP}"},
			Env:          []string{"CK_E2E_BAD_SMTP=imap://user:hunter2@mail.example.com/"},
		}, "unsupported scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := newInstance(t.TempDir(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer in.stop()
			if err := in.start(); err == nil {
				t.Fatal("caddy-kratos started with a broken mail configuration")
			}
			logs := in.logs.tail(16 << 10)
			if !strings.Contains(logs, tc.want) {
				t.Errorf("the start-up error does not mention %q:\n%s", tc.want, logs)
			}
			if strings.Contains(logs, "hunter2") {
				t.Error("the SMTP password appears in the output")
			}
		})
	}
}

// recoveryEmailBody is the code-method body that asks for a code.
func recoveryEmailBody(email, csrf string) ory.UpdateRecoveryFlowBody {
	b := ory.NewUpdateRecoveryFlowWithCodeMethod("code")
	b.SetEmail(email)
	if csrf != "" {
		b.SetCsrfToken(csrf)
	}
	return ory.UpdateRecoveryFlowWithCodeMethodAsUpdateRecoveryFlowBody(b)
}

// recoveryCodeBody is the code-method body that submits a code.
func recoveryCodeBody(code, csrf string) ory.UpdateRecoveryFlowBody {
	b := ory.NewUpdateRecoveryFlowWithCodeMethod("code")
	b.SetCode(code)
	if csrf != "" {
		b.SetCsrfToken(csrf)
	}
	return ory.UpdateRecoveryFlowWithCodeMethodAsUpdateRecoveryFlowBody(b)
}
