package courier

import (
	"context"
	"errors"
	"fmt"

	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap"
)

// DevLogMarker is the message of the log line written instead of sending
// when no SMTP server is configured.
const DevLogMarker = "DEV ONLY: mail not sent, no SMTP configured"

// logSender writes mails to the log (no SMTP configured).
type logSender struct {
	log *zap.Logger
}

func (l *logSender) send(_ context.Context, r *record) error {
	l.log.Warn(DevLogMarker,
		zap.String("id", r.ID),
		zap.String("to", r.To),
		zap.String("template", string(r.Template)),
		zap.String("subject", r.Subject),
		zap.String("body", r.Text),
	)
	return nil
}

// smtpSender delivers over SMTP with go-mail, one connection per message.
type smtpSender struct {
	settings *Settings
}

func (s *smtpSender) send(ctx context.Context, r *record) error {
	cfg := s.settings
	sm := cfg.SMTP

	m := gomail.NewMsg()
	if err := m.FromFormat(cfg.FromAddr.Name, cfg.FromAddr.Address); err != nil {
		return fmt.Errorf("from address: %w", err)
	}
	if err := m.To(r.To); err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	m.Subject(r.Subject)
	m.SetDate()
	m.SetMessageID()
	for k, v := range cfg.Headers {
		m.SetGenHeader(gomail.Header(k), v)
	}
	m.SetBodyString(gomail.TypeTextPlain, r.Text)
	if r.HTML != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	}

	opts := []gomail.Option{
		gomail.WithPort(sm.Port),
		gomail.WithHELO(cfg.LocalName),
		gomail.WithTimeout(cfg.SendTimeout),
		gomail.WithTLSConfig(sm.TLSConfig()),
	}
	switch {
	case sm.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case sm.StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if sm.Username != "" || sm.Password != "" {
		opts = append(opts, gomail.WithUsername(sm.Username), gomail.WithPassword(sm.Password))
		if sm.ImplicitTLS || sm.StartTLS {
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		} else {
			// Without TLS go-mail's PLAIN only sends credentials to
			// localhost; challenge-response mechanisms are preferred.
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(
				gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain))
		}
	}
	client, err := gomail.NewClient(sm.Host, opts...)
	if err != nil {
		return errors.New(sm.redact(err.Error()))
	}
	if err := client.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("smtp %s: %s", sm.addr(), sm.redact(err.Error()))
	}
	return nil
}
