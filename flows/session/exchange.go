package session

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// The session token exchange (GET /sessions/token-exchange) hands a
// native app the session that a flow of its own made in a browser (social
// sign-in): the app created the flow with
// return_session_token_exchange_code=true and got the init code; the
// browser comes back to the flow's return_to with ?code=<return_to_code>;
// the app trades the two codes for the session token, once.
//
// As in Kratos, both codes belong to the flow from its creation
// (RegisterExchange): the record, keyed by the init code's hash, keeps the
// return_to_code's hash and the code itself sealed, so CompleteExchange can
// hand it to the browser. (That is what makes Kratos's answers hold: a
// wrong return_to_code finds nothing, 404, even while the flow is open;
// only the right pair of an open flow gets the flow, 422.) Completion adds the session id and the session
// token sealed (only its hash is stored anywhere else), and shortens the
// record's life to exchangeWindow. The exchange takes the record in one
// store transaction (UpdateRecord deleting it), so of concurrent requests
// exactly one gets the token, on every engine.

const (
	// exchangeNS holds the exchanges by hex(sha256(init code)).
	exchangeNS = "exchange"
	// exchangeWindow is how long a completed exchange waits for the app:
	// it redeems the code as soon as the browser hands it over.
	exchangeWindow = 5 * time.Minute

	sealReturnCode   = "exchange-return-code"
	sealSessionToken = "exchange-session-token"
)

// ErrNoExchange: the flow has no exchange that can complete (it was not
// created with return_session_token_exchange_code, it expired, or it
// completed already).
var ErrNoExchange = errors.New("flows: the flow has no pending session token exchange")

// errExchangeGone aborts the exchange's take: the record changed under
// the request (taken by a concurrent one, or not what was read).
var errExchangeGone = errors.New("exchange gone")

// exchangeRecord is a stored exchange.
type exchangeRecord struct {
	FlowID string `json:"f"`
	// ExpiresAt is the flow's expiry; the exchange never outlives it.
	ExpiresAt time.Time `json:"x"`
	// ReturnHash is sha256 of the return_to_code.
	ReturnHash []byte `json:"r"`
	// ReturnCode is the return_to_code sealed, until completion.
	ReturnCode string `json:"rc,omitempty"`
	// SessionID and Token (the session token sealed) are set by
	// CompleteExchange.
	SessionID string `json:"s,omitempty"`
	Token     string `json:"t,omitempty"`
}

func (e *exchangeRecord) completed() bool { return e.SessionID != "" }

// ExchangeConfig is what the exchange needs from the layers above
// sessions. The engine hands it in once, before serving (UseExchange).
type ExchangeConfig struct {
	// Sealer seals the return_to_code and the session token at rest.
	Sealer *token.Sealer
	// PendingFlow returns the public JSON of the login or registration
	// flow flowID while it is still open (not completed, not expired);
	// found is false otherwise. The exchange answers it with 422.
	PendingFlow func(ctx context.Context, flowID string) (body any, found bool, err error)
	// Limit counts an exchange attempt against the client before the
	// codes are looked at. It answers a refusal itself (ok false);
	// release gives the attempt back (right codes).
	Limit func(w http.ResponseWriter, r *http.Request) (release func(), ok bool)
}

// UseExchange sets what the token exchange needs. The engine calls it
// once, before serving.
func (m *Manager) UseExchange(c ExchangeConfig) { m.exchange = c }

func exchangeKey(initCodeHash []byte) string { return hex.EncodeToString(initCodeHash) }

// exchangeAAD binds a sealed value to its exchange (the record's key)
// and, for the token, to the session: it cannot be moved to another
// record. Not to the flow, which MoveExchange may change.
func exchangeAAD(key, sessionID string) string { return key + "\x00" + sessionID }

