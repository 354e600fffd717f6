package e2e

import (
	"strings"
	"testing"
)

// TestUIBrowserIdentifierFirst drives the built-in login page with
// login_style identifier_first in headless chromium: the first page asks
// only for the address, the second shows it and the account's methods
// (password, sign-in code), each page with exactly one identifier input.
func TestUIBrowserIdentifierFirst(t *testing.T) {
	t.Parallel()
	ensureChromium(t)
	in := startUIInstance(t, "login_style identifier_first", "methods code", codePasswordless)
	cr := startChromium(t)

	identifierInputs := func(b *tab) (all, visible int) {
		b.t.Helper()
		all = evalT[int](b, `document.querySelectorAll('input[name="identifier"]').length`)
		visible = evalT[int](b, `document.querySelectorAll('input[name="identifier"]:not([type=hidden])').length`)
		return all, visible
	}
	// firstPage checks the identifier page and continues with email.
	firstPage := func(b *tab, email string) {
		b.t.Helper()
		b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
		if all, visible := identifierInputs(b); all != 1 || visible != 1 {
			b.t.Fatalf("first page: %d identifier inputs (%d visible), want one", all, visible)
		}
		if b.has(`input[name="password"]`) || b.has(`button[name="method"][value="code"]`) {
			b.t.Fatalf("first page shows methods: %s", b.text(".card"))
		}
		if got := b.text(`button[name="method"][value="identifier_first"]`); !strings.Contains(got, "Continue") {
			b.t.Fatalf("first page button %q", got)
		}
		wantPageBasics(b.t, b)
		b.fill(`input[name="identifier"]`, email)
		b.clickNav(`button[name="method"][value="identifier_first"]`)
		b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	}
	// secondPage checks the methods page of email.
	secondPage := func(b *tab, email string) {
		b.t.Helper()
		if all, visible := identifierInputs(b); all < 1 || visible != 0 {
			b.t.Fatalf("second page: %d identifier inputs (%d visible), want it hidden", all, visible)
		}
		if !strings.Contains(b.text(".summary"), email) {
			b.t.Errorf("second page does not show %s: %q", email, b.text(".card"))
		}
		for _, sel := range []string{`input[name="password"]`, `button[name="method"][value="password"]`, `button[name="method"][value="code"]`} {
			if !b.has(sel) {
				b.t.Fatalf("second page lacks %s: %s", sel, b.text(".card"))
			}
		}
		// Every form posts the identifier along.
		if n := evalT[int](b, `Array.from(document.querySelectorAll("form")).filter(f => f.querySelector('button[name="method"]') && !f.querySelector('input[name="identifier"]')).length`); n != 0 {
			b.t.Fatalf("%d method forms without the identifier", n)
		}
		wantPageBasics(b.t, b)
	}

	t.Run("password", func(t *testing.T) {
		t.Parallel()
		u := registerNative(t, in.instance)
		b := cr.newTab(t)
		b.navigate(in.appBase + "/inbox")
		firstPage(b, u.Email)
		secondPage(b, u.Email)
		b.fill(`input[name="password"]`, u.Password+"-wrong")
		b.clickNav(`button[name="method"][value="password"]`)
		if ids := b.flowMessageIDs(); len(ids) != 1 || ids[0] != 4000006 {
			t.Fatalf("wrong password: messages %v", ids)
		}
		secondPage(b, u.Email)
		b.fill(`input[name="password"]`, u.Password)
		b.clickNav(`button[name="method"][value="password"]`)
		b.wantURLPrefix(in.appBase + "/inbox")
		if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != u.IdentityID {
			t.Fatalf("the app got %v, want %s", v, u.IdentityID)
		}
	})

	t.Run("sign-in code", func(t *testing.T) {
		t.Parallel()
		u := registerNative(t, in.instance)
		b := cr.newTab(t)
		b.navigate(in.apiBase + "/self-service/login/browser")
		firstPage(b, u.Email)
		secondPage(b, u.Email)
		b.clickNav(`button[name="method"][value="code"]`)
		if ids := b.flowMessageIDs(); len(ids) != 1 || ids[0] != 1010014 {
			t.Fatalf("code sent: messages %v", ids)
		}
		if all, visible := identifierInputs(b); all != 1 || visible != 0 {
			t.Fatalf("code page: %d identifier inputs (%d visible)", all, visible)
		}
		b.fill(`input[name="code"]`, in.mail.last(t, u.Email, subjectLoginCode, 1).code(t))
		b.clickNav(`button[name="method"][value="code"]`)
		b.wantURLPrefix(in.appBase + "/")
		if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != u.IdentityID {
			t.Fatalf("the app got %v, want %s", v, u.IdentityID)
		}
	})

	t.Run("unknown address and another account", func(t *testing.T) {
		t.Parallel()
		b := cr.newTab(t)
		b.navigate(in.apiBase + "/self-service/login/browser")
		firstPage(b, randEmail())
		if !b.has(`input[name="identifier"]:not([type=hidden]) ~ .field-msgs [data-message-id="4000037"], [data-message-id="4000037"]`) {
			t.Fatalf("no 4000037 message for an unknown address: %s", b.text(".card"))
		}
		if all, visible := identifierInputs(b); all != 1 || visible != 1 {
			t.Fatalf("after an unknown address: %d identifier inputs (%d visible)", all, visible)
		}
		// From the second page, "Use another account" starts over.
		u := registerNative(t, in.instance)
		b.fill(`input[name="identifier"]`, u.Email)
		b.clickNav(`button[name="method"][value="identifier_first"]`)
		secondPage(b, u.Email)
		b.clickNav(`.footer-links a[href$="/self-service/login/browser"]`)
		firstPage(b, u.Email)
		secondPage(b, u.Email)
	})
}

