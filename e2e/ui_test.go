package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// TestUIBrowser drives the built-in pages in headless chromium: the
// journeys a person takes from a gated app through sign-up, sign-in,
// errors, sessions, recovery and verification, checking what the pages
// show and what the app behind the gate receives.
func TestUIBrowser(t *testing.T) {
	t.Parallel()
	ensureChromium(t)
	in := startUIInstance(t, "methods totp lookup_secret", `ui {
			product_name "Acme Cloud"
		}`)
	cr := startChromium(t)

	t.Run("journeys", func(t *testing.T) {
		t.Run("SignUpFromGatedAppThenLogoutAndLogin", func(t *testing.T) {
			t.Parallel()
			testUISignUpLogoutLogin(t, in, cr)
		})
		t.Run("WrongPassword", func(t *testing.T) {
			t.Parallel()
			testUIWrongPassword(t, in, cr)
		})
		t.Run("InvalidEmailFieldMessage", func(t *testing.T) {
			t.Parallel()
			testUIInvalidEmail(t, in, cr)
		})
		t.Run("RevokeOtherSessions", func(t *testing.T) {
			t.Parallel()
			testUIRevokeSessions(t, in, cr)
		})
		t.Run("RecoveryByMailedCode", func(t *testing.T) {
			t.Parallel()
			testUIRecovery(t, in, cr)
		})
		t.Run("VerificationByMailedCode", func(t *testing.T) {
			t.Parallel()
			testUIVerification(t, in, cr)
		})
		t.Run("ErrorPage", func(t *testing.T) {
			t.Parallel()
			testUIErrorPage(t, in, cr)
		})
		t.Run("TOTPAndBackupCodes", func(t *testing.T) {
			t.Parallel()
			testUITOTP(t, in, cr)
		})
	})
}

// wantPageBasics checks what every built-in page must have in a browser:
// the stylesheet and ui.js loaded under the CSP, labels on every input.
func wantPageBasics(t *testing.T, b *tab) {
	t.Helper()
	if !evalT[bool](b, `document.documentElement.classList.contains("js")`) {
		t.Errorf("%s: ui.js did not run (blocked by the CSP?)", b.url())
	}
	if got := b.str(`getComputedStyle(document.querySelector(".card")).borderRadius`); got != "14px" {
		t.Errorf("%s: ui.css not applied (card border-radius %q)", b.url(), got)
	}
	unlabelled := evalT[[]string](b, `Array.from(document.querySelectorAll("input:not([type=hidden]), select")).filter(i => !i.labels || i.labels.length === 0).map(i => i.name)`)
	if len(unlabelled) > 0 {
		t.Errorf("%s: inputs without a label: %v", b.url(), unlabelled)
	}
}

