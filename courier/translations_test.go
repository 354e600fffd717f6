package courier

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/locale"
)

// TestMailInRequestLanguage: a mail queued by a German request goes out in
// German over SMTP, and the outbox records the language.
func TestMailInRequestLanguage(t *testing.T) {
	srv := startSMTP(t, smtpOpts{})
	st := openStore(t, t.TempDir())
	c := newCourier(t, st, fastConfig(plainURI(srv.Addr)), nil)
	c.Start()

	ctx := locale.WithLanguage(context.Background(), "de")
	id, err := c.Enqueue(ctx, Message{To: "anna@example.org", Template: TemplateVerificationCodeValid,
		Data: TemplateData{VerificationCode: "482913", VerificationURL: "https://auth.example.org/v", ExpiresInMinutes: 60}})
	if err != nil {
		t.Fatal(err)
	}
	m := parseMail(t, srv.waitMessages(1, 5*time.Second)[0].Raw)
	if m.Subject != "Bitte bestätigen Sie Ihre E-Mail-Adresse" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if !strings.Contains(m.Text, "bitte bestätigen Sie Ihr Konto") || !strings.Contains(m.Text, "482913") ||
		!strings.Contains(m.Text, "Dieser Code läuft in 60 Minuten ab.") {
		t.Errorf("text:\n%s", m.Text)
	}
	if !strings.Contains(m.HTML, "482913") || !strings.Contains(m.HTML, "bestätigen") {
		t.Errorf("html:\n%s", m.HTML)
	}
	s := waitState(t, c, id, StateSent, 5*time.Second)
	if s.Lang != "de" || s.Subject != m.Subject {
		t.Errorf("status: lang %q subject %q", s.Lang, s.Subject)
	}
}

func TestMailLanguageChoice(t *testing.T) {
	c := newCourier(t, openStore(t, t.TempDir()), Config{}, nil)
	subject := func(ctx context.Context, lang string) string {
		t.Helper()
		id, err := c.Enqueue(ctx, Message{To: "a@example.org", Template: TemplateRecoveryCodeValid, Lang: lang,
			Data: TemplateData{RecoveryCode: "123456"}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Status(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return s.Lang + ": " + s.Subject
	}
	de := locale.WithLanguage(context.Background(), "de-AT")
	for _, tc := range []struct {
		ctx  context.Context
		lang string
		want string
	}{
		{context.Background(), "", "en: Recover access to your account"},
		{de, "", "de: Zugang zu Ihrem Konto wiederherstellen"},
		{de, "fr", "fr: Récupérez l'accès à votre compte"}, // the message's own language wins
		{context.Background(), "nl", "en: Recover access to your account"},
		{locale.WithLanguage(context.Background(), "x\r\nBcc: b@example.org"), "", "en: Recover access to your account"},
	} {
		if got := subject(tc.ctx, tc.lang); got != tc.want {
			t.Errorf("ctx %q, lang %q: %q, want %q", locale.LanguageFrom(tc.ctx), tc.lang, got, tc.want)
		}
	}
}

// TestMailEnglishUnchanged: English is the courier's own templates, the
// very same compiled ones as before languages.
func TestMailEnglishUnchanged(t *testing.T) {
	s, err := ParseConfig(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range AllTemplates {
		ct, err := s.templateIn(id, locale.English)
		if err != nil {
			t.Fatal(err)
		}
		if ct != s.templates.byID[id] {
			t.Errorf("%s: English is not the courier's own template", id)
		}
		de, err := s.templateIn(id, "de")
		if err != nil {
			t.Fatal(err)
		}
		if de == ct {
			t.Errorf("%s: German is the English template", id)
		}
	}
}

// TestMailOverridesAndTranslations: the operator's templates (no
// language) win over the built-in translations; a file of the
// translations directory wins for its language.
func TestMailOverridesAndTranslations(t *testing.T) {
	dir := t.TempDir()
	subject := filepath.Join(dir, "subject.gotmpl")
	if err := os.WriteFile(subject, []byte("Your Acme code"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := filepath.Join(dir, "translations")
	frDir := filepath.Join(tr, "fr", "mail", "recovery_code", "valid")
	if err := os.MkdirAll(frDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(frDir, "email.subject.gotmpl"), []byte("Votre code Acme"), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := locale.Load(locale.Options{Dir: tr})
	if err != nil {
		t.Fatal(err)
	}
	c := newCourier(t, openStore(t, t.TempDir()), Config{Locale: cat,
		Templates: map[string]TemplateFiles{"recovery_code_valid": {Subject: subject}}}, nil)
	data := TemplateData{RecoveryCode: "123456"}
	for _, tc := range []struct {
		lang, subject, text string
	}{
		{"en", "Your Acme code", "please recover access to your account"},
		// The operator changed this template: German gets it as before.
		{"de", "Your Acme code", "please recover access to your account"},
		// French has its own subject in the translations directory; the
		// bodies stay the operator's template's (built-in English).
		{"fr", "Votre code Acme", "please recover access to your account"},
	} {
		subj, text, _, err := c.RenderIn(TemplateRecoveryCodeValid, tc.lang, data)
		if err != nil {
			t.Fatal(err)
		}
		if subj != tc.subject || !strings.Contains(text, tc.text) {
			t.Errorf("%s: %q\n%s", tc.lang, subj, text)
		}
	}
	// Templates the operator did not touch are translated.
	subj, text, _, err := c.RenderIn(TemplateVerificationCodeValid, "de", TemplateData{VerificationCode: "1"})
	if err != nil || subj != "Bitte bestätigen Sie Ihre E-Mail-Adresse" || !strings.Contains(text, "bitte bestätigen") {
		t.Errorf("untouched template in German: %q %v\n%s", subj, err, text)
	}
}
