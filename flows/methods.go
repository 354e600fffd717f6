package flows

import "github.com/caddy-kratos/caddy-kratos/sessionstore"

// registerMethods builds the credential methods of each flow in the order
// the flow shows them (Kratos's display order). Every method of the house
// is listed; a flow offers those the configuration enables
// (methodEnabled). Password is offered by the login and registration
// flows themselves.
func (e *Engine) registerMethods() {
	e.loginMethods = []*loginMethod{
		{name: "code", aal: "aal1", nodes: codeLoginNodes, verify: codeLoginVerify},
		{name: "code", aal: "aal2", nodes: codeMFANodes, verify: codeLoginVerify, active: codeMFAActive},
		{name: "totp", aal: "aal2", nodes: totpLoginNodes, verify: totpLoginVerify,
			active: func(_ *Engine, ident *sessionstore.Identity) bool { return hasCredential(ident, "totp") }},
		{name: "lookup_secret", aal: "aal2", nodes: lookupLoginNodes, verify: lookupLoginVerify, active: lookupActive},
		{name: "webauthn", aal: "aal1", nodes: webauthnPasswordlessNodes, verify: webauthnPasswordlessVerify},
		{name: "webauthn", aal: "aal2", nodes: webauthnMFANodes, verify: webauthnMFAVerify, active: webauthnMFAActive},
		{name: "passkey", aal: "aal1", nodes: passkeyLoginNodes, verify: passkeyLoginVerify},
	}
	e.registrationMethods = []*registrationMethod{
		{name: "code", nodes: codeRegistrationNodes, register: codeRegister},
		{name: "passkey", nodes: passkeyRegistrationNodes, register: passkeyRegister},
		{name: "webauthn", nodes: webauthnRegistrationNodes, register: webauthnRegister},
	}
	e.idFirstMethods = []*idFirstMethod{passwordIDFirst(), codeIDFirst(), passkeyIDFirst(), webauthnIDFirst()}
	e.settingsMethods = []*settingsMethod{
		{name: "profile", nodes: profileNodes, update: profileUpdate},
		{name: "password", nodes: passwordSettingsNodes, update: passwordSettingsUpdate},
		{name: "lookup_secret", nodes: lookupSettingsNodes, update: lookupSettingsUpdate},
		{name: "totp", nodes: totpSettingsNodes, update: totpSettingsUpdate},
		{name: "webauthn", nodes: webauthnSettingsNodes, update: webauthnSettingsUpdate},
		{name: "passkey", nodes: passkeySettingsNodes, update: passkeySettingsUpdate},
	}
}