func testUISignUpLogoutLogin(t *testing.T, in *uiInstance, cr *chromium) {
	b := cr.newTab(t)
	email, password := randEmail(), randPassword()

	// The gated app sends an anonymous browser to the login page.
	b.navigate(in.appBase + "/dashboard?tab=1")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	if h := b.text("h1"); h != "Sign in" {
		t.Errorf("login h1 = %q", h)
	}
	if !strings.Contains(b.text(".product"), "Acme Cloud") {
		t.Errorf("product name not shown: %q", b.text(".topbar"))
	}
	wantPageBasics(t, b)
	// The brand colour reaches the primary button through theme.css.
	if bg := b.str(`getComputedStyle(document.querySelector(".btn-primary")).backgroundColor`); bg != "rgb(37, 99, 235)" {
		t.Errorf("primary button background = %q", bg)
	}

	// Two-step sign-up, started from the login page's link.
	b.registerFromLogin(email, password, "Ada")
	b.wantURLPrefix(in.appBase + "/dashboard?tab=1")
	echo := b.echo()
	id := ""
	if v := echo.Headers[identityHeader]; len(v) == 1 && isUUID(v[0]) {
		id = v[0]
	} else {
		t.Fatalf("the app got %s = %v, want one identity id", identityHeader, v)
	}
	if echo.Path != "/dashboard" || echo.Query != "tab=1" {
		t.Errorf("the app got %s?%s, want /dashboard?tab=1", echo.Path, echo.Query)
	}
	if who := b.whoami(in); who != id {
		t.Errorf("whoami identity %s, app got %s", who, id)
	}

	// The home page greets the user and links to settings, sessions and
	// logout.
	b.navigate(in.apiBase + "/ui/")
	if h := b.text("h1"); h != "Hi, Ada" {
		t.Errorf("welcome h1 = %q", h)
	}
	if !strings.Contains(b.text(".subtitle"), email) {
		t.Errorf("welcome does not show %s: %q", email, b.text(".subtitle"))
	}
	wantPageBasics(t, b)
	for _, sel := range []string{"#to-settings", "#to-sessions", "#logout", `.nav a[href$="/ui/sessions"]`} {
		if !b.has(sel) {
			t.Errorf("welcome lacks %s", sel)
		}
	}
	b.clickNav("#to-settings")
	b.wantURLPrefix(in.apiBase + "/ui/settings?flow=")
	wantPageBasics(t, b)
	if v := b.value(`form[data-group="profile"] input[name="traits.email"]`); v != email {
		t.Errorf("settings email = %q", v)
	}
	for _, h := range []string{"Profile", "Password"} {
		if !strings.Contains(b.text(".card"), h) {
			t.Errorf("settings lacks the %q section", h)
		}
	}

	// Log out: the default return URL is the gated app, which sends the
	// browser to login again.
	b.navigate(in.apiBase + "/ui/")
	b.clickNav("#logout")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	b.login(email, password)
	b.wantURLPrefix(in.appBase + "/")
	if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != id {
		t.Errorf("after login again the app got %s = %v, want %s", identityHeader, v, id)
	}
}

func testUIWrongPassword(t *testing.T, in *uiInstance, cr *chromium) {
	u := registerNative(t, in.instance)
	b := cr.newTab(t)
	b.navigate(in.apiBase + "/self-service/login/browser")
	b.login(u.Email, u.Password+"-wrong")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 4000006) {
		t.Fatalf("flow messages %v, want 4000006; page: %s", ids, b.text(".card"))
	}
	msg := b.text(`.messages [data-message-id="4000006"]`)
	if !strings.Contains(msg, "credentials are invalid") {
		t.Errorf("message 4000006 text = %q", msg)
	}
	if role := b.str(`document.querySelector('.messages [data-message-id="4000006"]').getAttribute("role")`); role != "alert" {
		t.Errorf("error message role = %q, want alert", role)
	}
	// The message sits right above the form it is about.
	if !evalT[bool](b, `!!(document.querySelector(".messages").compareDocumentPosition(document.querySelector("form")) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
		t.Error("the message is not before the form")
	}
	if v := b.value(`input[name="identifier"]`); v != u.Email {
		t.Errorf("identifier = %q, want %q kept", v, u.Email)
	}
	if v := b.value(`input[name="password"]`); v != "" {
		t.Errorf("password echoed back: %q", v)
	}
	wantPageBasics(t, b)
	// And the right password still works from this page.
	b.fill(`input[name="password"]`, u.Password)
	b.clickNav(`button[name="method"][value="password"]`)
	b.wantURLPrefix(in.appBase + "/")
}

func testUIInvalidEmail(t *testing.T, in *uiInstance, cr *chromium) {
	b := cr.newTab(t)
	b.navigate(in.apiBase + "/self-service/registration/browser")
	b.wantURLPrefix(in.apiBase + "/ui/registration?flow=")
	wantPageBasics(t, b)
	// Consecutive dots pass the browser's type=email check but not the
	// schema's email format, so the server's message is shown.
	bad := "john..doe-" + randHex(3) + "@example.com"
	b.fill(`input[name="traits.email"]`, bad)
	b.clickNav(`button[name="method"][value="profile"]`)
	b.wantURLPrefix(in.apiBase + "/ui/registration?flow=")
	sel := `input[name="traits.email"]`
	if inv := b.str(fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-invalid") || ""`, sel)); inv != "true" {
		t.Errorf("email input aria-invalid = %q", inv)
	}
	desc := b.str(fmt.Sprintf(`document.querySelector(%q).getAttribute("aria-describedby") || ""`, sel))
	if desc == "" {
		t.Fatalf("email input has no aria-describedby; page: %s", b.text(".card"))
	}
	if !b.has("#" + desc + ` [data-message-id="4000040"]`) {
		t.Errorf("message 4000040 is not in #%s (the email's description): %s", desc, b.text(".card"))
	}
	// The message is inside the email's field, next to it.
	if !evalT[bool](b, fmt.Sprintf(`document.querySelector(%q).closest(".field").contains(document.getElementById(%q))`, sel, desc)) {
		t.Error("the message is not in the email field's block")
	}
	if v := b.value(sel); v != bad {
		t.Errorf("email value = %q, want %q kept", v, bad)
	}
	if focused := b.str(`document.activeElement ? document.activeElement.name || "" : ""`); focused != "traits.email" {
		t.Errorf("focus is on %q, want the invalid field", focused)
	}
}

