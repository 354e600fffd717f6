package session

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/storetest"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// exchangeEngines are the storage engines the exchange must be single use
// on: Badger and PostgreSQL (skipped without a server).
var exchangeEngines = map[string]func(t *testing.T) sessionstore.Storage{
	"badger": func(t *testing.T) sessionstore.Storage {
		st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	},
	"postgres": func(t *testing.T) sessionstore.Storage {
		dsn, schema := pgtest.Schema(t)
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	},
}

// exchangeRig is a Manager with the exchange set up, a pending flow of its
// own (pending: the flow is still open) and an identity to sign in.
type exchangeRig struct {
	m       *Manager
	store   sessionstore.Storage
	clock   atomic.Pointer[time.Time]
	pending atomic.Bool
	ident   *sessionstore.Identity
}

func newExchangeRig(t *testing.T, store sessionstore.Storage) *exchangeRig {
	t.Helper()
	rig := &exchangeRig{store: store}
	now := time.Now()
	rig.clock.Store(&now)
	cookies, err := token.NewCookieCodec([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	rig.m = NewManager(Config{SessionLifespan: 24 * time.Hour, RequiredAAL: "highest_available"}, store, cookies,
		wire.NewURLs("https://auth.example/", "/ui/", nil, ""), zap.NewNop(), func() time.Time { return *rig.clock.Load() })
	rig.pending.Store(true)
	rig.m.UseExchange(ExchangeConfig{
		Sealer: token.NewSealer(nil, []string{"0123456789abcdef0123456789abcdef"}, nil),
		PendingFlow: func(_ context.Context, flowID string) (any, bool, error) {
			if !rig.pending.Load() {
				return nil, false, nil
			}
			return map[string]string{"id": flowID, "state": "choose_method"}, true, nil
		},
	})
	rig.ident = storetest.NewIdentity(uuid.NewString(), "a@example.com")
	if err := store.CreateIdentity(t.Context(), rig.ident); err != nil {
		t.Fatal(err)
	}
	return rig
}

func (rig *exchangeRig) advance(d time.Duration) {
	n := rig.clock.Load().Add(d)
	rig.clock.Store(&n)
}

// register stores the exchange of a new flow; it returns the flow id, the
// init code and the return_to_code (read from the sealed record, which
// only a test does: the code is the browser's to carry).
func (rig *exchangeRig) register(t *testing.T) (flowID, initCode, returnCode string) {
	t.Helper()
	flowID, initCode = uuid.NewString(), token.NewExchangeCode()
	if err := rig.m.RegisterExchange(t.Context(), flowID, token.Hash(initCode), rig.m.now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	raw, err := rig.store.GetRecord(t.Context(), exchangeNS, exchangeKey(token.Hash(initCode)))
	if err != nil {
		t.Fatal(err)
	}
	var rec exchangeRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	code, _, err := rig.m.exchange.Sealer.Open(t.Context(), sealReturnCode, exchangeAAD(exchangeKey(token.Hash(initCode)), ""), rec.ReturnCode)
	if err != nil {
		t.Fatal(err)
	}
	return flowID, initCode, string(code)
}

// signIn creates a session of the rig's identity, as a method does when
// the browser completes the flow.
func (rig *exchangeRig) signIn(t *testing.T) *Issued {
	t.Helper()
	is := rig.m.NewSession(httptest.NewRequest("GET", "/", nil), rig.ident.ID, "oidc", "aal1")
	if err := rig.store.CreateSession(t.Context(), is.Session); err != nil {
		t.Fatal(err)
	}
	return is
}

type exchangeAnswer struct {
	status int
	body   map[string]any
}

func (rig *exchangeRig) exchange(initCode, returnCode string) exchangeAnswer {
	q := url.Values{}
	if initCode != "" {
		q.Set("init_code", initCode)
	}
	if returnCode != "" {
		q.Set("return_to_code", returnCode)
	}
	rec := httptest.NewRecorder()
	rig.m.ExchangeToken(rec, httptest.NewRequest("GET", "/sessions/token-exchange?"+q.Encode(), nil))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return exchangeAnswer{rec.Code, body}
}

func errReason(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["reason"].(string)
	return s
}

const noSessionReason = `no session yet for this "code"`

func wantNoSession(t *testing.T, what string, a exchangeAnswer) {
	t.Helper()
	if a.status != http.StatusNotFound || errReason(a.body) != noSessionReason {
		t.Fatalf("%s: %d %v, want 404 %q", what, a.status, a.body, noSessionReason)
	}
}

func forEngine(t *testing.T, fn func(t *testing.T, rig *exchangeRig)) {
	for name, open := range exchangeEngines {
		t.Run(name, func(t *testing.T) { fn(t, newExchangeRig(t, open(t))) })
	}
}

// TestExchangeLifecycle: pending, a wrong return_to_code (which does not
// use the pair up), completion, the one redemption and the 404 after it.
func TestExchangeLifecycle(t *testing.T) {
	forEngine(t, func(t *testing.T, rig *exchangeRig) {
		flowID, initCode, returnCode := rig.register(t)
		if len(returnCode) != 64 {
			t.Fatalf("return_to_code %q: want 64 characters", returnCode)
		}
		// Unknown init code, or the right one with a wrong return_to_code.
		wantNoSession(t, "unknown init code", rig.exchange(token.NewExchangeCode(), returnCode))
		wantNoSession(t, "wrong return_to_code (pending)", rig.exchange(initCode, token.NewExchangeCode()))
		// The right pair of a flow still open: 422 with the flow.
		if a := rig.exchange(initCode, returnCode); a.status != http.StatusUnprocessableEntity || a.body["id"] != flowID {
			t.Fatalf("pending: %d %v, want 422 with the flow", a.status, a.body)
		}
		is := rig.signIn(t)
		got, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), is)
		if err != nil || got != returnCode {
			t.Fatalf("CompleteExchange = %q, %v; want the flow's return_to_code", got, err)
		}
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), rig.signIn(t)); !errors.Is(err, ErrNoExchange) {
			t.Fatalf("second completion: %v, want ErrNoExchange", err)
		}
		// No raw token at rest.
		raw, err := rig.store.GetRecord(t.Context(), exchangeNS, exchangeKey(token.Hash(initCode)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), is.Token) || strings.Contains(string(raw), returnCode) {
			t.Fatalf("the record holds the token or the code in clear: %s", raw)
		}
		wantNoSession(t, "wrong return_to_code (completed)", rig.exchange(initCode, token.NewExchangeCode()))
		a := rig.exchange(initCode, returnCode)
		if a.status != http.StatusOK || a.body["session_token"] != is.Token {
			t.Fatalf("exchange: %d %v", a.status, a.body)
		}
		sess, _ := a.body["session"].(map[string]any)
		idw, _ := sess["identity"].(map[string]any)
		if sess["id"] != is.Session.ID || sess["active"] != true || idw["id"] != rig.ident.ID ||
			sess["authenticator_assurance_level"] != "aal1" {
			t.Fatalf("session: %v", sess)
		}
		if s, err := rig.m.ByToken(t.Context(), is.Token); err != nil || s.ID != is.Session.ID {
			t.Fatalf("the token does not find its session: %v", err)
		}
		wantNoSession(t, "second exchange", rig.exchange(initCode, returnCode))
		if _, err := rig.store.GetRecord(t.Context(), exchangeNS, exchangeKey(token.Hash(initCode))); !errors.Is(err, sessionstore.ErrNotFound) {
			t.Fatalf("the redeemed exchange is still stored: %v", err)
		}
	})
}

