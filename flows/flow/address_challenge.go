package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// Recovery and verification both prove control of an address the same
// way: look the address up, mail a code or a link to its owner, and send
// unknown addresses nothing (or, if configured, an "invalid" notice). The
// two differ only in names, which addressKinds holds.

type AddressKind struct {
	name    string // recovery | verification: flow kind, index, template prefix, path
	tokenNS string // store namespace of link tokens
}

var (
	RecoveryAddress     = AddressKind{name: "recovery", tokenNS: "rtok"}
	VerificationAddress = AddressKind{name: "verification", tokenNS: "vtok"}
)

func (e *Kernel) use(k AddressKind) string {
	if k.name == "recovery" {
		return e.cfg.RecoveryUse
	}
	return e.cfg.VerificationUse
}

// startAddressChallenge finds the owner of email and mails them a code or
// link on f (saved by the caller). Unknown addresses get the same answer.
func (e *Kernel) startAddressChallenge(r *http.Request, f *Flow, k AddressKind, email string) error {
	ident, err := e.store.FindIdentityByCredential(r.Context(), sessionstore.AddressIndexType(k.name, "email"), email)
	if errors.Is(err, sessionstore.ErrNotFound) {
		f.SetChallenge(nil)
		if !e.cfg.NotifyUnknownRecipients {
			return e.decoyWrite(r.Context(), k)
		}
		tpl := k.name + "_code_invalid"
		if e.use(k) == "link" {
			tpl = k.name + "_invalid"
		}
		return e.SendMail(r.Context(), Mail{To: email, Template: tpl, RequestURL: f.RequestURL})
	}
	if err != nil {
		return fmt.Errorf("find %s address: %w", k.name, err)
	}
	if k.name == "verification" {
		return e.SendVerification(r, f, ident, email)
	}
	return e.SendAddressChallenge(r, f, k, ident, email)
}

// SendAddressChallenge puts a new code or link for ident's email on f and
// mails it.
func (e *Kernel) SendAddressChallenge(r *http.Request, f *Flow, k AddressKind, ident *sessionstore.Identity, email string) error {
	// Sending a code or link restarts the flow's clock on the code's
	// lifespan: once the code is stale the flow is too, and the client is
	// moved to a new flow with the "expired" message (as Kratos does).
	f.ExpiresAt = e.now().UTC().Add(e.cfg.CodeLifespan)
	m := Mail{To: email, Identity: e.MailIdentity(r, ident), RequestURL: f.RequestURL,
		TransientPayload: f.TransientPayload, ExpiresInMinutes: int(e.cfg.CodeLifespan.Minutes())}
	base := "self-service/" + k.name + "?flow=" + f.ID
	var url, code string
	if e.use(k) == "link" {
		token := token.RandomString(32, token.Alnum)
		if err := e.PutLinkToken(r.Context(), k.tokenNS, token, f, ident.ID, email); err != nil {
			return err
		}
		m.Template = k.name + "_valid"
		url = e.urls.Public(base + "&token=" + token)
	} else {
		code = NewCode()
		f.SetChallenge(&Challenge{MAC: e.CodeMAC(f.ID, code), Address: email, IdentityID: ident.ID,
			ExpiresAt: e.now().Add(e.cfg.CodeLifespan)})
		m.Template = k.name + "_code_valid"
		if k.name == "verification" {
			// Kratos's verification code mail also carries a link with it.
			url = e.urls.Public(base + "&code=" + code)
		}
	}
	if k.name == "recovery" {
		m.RecoveryCode, m.RecoveryURL = code, url
	} else {
		m.VerificationCode, m.VerificationURL = code, url
	}
	return e.SendMail(r.Context(), m)
}