// sessionID reads the id of the tab's session from whoami.
func (b *tab) sessionID(in *uiInstance) string {
	b.t.Helper()
	b.navigate(in.apiBase + "/sessions/whoami")
	return b.str(`JSON.parse((document.querySelector("pre") || document.body).textContent).id`)
}

func testUIRevokeSessions(t *testing.T, in *uiInstance, cr *chromium) {
	u := registerNative(t, in.instance) // also leaves a native session
	a, other := cr.newTab(t), cr.newTab(t)
	for _, b := range []*tab{a, other} {
		b.navigate(in.apiBase + "/self-service/login/browser")
		b.login(u.Email, u.Password)
		b.wantURLPrefix(in.appBase + "/")
	}
	otherID := other.sessionID(in)
	aID := a.sessionID(in)

	a.navigate(in.apiBase + "/ui/sessions")
	a.wantURLPrefix(in.apiBase + "/ui/sessions")
	wantPageBasics(t, a)
	if got := a.str(`document.querySelector(".session.current").dataset.sessionId`); got != aID {
		t.Errorf("current session shown %s, want %s", got, aID)
	}
	listed := evalT[[]string](a, `Array.from(document.querySelectorAll(".sessions .session")).map(e => e.dataset.sessionId)`)
	if len(listed) != 2 || !slices.Contains(listed, otherID) || !slices.Contains(listed, u.SessionID) {
		t.Fatalf("other sessions listed %v, want the browser's %s and the native %s", listed, otherID, u.SessionID)
	}
	row := fmt.Sprintf(`.sessions .session[data-session-id=%q]`, otherID)
	for _, want := range []string{"Chrome", "127.0.0.1", "Password"} {
		if !strings.Contains(a.text(row), want) {
			t.Errorf("session row lacks %q: %q", want, a.text(row))
		}
	}

	// Revoke the other browser's session.
	a.clickNav(row + ` button[type="submit"]`)
	a.wantURLPrefix(in.apiBase + "/ui/sessions?done=revoked")
	if msg := a.text(".messages"); !strings.Contains(msg, "signed out") {
		t.Errorf("revoke message = %q", msg)
	}
	if a.has(row) {
		t.Error("the revoked session is still listed")
	}
	// The other browser is sent to login on its next request.
	other.navigate(in.appBase + "/again")
	other.wantURLPrefix(in.apiBase + "/ui/login?flow=")

	// Sign out everywhere else: the native session ends too.
	a.clickNav("#revoke-others")
	if msg := a.text(".messages"); !strings.Contains(msg, "Signed out of 1 other session") {
		t.Errorf("revoke-others message = %q", msg)
	}
	if !a.has(".empty") {
		t.Errorf("other sessions still listed: %s", a.text(".card"))
	}
	if _, status := whoamiToken(t, in.instance, u.Token); status != http.StatusUnauthorized {
		t.Errorf("native session after revoke-others: whoami %d", status)
	}
	// This browser is still signed in.
	a.navigate(in.appBase + "/still-here")
	if v := a.echo().Headers[identityHeader]; len(v) != 1 || v[0] != u.IdentityID {
		t.Errorf("this browser lost its session: %v", v)
	}
}