// RegisterExchange stores the exchange of a native flow created with
// return_session_token_exchange_code=true (initCodeHash is its
// ExchangeCodeHash), until the flow's expiry. The flow kernel calls it
// when it stores the new flow.
func (m *Manager) RegisterExchange(ctx context.Context, flowID string, initCodeHash []byte, expiresAt time.Time) error {
	if m.exchange.Sealer == nil {
		return errors.New("register exchange: no sealer configured")
	}
	ttl := expiresAt.Sub(m.now())
	if ttl <= 0 {
		return fmt.Errorf("register exchange of flow %s: %w", flowID, ErrNoExchange)
	}
	code := token.NewExchangeCode()
	key := exchangeKey(initCodeHash)
	sealed, err := m.exchange.Sealer.Seal(ctx, sealReturnCode, exchangeAAD(key, ""), []byte(code))
	if err != nil {
		return fmt.Errorf("register exchange: seal: %w", err)
	}
	rec := exchangeRecord{FlowID: flowID, ExpiresAt: expiresAt.UTC(), ReturnHash: token.Hash(code), ReturnCode: sealed}
	b, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("register exchange: encode: %w", err)
	}
	if err := m.store.PutRecord(ctx, exchangeNS, key, b, ttl); err != nil {
		return fmt.Errorf("register exchange: %w", err)
	}
	return nil
}

// CompleteExchange attaches the session is, just created in the browser
// for the native flow flowID, to the flow's exchange and returns the
// return_to_code to send the browser back to the app with
// (ExchangeRedirect). initCodeHash is the flow's ExchangeCodeHash, which
// names the exchange whichever flow carries it now (a login flow that
// continued as a registration flow keeps it). The app then redeems the
// pair once, within a few minutes and never after the exchange's expiry.
// ErrNoExchange when there is no exchange that can complete (none
// requested, expired, or completed already: a flow hands out one
// session).
func (m *Manager) CompleteExchange(ctx context.Context, flowID string, initCodeHash []byte, is *Issued) (returnToCode string, err error) {
	if m.exchange.Sealer == nil {
		return "", errors.New("complete exchange: no sealer configured")
	}
	if is == nil || is.Session == nil || is.Token == "" {
		return "", errors.New("complete exchange: no session")
	}
	if len(initCodeHash) == 0 {
		return "", ErrNoExchange
	}
	key := exchangeKey(initCodeHash)
	raw, err := m.store.GetRecord(ctx, exchangeNS, key)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return "", ErrNoExchange
	}
	if err != nil {
		return "", fmt.Errorf("complete exchange: %w", err)
	}
	var rec exchangeRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return "", fmt.Errorf("complete exchange: decode: %w", err)
	}
	if rec.completed() {
		return "", ErrNoExchange
	}
	code, _, err := m.exchange.Sealer.Open(ctx, sealReturnCode, exchangeAAD(key, ""), rec.ReturnCode)
	if err != nil {
		return "", fmt.Errorf("complete exchange: open the return code: %w", err)
	}
	sealedToken, err := m.exchange.Sealer.Seal(ctx, sealSessionToken, exchangeAAD(key, is.Session.ID), []byte(is.Token))
	if err != nil {
		return "", fmt.Errorf("complete exchange: seal: %w", err)
	}
	now := m.now()
	err = m.store.UpdateRecord(ctx, exchangeNS, key, func(old []byte) ([]byte, time.Duration, error) {
		var cur exchangeRecord
		// Completed once: the first completion wins, and the code opened
		// above must still be the record's.
		if old == nil || json.Unmarshal(old, &cur) != nil || cur.completed() ||
			subtle.ConstantTimeCompare(cur.ReturnHash, rec.ReturnHash) != 1 {
			return nil, 0, ErrNoExchange
		}
		ttl := min(exchangeWindow, cur.ExpiresAt.Sub(now))
		if ttl <= 0 {
			return nil, 0, ErrNoExchange
		}
		cur.FlowID, cur.ReturnCode, cur.SessionID, cur.Token = flowID, "", is.Session.ID, sealedToken
		cur.ExpiresAt = now.Add(ttl).UTC()
		b, err := json.Marshal(&cur)
		return b, ttl, err
	})
	if errors.Is(err, ErrNoExchange) {
		return "", ErrNoExchange
	}
	if err != nil {
		return "", fmt.Errorf("complete exchange: %w", err)
	}
	return string(code), nil
}

