package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

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
			return e.decoyWrite(r.Context(), k)
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
	// Known and unknown addresses must not be told apart by the answer's
	// timing: both paths write to the store (decoyWrite) and take at
	// least addressChallengeFloor.
	defer padSince(time.Now(), addressChallengeFloor)
	if err := e.startAddressChallenge(r, sub.f, k, email); err != nil {
		e.logger.Error(k.name+" mail", zapErr(err))
		writeError(w, r, errInternal("unable to send the "+k.name+" message"))
		return false
	}
	return true
}

// addressChallengeFloor is the least time an address submit takes, known
// address or not; it is well above the known path's usual cost (a lookup,
// a mail and a link token put durably in the store, a few milliseconds).
const addressChallengeFloor = 50 * time.Millisecond

// padSince sleeps until floor has passed since start.
func padSince(start time.Time, floor time.Duration) {
	if d := floor - time.Since(start); d > 0 {
		time.Sleep(d)
	}
}

const decoyNS = "decoy"

// decoyWrite does for an unknown address the durable writes a known one
// costs (the mail in the outbox, and the link token for links), with a
// record of about a mail's size that expires at once, so the store's work
// (and its fsync) does not tell the two apart either.
func (e *Engine) decoyWrite(ctx context.Context, k addressKind) error {
	writes := 1
	if e.use(k) == "link" {
		writes = 2
	}
	for i := 0; i < writes; i++ {
		if err := e.store.PutRecord(ctx, decoyNS, randomString(16, alnum), randomBytes(4<<10), time.Second); err != nil {
			return fmt.Errorf("decoy write: %w", err)
		}
	}
	return nil
}