// ChallengeAddress applies the mail limits and sends the code
// or link for a submitted address. It reports false after answering the
// request itself (429, or an internal error).
func (e *Kernel) ChallengeAddress(w http.ResponseWriter, r *http.Request, sub *Submission, k AddressKind, email string) bool {
	if lerr := e.LimitSend(r, email); lerr != nil {
		e.Refuse(w, r, sub, lerr)
		return false
	}
	// Known and unknown addresses must not be told apart by the answer's
	// timing: both paths write to the store (decoyWrite) and take at
	// least addressChallengeFloor.
	defer PadSince(time.Now(), AddressChallengeFloor)
	if err := e.startAddressChallenge(r, sub.Flow, k, email); err != nil {
		e.logger.Error(k.name+" mail", zap.Error(err))
		wire.WriteError(w, r, wire.Internal("unable to send the "+k.name+" message"))
		return false
	}
	return true
}

// AddressChallengeFloor is the least time an address submit takes, known
// address or not; it is well above the known path's usual cost (a lookup,
// a mail and a link token put durably in the store, a few milliseconds).
const AddressChallengeFloor = 50 * time.Millisecond

// PadSince sleeps until floor has passed since start.
func PadSince(start time.Time, floor time.Duration) {
	if d := floor - time.Since(start); d > 0 {
		time.Sleep(d)
	}
}

const DecoyNS = "decoy"

// decoyWrite does for an unknown address the durable writes a known one
// costs (the mail in the outbox, and the link token for links), with a
// record of about a mail's size that expires at once, so the store's work
// (and its fsync) does not tell the two apart either.
func (e *Kernel) decoyWrite(ctx context.Context, k AddressKind) error {
	writes := 1
	if e.use(k) == "link" {
		writes = 2
	}
	for i := 0; i < writes; i++ {
		if err := e.store.PutRecord(ctx, DecoyNS, token.RandomString(16, token.Alnum), token.RandomBytes(4<<10), time.Second); err != nil {
			return fmt.Errorf("decoy write: %w", err)
		}
	}
	return nil
}

// Pass moves f to passed_challenge in one store transaction and
// reports whether this call did it: of several link tokens of one flow
// (every send mails a new one) only the first that arrives completes it,
// also when two arrive at once; a completed flow refuses every other
// token. f is refreshed from the store.
func (e *Kernel) Pass(ctx context.Context, f *Flow) (bool, error) {
	won := false
	err := e.store.UpdateRecord(ctx, FlowNS, f.ID, func(old []byte) ([]byte, time.Duration, error) {
		won = false
		if old == nil {
			return nil, 0, ErrNotFound
		}
		var sf Flow
		if err := json.Unmarshal(old, &sf); err != nil {
			return nil, 0, err
		}
		if sf.State != "passed_challenge" {
			won = true
			sf.State = "passed_challenge"
			sf.SetChallenge(nil)
			sf.UpdatedAt = e.now().UTC()
		}
		b, err := json.Marshal(&sf)
		if err != nil {
			return nil, 0, err
		}
		*f = sf
		return b, time.Until(sf.ExpiresAt) + flowGrace, nil
	})
	if err != nil {
		return false, fmt.Errorf("completing the flow: %w", err)
	}
	return won, nil
}

