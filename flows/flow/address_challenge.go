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

// AddressKind is what recovery and verification call their challenges.
type AddressKind struct {
	name    string // recovery | verification: flow kind, index, template prefix, path
	tokenNS string // store namespace of link tokens
}

var (
	RecoveryAddress     = AddressKind{name: "recovery", tokenNS: "rtok"}
	VerificationAddress = AddressKind{name: "verification", tokenNS: "vtok"}
)

func (k *Kernel) use(ak AddressKind) string {
	if ak.name == "recovery" {
		return k.cfg.RecoveryUse
	}
	return k.cfg.VerificationUse
}

// startAddressChallenge finds the owner of email and mails them a code or
// link on f (saved by the caller). Unknown addresses get the same answer.
func (k *Kernel) startAddressChallenge(r *http.Request, f *Flow, ak AddressKind, email string) error {
	ident, err := k.store.FindIdentityByCredential(r.Context(), sessionstore.AddressIndexType(ak.name, "email"), email)
	if errors.Is(err, sessionstore.ErrNotFound) {
		f.SetChallenge(nil)
		if !k.cfg.NotifyUnknownRecipients {
			return k.decoyWrite(r.Context(), ak)
		}
		tpl := ak.name + "_code_invalid"
		if k.use(ak) == "link" {
			tpl = ak.name + "_invalid"
		}
		return k.SendMail(r.Context(), Mail{To: email, Template: tpl, RequestURL: f.RequestURL})
	}
	if err != nil {
		return fmt.Errorf("find %s address: %w", ak.name, err)
	}
	if ak.name == "verification" {
		return k.SendVerification(r, f, ident, email)
	}
	return k.SendAddressChallenge(r, f, ak, ident, email)
}

// SendAddressChallenge puts a new code or link for ident's email on f and
// mails it.
func (k *Kernel) SendAddressChallenge(r *http.Request, f *Flow, ak AddressKind, ident *sessionstore.Identity, email string) error {
	// Sending a code or link restarts the flow's clock on the code's
	// lifespan: once the code is stale the flow is too, and the client is
	// moved to a new flow with the "expired" message (as Kratos does).
	f.ExpiresAt = k.now().UTC().Add(k.cfg.CodeLifespan)
	m := Mail{To: email, Identity: k.MailIdentity(r, ident), RequestURL: f.RequestURL,
		TransientPayload: f.TransientPayload, ExpiresInMinutes: int(k.cfg.CodeLifespan.Minutes())}
	base := "self-service/" + ak.name + "?flow=" + f.ID
	var url, code string
	if k.use(ak) == "link" {
		token := token.RandomString(32, token.Alnum)
		if err := k.PutLinkToken(r.Context(), ak.tokenNS, token, f, ident.ID, email); err != nil {
			return err
		}
		m.Template = ak.name + "_valid"
		url = k.urls.Public(base + "&token=" + token)
	} else {
		code = NewCode()
		f.SetChallenge(&Challenge{MAC: k.CodeMAC(f.ID, code), Address: email, IdentityID: ident.ID,
			ExpiresAt: k.now().Add(k.cfg.CodeLifespan)})
		m.Template = ak.name + "_code_valid"
		if ak.name == "verification" {
			// Kratos's verification code mail also carries a link with it.
			url = k.urls.Public(base + "&code=" + code)
		}
	}
	if ak.name == "recovery" {
		m.RecoveryCode, m.RecoveryURL = code, url
	} else {
		m.VerificationCode, m.VerificationURL = code, url
	}
	return k.SendMail(r.Context(), m)
}

