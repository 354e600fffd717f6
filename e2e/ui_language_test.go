package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// emulateLanguage makes the tab a browser set to lang in zone: its
// Accept-Language header, navigator.language and the time zone ui.js
// reports.
func (b *tab) emulateLanguage(lang, zone string) {
	b.t.Helper()
	ua := b.str(`navigator.userAgent`)
	b.do("emulate "+lang+" in "+zone, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: lang}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return chromedp.Void{}, err
	})
}

// TestUIBrowserGerman: a browser asking for German signs up on German
// pages and gets its verification mails in German over SMTP; the
// language picker switches the pages to another language. With
// UPDATE_SCREENSHOTS=1 it writes the German pages to docs/screenshots.
func TestUIBrowserGerman(t *testing.T) {
	t.Parallel()
	ensureChromium(t)
	in := startUIInstance(t, `ui {
			product_name "Acme Cloud"
		}`)
	cr := startChromium(t)
	b := cr.newTab(t)
	b.navigate("about:blank")
	b.emulateLanguage("de-DE,de;q=0.9,en;q=0.5", "Europe/Berlin")
	shot := func(name string) {
		if updateScreenshots() {
			b.screenshot(name+"-de-desktop", 1280, 800, false)
			b.screenshot(name+"-de-mobile", 360, 740, false)
		}
	}

	// The gated app sends the browser to the German login page.
	b.navigate(in.appBase + "/dashboard")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	wantPageBasics(t, b)
	if lang, h := b.str(`document.documentElement.lang`), b.text("h1"); lang != "de" || h != "Anmelden" {
		t.Fatalf("login page: lang %q, h1 %q", lang, h)
	}
	if got := b.text(`button[name="method"][value="password"]`); got != "Mit Passwort anmelden" {
		t.Errorf("password button %q", got)
	}
	if got := b.text(`label[for="` + b.str(`document.querySelector('input[name="password"]').id`) + `"]`); got != "Passwort" {
		t.Errorf("password label %q", got)
	}
	shot("login")

	// A wrong password: Kratos's message 4000006 in German.
	b.login("nobody@example.com", randPassword())
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 4000006) {
		t.Fatalf("wrong password: messages %v", ids)
	}
	if msg := b.text(".messages"); !strings.Contains(msg, "Die Zugangsdaten sind ungültig.") {
		t.Errorf("4000006 not in German: %q", msg)
	}
	shot("login-error")

	// Sign-up, on German pages (the instance is this test's own: the
	// address stays the same for the screenshots).
	email, password := "ada.lovelace@example.com", randPassword()
	b.clickNav(`.footer-links a[href*="/self-service/registration/browser"]`)
	if h := b.text("h1"); h != "Konto erstellen" {
		t.Errorf("registration h1 %q", h)
	}
	shot("registration")
	b.navigate(in.appBase + "/dashboard")
	b.registerFromLogin(email, password, "Ada")
	b.wantURLPrefix(in.appBase + "/dashboard")

	// The verification mail of the sign-up is German.
	first := in.mail.last(t, email, "Bitte bestätigen Sie Ihre E-Mail-Adresse", 1)
	if !strings.Contains(first.Text, "bitte bestätigen Sie Ihr Konto") || !strings.Contains(first.HTML, "bestätigen") {
		t.Errorf("verification mail not in German:\n%s", first.Text)
	}
	first.code(t)
	in.mail.none(t, email, "Please verify your email address")

	// Verification on the German page, with a second German mail.
	b.navigate(in.apiBase + "/self-service/verification/browser")
	if h := b.text("h1"); h != "E-Mail-Adresse bestätigen" {
		t.Errorf("verification h1 %q", h)
	}
	b.fill(`input[name="email"]`, email)
	b.clickNav(`button[name="method"][value="code"]`)
	if msg := b.text(".messages"); !strings.Contains(msg, "Wir haben eine E-Mail mit einem Bestätigungscode") {
		t.Errorf("1080003 not in German: %q", msg)
	}
	shot("verification-code")
	code := in.mail.last(t, email, "Bitte bestätigen Sie Ihre E-Mail-Adresse", 2).code(t)
	b.fill(`input[name="code"]`, code)
	b.clickNav(`button[name="method"][value="code"]`)
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1080002) {
		t.Fatalf("after the code: messages %v; %s", ids, b.text(".card"))
	}
	if msg := b.text(".messages"); !strings.Contains(msg, "Sie haben Ihre E-Mail-Adresse erfolgreich bestätigt.") {
		t.Errorf("1080002 not in German: %q", msg)
	}

	// The sessions page: German words, dates in the browser's zone.
	b.navigate(in.apiBase + "/ui/sessions")
	if h := b.text("h1"); h != "Ihre Sitzungen" {
		t.Errorf("sessions h1 %q", h)
	}
	if exp := b.text(".session.current .sess-meta"); !strings.Contains(exp, "CET") && !strings.Contains(exp, "CEST") {
		t.Errorf("expiry not in Europe/Berlin: %q", exp)
	}
	shot("sessions")
	b.navigate(in.apiBase + "/self-service/settings/browser")
	shot("settings")

	// The picker: French, remembered for the next pages.
	b.navigate(in.apiBase + "/ui/")
	if h := b.text("h1"); h != "Hallo Ada" {
		t.Errorf("welcome h1 %q", h)
	}
	b.clickNav(`form.langs button[value="fr"]`)
	b.wantURLPrefix(in.apiBase + "/ui/")
	if lang := b.str(`document.documentElement.lang`); lang != "fr" {
		t.Errorf("after picking fr: lang %q", lang)
	}
	b.navigate(in.apiBase + "/ui/sessions")
	if lang, h := b.str(`document.documentElement.lang`), b.text("h1"); lang != "fr" || h == "Ihre Sitzungen" {
		t.Errorf("sessions after picking fr: lang %q, h1 %q", lang, h)
	}
}