// MoveExchange hands the pending exchange named by initCodeHash over to
// the flow that replaces its flow (a login flow continuing as a
// registration flow, or the reverse), which expires at expiresAt: the
// app's right pair then answers 422 with that flow, and the exchange
// lives as long as it, as Kratos moves its exchanger to the new flow.
// ErrNoExchange when there is no exchange that can still complete.
func (m *Manager) MoveExchange(ctx context.Context, initCodeHash []byte, to string, expiresAt time.Time) error {
	if len(initCodeHash) == 0 {
		return ErrNoExchange
	}
	now := m.now()
	ttl := expiresAt.Sub(now)
	if ttl <= 0 {
		return ErrNoExchange
	}
	err := m.store.UpdateRecord(ctx, exchangeNS, exchangeKey(initCodeHash), func(old []byte) ([]byte, time.Duration, error) {
		var cur exchangeRecord
		if old == nil || json.Unmarshal(old, &cur) != nil || cur.completed() || !now.Before(cur.ExpiresAt) {
			return nil, 0, ErrNoExchange
		}
		cur.FlowID, cur.ExpiresAt = to, expiresAt.UTC()
		b, err := json.Marshal(&cur)
		return b, ttl, err
	})
	if errors.Is(err, ErrNoExchange) {
		return ErrNoExchange
	}
	if err != nil {
		return fmt.Errorf("move exchange: %w", err)
	}
	return nil
}

// ExchangeRedirect is returnTo (the flow's return_to, checked against the
// allow-list when the flow was created) with code=returnToCode in its
// query: any code parameter it had is replaced, the others keep their
// encoding and order, the fragment stays. "" when returnTo is empty or not
// a URL.
func ExchangeRedirect(returnTo, returnToCode string) string {
	if returnTo == "" {
		return ""
	}
	u, err := url.Parse(returnTo)
	if err != nil {
		return ""
	}
	var kept []string
	if u.RawQuery != "" {
		for part := range strings.SplitSeq(u.RawQuery, "&") {
			name, _, _ := strings.Cut(part, "=")
			if n, err := url.QueryUnescape(name); part == "" || (err == nil && n == "code") {
				continue
			}
			kept = append(kept, part)
		}
	}
	u.RawQuery = strings.Join(append(kept, "code="+url.QueryEscape(returnToCode)), "&")
	return u.String()
}

// ExchangeToken serves GET /sessions/token-exchange: the init code (from
// the flow's creation) and the return_to_code (from the browser's
// redirect back to the app) together answer the session token and the
// session once. An unknown or expired pair, a wrong return_to_code, a pair
// already redeemed, or a session revoked meanwhile: 404 "no session yet"
// (a wrong return_to_code does not use the pair up). The right pair of a
// flow still open: 422 with the flow.
func (m *Manager) ExchangeToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	initCode, returnCode := q.Get("init_code"), q.Get("return_to_code")
	if initCode == "" || returnCode == "" {
		wire.WriteError(w, r, wire.BadRequest(`"init_code" and "return_to_code" query params must be set`))
		return
	}
	// Both codes are 64 alphanumerics (about 380 bits each), so guessing
	// is hopeless; the per-IP count of wrong one-time codes still bounds
	// what a scanner costs the store and shows it in the events.
	release := func() {}
	if m.exchange.Limit != nil {
		rel, ok := m.exchange.Limit(w, r)
		if !ok {
			return
		}
		release = rel
	}
	right, ee := m.exchangeToken(w, r, initCode, returnCode)
	if right {
		release()
	}
	if ee != nil {
		wire.WriteError(w, r, ee)
	}
}