func testUIRecovery(t *testing.T, in *uiInstance, cr *chromium) {
	u := registerNative(t, in.instance)
	b := cr.newTab(t)
	b.navigate(in.apiBase + "/self-service/login/browser")
	b.clickNav(`.footer-links a[href*="/self-service/recovery/browser"]`)
	b.wantURLPrefix(in.apiBase + "/ui/recovery?flow=")
	wantPageBasics(t, b)
	b.fill(`input[name="email"]`, u.Email)
	b.clickNav(`button[name="method"][value="code"]`)
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1060003) {
		t.Fatalf("after sending: messages %v, want 1060003; %s", ids, b.text(".card"))
	}
	code := in.mail.last(t, u.Email, "Recover access to your account", 1).code(t)
	b.fill(`input[name="code"]`, code)
	b.clickNav(`button[name="method"][value="code"]`)

	// The privileged settings flow: set a new password.
	b.wantURLPrefix(in.apiBase + "/ui/settings?flow=")
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1060001) {
		t.Errorf("settings after recovery: messages %v, want 1060001", ids)
	}
	newPassword := randPassword()
	b.fill(`form[data-group="password"] input[name="password"]`, newPassword)
	b.clickNav(`form[data-group="password"] button[name="method"][value="password"]`)
	b.wantURLPrefix(in.apiBase + "/ui/settings?flow=")
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1050001) {
		t.Fatalf("password change: messages %v, want 1050001; %s", ids, b.text(".card"))
	}
	if role := b.str(`document.querySelector('[data-message-id="1050001"]').className`); !strings.Contains(role, "alert-success") {
		t.Errorf("success message class = %q", role)
	}

	// Sign out from the navigation and in with the new password.
	b.clickNav(`.nav a[href*="/self-service/logout?token="]`)
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	b.login(u.Email, newPassword)
	b.wantURLPrefix(in.appBase + "/")
	if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != u.IdentityID {
		t.Errorf("after recovery the app got %v, want %s", v, u.IdentityID)
	}
}

func testUIVerification(t *testing.T, in *uiInstance, cr *chromium) {
	u := registerNative(t, in.instance) // mails the first verification code
	in.mail.wait(t, u.Email, "Please verify your email address", 1)
	b := cr.newTab(t)
	b.navigate(in.apiBase + "/self-service/verification/browser")
	b.wantURLPrefix(in.apiBase + "/ui/verification?flow=")
	wantPageBasics(t, b)
	b.fill(`input[name="email"]`, u.Email)
	b.clickNav(`button[name="method"][value="code"]`)
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1080003) {
		t.Fatalf("after sending: messages %v, want 1080003; %s", ids, b.text(".card"))
	}
	code := in.mail.last(t, u.Email, "Please verify your email address", 2).code(t)
	b.fill(`input[name="code"]`, code)
	b.clickNav(`button[name="method"][value="code"]`)
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1080002) {
		t.Fatalf("after the code: messages %v, want 1080002; %s", ids, b.text(".card"))
	}
	if !b.has(`a.btn[href]`) {
		t.Errorf("no continue link after verification: %s", b.text(".card"))
	}
	token, _ := loginNative(t, in.instance, u.Email, u.Password)
	s, status := whoamiToken(t, in.instance, token)
	if status != http.StatusOK || len(s.Identity.VerifiableAddresses) == 0 || !s.Identity.VerifiableAddresses[0].Verified {
		t.Errorf("address not verified after the page's code: %d %+v", status, s)
	}
}

