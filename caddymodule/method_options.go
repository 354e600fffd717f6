package caddymodule

import (
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// The flows and credential methods: which are on and how they behave
// (flows.FormOptions, flows.PasswordOptions, flows.CodeOptions, the flow
// hooks of flows.HookOptions, flows.MFAOptions, recovery, verification,
// methods and the code block). WebAuthn and passkeys are in
// webauthn_options.go, social sign-in's providers in oidc_options.go.

// CodeConfig configures the code credential method
// (selfservice.methods.code).
type CodeConfig struct {
	// Passwordless enables sign-up and sign-in with a mailed code
	// (passwordless_enabled). Default: false.
	Passwordless bool `json:"passwordless,omitempty"`

	// MFA enables a mailed code as a second factor (mfa_enabled).
	// Default: false.
	MFA bool `json:"mfa,omitempty"`
}

// unmarshalMethodOption reads
//
//	registration_style <profile_first|unified>
//	login_style <unified|identifier_first>
//	mitigate_account_enumeration
//	registration <enabled|disabled>
//	password <enabled|disabled>
//	password_hasher <bcrypt|argon2id>
//	bcrypt_cost <n>
//	recovery [code|link]
//	verification [code|link]
//	code_lifespan <duration>
//	code_max_submissions <n>
//	notify_unknown_recipients
//	use_continue_with_transitions
//	require_verified_address
//	methods <password|profile|totp|lookup_secret|webauthn|passkey|code|oidc...>
//	required_aal <highest_available|aal1>
//	totp_issuer <name>
//	code {
//		passwordless
//		mfa
//	}
func (a *App) unmarshalMethodOption(o *globalOption) (bool, error) {
	var err error
	switch o.name {
	case "registration_style":
		a.RegistrationStyle, err = o.choice("registration style", registrationStyles)

	case "login_style":
		a.LoginStyle, err = o.choice("login style", loginStyles)

	case "mitigate_account_enumeration":
		a.MitigateAccountEnumeration, err = o.flag()

	case "registration":
		var v string
		v, err = o.choice("registration", []string{"enabled", "disabled"})
		a.DisableRegistration = v == "disabled"

	case "password":
		var v string
		v, err = o.choice("password", []string{"enabled", "disabled"})
		a.DisablePassword = v == "disabled"
		o.mark()

	case "password_hasher":
		a.PasswordHasher, err = o.choice("password hasher", passwordHashers)

	case "bcrypt_cost":
		a.BcryptCost, err = o.number(checkBcryptCost)

	case "recovery", "verification":
		v := "code"
		args := o.d.RemainingArgs()
		switch len(args) {
		case 0:
		case 1:
			v = args[0]
			err = o.check(checkOneOf(o.name+" method", v, flowMethods))
		default:
			return true, o.d.ArgErr()
		}
		if o.name == "recovery" {
			a.Recovery = v
		} else {
			a.Verification = v
		}

	case "code_lifespan":
		a.CodeLifespan, err = o.duration()

	case "code_max_submissions":
		a.CodeMaxSubmissions, err = o.number(checkCodeMaxSubmissions)

	case "notify_unknown_recipients":
		a.NotifyUnknownRecipients, err = o.flag()

	case "use_continue_with_transitions":
		a.UseContinueWithTransitions, err = o.flag()

	case "require_verified_address":
		a.RequireVerifiedAddress, err = o.flag()

	case "methods":
		methods := o.d.RemainingArgs()
		if len(methods) == 0 {
			return true, o.d.ArgErr()
		}
		if err := o.check(checkMethods(append(slices.Clone(a.Methods), methods...))); err != nil {
			return true, err
		}
		a.Methods = append(a.Methods, methods...)
		if slices.Contains(methods, "oidc") {
			o.at["methods oidc"] = fmt.Sprintf("%s:%d", o.d.File(), o.d.Line())
		}

	case "required_aal":
		a.RequiredAAL, err = o.choice("required AAL", requiredAALs)

	case "totp_issuer":
		a.TOTPIssuer, err = o.one()

	case "code":
		a.Code = new(CodeConfig)
		err = o.block(a.Code.unmarshalCaddyfile)

	default:
		return false, nil
	}
	return true, err
}

// unmarshalCaddyfile reads the block of the code subdirective:
//
//	code {
//		passwordless
//		mfa
//	}
func (c *CodeConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for d.NextBlock(1) {
		name := d.Val()
		if seen[name] {
			return d.Errf("code: duplicate subdirective %q", name)
		}
		seen[name] = true
		switch name {
		case "passwordless":
			c.Passwordless = true
		case "mfa":
			c.MFA = true
		default:
			return d.Errf("code: unrecognized subdirective %q", name)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// methodFlowsConfig checks the flow and method options and maps those
// the engine reads in another form (recovery, verification, methods, the
// code block) into cfg.
func (a *App) methodFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
	if a.RegistrationStyle != "" {
		errs.check("registration_style", checkOneOf("registration style", a.RegistrationStyle, registrationStyles))
	}
	if a.LoginStyle != "" {
		errs.check("login_style", checkOneOf("login style", a.LoginStyle, loginStyles))
	}
	if a.PasswordHasher != "" {
		errs.check("password_hasher", checkOneOf("password hasher", a.PasswordHasher, passwordHashers))
	}
	if a.BcryptCost != 0 {
		errs.check("bcrypt_cost", checkBcryptCost(a.BcryptCost))
	}
	cfg.RecoveryEnabled, cfg.RecoveryUse = a.Recovery != "", a.Recovery
	if a.Recovery != "" {
		errs.check("recovery", checkOneOf("recovery method", a.Recovery, flowMethods))
	}
	cfg.VerificationEnabled, cfg.VerificationUse = a.Verification != "", a.Verification
	if a.Verification != "" {
		errs.check("verification", checkOneOf("verification method", a.Verification, flowMethods))
	}
	if a.CodeLifespan != 0 {
		errs.check("code_lifespan", checkLifespan(time.Duration(a.CodeLifespan)))
	}
	if a.CodeMaxSubmissions != 0 {
		errs.check("code_max_submissions", checkCodeMaxSubmissions(a.CodeMaxSubmissions))
	}
	errs.check("disable_password", checkFirstFactor(a))
	if len(a.Methods) > 0 {
		errs.check("methods", checkMethods(a.Methods))
		cfg.Methods = make(map[string]bool, len(a.Methods))
		for _, m := range a.Methods {
			cfg.Methods[m] = true
		}
	}
	if a.RequiredAAL != "" {
		errs.check("required_aal", checkOneOf("required AAL", a.RequiredAAL, requiredAALs))
	}
	cfg.TOTPIssuer = r(a.TOTPIssuer)
	if a.TOTPIssuer != "" && cfg.TOTPIssuer == "" {
		errs.check("totp_issuer", fmt.Errorf("%q is empty after replacing placeholders", a.TOTPIssuer))
	}
	if c := a.Code; c != nil {
		cfg.CodePasswordless = c.Passwordless
		cfg.CodeMFA = c.MFA
	}
}