// TestUIBrowserIdentifierFirstPasskey signs up with a passkey, then signs
// in identifier-first: the second page offers the passkey button (the
// sites are on localhost: WebAuthn needs a domain).
func TestUIBrowserIdentifierFirstPasskey(t *testing.T) {
	t.Parallel()
	ensureChromium(t)
	in := startUIInstanceOn(t, "localhost", "methods passkey", "login_style identifier_first")
	cr := startChromium(t)
	b := cr.newTab(t)
	b.addVirtualAuthenticator()
	email := randEmail()

	b.navigate(in.apiBase + "/self-service/registration/browser")
	b.fill(`input[name="traits.email"]`, email)
	b.clickNav(`button[name="method"][value="profile"]`)
	b.clickNav(`button[data-trigger="oryPasskeyRegistration"]`)
	b.wantURLPrefix(in.appBase + "/")
	id := b.echo().Headers[identityHeader]

	b.navigate(in.apiBase + "/ui/")
	b.clickNav("#logout")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	if b.has(`button[data-trigger="oryPasskeyLogin"]`) || b.has(`input[name="password"]`) {
		t.Fatalf("the first page shows methods: %s", b.text(".card"))
	}
	if ac := b.str(`document.querySelector('input[name="identifier"]').autocomplete`); ac != "username webauthn" {
		t.Errorf("identifier autocomplete %q, want username webauthn", ac)
	}
	b.fill(`input[name="identifier"]`, email)
	b.clickNav(`button[name="method"][value="identifier_first"]`)
	login := `button[data-trigger="oryPasskeyLogin"]`
	if !b.has(login) {
		t.Fatalf("no passkey button on the second page: %s", b.text(".card"))
	}
	if b.has(`input[name="password"]`) {
		t.Errorf("a passkey-only account is offered a password: %s", b.text(".card"))
	}
	b.clickNav(login)
	b.wantURLPrefix(in.appBase + "/")
	if v := b.echo().Headers[identityHeader]; len(v) != 1 || len(id) != 1 || v[0] != id[0] {
		t.Fatalf("after passkey sign-in the app got %v, want %v", v, id)
	}
}
