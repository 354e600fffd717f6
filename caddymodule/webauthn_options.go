package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// The relying parties of the webauthn and passkey methods: the webauthn
// and passkey blocks.

// WebAuthnConfig is the relying party of the webauthn and passkey methods
// (selfservice.methods.<webauthn|passkey>.config).
type WebAuthnConfig struct {
	// RPID is the relying party id, a registrable domain such as
	// example.com (config.rp.id). Default: the public URL's host name.
	RPID string `json:"rp_id,omitempty"`

	// RPDisplayName is the name authenticators show
	// (config.rp.display_name). Default: the relying party id.
	RPDisplayName string `json:"rp_display_name,omitempty"`

	// RPOrigins are the origins (scheme://host[:port]) allowed in
	// ceremonies (config.rp.origins). Default: the public URL's origin.
	RPOrigins []string `json:"rp_origins,omitempty"`

	// Passwordless lets security keys sign in without a password
	// (webauthn config.passwordless). Default: false (second factor only).
	Passwordless bool `json:"passwordless,omitempty"`
}

// PasskeyConfig is the passkey method's configuration
// (selfservice.methods.passkey.config).
type PasskeyConfig struct {
	// RPID is the relying party id of passkeys (config.rp.id). Default:
	// the WebAuthn one (webauthn rp_id, else the public URL's host name).
	RPID string `json:"rp_id,omitempty"`

	// RPDisplayName is the name authenticators show
	// (config.rp.display_name). Default: the WebAuthn one, else the
	// relying party id.
	RPDisplayName string `json:"rp_display_name,omitempty"`

	// RPOrigins are the origins allowed in passkey ceremonies
	// (config.rp.origins). Default: the WebAuthn ones (without an own
	// rp_id), else the public URL's origin.
	RPOrigins []string `json:"rp_origins,omitempty"`

	// AuthenticatorSelection selects the authenticators that make
	// passkeys.
	AuthenticatorSelection *PasskeySelection `json:"authenticator_selection,omitempty"`
}

// PasskeySelection is the authenticator selection of passkey
// registrations (WebAuthn's authenticatorSelection).
type PasskeySelection struct {
	// ResidentKey is required or preferred: passkeys sign in without an
	// identifier, which needs a discoverable credential. Default:
	// required.
	ResidentKey string `json:"resident_key,omitempty"`

	// UserVerification is required, preferred or discouraged, for passkey
	// sign-up and sign-in. Default: preferred.
	UserVerification string `json:"user_verification,omitempty"`

	// Attachment is platform (the device's own authenticator),
	// cross-platform (security keys, phones) or any. Default: platform,
	// as Kratos.
	Attachment string `json:"attachment,omitempty"`
}

// unmarshalWebAuthnOption reads the webauthn and passkey blocks (see
// their unmarshalCaddyfile).
func (a *App) unmarshalWebAuthnOption(o *globalOption) (bool, error) {
	switch o.name {
	case "webauthn":
		a.WebAuthn = new(WebAuthnConfig)
		return true, o.block(a.WebAuthn.unmarshalCaddyfile)
	case "passkey":
		a.Passkey = new(PasskeyConfig)
		o.mark()
		return true, o.block(a.Passkey.unmarshalCaddyfile)
	}
	return false, nil
}