// TestExchangeConcurrent: of 20 simultaneous redemptions exactly one gets
// the token, on both engines.
func TestExchangeConcurrent(t *testing.T) {
	forEngine(t, func(t *testing.T, rig *exchangeRig) {
		flowID, initCode, returnCode := rig.register(t)
		is := rig.signIn(t)
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), is); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var ok, notFound, other atomic.Int32
		start := make(chan struct{})
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				switch a := rig.exchange(initCode, returnCode); {
				case a.status == http.StatusOK && a.body["session_token"] == is.Token:
					ok.Add(1)
				case a.status == http.StatusNotFound && errReason(a.body) == noSessionReason:
					notFound.Add(1)
				default:
					other.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || notFound.Load() != 19 || other.Load() != 0 {
			t.Fatalf("200: %d, 404: %d, other: %d; want exactly one 200 and 19 404", ok.Load(), notFound.Load(), other.Load())
		}
	})
}

// TestExchangeExpiry: an exchange dies with its flow, and a completed one
// a few minutes after completion.
func TestExchangeExpiry(t *testing.T) {
	forEngine(t, func(t *testing.T, rig *exchangeRig) {
		// Completed, then not redeemed within the window.
		flowID, initCode, returnCode := rig.register(t)
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), rig.signIn(t)); err != nil {
			t.Fatal(err)
		}
		rig.advance(exchangeWindow + time.Second)
		wantNoSession(t, "redeemed after the window", rig.exchange(initCode, returnCode))

		// Completed close to the flow's expiry: the flow's expiry wins.
		flowID, initCode, returnCode = rig.register(t)
		rig.advance(time.Hour - time.Minute)
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), rig.signIn(t)); err != nil {
			t.Fatal(err)
		}
		rig.advance(90 * time.Second)
		wantNoSession(t, "redeemed after the flow expired", rig.exchange(initCode, returnCode))

		// The flow expired before completion.
		flowID, initCode, returnCode = rig.register(t)
		rig.advance(time.Hour + time.Second)
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), rig.signIn(t)); !errors.Is(err, ErrNoExchange) {
			t.Fatalf("completing an expired flow: %v, want ErrNoExchange", err)
		}
		wantNoSession(t, "expired pending", rig.exchange(initCode, returnCode))
	})
}