// noSessionYet is the answer to every pair that gives no session.
func noSessionYet() *wire.Error {
	return wire.NewError(http.StatusNotFound, "", "", `no session yet for this "code"`)
}

// exchangeToken answers the exchange (or returns the error to answer);
// right reports that the pair was right (its attempt is given back).
func (m *Manager) exchangeToken(w http.ResponseWriter, r *http.Request, initCode, returnCode string) (right bool, _ *wire.Error) {
	ctx := r.Context()
	key := exchangeKey(token.Hash(initCode))
	returnHash := token.Hash(returnCode)
	raw, err := m.store.GetRecord(ctx, exchangeNS, key)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return false, noSessionYet()
	}
	if err != nil {
		m.logger.Error("token exchange: loading the exchange", zap.Error(err))
		return false, wire.StoreError(err, "unable to load the exchange")
	}
	var rec exchangeRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		m.logger.Error("token exchange: decoding the exchange", zap.Error(err))
		return false, noSessionYet()
	}
	if !m.now().Before(rec.ExpiresAt) || subtle.ConstantTimeCompare(rec.ReturnHash, returnHash) != 1 {
		return false, noSessionYet()
	}
	if !rec.completed() {
		if m.exchange.PendingFlow == nil {
			return true, noSessionYet()
		}
		body, found, err := m.exchange.PendingFlow(ctx, rec.FlowID)
		if err != nil {
			m.logger.Error("token exchange: loading the flow", zap.Error(err))
			return true, wire.StoreError(err, "unable to load the flow")
		}
		if !found {
			return true, noSessionYet()
		}
		wire.WriteJSON(w, http.StatusUnprocessableEntity, body)
		return true, nil
	}
	// Take it: of concurrent requests exactly one deletes the completed
	// record it read; the others find it gone.
	var taken exchangeRecord
	err = m.store.UpdateRecord(ctx, exchangeNS, key, func(old []byte) ([]byte, time.Duration, error) {
		taken = exchangeRecord{}
		if old == nil || json.Unmarshal(old, &taken) != nil || !taken.completed() ||
			subtle.ConstantTimeCompare(taken.ReturnHash, returnHash) != 1 {
			return nil, 0, errExchangeGone
		}
		return nil, 0, nil
	})
	if errors.Is(err, errExchangeGone) {
		return false, noSessionYet()
	}
	if err != nil {
		m.logger.Error("token exchange: taking the exchange", zap.Error(err))
		return false, wire.StoreError(err, "unable to redeem the exchange")
	}
	tok, _, err := m.exchange.Sealer.Open(ctx, sealSessionToken, exchangeAAD(key, taken.SessionID), taken.Token)
	if err != nil {
		m.logger.Warn("token exchange: the sealed session token does not open", zap.Error(err))
		return true, noSessionYet()
	}
	// The session as it is now: one revoked, expired or given a new token
	// since the flow completed is not handed out.
	sess, err := m.store.GetSession(ctx, taken.SessionID)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return true, noSessionYet()
	}
	if err != nil {
		return true, wire.StoreError(err, "unable to load the session")
	}
	if !m.Active(sess) || subtle.ConstantTimeCompare(sess.TokenHash, token.Hash(string(tok))) != 1 {
		return true, noSessionYet()
	}
	ident, err := m.store.GetIdentity(ctx, sess.IdentityID)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return true, noSessionYet()
	}
	if err != nil {
		return true, wire.StoreError(err, "unable to load the identity")
	}
	if ident.State != "" && ident.State != "active" {
		return true, noSessionYet()
	}
	// As the native login's answer: with a second factor still due, the
	// identity is withheld.
	var idw *IdentityWire
	if m.AALSatisfied(sess, ident) {
		idw = m.IdentityJSON(r, ident)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"session_token": string(tok), "session": m.SessionJSON(sess, idw)})
	return true, nil
}
