package locale

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeDir makes a translations directory from path → content.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOverridesFromFiles(t *testing.T) {
	dir := writeDir(t, map[string]string{
		// Override two German texts (JSON) and one page string (TOML, a
		// second file of the same language).
		"de.json": `{"messages": {"4000002": "Bitte füllen Sie {{.property}} aus."},
		             "pages": {"login.title": "Einloggen"}}`,
		"de/extra.toml": "[pages]\n\"login.subtitle\" = \"Weiter zu %s\"\n",
		// A new language: a few texts, its own formats and name.
		"nl.toml": `name = "Nederlands"
[messages]
1010001 = "Inloggen"
4000002 = "Veld {{.property}} ontbreekt."
[pages]
"login.title" = "Inloggen"
"sessions.device" = "%[1]s op %[2]s"
[formats]
datetime = "2 Jan 2006 15:04 MST"
date = "2 Jan 2006"
months = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"]
decimal = ","
`,
		// A regional variant that only changes a word.
		"de-CH/texts.json": `{"pages": {"sessions.ip": "IP-Adresse (Schweiz)"}}`,
		// A German mail subject only.
		"de/mail/recovery_code/valid/email.subject.gotmpl": "Ihr Code für {{ .To }}\n",
		// English may be overridden too (then the override shows, not the
		// flow's text).
		"en.json":   `{"messages": {"1010001": "Log in"}}`,
		"README.md": "notes for the operators",
		".hidden":   "editor state",
	})
	c, err := Load(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 3, 5, 18, 7, 0, 0, time.UTC)
	de := c.Localizer("de", nil, now)
	if got := de.Message(4000002, map[string]any{"property": "email"}, "x"); got != "Bitte füllen Sie email aus." {
		t.Errorf("de override: %q", got)
	}
	if got := de.Message(4000006, nil, "x"); !strings.HasPrefix(got, "Die Zugangsdaten sind ungültig") {
		t.Errorf("de built-in kept: %q", got)
	}
	if got := de.Page("login.title"); got != "Einloggen" {
		t.Errorf("de page override: %q", got)
	}
	if got := de.Page("login.subtitle", "Acme"); got != "Weiter zu Acme" {
		t.Errorf("de TOML page override: %q", got)
	}
	if got := c.Localizer(English, nil, now).Message(1010001, nil, "Sign in"); got != "Log in" {
		t.Errorf("en override: %q", got)
	}
	if got := c.Localizer(English, nil, now).Message(1010002, map[string]any{"provider": "x"}, "Sign in with GitHub"); got != "Sign in with GitHub" {
		t.Errorf("en not overridden: %q", got)
	}

	nl := c.Localizer("nl", nil, now)
	if got := nl.Message(4000002, map[string]any{"property": "email"}, "x"); got != "Veld email ontbreekt." {
		t.Errorf("nl: %q", got)
	}
	// What nl lacks is English (the flow's text for messages).
	if got := nl.Message(4000006, nil, "The provided credentials are invalid"); got != "The provided credentials are invalid" {
		t.Errorf("nl fallback: %q", got)
	}
	if got := nl.Page("link.logout"); got != "Sign out" {
		t.Errorf("nl page fallback: %q", got)
	}
	if got := nl.Page("sessions.device", "Firefox", "Linux"); got != "Firefox op Linux" {
		t.Errorf("nl indexed verbs: %q", got)
	}
	if got := nl.DateTime(now); got != "5 mrt 2024 18:07 UTC" {
		t.Errorf("nl date: %q", got)
	}
	if got := nl.Decimal(1.5, 2); got != "1,50" {
		t.Errorf("nl decimal: %q", got)
	}
	if got := c.Negotiate("nl-BE,en;q=0.5"); got != "nl" {
		t.Errorf("negotiate nl: %q", got)
	}
	gaps := c.Gaps()
	if len(gaps["nl"]) == 0 || !slices.Contains(gaps["nl"], "messages.4000006") || slices.Contains(gaps["nl"], "messages.4000002") ||
		!slices.Contains(gaps["nl"], "mail.recovery_code_valid/"+MailSubject) {
		t.Errorf("nl gaps: %v", gaps["nl"])
	}
	// de-CH: its word, German for the rest (not English), German formats.
	ch := c.Localizer("de-CH", nil, now)
	if got := ch.Page("sessions.ip"); got != "IP-Adresse (Schweiz)" {
		t.Errorf("de-CH: %q", got)
	}
	if got := ch.Page("link.logout"); got != "Abmelden" {
		t.Errorf("de-CH falls back to de: %q", got)
	}
	if got := ch.Message(4000002, map[string]any{"property": "email"}, "x"); got != "Bitte füllen Sie email aus." {
		t.Errorf("de-CH message from de: %q", got)
	}
	if got := ch.DateTime(now); got != "5. März 2024, 18:07 UTC" {
		t.Errorf("de-CH date: %q", got)
	}
	if _, ok := c.Gaps()["de-CH"]; ok {
		t.Errorf("de-CH has gaps though de is complete: %v", c.Gaps()["de-CH"])
	}
	if got := c.Negotiate("de-CH"); got != "de-CH" {
		t.Errorf("negotiate de-CH: %q", got)
	}

	// Mail: the German subject from the file, the bodies built-in German.
	m, err := c.Mail("recovery_code_valid", "de")
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject.Builtin || m.Subject.Source != filepath.Join(dir, "de", "mail", "recovery_code", "valid", MailSubject) || !m.HTML.Builtin || m.HTML.Lang != "de" {
		t.Errorf("mail files: %+v", m)
	}
	s, _, h, err := m.Render(map[string]any{"To": "a@example.com", "RecoveryCode": "123456", "ExpiresInMinutes": 15})
	if err != nil || s != "Ihr Code für a@example.com" || !strings.Contains(h, "Dieser Code läuft in 15 Minuten ab.") {
		t.Errorf("mail: %q %q %v", s, h, err)
	}
	// de-CH mail: German; nl mail: English.
	if m, _ := c.Mail("recovery_code_valid", "de-CH"); m.HTML.Lang != "de" || m.Subject.Builtin {
		t.Errorf("de-CH mail: %+v", m)
	}
	if m, _ := c.Mail("login_code_valid", "nl"); m.Subject.Lang != English {
		t.Errorf("nl mail: %+v", m.Subject)
	}
	if _, err := c.Mail("password_reset", "de"); err == nil {
		t.Error("unknown mail template accepted")
	}
}