// TestExchangeDeadSession: a session revoked (or an identity deactivated)
// between completion and redemption is not handed out.
func TestExchangeDeadSession(t *testing.T) {
	forEngine(t, func(t *testing.T, rig *exchangeRig) {
		flowID, initCode, returnCode := rig.register(t)
		is := rig.signIn(t)
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), is); err != nil {
			t.Fatal(err)
		}
		if err := rig.store.RevokeSession(t.Context(), is.Session.ID); err != nil {
			t.Fatal(err)
		}
		wantNoSession(t, "revoked session", rig.exchange(initCode, returnCode))

		flowID, initCode, returnCode = rig.register(t)
		if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), rig.signIn(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := rig.store.ModifyIdentity(t.Context(), rig.ident.ID, func(id *sessionstore.Identity) error {
			id.State = "inactive"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		wantNoSession(t, "inactive identity", rig.exchange(initCode, returnCode))
	})
}

// TestExchangeNotPending: the right pair of a flow that is no longer open
// (completed by another method, which gave its session directly) and not
// completed through the exchange finds nothing.
func TestExchangeNotPending(t *testing.T) {
	rig := newExchangeRig(t, exchangeEngines["badger"](t))
	_, initCode, returnCode := rig.register(t)
	rig.pending.Store(false)
	wantNoSession(t, "closed flow", rig.exchange(initCode, returnCode))
}

// TestExchangeParams: both codes are required (Kratos's 400 reason).
func TestExchangeParams(t *testing.T) {
	rig := newExchangeRig(t, exchangeEngines["badger"](t))
	code := token.NewExchangeCode()
	for name, a := range map[string]exchangeAnswer{
		"none":                rig.exchange("", ""),
		"only init_code":      rig.exchange(code, ""),
		"only return_to_code": rig.exchange("", code),
	} {
		if a.status != http.StatusBadRequest || errReason(a.body) != `"init_code" and "return_to_code" query params must be set` {
			t.Errorf("%s: %d %v", name, a.status, a.body)
		}
	}
}