// unmarshalCaddyfile reads the block of the webauthn subdirective:
//
//	webauthn {
//		rp_id <host>
//		rp_display_name <name>
//		rp_origins <origin...>
//		passwordless
//	}
//
// rp_origins may repeat (the lists are joined).
func (w *WebAuthnConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for d.NextBlock(1) {
		name := d.Val()
		if name != "rp_origins" {
			if seen[name] {
				return d.Errf("webauthn: duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		switch name {
		case "rp_id", "rp_display_name", "rp_origins":
			if err := parseRelyingParty(d, "webauthn", &w.RPID, &w.RPDisplayName, &w.RPOrigins); err != nil {
				return err
			}
		case "passwordless":
			if d.NextArg() {
				return d.ArgErr()
			}
			w.Passwordless = true
		default:
			return d.Errf("webauthn: unrecognized subdirective %q", name)
		}
	}
	return nil
}

// unmarshalCaddyfile reads the block of the passkey subdirective:
//
//	passkey {
//		rp_id <host>
//		rp_display_name <name>
//		rp_origins <origin...>
//		authenticator_selection {
//			resident_key <required|preferred>
//			user_verification <required|preferred|discouraged>
//			attachment <platform|cross-platform|any>
//		}
//	}
//
// rp_origins may repeat (the lists are joined).
func (p *PasskeyConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "rp_origins" {
			if seen[name] {
				return d.Errf("passkey: duplicate subdirective %q", name)
			}
			seen[name] = true
		}
		switch name {
		case "rp_id", "rp_display_name", "rp_origins":
			if err := parseRelyingParty(d, "passkey", &p.RPID, &p.RPDisplayName, &p.RPOrigins); err != nil {
				return err
			}
		case "authenticator_selection":
			if d.NextArg() {
				return d.ArgErr()
			}
			s := new(PasskeySelection)
			p.AuthenticatorSelection = s
			inner := make(map[string]bool)
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				sub := d.Val()
				if inner[sub] {
					return d.Errf("passkey authenticator_selection: duplicate subdirective %q", sub)
				}
				inner[sub] = true
				dst := map[string]*string{"resident_key": &s.ResidentKey, "user_verification": &s.UserVerification, "attachment": &s.Attachment}[sub]
				if dst == nil {
					return d.Errf("passkey authenticator_selection: unrecognized subdirective %q (want resident_key, user_verification or attachment)", sub)
				}
				if !d.AllArgs(dst) {
					return d.ArgErr()
				}
				if err := checkPasskeySelection(s); err != nil {
					return d.Errf("passkey authenticator_selection: %v", err)
				}
			}
		default:
			return d.Errf("passkey: unrecognized subdirective %q", name)
		}
	}
	return nil
}

// parseRelyingParty reads the relying-party subdirective under the
// dispenser's cursor (rp_id, rp_display_name or rp_origins, which may
// repeat) of the webauthn or passkey block named what.
func parseRelyingParty(d *caddyfile.Dispenser, what string, rpID, displayName *string, origins *[]string) error {
	switch d.Val() {
	case "rp_id":
		if !d.AllArgs(rpID) {
			return d.ArgErr()
		}
		if !hasPlaceholder(*rpID) {
			if err := checkRPID(*rpID); err != nil {
				return d.Errf("%s rp_id: %v", what, err)
			}
		}
	case "rp_display_name":
		if !d.AllArgs(displayName) {
			return d.ArgErr()
		}
	default: // rp_origins
		list := d.RemainingArgs()
		if len(list) == 0 {
			return d.ArgErr()
		}
		for _, o := range list {
			if !hasPlaceholder(o) {
				if err := checkOrigin(o); err != nil {
					return d.Errf("%s rp_origins: %v", what, err)
				}
			}
		}
		*origins = append(*origins, list...)
	}
	return nil
}

// webauthnFlowsConfig maps the webauthn and passkey blocks into cfg,
// replacing placeholders, and checks them.
func (a *App) webauthnFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
	if w := a.WebAuthn; w != nil {
		cfg.WebAuthnRPID = r(w.RPID)
		cfg.WebAuthnRPDisplayName = r(w.RPDisplayName)
		cfg.WebAuthnPasswordless = w.Passwordless
		if w.RPID != "" {
			errs.check("webauthn.rp_id", checkRPID(cfg.WebAuthnRPID))
		}
		cfg.WebAuthnRPOrigins = replaceEach(w.RPOrigins, r)
		for _, o := range cfg.WebAuthnRPOrigins {
			errs.check("webauthn.rp_origins", checkOrigin(o))
		}
	}
	if p := a.Passkey; p != nil {
		errs.check("passkey", checkPasskeyEnabled(a))
		cfg.PasskeyRPID = r(p.RPID)
		cfg.PasskeyRPDisplayName = r(p.RPDisplayName)
		if p.RPID != "" {
			errs.check("passkey.rp_id", checkRPID(cfg.PasskeyRPID))
		}
		cfg.PasskeyRPOrigins = replaceEach(p.RPOrigins, r)
		for _, o := range cfg.PasskeyRPOrigins {
			errs.check("passkey.rp_origins", checkOrigin(o))
		}
		if s := p.AuthenticatorSelection; s != nil {
			cfg.PasskeyResidentKey, cfg.PasskeyUserVerification, cfg.PasskeyAttachment = s.ResidentKey, s.UserVerification, s.Attachment
			errs.check("passkey.authenticator_selection", checkPasskeySelection(s))
		}
	}
}