// ClaimAddress runs when a mailed code or link signs someone in (code
// sign-in, recovery): the mailbox proved address, which becomes verified.
//
// If the address was not verified before, whoever set the identity's
// other first factors never proved they own it: an attacker can register
// someone's address with a password before its owner does and wait for
// the owner to sign in by code (account pre-hijacking). So the first
// factors the mailbox owner did not set are removed — the password,
// passkeys and passwordless security keys — and every session of the
// identity except keepSessionID is revoked (the caller's new session does
// not exist yet). Second factors are kept: a mailbox alone never removes
// one (whoever holds only the mailbox still needs the TOTP app, backup
// codes or key to reach aal2). Once verified, an address is never claimed
// again.
//
// It reports whether the identity was claimed.
func (e *Kernel) ClaimAddress(ctx context.Context, identityID, address, keepSessionID string) (bool, error) {
	now := e.now().UTC()
	claimed := false
	// Applied to the identity as it is when written (ModifyIdentity), so a
	// concurrent change — a deactivation above all — is never undone.
	_, err := e.store.ModifyIdentity(ctx, identityID, func(ident *sessionstore.Identity) error {
		claimed = false
		if ident.State != "" && ident.State != "active" {
			return sessionstore.ErrNoChange // no sign-in follows; an administrator decides
		}
		found := false
		for i, a := range ident.VerifiableAddresses {
			if a.Value != address {
				continue
			}
			found = true
			if !a.Verified {
				claimed = true
				ident.VerifiableAddresses[i].Verified = true
				ident.VerifiableAddresses[i].Status = "completed"
				ident.VerifiableAddresses[i].VerifiedAt = &now
				ident.VerifiableAddresses[i].UpdatedAt = now
			}
		}
		if !found || !claimed {
			// Nothing to prove (no such verifiable address, e.g. a recovery
			// address only) or already proven: the credentials stand.
			claimed = false
			return sessionstore.ErrNoChange
		}
		for _, drop := range e.claimDrops {
			if err := drop(ident, now); err != nil {
				return err
			}
		}
		ident.UpdatedAt = now
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("claim address: %w", err)
	}
	if !claimed {
		return false, nil
	}
	if _, err := e.store.RevokeSessionsOfIdentity(ctx, identityID, keepSessionID); err != nil {
		return false, fmt.Errorf("claim address: revoking sessions: %w", err)
	}
	e.logger.Info("address proven by a mailbox sign-in for the first time: other first factors removed, sessions revoked",
		zap.String("identity_id", identityID))
	return true, nil
}

// SendVerification puts a new code or link on f, mails it and marks the
// address "sent".
func (e *Kernel) SendVerification(r *http.Request, f *Flow, ident *sessionstore.Identity, email string) error {
	if err := e.SendAddressChallenge(r, f, VerificationAddress, ident, email); err != nil {
		return err
	}
	return e.markAddressSent(r.Context(), ident.ID, email)
}

// markAddressSent sets a pending verifiable address to "sent".
func (e *Kernel) markAddressSent(ctx context.Context, identityID, email string) error {
	now := e.now().UTC()
	_, err := e.store.ModifyIdentity(ctx, identityID, func(ident *sessionstore.Identity) error {
		changed := false
		for i, a := range ident.VerifiableAddresses {
			if a.Value == email && a.Status == "pending" {
				ident.VerifiableAddresses[i].Status = "sent"
				ident.VerifiableAddresses[i].UpdatedAt = now
				changed = true
			}
		}
		if !changed {
			return sessionstore.ErrNoChange
		}
		return nil
	})
	return err
}

func (e *Kernel) SendMail(ctx context.Context, m Mail) error {
	if e.cfg.Mailer == nil {
		e.logger.Warn("no mailer configured; message dropped", zap.String("template", m.Template))
		return nil
	}
	return e.cfg.Mailer.Send(ctx, m)
}

// MailIdentity is the identity as templates see it.
func (e *Kernel) MailIdentity(r *http.Request, ident *sessionstore.Identity) map[string]any {
	var m map[string]any
	idJSON, _ := json.Marshal(e.sessions.IdentityJSON(r, ident))
	_ = json.Unmarshal(idJSON, &m)
	return m
}

type LinkToken struct {
	FlowID     string `json:"flow_id"`
	IdentityID string `json:"identity_id"`
	Address    string `json:"address"`
}

func (e *Kernel) PutLinkToken(ctx context.Context, ns, tok string, f *Flow, identityID, address string) error {
	b, _ := json.Marshal(LinkToken{FlowID: f.ID, IdentityID: identityID, Address: address})
	return e.store.PutRecord(ctx, ns, fmt.Sprintf("%x", token.Hash(tok)), b, e.cfg.CodeLifespan)
}

// TakeLinkToken consumes a link token (single use).
func (e *Kernel) TakeLinkToken(ctx context.Context, ns, tok string) (*LinkToken, error) {
	if len(tok) != 32 {
		return nil, sessionstore.ErrNotFound
	}
	b, err := e.store.TakeRecord(ctx, ns, fmt.Sprintf("%x", token.Hash(tok)))
	if err != nil {
		return nil, err
	}
	var lt LinkToken
	if err := json.Unmarshal(b, &lt); err != nil {
		return nil, err
	}
	return &lt, nil
}
