package e2e

import (
	"fmt"
	"slices"
	"testing"
)

// TestUIOIDC: social sign-in through the built-in pages in headless
// Chromium, with Hydra as the provider: from a gated app to the login
// page, the provider's button, Hydra's login and consent, back to the app
// signed up; later signed in again the same way, to the same identity.
// A provider that gives no email: the registration page asks for it, and
// the sign-up finishes through the credential screen's provider button.
// (Needs Hydra and Chromium: KRATOS_TEST_OIDC=1 or CI=true.)
func TestUIOIDC(t *testing.T) {
	t.Parallel()
	h := sharedHydra(t)
	ensureChromium(t)
	user := hydraUser("ui")
	hy := &oidcSpec{ID: "hydra", Hydra: h, User: user, Lines: []string{"label Hydra"}}
	noMail := &oidcSpec{ID: "nomail", Hydra: h, Lines: []string{"label NoMail"},
		User: oidcUser{Subject: "nomail-" + randHex(4), Claims: map[string]any{"given_name": "Grace"}}}
	providers := oidcProviders(t, hy, noMail)
	in := startUIInstanceWith(t, "127.0.0.1", func(in *instance) []string {
		return []string{"methods oidc", "oidc {\n" + providers(in.publicURL) + "\t\t}"}
	})
	cr := startChromium(t)

	var id string
	for i, what := range []string{"sign-up", "sign-in"} {
		b := cr.newTab(t)
		b.navigate(in.appBase + "/dashboard?tab=" + what)
		b.wantURLPrefix(in.apiBase + "/ui/login?flow=")
		btn := `form.form-social button[name="provider"][value="hydra"]`
		if !b.has(btn) || b.label(btn) != "Sign in with Hydra" {
			t.Fatalf("%s: no provider button on the login page: %q", what, b.text("main"))
		}
		logins := h.Logins.Load()
		b.clickNav(btn)
		// Through Hydra's login and consent, back to the app.
		b.wantURLPrefix(in.appBase + "/dashboard?tab=" + what)
		if h.Logins.Load() <= logins {
			t.Fatalf("%s: Hydra's login app was not visited", what)
		}
		echo := b.echo()
		got := echo.Headers[identityHeader]
		if len(got) != 1 || !isUUID(got[0]) {
			t.Fatalf("%s: the app got %s = %v", what, identityHeader, got)
		}
		if i == 0 {
			id = got[0]
		} else if got[0] != id {
			t.Fatalf("%s: identity %s, want the one signed up (%s)", what, got[0], id)
		}
		if who := b.whoami(in); who != id {
			t.Fatalf("%s: whoami identity %s, want %s", what, who, id)
		}
	}
	if got := credentialIdentifiers(in.identityWith(t, id), "oidc"); !slices.Equal(got, []string{"hydra:" + user.Subject}) {
		t.Fatalf("oidc identifiers %v", got)
	}
	if n := len(in.identities(t)); n != 1 {
		t.Fatalf("%d identities, want 1", n)
	}

	// No email from the provider: the registration page with the
	// provider's traits and the missing email in the provider's form
	// (Kratos's shape); typed in, "Continue" goes round the provider once
	// more and signs up.
	b := cr.newTab(t)
	b.navigate(in.appBase + "/welcome")
	b.clickNav(`form.form-social button[name="provider"][value="nomail"]`)
	b.wantURLPrefix(in.apiBase + "/ui/registration?flow=")
	if !b.has(`[data-message-id="4000002"]`) || b.value(`input[name="traits.name.first"]`) != "Grace" {
		t.Fatalf("registration page after a provider without email: %q", b.text("main"))
	}
	mail := randEmail()
	b.fill(`form.form-social input[name="traits.email"]`, mail)
	b.clickNav(`form.form-social button[name="provider"][value="nomail"]`)
	b.wantURLPrefix(in.appBase + "/welcome")
	ident := in.identityWith(t, b.whoami(in))
	if traits, _ := ident.Traits.(map[string]any); traits["email"] != mail ||
		!slices.Equal(credentialIdentifiers(ident, "oidc"), []string{"nomail:" + noMail.User.Subject}) {
		t.Fatalf("sign-up completed through the pages: traits %v oidc %v", ident.Traits, credentialIdentifiers(ident, "oidc"))
	}

	// The registration page offers the provider on its first screen.
	b = cr.newTab(t)
	b.navigate(in.apiBase + "/self-service/registration/browser")
	b.wantURLPrefix(in.apiBase + "/ui/registration?flow=")
	btn := `form.form-social button[name="provider"][value="hydra"]`
	if !b.has(btn) || b.label(btn) != "Sign up with Hydra" {
		t.Fatalf("no provider button on the registration page: %q", b.text("main"))
	}
}

// label is the text of sel's last span (a provider button's label, after
// its icon).
func (b *tab) label(sel string) string {
	b.t.Helper()
	return b.str(fmt.Sprintf(`((document.querySelector(%q) || {}).querySelector ? document.querySelector(%q).querySelector("span:last-child").textContent : "")`, sel, sel))
}