// TestExchangeLimit: the limit is asked before the codes are looked at, a
// refusal is final, and the right pair gives its attempt back.
func TestExchangeLimit(t *testing.T) {
	rig := newExchangeRig(t, exchangeEngines["badger"](t))
	var taken, released atomic.Int32
	refuse := false
	rig.m.exchange.Limit = func(w http.ResponseWriter, r *http.Request) (func(), bool) {
		if refuse {
			wire.WriteError(w, r, wire.NewError(http.StatusTooManyRequests, "", "", "slow down"))
			return nil, false
		}
		taken.Add(1)
		return func() { released.Add(1) }, true
	}
	flowID, initCode, returnCode := rig.register(t)
	wantNoSession(t, "wrong", rig.exchange(initCode, token.NewExchangeCode()))
	if a := rig.exchange(initCode, returnCode); a.status != http.StatusUnprocessableEntity {
		t.Fatalf("pending: %d", a.status)
	}
	if _, err := rig.m.CompleteExchange(t.Context(), flowID, token.Hash(initCode), rig.signIn(t)); err != nil {
		t.Fatal(err)
	}
	if a := rig.exchange(initCode, returnCode); a.status != http.StatusOK {
		t.Fatalf("exchange: %d", a.status)
	}
	if taken.Load() != 3 || released.Load() != 2 {
		t.Fatalf("taken %d, released %d; want 3 and 2 (only the wrong pair stays counted)", taken.Load(), released.Load())
	}
	refuse = true
	if a := rig.exchange(initCode, returnCode); a.status != http.StatusTooManyRequests {
		t.Fatalf("refused: %d", a.status)
	}
}

func TestExchangeRedirect(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://app.example/cb", "https://app.example/cb?code=C0de"},
		{"https://app.example/cb?a=1&b=x%20y", "https://app.example/cb?a=1&b=x%20y&code=C0de"},
		{"https://app.example/cb?code=old&a=1&co%64e=old2#frag", "https://app.example/cb?a=1&code=C0de#frag"},
		{"myapp://callback/done", "myapp://callback/done?code=C0de"},
		{"https://app.example/cb?", "https://app.example/cb?code=C0de"},
		{"", ""},
		{"https://app.example/%zz", ""},
	} {
		if got := ExchangeRedirect(tc.in, "C0de"); got != tc.want {
			t.Errorf("ExchangeRedirect(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestExchangeMove: a login flow that continues as a registration flow
// hands its exchange over: the pending answer shows the new flow, which
// completes it.
func TestExchangeMove(t *testing.T) {
	forEngine(t, func(t *testing.T, rig *exchangeRig) {
		_, initCode, returnCode := rig.register(t)
		regID := uuid.NewString()
		if err := rig.m.MoveExchange(t.Context(), token.Hash(initCode), regID, rig.m.now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if a := rig.exchange(initCode, returnCode); a.status != http.StatusUnprocessableEntity || a.body["id"] != regID {
			t.Fatalf("pending after the move: %d %v, want 422 with the registration flow", a.status, a.body)
		}
		// It lives as long as the new flow.
		rig.advance(90 * time.Minute)
		is := rig.signIn(t)
		if code, err := rig.m.CompleteExchange(t.Context(), regID, token.Hash(initCode), is); err != nil || code != returnCode {
			t.Fatalf("CompleteExchange(new flow) = %q, %v", code, err)
		}
		if err := rig.m.MoveExchange(t.Context(), token.Hash(initCode), uuid.NewString(), rig.m.now().Add(time.Hour)); !errors.Is(err, ErrNoExchange) {
			t.Fatalf("moving a completed exchange: %v, want ErrNoExchange", err)
		}
		if a := rig.exchange(initCode, returnCode); a.status != http.StatusOK || a.body["session_token"] != is.Token {
			t.Fatalf("exchange: %d %v", a.status, a.body)
		}
		if err := rig.m.MoveExchange(t.Context(), token.Hash(token.NewExchangeCode()), uuid.NewString(), rig.m.now().Add(time.Hour)); !errors.Is(err, ErrNoExchange) {
			t.Fatalf("moving an unknown exchange: %v", err)
		}
	})
}
