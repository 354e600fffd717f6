package courier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/zap"
)

// received is one message accepted by the test SMTP server.
type received struct {
	EnvelopeFrom string
	EnvelopeTo   []string
	Raw          []byte
	User, Pass   string
	TLS          bool
}

// testSMTP is a real in-process SMTP server (emersion/go-smtp).
type testSMTP struct {
	t      *testing.T
	srv    *smtp.Server
	ln     net.Listener
	Addr   string
	mu     sync.Mutex
	msgs   []received
	conns  int
	mailCh chan struct{} // signalled on MAIL FROM

	// options
	requireAuth bool
	user, pass  string
	dataDelay   time.Duration
}

type smtpOpts struct {
	addr        string      // default 127.0.0.1:0
	startTLS    *tls.Config // offered via STARTTLS
	implicitTLS *tls.Config // listener is TLS
	requireAuth bool
	user, pass  string
	dataDelay   time.Duration
}

func startSMTP(t *testing.T, o smtpOpts) *testSMTP {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	ts := &testSMTP{t: t, requireAuth: o.requireAuth, user: o.user, pass: o.pass, dataDelay: o.dataDelay, mailCh: make(chan struct{}, 16)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		ts.conns++
		ts.mu.Unlock()
		_, isTLS := c.TLSConnectionState()
		return &testSession{srv: ts, conn: c, tls: isTLS}, nil
	}))
	srv.Domain = "mx.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.TLSConfig = o.startTLS
	var ln net.Listener
	var err error
	// The port may have just been released by a previous listener.
	for i := 0; i < 50; i++ {
		ln, err = net.Listen("tcp", o.addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", o.addr, err)
	}
	if o.implicitTLS != nil {
		ln = tls.NewListener(ln, o.implicitTLS)
	}
	ts.srv, ts.ln, ts.Addr = srv, ln, ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testSMTP) Close() { _ = ts.srv.Close() }

func (ts *testSMTP) Port() string {
	_, p, _ := net.SplitHostPort(ts.Addr)
	return p
}

func (ts *testSMTP) Messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

// waitMessages waits until at least n messages arrived.
func (ts *testSMTP) waitMessages(n int, timeout time.Duration) []received {
	ts.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := ts.Messages()
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("waited %v for %d message(s), got %d", timeout, n, len(m))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testSession struct {
	srv        *testSMTP
	conn       *smtp.Conn
	tls        bool
	from       string
	to         []string
	user, pass string
	authed     bool
}

func (s *testSession) AuthMechanisms() []string {
	if !s.srv.requireAuth {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.srv.user || password != s.srv.pass {
			return smtp.ErrAuthFailed
		}
		s.user, s.pass, s.authed = username, password, true
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.requireAuth && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	select {
	case s.srv.mailCh <- struct{}{}:
	default:
	}
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.srv.dataDelay > 0 {
		time.Sleep(s.srv.dataDelay)
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, received{EnvelopeFrom: s.from, EnvelopeTo: s.to, Raw: b, User: s.user, Pass: s.pass, TLS: isTLS})
	s.srv.mu.Unlock()
	return nil
}

func (s *testSession) Reset()        { s.from, s.to = "", nil }
func (s *testSession) Logout() error { return nil }

// parsedMail is a decoded received message.
type parsedMail struct {
	From, To, Subject string
	Text, HTML        string
	Header            mail.Header
}

func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	pm := parsedMail{From: m.Header.Get("From"), To: m.Header.Get("To"), Subject: subj, Header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("expected multipart message, got %s\n%s", mt, raw)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		body, err := io.ReadAll(p) // NextPart decodes quoted-printable
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "text/plain":
			pm.Text = strings.ReplaceAll(string(body), "\r\n", "\n")
		case "text/html":
			pm.HTML = strings.ReplaceAll(string(body), "\r\n", "\n")
		}
	}
	return pm
}

func openStore(t *testing.T, dir string) *sessionstore.Store {
	t.Helper()
	st, err := sessionstore.Open(dir, sessionstore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// fastConfig returns a config with test-friendly timings.
func fastConfig(uri string) Config {
	return Config{
		ConnectionURI: uri,
		From:          "Login <no-reply@example.com>",
		RetryBase:     50 * time.Millisecond,
		RetryMax:      200 * time.Millisecond,
		PollInterval:  100 * time.Millisecond,
		SendTimeout:   5 * time.Second,
	}
}

func newCourier(t *testing.T, st Store, cfg Config, logger *zap.Logger) *Courier {
	t.Helper()
	c, err := New(st, cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

func waitState(t *testing.T, c *Courier, id string, want State, timeout time.Duration) *Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.Status(context.Background(), id)
		if err == nil && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: waited %v for state %s, have %+v (err %v)", id, timeout, want, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort returns a port on 127.0.0.1 nobody listens on (right now).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	return p
}

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}
