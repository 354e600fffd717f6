package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
)

// The mail courier: smtp, disable_starttls, from, mail_template(s) and
// mail_retry_base, which the courier reads (the engine only queues mails
// through courierMailer).

// MailTemplate overrides parts of one mail template. Each part is a file
// path (or file:// URL, or base64://… inline template) of a Go template
// that sees Kratos's template data (.To, .RecoveryCode, .VerificationURL,
// .Identity, …); an empty part keeps the built-in one.
type MailTemplate struct {
	// Subject is the template of the subject line.
	Subject string `json:"subject,omitempty"`
	// Text is the template of the plain-text body.
	Text string `json:"text,omitempty"`
	// HTML is the template of the HTML body.
	HTML string `json:"html,omitempty"`
}

// unmarshalMailOption reads
//
//	smtp <smtp://user:pass@host:port/|smtps://...>
//	disable_starttls
//	from <address>
//	mail_template <name> <subject|text|html> <file>
//	mail_retry_base <duration>
func (a *App) unmarshalMailOption(o *globalOption) (bool, error) {
	var err error
	switch o.name {
	case "smtp":
		a.SMTP, err = o.one()
		if err == nil && !hasPlaceholder(a.SMTP) {
			err = o.check(checkSMTPURI(a.SMTP))
		}

	case "disable_starttls":
		a.DisableStartTLS, err = o.flag()

	case "from":
		a.From, err = o.one()
		if err == nil && !hasPlaceholder(a.From) {
			err = o.check(checkFromAddress(a.From))
		}

	case "mail_template":
		err = a.parseMailTemplate(o)

	case "mail_retry_base":
		a.MailRetryBase, err = o.duration()

	default:
		return false, nil
	}
	return true, err
}

// parseMailTemplate reads one mail_template line, one part of one
// template.
func (a *App) parseMailTemplate(o *globalOption) error {
	var tpl, part, file string
	if !o.d.AllArgs(&tpl, &part, &file) {
		return o.d.ArgErr()
	}
	if err := o.check(checkMailTemplateName(tpl)); err != nil {
		return err
	}
	if err := o.check(checkOneOf("mail template part", part, mailTemplateParts)); err != nil {
		return err
	}
	if a.MailTemplates == nil {
		a.MailTemplates = make(map[string]*MailTemplate)
	}
	t := a.MailTemplates[tpl]
	if t == nil {
		t = new(MailTemplate)
		a.MailTemplates[tpl] = t
	}
	dst := map[string]*string{"subject": &t.Subject, "text": &t.Text, "html": &t.HTML}[part]
	if *dst != "" {
		return o.d.Errf("mail_template: duplicate %s of %s", part, tpl)
	}
	*dst = file
	return nil
}

// checkMailOptions checks the mail options when the config is loaded, so
// a JSON config is refused with the engine's other errors; courier.New
// checks them again, with placeholders replaced.
func (a *App) checkMailOptions(errs *configErrors) {
	for _, name := range slices.Sorted(maps.Keys(a.MailTemplates)) {
		errs.check("mail_templates", checkMailTemplateName(name))
	}
	if a.SMTP != "" && !hasPlaceholder(a.SMTP) {
		errs.check("smtp", checkSMTPURI(a.SMTP))
	}
	if a.From != "" && !hasPlaceholder(a.From) {
		errs.check("from", checkFromAddress(a.From))
	}
	if a.MailRetryBase != 0 {
		errs.check("mail_retry_base", checkLifespan(time.Duration(a.MailRetryBase)))
	}
}

// courierConfig resolves placeholders and maps the mail options to the
// courier's Config. Values are checked by courier.New.
func (a *App) courierConfig(repl *caddy.Replacer) (courier.Config, error) {
	r := replaceKnown(repl)
	cfg := courier.Config{
		ConnectionURI:   r(a.SMTP),
		DisableStartTLS: a.DisableStartTLS,
		From:            r(a.From),
		RetryBase:       time.Duration(a.MailRetryBase),
	}
	// Queued mails are sealed with secrets kept outside the storage, when
	// the configuration gives any (the generated one lives in the store).
	bodySecrets := a.CipherSecrets
	if len(bodySecrets) == 0 {
		bodySecrets = a.CookieSecrets
	}
	cfg.BodySecrets = replaceEach(bodySecrets, r)
	if a.SMTP != "" && cfg.ConnectionURI == "" {
		return cfg, fmt.Errorf("smtp: %q is empty after replacing placeholders", a.SMTP)
	}
	if len(a.MailTemplates) > 0 {
		cfg.Templates = make(map[string]courier.TemplateFiles, len(a.MailTemplates))
		for name, t := range a.MailTemplates {
			if t == nil {
				continue
			}
			cfg.Templates[name] = courier.TemplateFiles{Subject: r(t.Subject), BodyPlaintext: r(t.Text), BodyHTML: r(t.HTML)}
		}
	}
	return cfg, nil
}

// courierConfigError names the option behind a courier configuration
// error.
func courierConfigError(err error) error {
	var ce *courier.ConfigError
	if !errors.As(err, &ce) {
		return fmt.Errorf("kratos mail courier: %w", err)
	}
	field := ce.Field
	switch {
	case field == "connection_uri":
		field = "smtp"
	case field == "from_address":
		field = "from"
	case field == "templates":
		field = "mail_templates"
	case strings.HasPrefix(field, "templates."):
		field = "mail_template " + strings.TrimPrefix(field, "templates.")
	}
	return fmt.Errorf("%s: %w", field, ce.Err)
}

// courierMailer queues the engine's mails in the courier's outbox.
type courierMailer struct{ c *courier.Courier }

// Send renders m and stores it durably; delivery happens in the background.
func (m courierMailer) Send(ctx context.Context, mail flows.Mail) error {
	_, err := m.c.Enqueue(ctx, courier.Message{
		To:       mail.To,
		Template: courier.TemplateID(mail.Template),
		Data: courier.TemplateData{
			To:               mail.To,
			RecoveryCode:     mail.RecoveryCode,
			RecoveryURL:      mail.RecoveryURL,
			VerificationCode: mail.VerificationCode,
			VerificationURL:  mail.VerificationURL,
			LoginCode:        mail.LoginCode,
			RegistrationCode: mail.RegistrationCode,
			Identity:         mail.Identity,
			RequestURL:       mail.RequestURL,
			TransientPayload: mail.TransientPayload,
			ExpiresInMinutes: mail.ExpiresInMinutes,
		},
	})
	return err
}