func testUIErrorPage(t *testing.T, in *uiInstance, cr *chromium) {
	b := cr.newTab(t)
	// A forbidden return_to is a flow error shown on the error page.
	b.navigate(in.apiBase + "/self-service/login/browser?return_to=https://evil.example.net/")
	b.wantURLPrefix(in.apiBase + "/ui/error?id=")
	wantPageBasics(t, b)
	if h := b.text("h1"); h != "Something went wrong" {
		t.Errorf("error h1 = %q", h)
	}
	if msg := b.text(".error-box"); !strings.Contains(msg, "evil.example.net") || !strings.Contains(msg, "is not allowed") {
		t.Errorf("error text = %q", msg)
	}
}

// TestUIScreenshots writes docs/screenshots/*.png (desktop 1280×800 and
// 360 px wide, light and some dark) when UPDATE_SCREENSHOTS=1.
func TestUIScreenshots(t *testing.T) {
	if !updateScreenshots() {
		t.Skip("set UPDATE_SCREENSHOTS=1 to write docs/screenshots/*.png")
	}
	ensureChromium(t)
	in := startUIInstance(t, `ui {
			product_name "Acme Cloud"
		}`)
	cr := startChromium(t)
	shot := func(b *tab, name string, dark bool) {
		b.screenshot(name+"-desktop", 1280, 800, dark)
		if !dark {
			b.screenshot(name+"-mobile", 360, 740, false)
		}
	}

	b := cr.newTab(t)
	b.navigate(in.appBase + "/")
	shot(b, "login", false)
	shot(b, "login-dark", true)

	email, password := "ada.lovelace@example.com", randPassword()
	b.clickNav(`.footer-links a[href*="/self-service/registration/browser"]`)
	shot(b, "registration", false)
	b.fill(`input[name="traits.email"]`, "ada..lovelace@example.com")
	b.clickNav(`button[name="method"][value="profile"]`)
	shot(b, "registration-field-error", false)
	b.fill(`input[name="traits.email"]`, email)
	b.fill(`input[name="traits.name.first"]`, "Ada")
	b.fill(`input[name="traits.name.last"]`, "Lovelace")
	b.clickNav(`button[name="method"][value="profile"]`)
	shot(b, "registration-password", false)
	b.fill(`input[name="password"]`, password)
	b.clickNav(`button[name="method"][value="password"]`)

	b.navigate(in.apiBase + "/ui/")
	shot(b, "welcome", false)
	b.navigate(in.apiBase + "/self-service/settings/browser")
	shot(b, "settings", false)
	shot(b, "settings-dark", true)

	// Two more sessions for the sessions page.
	for i := 0; i < 2; i++ {
		o := cr.newTab(t)
		o.navigate(in.apiBase + "/self-service/login/browser")
		o.login(email, password)
	}
	b.navigate(in.apiBase + "/ui/sessions")
	shot(b, "sessions", false)

	w := cr.newTab(t)
	w.navigate(in.apiBase + "/self-service/login/browser")
	w.login(email, password+"x")
	shot(w, "login-error", false)
	w.navigate(in.apiBase + "/self-service/recovery/browser")
	shot(w, "recovery", false)
	w.fill(`input[name="email"]`, email)
	w.clickNav(`button[name="method"][value="code"]`)
	shot(w, "recovery-code", false)
	w.navigate(in.apiBase + "/self-service/verification/browser")
	shot(w, "verification", false)
	w.navigate(in.apiBase + "/self-service/login/browser?return_to=https://evil.example.net/")
	shot(w, "error", false)
	w.navigate(in.apiBase + "/ui/")
	shot(w, "welcome-signed-out", false)
}