// ChallengeAddress applies the mail limits and sends the code
// or link for a submitted address. It reports false after answering the
// request itself (429, or an internal error).
func (k *Kernel) ChallengeAddress(w http.ResponseWriter, r *http.Request, sub *Submission, ak AddressKind, email string) bool {
	if lerr := k.LimitSend(r, email); lerr != nil {
		k.Refuse(w, r, sub, lerr)
		return false
	}
	// Known and unknown addresses must not be told apart by the answer's
	// timing: both paths write to the store (decoyWrite) and take at
	// least addressChallengeFloor.
	defer PadSince(time.Now(), AddressChallengeFloor)
	if err := k.startAddressChallenge(r, sub.Flow, ak, email); err != nil {
		k.logger.Error(ak.name+" mail", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to send the "+ak.name+" message"))
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

// DecoyNS is the store namespace of the writes that stand in for a known
// address's (timing).
const DecoyNS = "decoy"

// decoyWrite does for an unknown address the durable writes a known one
// costs (the mail in the outbox, and the link token for links), with a
// record of about a mail's size that expires at once, so the store's work
// (and its fsync) does not tell the two apart either.
func (k *Kernel) decoyWrite(ctx context.Context, ak AddressKind) error {
	writes := 1
	if k.use(ak) == "link" {
		writes = 2
	}
	for i := 0; i < writes; i++ {
		if err := k.store.PutRecord(ctx, DecoyNS, token.RandomString(16, token.Alnum), token.RandomBytes(4<<10), time.Second); err != nil {
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
func (k *Kernel) Pass(ctx context.Context, f *Flow) (bool, error) {
	won := false
	err := k.store.UpdateRecord(ctx, FlowNS, f.ID, func(old []byte) ([]byte, time.Duration, error) {
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
			sf.UpdatedAt = k.now().UTC()
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
func (k *Kernel) ClaimAddress(ctx context.Context, identityID, address, keepSessionID string) (bool, error) {
	now := k.now().UTC()
	claimed := false
	// Applied to the identity as it is when written (ModifyIdentity), so a
	// concurrent change — a deactivation above all — is never undone.
	_, err := k.store.ModifyIdentity(ctx, identityID, func(ident *sessionstore.Identity) error {
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
			// Nothing to prove (no such verifiable address, k.g. a recovery
			// address only) or already proven: the credentials stand.
			claimed = false
			return sessionstore.ErrNoChange
		}
		for _, drop := range k.claimDrops {
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
	if _, err := k.store.RevokeSessionsOfIdentity(ctx, identityID, keepSessionID); err != nil {
		return false, fmt.Errorf("claim address: revoking sessions: %w", err)
	}
	k.logger.Info("address proven by a mailbox sign-in for the first time: other first factors removed, sessions revoked",
		zap.String("identity_id", identityID))
	return true, nil
}

// SendVerification puts a new code or link on f, mails it and marks the
// address "sent".
func (k *Kernel) SendVerification(r *http.Request, f *Flow, ident *sessionstore.Identity, email string) error {
	if err := k.SendAddressChallenge(r, f, VerificationAddress, ident, email); err != nil {
		return err
	}
	return k.markAddressSent(r.Context(), ident.ID, email)
}

// markAddressSent sets a pending verifiable address to "sent".
func (k *Kernel) markAddressSent(ctx context.Context, identityID, email string) error {
	now := k.now().UTC()
	_, err := k.store.ModifyIdentity(ctx, identityID, func(ident *sessionstore.Identity) error {
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

// LinkToken is what a mailed link's token stands for.
type LinkToken struct {
	FlowID     string `json:"flow_id"`
	IdentityID string `json:"identity_id"`
	Address    string `json:"address"`
}

// PutLinkToken stores a link token's hash for the code lifespan.
func (k *Kernel) PutLinkToken(ctx context.Context, ns, tok string, f *Flow, identityID, address string) error {
	b, _ := json.Marshal(LinkToken{FlowID: f.ID, IdentityID: identityID, Address: address})
	return k.store.PutRecord(ctx, ns, fmt.Sprintf("%x", token.Hash(tok)), b, k.cfg.CodeLifespan)
}

// TakeLinkToken consumes a link token (single use).
func (k *Kernel) TakeLinkToken(ctx context.Context, ns, tok string) (*LinkToken, error) {
	if len(tok) != 32 {
		return nil, sessionstore.ErrNotFound
	}
	b, err := k.store.TakeRecord(ctx, ns, fmt.Sprintf("%x", token.Hash(tok)))
	if err != nil {
		return nil, err
	}
	var lt LinkToken
	if err := json.Unmarshal(b, &lt); err != nil {
		return nil, err
	}
	return &lt, nil
}

// MarkVerified marks ident's verifiable address verified (the mailbox
// proved it: a verification code or link, a code sign-in).
func (k *Kernel) MarkVerified(ctx context.Context, identityID, address string) error {
	now := k.now().UTC()
	_, err := k.store.ModifyIdentity(ctx, identityID, func(ident *sessionstore.Identity) error {
		changed := false
		for i, a := range ident.VerifiableAddresses {
			if a.Value == address && !a.Verified {
				changed = true
				ident.VerifiableAddresses[i].Verified = true
				ident.VerifiableAddresses[i].Status = "completed"
				ident.VerifiableAddresses[i].VerifiedAt = &now
				ident.VerifiableAddresses[i].UpdatedAt = now
			}
		}
		if !changed {
			return sessionstore.ErrNoChange
		}
		ident.UpdatedAt = now
		return nil
	})
	return err
}

// AddressVerifier starts the verification of an address a sign-up or a
// profile change added (the verification flow), adding
// show_verification_ui to src's continue_with.
type AddressVerifier interface {
	SendForAddress(r *http.Request, ident *sessionstore.Identity, a sessionstore.VerifiableAddress, src *Flow)
}

// UseAddressVerifier sets the verifier of new addresses (the engine hands
// in the verification flow, which stands on the kernel).
func (k *Kernel) UseAddressVerifier(v AddressVerifier) { k.verifier = v }

// VerifyAddress starts the verification of a new address of ident.
func (k *Kernel) VerifyAddress(r *http.Request, ident *sessionstore.Identity, a sessionstore.VerifiableAddress, src *Flow) {
	if k.verifier != nil {
		k.verifier.SendForAddress(r, ident, a, src)
	}
}
