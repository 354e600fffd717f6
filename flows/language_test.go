package flows

import (
	"context"
	"crypto/rand"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/locale"
)

// langMailer records the language each mail was queued in (what the
// courier renders it in).
type langMailer struct {
	mu    sync.Mutex
	langs []string
}

func (m *langMailer) Send(ctx context.Context, mail flow.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.langs = append(m.langs, mail.Template+":"+locale.LanguageFrom(ctx))
	return nil
}

func (m *langMailer) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.langs) == 0 {
		return ""
	}
	return m.langs[len(m.langs)-1]
}

// TestMailLanguageOfRequest: the mails a request queues carry its
// language (the picker's cookie, else Accept-Language).
func TestMailLanguageOfRequest(t *testing.T) {
	mailer := &langMailer{}
	_, srv := testEngine(t, func(c *Config) { c.VerificationEnabled, c.Mailer = true, mailer })
	register := func(hdr map[string]string) string {
		t.Helper()
		c := browserClient(t)
		f := do(t, c, "GET", srv.URL+"/self-service/registration/browser", nil, nil)
		r := do(t, c, "POST", actionOf(t, f), map[string]any{"method": "password", "password": "Qx7!vT2#lang-test-9",
			"csrf_token": csrfValue(t, f), "traits": map[string]any{"email": strings.ToLower(rand.Text()) + "@example.com"}}, hdr)
		if r.status != 200 {
			t.Fatalf("register: %d %s", r.status, r.raw)
		}
		return mailer.last()
	}
	if got := register(map[string]string{"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}); got != "verification_code_valid:de" {
		t.Errorf("German request: %q", got)
	}
	if got := register(map[string]string{"Accept-Language": "de", "Cookie": locale.CookieName + "=pt"}); got != "verification_code_valid:pt" {
		t.Errorf("picker's cookie: %q", got)
	}
	if got := register(nil); got != "verification_code_valid:en" {
		t.Errorf("no language: %q", got)
	}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestUIPagesInGerman: a browser asking for German gets the pages, the
// node labels and the flow's messages in German, while the flow JSON
// keeps Kratos's English.
func TestUIPagesInGerman(t *testing.T) {
	_, srv := testEngine(t, nil)
	c := browserClient(t)
	de := map[string]string{"Accept": "text/html", "Accept-Language": "de"}
	r := do(t, c, "GET", srv.URL+"/self-service/login/browser", nil, de)
	loc := r.header.Get("Location")
	p := do(t, c, "GET", loc, nil, de)
	page := string(p.raw)
	for _, want := range []string{`<html lang="de"`, `<h1>Anmelden</h1>`, `>Mit Passwort anmelden</button>`, `>Passwort</label>`} {
		if !strings.Contains(page, want) {
			t.Errorf("German login page lacks %s", want)
		}
	}
	flowID := loc[strings.Index(loc, "flow=")+5:]
	form := url.Values{"csrf_token": {html.UnescapeString(csrfField.FindStringSubmatch(page)[1])}, "method": {"password"},
		"identifier": {"nobody@example.com"}, "password": {"wrong-password-1"}}
	r = do(t, c, "POST", srv.URL+"/self-service/login?flow="+flowID, form.Encode(), de)
	if r.status != http.StatusSeeOther {
		t.Fatalf("wrong password: %d %s", r.status, r.raw)
	}
	page = string(do(t, c, "GET", r.header.Get("Location"), nil, de).raw)
	if !strings.Contains(page, `data-message-id="4000006"`) || !strings.Contains(page, "Die Zugangsdaten sind ungültig.") {
		t.Errorf("no German 4000006 on the page:\n%s", page)
	}
	// The API's flow keeps Kratos's English text.
	f := do(t, c, "GET", srv.URL+"/self-service/login/flows?id="+flowID, nil, map[string]string{"Accept-Language": "de"})
	if !strings.Contains(string(f.raw), "The provided credentials are invalid") || strings.Contains(string(f.raw), "Zugangsdaten") {
		t.Errorf("flow JSON not in English: %s", f.raw)
	}
}

// TestUILanguagePicker: the picker's POST remembers an offered language
// behind a CSRF check and goes back only to a page of the UI.
func TestUILanguagePicker(t *testing.T) {
	_, srv := testEngine(t, nil)
	c := browserClient(t)
	loc, p := startPage(t, c, srv.URL, "login")
	flowID := loc[strings.Index(loc, "flow=")+5:]
	m := regexp.MustCompile(`<form class="langs" method="POST" action="/ui/language"[^>]*><input type="hidden" name="csrf_token" value="([^"]+)"><input type="hidden" name="return_to" value="([^"]+)">`).FindStringSubmatch(string(p.raw))
	if m == nil {
		t.Fatalf("no picker on the page:\n%s", p.raw)
	}
	csrf, back := html.UnescapeString(m[1]), html.UnescapeString(m[2])
	if back != "login?flow="+flowID {
		t.Errorf("return_to %q", back)
	}
	post := func(client *http.Client, v url.Values) resp {
		t.Helper()
		return do(t, client, "POST", srv.URL+"/ui/language", v.Encode(), htmlAccept)
	}
	langCookie := func(r resp) string {
		for _, ck := range (&http.Response{Header: r.header}).Cookies() {
			if ck.Name == locale.CookieName {
				return ck.Value
			}
		}
		return ""
	}

	r := post(c, url.Values{"csrf_token": {csrf}, "lang": {"fr"}, "return_to": {back}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != srv.URL+"/ui/login?flow="+flowID || langCookie(r) != "fr" {
		t.Fatalf("pick fr: %d %q %q", r.status, r.header.Get("Location"), langCookie(r))
	}
	if page := string(do(t, c, "GET", srv.URL+"/ui/login?flow="+flowID, nil, htmlAccept).raw); !strings.Contains(page, `<html lang="fr"`) {
		t.Errorf("the page after picking fr is not French")
	}

	for name, v := range map[string]url.Values{
		"no CSRF token":            {"lang": {"de"}, "return_to": {back}},
		"another CSRF token":       {"csrf_token": {"bm9wZQ=="}, "lang": {"de"}, "return_to": {back}},
		"a language not offered":   {"csrf_token": {csrf}, "lang": {"nl"}, "return_to": {back}},
		"a header in the language": {"csrf_token": {csrf}, "lang": {"de\r\nSet-Cookie: x=y"}, "return_to": {back}},
	} {
		r := post(c, v)
		if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/ui/error?id=") || langCookie(r) != "" {
			t.Errorf("%s: %d %q cookie %q", name, r.status, r.header.Get("Location"), langCookie(r))
		}
	}
	// A cross-site form has no CSRF cookie at all.
	if r := post(browserClient(t), url.Values{"csrf_token": {csrf}, "lang": {"de"}}); langCookie(r) != "" {
		t.Errorf("without the CSRF cookie: cookie %q", langCookie(r))
	}
	for _, evil := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "../../x", "login?flow=" + flowID + "@evil.example"} {
		r := post(c, url.Values{"csrf_token": {csrf}, "lang": {"de"}, "return_to": {evil}})
		if got := r.header.Get("Location"); r.status != http.StatusSeeOther || !strings.HasPrefix(got, srv.URL+"/ui/") || strings.Contains(got, "evil") {
			t.Errorf("return_to %q: %d %q", evil, r.status, got)
		}
	}
}