// TestUIScreenshotsMethods writes the pages of the other methods: the
// credential step with passkeys, settings with an authenticator app,
// backup codes, security keys and passkeys, and the second-factor login
// (on localhost, which WebAuthn needs).
func TestUIScreenshotsMethods(t *testing.T) {
	if !updateScreenshots() {
		t.Skip("set UPDATE_SCREENSHOTS=1 to write docs/screenshots/*.png")
	}
	ensureChromium(t)
	in := startUIInstanceOn(t, "localhost", "methods totp lookup_secret webauthn passkey", `ui {
			product_name "Acme Cloud"
		}`)
	cr := startChromium(t)
	b := cr.newTab(t)
	b.addVirtualAuthenticator()
	shot := func(name string) {
		b.screenshot(name+"-desktop", 1280, 800, false)
		b.screenshot(name+"-mobile", 360, 740, false)
	}
	email, password := "grace.hopper@example.com", randPassword()
	b.navigate(in.apiBase + "/self-service/registration/browser")
	b.fill(`input[name="traits.email"]`, email)
	b.fill(`input[name="traits.name.first"]`, "Grace")
	b.clickNav(`button[name="method"][value="profile"]`)
	shot("registration-methods")
	b.fill(`input[name="password"]`, password)
	b.clickNav(`button[name="method"][value="password"]`)

	b.navigate(in.apiBase + "/self-service/settings/browser")
	shot("settings-methods")
	secret := strings.TrimSpace(b.text(`form[data-group="totp"] code.secret`))
	code, _ := totp.GenerateCode(secret, time.Now())
	b.fill(`form[data-group="totp"] input[name="totp_code"]`, code)
	b.clickNav(`form[data-group="totp"] button[name="method"][value="totp"]`)
	b.clickNav(`form[data-group="lookup_secret"] button[name="lookup_secret_regenerate"]`)
	b.do("scroll", chromedp.ScrollIntoView(chromedp.CSS("ul.codes")))
	shot("settings-backup-codes")
	b.clickNav(`form[data-group="lookup_secret"] button[name="lookup_secret_confirm"]`)

	b.navigate(in.apiBase + "/ui/")
	b.clickNav("#logout")
	b.navigate(in.apiBase + "/self-service/login/browser")
	shot("login-methods")
	b.login(email, password)
	shot("login-second-factor")
}

// TestUIBrowserPasskeys signs up and in with a passkey from a virtual
// authenticator (WebAuthn needs a domain, so these sites are on
// localhost).
func TestUIBrowserPasskeys(t *testing.T) {
	t.Parallel()
	ensureChromium(t)
	in := startUIInstanceOn(t, "localhost", "methods passkey")
	cr := startChromium(t)
	b := cr.newTab(t)
	b.addVirtualAuthenticator()
	email := randEmail()

	b.navigate(in.appBase + "/passkey-home")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	b.clickNav(`.footer-links a[href*="/self-service/registration/browser"]`)
	b.fill(`input[name="traits.email"]`, email)
	b.clickNav(`button[name="method"][value="profile"]`)
	trigger := `button[data-trigger="oryPasskeyRegistration"]`
	if !b.has(trigger) {
		t.Fatalf("no passkey sign-up button on the credential step: %s", b.text(".card"))
	}
	wantPageBasics(t, b)
	b.clickNav(trigger)
	b.wantURLPrefix(in.appBase + "/passkey-home")
	id := ""
	if v := b.echo().Headers[identityHeader]; len(v) == 1 && isUUID(v[0]) {
		id = v[0]
	} else {
		t.Fatalf("after passkey sign-up the app got %v", v)
	}

	b.navigate(in.apiBase + "/ui/")
	b.clickNav("#logout")
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	login := `button[data-trigger="oryPasskeyLogin"]`
	if !b.has(login) {
		t.Fatalf("no passkey sign-in button: %s", b.text(".card"))
	}
	b.clickNav(login)
	b.wantURLPrefix(in.appBase + "/")
	if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != id {
		t.Errorf("after passkey sign-in the app got %v, want %s", v, id)
	}

	// Settings lists the passkey with a remove button and offers another.
	b.navigate(in.apiBase + "/self-service/settings/browser")
	if !b.has(`form[data-group="passkey"] button[name="passkey_remove"]`) || !b.has(`form[data-group="passkey"] button[data-trigger="oryPasskeySettingsRegistration"]`) {
		t.Errorf("passkey settings: %s", b.text(`form[data-group="passkey"]`))
	}
}

