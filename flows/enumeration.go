package flows

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// Account enumeration mitigation (Config.MitigateAccountEnumeration,
// Kratos's security.account_enumeration.mitigate): the answers a client
// gets for an identifier with no account are the ones it would get for an
// account, produced by the same code paths where possible.
//
//   - Identifier-first login shows every enabled first factor and never
//     looks the identifier up (login_identifier_first.go).
//   - Password sign-in: wrong password and unknown identifier already give
//     the same 4000006 after the same hash comparison (checkPassword).
//   - A sign-in code for an unknown address is "sent": same limits, same
//     flow state and message, a store write the size of a queued mail,
//     and the same least answer time; no mail (codeSentNowhere).
//   - Passwordless WebAuthn: an unknown identifier (or an account without
//     a passwordless key) gets assertion options for a made-up key derived
//     from a server secret and the identifier, so asking twice gives the
//     same key; an answer to them fails like a wrong assertion
//     (decoyWebAuthnIdentity).
//
// Passkey sign-in is discoverable (its options name no account) and needs
// nothing. Registration still reports a taken identifier (4000007), as
// Kratos does.

// decoyChallengeMAC is the MAC of a code challenge for an unknown address:
// no code's MAC (64 hex digits) is ever equal to it.
const decoyChallengeMAC = "-"

// codeSentNowhere answers a sign-in code request for an address that
// belongs to no account as if a code had been mailed to it.
func (e *Engine) codeSentNowhere(r *http.Request, f *flow.Flow, address string) (*sessionstore.Identity, *wire.Error) {
	if lerr := e.kernel.LimitSend(r, address); lerr != nil {
		return nil, lerr
	}
	f.SetChallenge(&flow.Challenge{MAC: decoyChallengeMAC, Address: address, ExpiresAt: e.now().Add(e.cfg.CodeLifespan)})
	// What queuing the mail costs a known address: one durable write.
	if err := e.store.PutRecord(r.Context(), flow.DecoyNS, token.RandomString(16, token.Alnum), token.RandomBytes(4<<10), time.Second); err != nil {
		e.logger.Error("decoy write", zap.Error(err))
		return nil, wire.StoreError(err, "unable to send the code")
	}
	e.codeSentNodes(f, address, false)
	f.UI.Messages = []node.Text{node.NewText(1010014, nil)}
	return nil, flow.ErrShowFlow
}

// ceremonyDecoy keeps, on a flow whose WebAuthn options were made up, the
// identifier they were made for.
const ceremonyDecoy = "webauthn_login_decoy"

// decoyWebAuthnIdentity is an identity that exists only in memory, with
// one passwordless security key whose id, length and transports are
// derived from a server secret and the normalized identifier. Its
// assertion options look like an account's and are the same each time;
// it has no public key, so no assertion ever passes.
func (e *Engine) decoyWebAuthnIdentity(identifier string) *sessionstore.Identity {
	m := hmac.New(sha256.New, token.PurposeKey(e.codeKey, "webauthn-decoy"))
	m.Write([]byte(identity.NormalizeIdentifier(identifier)))
	seed := m.Sum(nil)
	expand := func(label string, n int) []byte {
		var out []byte
		for i := byte(0); len(out) < n; i++ {
			x := hmac.New(sha256.New, seed)
			x.Write([]byte(label))
			x.Write([]byte{i})
			out = x.Sum(out)
		}
		return out[:n]
	}
	// Credential ids of common authenticators, and what browsers report
	// as their transports.
	lengths := []int{16, 32, 48, 64}
	transports := [][]string{{"usb"}, {"nfc", "usb"}, {"internal"}, {"hybrid", "internal"}}
	key := webauthnKey{ID: expand("id", lengths[int(seed[0])%len(lengths)]),
		Transports: transports[int(seed[1])%len(transports)], IsPasswordless: true}
	cfg := webauthnConfig{UserHandle: expand("handle", 36), Credentials: []webauthnKey{key}}
	return &sessionstore.Identity{Credentials: map[string]sessionstore.Credential{
		"webauthn": {Type: "webauthn", Config: identity.EncodeConfig(cfg)}}}
}
