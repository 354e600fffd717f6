package flows

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Recovery and verification both prove control of an address the same
// way: look the address up, mail a code or a link to its owner, and send
// unknown addresses nothing (or, if configured, an "invalid" notice). The
// two differ only in names, which addressKinds holds.

type addressKind struct {
	name    string // recovery | verification: flow kind, index, template prefix, path
	tokenNS string // store namespace of link tokens
}

var (
	recoveryKind     = addressKind{name: "recovery", tokenNS: "rtok"}
	verificationKind = addressKind{name: "verification", tokenNS: "vtok"}
)

func (e *Engine) use(k addressKind) string {
	if k.name == "recovery" {
		return e.cfg.RecoveryUse
	}
	return e.cfg.VerificationUse
}

// startAddressChallenge finds the owner of email and mails them a code or
// link on f (saved by the caller). Unknown addresses get the same answer.
func (e *Engine) startAddressChallenge(r *http.Request, f *flow, k addressKind, email string) error {
	ident, err := e.store.FindIdentityByCredential(r.Context(), sessionstore.AddressIndexType(k.name, "email"), email)
	if errors.Is(err, sessionstore.ErrNotFound) {
		f.setChallenge(nil)
		if !e.cfg.NotifyUnknownRecipients {
			return nil
		}
		tpl := k.name + "_code_invalid"
		if e.use(k) == "link" {
			tpl = k.name + "_invalid"
		}
		return e.mail(r.Context(), Mail{To: email, Template: tpl, RequestURL: f.RequestURL})
	}
	if err != nil {
		return fmt.Errorf("find %s address: %w", k.name, err)
	}
	if k.name == "verification" {
		return e.sendVerification(r, f, ident, email)
	}
	return e.sendAddressChallenge(r, f, k, ident, email)
}

// sendAddressChallenge puts a new code or link for ident's email on f and
// mails it.
func (e *Engine) sendAddressChallenge(r *http.Request, f *flow, k addressKind, ident *sessionstore.Identity, email string) error {
	// Sending a code or link restarts the flow's clock on the code's
	// lifespan: once the code is stale the flow is too, and the client is
	// moved to a new flow with the "expired" message (as Kratos does).
	f.ExpiresAt = e.now().UTC().Add(e.cfg.CodeLifespan)
	m := Mail{To: email, Identity: e.mailIdentity(r, ident), RequestURL: f.RequestURL,
		TransientPayload: f.TransientPayload, ExpiresInMinutes: int(e.cfg.CodeLifespan.Minutes())}
	base := "self-service/" + k.name + "?flow=" + f.ID
	var url, code string
	if e.use(k) == "link" {
		token := randomString(32, alnum)
		if err := e.putLinkToken(r.Context(), k.tokenNS, token, f, ident.ID, email); err != nil {
			return err
		}
		m.Template = k.name + "_valid"
		url = e.publicURL(r, base+"&token="+token)
	} else {
		code = newCode()
		f.setChallenge(&challenge{MAC: e.codeMAC(f.ID, code), Address: email, IdentityID: ident.ID,
			ExpiresAt: e.now().Add(e.cfg.CodeLifespan)})
		m.Template = k.name + "_code_valid"
		if k.name == "verification" {
			// Kratos's verification code mail also carries a link with it.
			url = e.publicURL(r, base+"&code="+code)
		}
	}
	if k.name == "recovery" {
		m.RecoveryCode, m.RecoveryURL = code, url
	} else {
		m.VerificationCode, m.VerificationURL = code, url
	}
	return e.mail(r.Context(), m)
}

// sendAddressChallengeOrAnswer applies the mail limits and sends the code
// or link for a submitted address. It reports false after answering the
// request itself (429, or an internal error).
func (e *Engine) sendAddressChallengeOrAnswer(w http.ResponseWriter, r *http.Request, sub *submission, k addressKind, email string) bool {
	if lerr := e.limitSend(r, email); lerr != nil {
		e.refuse(w, r, sub, lerr)
		return false
	}
	if err := e.startAddressChallenge(r, sub.f, k, email); err != nil {
		e.logger.Error(k.name+" mail", zapErr(err))
		writeError(w, r, errInternal("unable to send the "+k.name+" message"))
		return false
	}
	return true
}