// TestBrokenFiles: every mistake stops the start, naming the file and the
// key.
func TestBrokenFiles(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"unknown id", map[string]string{"de.json": `{"messages": {"4000999": "x"}}`}, []string{"de.json", `messages["4000999"]`, "unknown message id"}},
		{"id not canonical", map[string]string{"de.json": `{"messages": {"04000002": "x"}}`}, []string{"de.json", `messages["04000002"]`}},
		{"unknown page key", map[string]string{"fr.json": `{"pages": {"login.titel": "x"}}`}, []string{"fr.json", `pages["login.titel"]`, "unknown page key"}},
		{"template syntax", map[string]string{"de.json": `{"messages": {"4000002": "Feld {{.property fehlt"}}`}, []string{"de.json", `messages["4000002"]`}},
		{"unknown variable", map[string]string{"de.json": `{"messages": {"4000002": "Feld {{.field}} fehlt"}}`}, []string{"de.json", `messages["4000002"]`, "{{.field}}", "property"}},
		{"unknown function", map[string]string{"de.json": `{"messages": {"4000002": "{{exec .property}}"}}`}, []string{"de.json", `messages["4000002"]`, "exec"}},
		{"wrong type at the start-up check", map[string]string{"de.json": `{"messages": {"4000002": "{{decimal .property 2}}"}}`}, []string{"de.json", `messages["4000002"]`, "error calling decimal"}},
		{"verb of another type", map[string]string{"de.json": `{"pages": {"sessions.revoked.others": "%s Sitzungen"}}`}, []string{"de.json", `pages["sessions.revoked.others"]`, "%d"}},
		{"verb too many", map[string]string{"de.json": `{"pages": {"login.subtitle": "%s und %s"}}`}, []string{"de.json", `pages["login.subtitle"]`, "argument 2"}},
		{"bad JSON", map[string]string{"es.json": `{"pages": {"login.title": }`}, []string{"es.json"}},
		{"JSON trailing data", map[string]string{"es.json": `{} {}`}, []string{"es.json", "after the JSON"}},
		{"unknown JSON field", map[string]string{"es.json": `{"page": {"login.title": "x"}}`}, []string{"es.json", "page"}},
		{"non-string value", map[string]string{"es.json": `{"pages": {"login.title": 5}}`}, []string{"es.json"}},
		{"bad TOML", map[string]string{"pt.toml": "[pages\n"}, []string{"pt.toml"}},
		{"unknown TOML key", map[string]string{"pt.toml": "nome = \"x\"\n"}, []string{"pt.toml", "nome"}},
		{"file name not a language", map[string]string{"deutsch!.json": `{}`}, []string{"deutsch!.json", "not a language tag"}},
		{"unexpected file", map[string]string{"de.yaml": "x: y"}, []string{"de.yaml", "unexpected"}},
		{"unexpected file in a language directory", map[string]string{"de/notes.yaml": "x"}, []string{filepath.Join("de", "notes.yaml"), "unexpected"}},
		{"key in two files", map[string]string{"de.json": `{"pages": {"or": "oder"}}`, "de/more.json": `{"pages": {"or": "bzw."}}`},
			[]string{"pages[\"or\"]", "also defined in", "de.json"}},
		{"name in two files", map[string]string{"nl.json": `{"name": "Nederlands"}`, "nl/more.json": `{"name": "Vlaams"}`}, []string{"name", "also defined in"}},
		{"formats in two files", map[string]string{
			"nl.json":      `{"formats": {"datetime": "2 Jan", "date": "2 Jan", "months": ["1","2","3","4","5","6","7","8","9","10","11","12"], "decimal": ","}}`,
			"nl/more.json": `{"formats": {"datetime": "2 Jan", "date": "2 Jan", "months": ["1","2","3","4","5","6","7","8","9","10","11","12"], "decimal": "."}}`},
			[]string{"formats", "also defined in"}},
		{"bad months", map[string]string{"nl.json": `{"formats": {"datetime": "2 Jan", "date": "2 Jan", "months": ["jan"], "decimal": ","}}`}, []string{"nl.json", "months"}},
		{"empty decimal", map[string]string{"nl.json": `{"formats": {"datetime": "2 Jan", "date": "2 Jan", "months": ["1","2","3","4","5","6","7","8","9","10","11","12"]}}`}, []string{"nl.json", "decimal"}},
		{"unknown mail template", map[string]string{"de/mail/password_reset/valid/email.subject.gotmpl": "x"}, []string{filepath.Join("de", "mail", "password_reset", "valid"), "unknown mail template"}},
		{"unknown mail file", map[string]string{"de/mail/recovery_code/valid/subject.txt.tmpl": "x"}, []string{"subject.txt.tmpl", "unexpected"}},
		{"unknown mail field", map[string]string{"de/mail/recovery_code/valid/email.body.gotmpl": "<p>{{ .Code }}</p>"}, []string{"email.body.gotmpl", "{{.Code}}"}},
		{"mail syntax", map[string]string{"de/mail/login_code/valid/email.body.plaintext.gotmpl": "{{ if .LoginCode }}"}, []string{"email.body.plaintext.gotmpl"}},
		{"mail function missing", map[string]string{"de/mail/login_code/valid/email.subject.gotmpl": "{{ env \"HOME\" }}"}, []string{"email.subject.gotmpl", "env"}},
		{"oversized file", map[string]string{"de.json": `{"name": "` + strings.Repeat("x", maxFileSize) + `"}`}, []string{"de.json", "larger than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, tc.files)
			_, err := Load(Options{Dir: dir})
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	if _, err := Load(Options{Dir: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing dir: %v", err)
	}
	if _, err := Load(Options{Languages: []string{"de", "nl"}}); err == nil || !strings.Contains(err.Error(), `"nl"`) {
		t.Errorf("nl without files: %v", err)
	}
	if _, err := Load(Options{Languages: []string{"de;q=1"}}); err == nil {
		t.Error("bad tag accepted")
	}
	if _, err := Load(Options{Default: "xx"}); err == nil || !strings.Contains(err.Error(), `"xx"`) {
		t.Errorf("default without texts: %v", err)
	}
	if _, err := Load(Options{Default: "e"}); err == nil {
		t.Error("bad default accepted")
	}
	// The default is enabled even when not listed.
	c, err := Load(Options{Languages: []string{"fr"}, Default: "es"})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, l := range c.Languages() {
		tags = append(tags, l.Tag)
	}
	if !slices.Equal(tags, []string{"es", "fr"}) {
		t.Errorf("languages %v", tags)
	}
}