// testUITOTP links an authenticator app and backup codes on the settings
// page, then signs in with each as the second factor: the gated app lets
// the browser through only after it.
func testUITOTP(t *testing.T, in *uiInstance, cr *chromium) {
	u := registerNative(t, in.instance)
	b := cr.newTab(t)
	b.navigate(in.apiBase + "/self-service/login/browser")
	b.login(u.Email, u.Password)
	b.wantURLPrefix(in.appBase + "/")

	b.navigate(in.apiBase + "/self-service/settings/browser")
	b.wantURLPrefix(in.apiBase + "/ui/settings?flow=")
	totpForm := `form[data-group="totp"]`
	if !b.has(totpForm + ` img[src^="data:image/png;base64,"]`) {
		t.Errorf("no QR code in the authenticator section: %s", b.text(totpForm))
	}
	secret := strings.TrimSpace(b.text(totpForm + " code.secret"))
	if len(secret) < 16 {
		t.Fatalf("TOTP secret on the page = %q", secret)
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.fill(totpForm+` input[name="totp_code"]`, code)
	b.clickNav(totpForm + ` button[name="method"][value="totp"]`)
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1050001) {
		t.Fatalf("linking TOTP: messages %v; %s", ids, b.text(".card"))
	}
	if !b.has(`form[data-group="totp"] button[name="totp_unlink"].btn-danger`) {
		t.Errorf("no unlink button after linking: %s", b.text(totpForm))
	}

	// Backup codes: generate, see them as a list, confirm.
	lookupForm := `form[data-group="lookup_secret"]`
	b.clickNav(lookupForm + ` button[name="lookup_secret_regenerate"]`)
	codes := evalT[[]string](b, `Array.from(document.querySelectorAll('form[data-group="lookup_secret"] ul.codes li code')).map(c => c.textContent.trim())`)
	if len(codes) < 8 {
		t.Fatalf("backup codes shown: %v; %s", codes, b.text(".card"))
	}
	if ff := b.str(`getComputedStyle(document.querySelector("ul.codes code")).fontFamily`); !strings.Contains(strings.ToLower(ff), "mono") {
		t.Errorf("backup codes font %q, want monospace", ff)
	}
	b.clickNav(lookupForm + ` button[name="lookup_secret_confirm"]`)
	if ids := b.flowMessageIDs(); !slices.Contains(ids, 1050001) {
		t.Fatalf("confirming backup codes: messages %v; %s", ids, b.text(".card"))
	}

	// Sign out and in: the password alone does not pass the gate.
	b.clickNav(`.nav a[href*="/self-service/logout?token="]`)
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	b.login(u.Email, u.Password)
	b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
	if h := b.text("h1"); h != "Two-step verification" {
		t.Errorf("second factor page h1 = %q; %s", h, b.text(".card"))
	}
	wantPageBasics(t, b)
	code, _ = totp.GenerateCode(secret, time.Now())
	b.fill(`input[name="totp_code"]`, code)
	b.clickNav(`button[name="method"][value="totp"]`)
	b.wantURLPrefix(in.appBase + "/")
	if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != u.IdentityID {
		t.Errorf("after TOTP the app got %v, want %s", v, u.IdentityID)
	}

	// And once more with a backup code instead of the app.
	b.navigate(in.apiBase + "/ui/")
	b.clickNav("#logout")
	b.login(u.Email, u.Password)
	b.fill(`input[name="lookup_secret"]`, codes[0])
	b.clickNav(`button[name="method"][value="lookup_secret"]`)
	b.wantURLPrefix(in.appBase + "/")
	if v := b.echo().Headers[identityHeader]; len(v) != 1 || v[0] != u.IdentityID {
		t.Errorf("after a backup code the app got %v, want %s", v, u.IdentityID)
	}
}
