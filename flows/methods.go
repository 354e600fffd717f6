package flows

import (
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/method/code"
	"github.com/caddy-kratos/caddy-kratos/flows/method/lookupsecret"
	"github.com/caddy-kratos/caddy-kratos/flows/method/passkey"
	"github.com/caddy-kratos/caddy-kratos/flows/method/profile"
	"github.com/caddy-kratos/caddy-kratos/flows/method/totp"
	"github.com/caddy-kratos/caddy-kratos/flows/method/webauthn"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// registerMethods builds every credential method of the house from the
// configuration and lists each flow's methods in the order the flow shows
// them (Kratos's display order). A flow offers the methods that are
// Enabled; a method of no list is never reached.
//
// Account enumeration mitigation (Config.MitigateAccountEnumeration,
// Kratos's security.account_enumeration.mitigate) lives in the methods:
// identifier-first login shows every enabled first factor without looking
// the identifier up (login); wrong password and unknown identifier give
// the same 4000006 after the same hash comparison (password); a sign-in
// code for an unknown address is "sent" with the same limits, flow,
// message, store write and least answer time, and no mail (code);
// passwordless WebAuthn answers an unknown identifier with the options of
// a made-up key derived from a server secret (webauthn). Passkey sign-in
// names no account and needs nothing; registration still reports a taken
// identifier (4000007), as Kratos does.
func (e *Engine) registerMethods() {
	clock := func() time.Time { return e.now() }
	issuer := e.cfg.TOTPIssuer
	if issuer == "" {
		issuer = e.base.Host
	}
	e.lookup = lookupsecret.New(func() bool { return e.methodEnabled("lookup_secret") }, e.kernel, e.sessions, e.store, e.sealer,
		e.logger, clock)
	e.totp = totp.New(func() bool { return e.methodEnabled("totp") }, issuer, e.kernel, e.sessions, e.store, e.schemas, e.sealer,
		e.logger, clock)
	e.code = code.New(code.Config{Enabled: e.methodEnabled("code"), Passwordless: e.cfg.CodePasswordless, MFA: e.cfg.CodeMFA,
		MitigateAccountEnumeration: e.cfg.MitigateAccountEnumeration, Lifespan: e.cfg.CodeLifespan}, e.kernel, e.store, e.schemas,
		e.logger, clock)
	party := ceremony.New(ceremony.Config{
		RPID: e.cfg.WebAuthnRPID, RPDisplayName: e.cfg.WebAuthnRPDisplayName, RPOrigins: e.cfg.WebAuthnRPOrigins,
		PasskeyRPID: e.cfg.PasskeyRPID, PasskeyRPDisplayName: e.cfg.PasskeyRPDisplayName, PasskeyRPOrigins: e.cfg.PasskeyRPOrigins,
		PasskeySelection: passkey.Selection(e.cfg.PasskeyResidentKey, e.cfg.PasskeyUserVerification, e.cfg.PasskeyAttachment),
		ScriptIntegrity:  webauthnIntegrity, PasswordEnabled: e.methodEnabled("password"), CodePasswordless: e.cfg.CodePasswordless,
	}, e.kernel, e.store, e.urls, e.logger, clock)
	e.webauthn = webauthn.New(webauthn.Config{Enabled: e.methodEnabled("webauthn"), Passwordless: e.cfg.WebAuthnPasswordless,
		MitigateAccountEnumeration: e.cfg.MitigateAccountEnumeration}, party, e.kernel, e.sessions, e.store, e.schemas, e.logger,
		clock, e.codeKey)
	e.passkey = passkey.New(passkey.Config{Enabled: e.methodEnabled("passkey"), UserVerification: e.cfg.PasskeyUserVerification},
		party, e.kernel, e.sessions, e.store, e.schemas, e.logger, clock)

	// Social sign-in's buttons come first, as in Kratos (its oidc
	// strategy is registered before the others).
	e.loginMethods = []flow.LoginMethod{e.oidc, e.password, e.code, e.totp, e.lookup, e.webauthn, e.passkey}
	e.registrationMethods = []flow.RegistrationMethod{e.oidc, e.password, e.code, e.passkey, e.webauthn}
	// The second screen's groups in Kratos's strategy order (password,
	// oidc, code, passkey, webauthn).
	e.idFirstMethods = []flow.IdentifierFirstMethod{e.password, e.oidc, e.code, e.passkey, e.webauthn}
	e.settingsMethods = []flow.SettingsMethod{
		profile.New(e.kernel, e.sessions, e.schemas, clock),
		e.password, e.oidc, e.lookup, e.totp, e.webauthn, e.passkey,
	}
}

func (e *Engine) methodEnabled(name string) bool {
	switch name {
	case "profile":
		return true
	case "password":
		return !e.cfg.DisablePassword
	}
	return e.cfg.Methods[name]
}

// dropCredential removes the credential of type typ: what a mailbox
// sign-in does to the first factors it did not set (ClaimAddress).
func dropCredential(typ string) func(*sessionstore.Identity, time.Time) error {
	return func(ident *sessionstore.Identity, _ time.Time) error {
		delete(ident.Credentials, typ)
		return nil
	}
}
