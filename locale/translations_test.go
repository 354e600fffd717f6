package locale

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"
	"time"
)

// builtinFile reads one shipped language file as it is (not through Load,
// so that nothing a loader fills in hides a gap).
func builtinFile(t *testing.T, lang string) *textFile {
	t.Helper()
	b, err := builtinFS.ReadFile("builtin/" + lang + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var tf textFile
	if err := json.Unmarshal(b, &tf); err != nil {
		t.Fatalf("%s: %v", lang, err)
	}
	return &tf
}

// TestBuiltinComplete: every shipped language has every message id, page
// key and mail file, and nothing else.
func TestBuiltinComplete(t *testing.T) {
	en := builtinFile(t, English)
	for _, lang := range BuiltinLanguages {
		tf := builtinFile(t, lang)
		if tf.Name == "" {
			t.Errorf("%s: no name", lang)
		}
		for _, id := range MessageIDs() {
			if s, ok := tf.Messages[strconv.Itoa(id)]; !ok || strings.TrimSpace(s) == "" {
				t.Errorf("%s: message %d missing", lang, id)
			}
		}
		for k := range tf.Messages {
			if id, err := strconv.Atoi(k); err != nil || messageInfo[id].Type == "" {
				t.Errorf("%s: message %q is not a Kratos id", lang, k)
			}
		}
		for k := range en.Pages {
			if s, ok := tf.Pages[k]; !ok || strings.TrimSpace(s) == "" {
				t.Errorf("%s: page string %q missing", lang, k)
			}
		}
		for k := range tf.Pages {
			if _, ok := en.Pages[k]; !ok {
				t.Errorf("%s: page string %q is not an English key", lang, k)
			}
		}
		for _, id := range mailTemplateIDs {
			for _, f := range mailFileNames {
				if b, err := mailFS.ReadFile("mail/" + lang + "/" + mailDir(id) + "/" + f); err != nil || strings.TrimSpace(string(b)) == "" {
					t.Errorf("%s: mail %s/%s missing", lang, id, f)
				}
			}
		}
		files, err := walkFS(mailFS, "mail/"+lang)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(mailTemplateIDs)*len(mailFileNames) {
			t.Errorf("%s: %d mail files, want %d", lang, len(files), len(mailTemplateIDs)*len(mailFileNames))
		}
	}
	if gaps := Builtin().Gaps(); len(gaps) != 0 {
		t.Errorf("gaps: %v", gaps)
	}
}

func parseRefs(t *testing.T, name, src string) []string {
	t.Helper()
	trees, err := parse.Parse(name, src, "", "", messageFuncs(builtinFormats[English], nil))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	fields, _ := templateRefs(trees[name])
	return fields
}

// TestBuiltinPlaceholders: each translation uses exactly the variables of
// the English text (messages), the same verbs for the same arguments (page
// strings), the same fields (mails), and renders with typical values.
func TestBuiltinPlaceholders(t *testing.T) {
	en := builtinFile(t, English)
	c := Builtin()
	for _, lang := range BuiltinLanguages {
		tf := builtinFile(t, lang)
		for _, id := range MessageIDs() {
			k := strconv.Itoa(id)
			name := lang + ":" + k
			want := parseRefs(t, "en:"+k, en.Messages[k])
			got := parseRefs(t, name, tf.Messages[k])
			// Kratos computes 4000028's English from hints the context
			// carries; English shows the flow's text ({{.text}}), a
			// translation builds its own from the context.
			computed := en.Messages[k] == "{{.text}}"
			if !slices.Equal(got, want) && !computed {
				t.Errorf("%s: variables %v, English has %v: %q", name, got, want, tf.Messages[k])
			}
			if computed && lang != English && slices.Contains(got, VarText) {
				t.Errorf("%s: shows the English text: %q", name, tf.Messages[k])
			}
			// English's functions that carry meaning must stay (quote's
			// quotes, decimal's formatting of minutes).
			for _, fn := range []string{"decimal", "secretCode", "join"} {
				if strings.Contains(en.Messages[k], fn+" ") != strings.Contains(tf.Messages[k], fn+" ") {
					t.Errorf("%s: %s used differently than in English: %q", name, fn, tf.Messages[k])
				}
			}
			mt, ok := c.bundles[lang].msgs[id]
			if !ok {
				continue // TestBuiltinComplete reports it
			}
			var b strings.Builder
			if err := mt.tpl.Execute(&b, sampleVars(messageInfo[id])); err != nil {
				t.Errorf("%s: %v", name, err)
			} else if strings.Contains(b.String(), "<no value>") || strings.Contains(b.String(), "%!") {
				t.Errorf("%s: renders %q", name, b.String())
			}
		}
		for k, ref := range en.Pages {
			if err := checkVerbs(tf.Pages[k], ref, true); err != nil {
				t.Errorf("%s: pages[%q] %q: %v", lang, k, tf.Pages[k], err)
			}
		}
		for _, id := range mailTemplateIDs {
			for _, f := range mailFileNames {
				p := mailDir(id) + "/" + f
				enSrc, _ := mailFS.ReadFile("mail/en/" + p)
				src, _ := mailFS.ReadFile("mail/" + lang + "/" + p)
				if err := checkMail(f, lang+"/"+p, string(src)); err != nil {
					t.Errorf("%s/%s: %v", lang, p, err)
				}
				if got, want := mailActions(t, string(src)), mailActions(t, string(enSrc)); !slices.Equal(got, want) {
					t.Errorf("%s/%s: template actions %v, English has %v", lang, p, got, want)
				}
				if lang != English && f == MailHTML && !strings.Contains(string(src), `<html lang="`+lang+`">`) {
					t.Errorf("%s/%s: no <html lang=%q>", lang, p, lang)
				}
			}
		}
	}
}

var action = regexp.MustCompile(`\{\{-?\s*(.*?)\s*-?\}\}`)

// mailActions lists a template's actions in order ({{ .LoginCode }},
// {{ if .ExpiresInMinutes }}, …): a translation keeps all of them.
func mailActions(t *testing.T, src string) []string {
	var out []string
	for _, m := range action.FindAllStringSubmatch(src, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestMailRender renders every template in every language with the data
// the courier passes, and checks that what English shows of the data the
// translation shows too.
func TestMailRender(t *testing.T) {
	c := Builtin()
	data := map[string]any{}
	for k, v := range mailSample {
		data[k] = v
	}
	data["RecoveryCode"], data["VerificationCode"], data["LoginCode"], data["RegistrationCode"] = "111111", "222222", "333333", "444444"
	data["RecoveryURL"], data["VerificationURL"] = "https://auth.example.com/r?token=a&b=<c>", "https://auth.example.com/v?code=1"
	values := []string{"111111", "222222", "333333", "444444", "https://auth.example.com/v?code=1", " 60 "}
	for _, id := range mailTemplateIDs {
		enM, err := c.Mail(id, English)
		if err != nil {
			t.Fatal(err)
		}
		es, et, eh, err := enM.Render(data)
		if err != nil {
			t.Fatalf("en %s: %v", id, err)
		}
		for _, lang := range BuiltinLanguages {
			m, err := c.Mail(id, lang)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []MailFile{m.Subject, m.HTML, m.Plaintext} {
				if f.Lang != lang || !f.Builtin || !strings.HasPrefix(f.Source, "builtin:"+lang+"/") {
					t.Errorf("%s %s: file from %s (%s)", lang, id, f.Lang, f.Source)
				}
			}
			s, txt, h, err := m.Render(data)
			if err != nil {
				t.Fatalf("%s %s: %v", lang, id, err)
			}
			if s == "" || strings.Contains(s, "\n") {
				t.Errorf("%s %s: subject %q", lang, id, s)
			}
			for _, v := range values {
				if strings.Contains(et, v) != strings.Contains(txt, v) || strings.Contains(eh, v) != strings.Contains(h, v) {
					t.Errorf("%s %s: %q shown differently than in English", lang, id, v)
				}
			}
			if strings.Contains(eh, "&lt;c&gt;") != strings.Contains(h, "&lt;c&gt;") || strings.Contains(h, "<c>") {
				t.Errorf("%s %s: the URL is not escaped as in English:\n%s", lang, id, h)
			}
			if lang != English && (s == es || txt == et) {
				t.Errorf("%s %s: not translated", lang, id)
			}
		}
	}
}

// TestMessageFallback: English pages show the flow's own text; a
// translation renders from the context as the flow stores it (JSON:
// numbers as float64, times as strings) and falls back to the flow's text
// when the context lacks a value.
func TestMessageFallback(t *testing.T) {
	c := Builtin()
	now := time.Date(2024, 3, 5, 10, 0, 0, 0, time.UTC)
	en := c.Localizer(English, nil, now)
	de := c.Localizer("de", nil, now)
	// English: the flow's text as is, whatever the context says.
	if got := en.Message(4000002, map[string]any{"property": "x"}, "Property email is missing."); got != "Property email is missing." {
		t.Errorf("en: %q", got)
	}
	stored := map[string]any{}
	if err := json.Unmarshal([]byte(`{"min_length":8,"actual_length":3}`), &stored); err != nil {
		t.Fatal(err)
	}
	if got, want := de.Message(4000032, stored, "The password must be at least 8 characters long, but got 3."),
		"Das Passwort muss mindestens 8 Zeichen lang sein, hat aber 3."; got != want {
		t.Errorf("de 4000032: %q, want %q", got, want)
	}
	// Expired 150 s before now, as stored (RFC 3339 string) and as made.
	for _, exp := range []any{"2024-03-05T09:57:30Z", now.Add(-150 * time.Second)} {
		got := de.Message(4010001, map[string]any{"expired_at": exp, "expired_at_unix": 1709632650}, "The login flow expired 2.50 minutes ago, please try again.")
		if want := "Der Anmeldevorgang ist vor 2,50 Minuten abgelaufen. Bitte versuchen Sie es erneut."; got != want {
			t.Errorf("de 4010001 (%T): %q, want %q", exp, got, want)
		}
	}
	// Only the unix form (an older flow).
	if got := c.Localizer("fr", nil, now).Message(4040001, map[string]any{"expired_at_unix": float64(now.Add(-90 * time.Second).Unix())}, "x"); !strings.Contains(got, "il y a 1,50 minutes") {
		t.Errorf("fr 4040001: %q", got)
	}
	// Privileged session: minutes left from now.
	got := c.Localizer("es", nil, now).Message(1060001, map[string]any{"privileged_session_expires_at": now.Add(15 * time.Minute)}, "x")
	if !strings.Contains(got, "en los próximos 15,00 minutos") {
		t.Errorf("es 1060001: %q", got)
	}
	// A missing value or a value of the wrong type: the flow's text.
	for _, tc := range []struct {
		id  int
		ctx map[string]any
	}{
		{4010001, nil},
		{4010001, map[string]any{"expired_at": "yesterday"}},
		{1060001, map[string]any{"privileged_session_expires_at": true}},
		{4000002, map[string]any{}},
		{1050014, map[string]any{"used_at": "last week"}},
	} {
		if got := de.Message(tc.id, tc.ctx, "english text"); got != "english text" {
			t.Errorf("de %d with %v: %q, want the flow's text", tc.id, tc.ctx, got)
		}
	}
	// An id the catalogue does not know: the flow's text.
	if got := de.Message(9999999, nil, "unknown"); got != "unknown" {
		t.Errorf("unknown id: %q", got)
	}
	// Context values are data, never template text.
	if got := de.Message(4000002, map[string]any{"property": "{{.property}}<b>"}, "x"); got != "Das Feld {{.property}}<b> fehlt." {
		t.Errorf("de 4000002: %q", got)
	}
	// %q's quoting, in every language.
	if got := c.Localizer("pt", nil, now).Message(4000004, map[string]any{"pattern": `^a"b$`}, "x"); got != `não corresponde ao padrão "^a\"b$"` {
		t.Errorf("pt 4000004: %q", got)
	}
	// 4000026 lists the types.
	if got := de.Message(4000026, map[string]any{"allowed_types": []any{"string", "number"}, "actual_type": "boolean"}, "x"); got != "string, number erwartet, aber boolean erhalten" {
		t.Errorf("de 4000026: %q", got)
	}
}

// TestSecretsList: 1050015 from the engine's Texts and from their stored
// JSON form.
func TestSecretsList(t *testing.T) {
	c := Builtin()
	de := c.Localizer("de", nil, time.Now())
	live := map[string]any{"secrets": []secretEntry{
		{ID: 1050009, Text: "aaaa1111", Context: map[string]any{"secret": "aaaa1111"}},
		{ID: 1050014, Text: "Secret was used at …", Context: map[string]any{"used_at": time.Now()}},
		{ID: 1050009, Text: "bbbb2222", Context: map[string]any{"secret": "bbbb2222"}},
	}}
	var stored map[string]any
	b, _ := json.Marshal(live)
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []map[string]any{live, stored} {
		if got, want := de.Message(1050015, ctx, "aaaa1111, used, bbbb2222"), "aaaa1111, verwendet, bbbb2222"; got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

func TestDatesAndNumbers(t *testing.T) {
	c := Builtin()
	ts := time.Date(2024, 3, 5, 18, 7, 0, 0, time.UTC)
	berlin, ok := ParseZone("Europe/Berlin")
	if !ok {
		t.Skip("no time zone database")
	}
	sp, _ := ParseZone("America/Sao_Paulo")
	cases := []struct {
		lang string
		zone string
		want string
		date string
	}{
		{"en", "UTC", "5 Mar 2024, 18:07 UTC", "5 Mar 2024"},
		{"en", "Europe/Berlin", "5 Mar 2024, 19:07 CET", "5 Mar 2024"},
		{"de", "Europe/Berlin", "5. März 2024, 19:07 CET", "5. März 2024"},
		{"fr", "UTC", "5 mars 2024, 18:07 UTC", "5 mars 2024"},
		{"es", "UTC", "5 mar 2024, 18:07 UTC", "5 mar 2024"},
		{"pt", "America/Sao_Paulo", "5 de mar. de 2024, 15:07 -03", "5 de mar. de 2024"},
	}
	zones := map[string]*time.Location{"UTC": time.UTC, "Europe/Berlin": berlin, "America/Sao_Paulo": sp}
	for _, tc := range cases {
		l := c.Localizer(tc.lang, zones[tc.zone], ts)
		if got := l.DateTime(ts); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.lang, tc.zone, got, tc.want)
		}
		if got := l.Date(ts); got != tc.date {
			t.Errorf("%s %s date: %q, want %q", tc.lang, tc.zone, got, tc.date)
		}
	}
	// Today's sessions page: s.ExpiresAt.UTC().Format("2 Jan 2006, 15:04 MST").
	for _, ts := range []time.Time{ts, time.Date(2025, 12, 31, 23, 59, 0, 0, time.UTC), time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := c.Localizer(English, nil, ts).DateTime(ts), ts.UTC().Format("2 Jan 2006, 15:04 MST"); got != want {
			t.Errorf("en: %q, today %q", got, want)
		}
	}
	// Dates in a message follow the zone (1050014).
	got := c.Localizer("de", berlin, ts).Message(1050014, map[string]any{"used_at": "2024-07-01T22:30:00Z"}, "x")
	if want := "Code wurde am 2. Juli 2024, 00:30 CEST verwendet"; got != want {
		t.Errorf("1050014: %q, want %q", got, want)
	}
	for lang, want := range map[string]string{"en": "2.50", "de": "2,50", "fr": "2,50", "es": "2,50", "pt": "2,50"} {
		if got := c.Localizer(lang, nil, ts).Decimal(2.5, 2); got != want {
			t.Errorf("%s decimal: %q", lang, got)
		}
	}
}

// TestAgo: English is the sessions page's relativeTime of today.
func TestAgo(t *testing.T) {
	c := Builtin()
	now := time.Date(2024, 3, 5, 18, 0, 0, 0, time.UTC)
	cases := []struct {
		d      time.Duration
		en, de string
	}{
		{10 * time.Second, "just now", "gerade eben"},
		{90 * time.Second, "1 minute ago", "vor 1 Minute"},
		{5 * time.Minute, "5 minutes ago", "vor 5 Minuten"},
		{61 * time.Minute, "1 hour ago", "vor 1 Stunde"},
		{5 * time.Hour, "5 hours ago", "vor 5 Stunden"},
		{47 * time.Hour, "47 hours ago", "vor 47 Stunden"},
		{72 * time.Hour, "3 days ago", "vor 3 Tagen"},
	}
	for _, tc := range cases {
		if got := c.Localizer(English, nil, now).Ago(now.Add(-tc.d)); got != tc.en {
			t.Errorf("en %v: %q, want %q", tc.d, got, tc.en)
		}
		if got := c.Localizer("de", nil, now).Ago(now.Add(-tc.d)); got != tc.de {
			t.Errorf("de %v: %q, want %q", tc.d, got, tc.de)
		}
	}
}

func TestPagesAndKnown(t *testing.T) {
	c := Builtin()
	fr := c.Localizer("fr", nil, time.Now())
	if got := fr.Page("login.subtitle", "Acme"); got != "Connectez-vous pour continuer vers Acme." {
		t.Errorf("%q", got)
	}
	if got := fr.Page("no.such.key"); got != "no.such.key" {
		t.Errorf("missing key: %q", got)
	}
	if _, ok := fr.PageOK("group.unknown_method"); ok {
		t.Error("PageOK of a missing key")
	}
	if got := fr.Known("self-service flow expired"); got != "La procédure a expiré" {
		t.Errorf("Known: %q", got)
	}
	if got := fr.Known("The self-service flow expired 2.00 minutes ago, initialize a new one."); got != "The self-service flow expired 2.00 minutes ago, initialize a new one." {
		t.Errorf("Known of an unknown text: %q", got)
	}
	if got := c.Localizer(English, nil, time.Now()).Known("Too many requests"); got != "Too many requests" {
		t.Errorf("en Known: %q", got)
	}
	var tags []string
	for _, l := range c.Languages() {
		tags = append(tags, l.Tag+"="+l.Name)
	}
	sort.Strings(tags)
	if want := []string{"de=Deutsch", "en=English", "es=Español", "fr=Français", "pt=Português"}; !slices.Equal(tags, want) {
		t.Errorf("languages %v", tags)
	}
	// A language that is not enabled gets the default.
	if got := c.Localizer("nl", nil, time.Now()).Lang(); got != English {
		t.Errorf("nl: %q", got)
	}
}

// TestConcurrentUse: one catalogue serves every request at once (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	c := Builtin()
	berlin, _ := ParseZone("Europe/Berlin")
	done := make(chan string)
	for i := 0; i < 8; i++ {
		go func(i int) {
			lang := BuiltinLanguages[1+i%(len(BuiltinLanguages)-1)] // English shows the flow's text
			l := c.Localizer(lang, berlin, time.Now())
			s := ""
			for j := 0; j < 50; j++ {
				s = l.Message(1050014, map[string]any{"used_at": time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)}, "x") +
					l.Message(4010001, map[string]any{"expired_at": time.Now().Add(-time.Minute)}, "x") + l.Page("login.subtitle", "A")
				_, _ = ParseZone("Asia/Tokyo")
				_ = c.Negotiate("de-CH,fr;q=0.5")
			}
			done <- s
		}(i)
	}
	for i := 0; i < 8; i++ {
		if s := <-done; !strings.Contains(s, "13:00") {
			t.Errorf("%q", s)
		}
	}
}
