package flows

import "github.com/caddy-kratos/caddy-kratos/flows/flow"

// registerMethods builds the credential methods of each flow in the order
// the flow shows them (Kratos's display order). Every method of the house
// is listed; a flow offers those the configuration enables
// (methodEnabled). Password is offered by the login and registration
// flows themselves.
func (e *Engine) registerMethods() {
	e.loginMethods = []flow.LoginMethod{e.password, codeMethod{e}, totpMethod{e}, lookupMethod{e}, webauthnMethod{e}, passkeyMethod{e}}
	e.registrationMethods = []*registrationMethod{
		{name: "code", nodes: codeRegistrationNodes, register: codeRegister},
		{name: "passkey", nodes: passkeyRegistrationNodes, register: passkeyRegister},
		{name: "webauthn", nodes: webauthnRegistrationNodes, register: webauthnRegister},
	}
	e.idFirstMethods = []flow.IdentifierFirstMethod{e.password}
	for _, m := range []*idFirstMethod{codeIDFirst(), passkeyIDFirst(), webauthnIDFirst()} {
		e.idFirstMethods = append(e.idFirstMethods, idFirstAdapter{e, m})
	}
	for _, m := range []*settingsMethod{
		{e: e, name: "profile", nodes: profileNodes, update: profileUpdate},
		{e: e, name: "password", nodes: passwordSettingsNodes, update: passwordSettingsUpdate},
		{e: e, name: "totp", nodes: totpSettingsNodes, update: totpSettingsUpdate},
		{e: e, name: "webauthn", nodes: webauthnSettingsNodes, update: webauthnSettingsUpdate},
		{e: e, name: "passkey", nodes: passkeySettingsNodes, update: passkeySettingsUpdate},
	} {
		e.settingsMethods = append(e.settingsMethods, m)
		if m.name == "password" {
			// Backup codes come after the password, as Kratos shows them.
			e.settingsMethods = append(e.settingsMethods, &lookupSettingsMethod{settingsMethod{e: e, name: "lookup_secret",
				nodes: lookupSettingsNodes, update: lookupSettingsUpdate}})
		}
	}
}
