package flows

import (
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
)

const exchangeReturnTo = "myapp://callback/done"

// exchangeFlow creates a native flow of kind with an exchange code and
// returns its id, the init code and the return_to_code. The last is read
// from the stored exchange (only a test does: it is the browser's to carry
// back to the app once the flow completes).
func exchangeFlow(t *testing.T, e *Engine, base, kind string) (flowID, initCode, returnCode string) {
	t.Helper()
	f := do(t, nil, "GET", base+"/self-service/"+kind+"/api?return_session_token_exchange_code=true&return_to="+url.QueryEscape(exchangeReturnTo), nil, nil)
	initCode, _ = f.body["session_token_exchange_code"].(string)
	if f.status != 200 || len(initCode) != 64 || f.body["return_to"] != exchangeReturnTo {
		t.Fatalf("create %s flow: %d %s", kind, f.status, f.raw)
	}
	flowID = f.body["id"].(string)
	key := hex.EncodeToString(token.Hash(initCode))
	raw, err := e.store.GetRecord(t.Context(), "exchange", key)
	if err != nil {
		t.Fatalf("the flow's exchange was not stored: %v", err)
	}
	var rec struct {
		ReturnCode string `json:"rc"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	code, _, err := e.sealer.Open(t.Context(), "exchange-return-code", key+"\x00", rec.ReturnCode)
	if err != nil {
		t.Fatal(err)
	}
	return flowID, initCode, string(code)
}

// completeInBrowser does what the social sign-in method does when the
// native flow finishes in the browser: a new session, attached to the
// flow's exchange.
func completeInBrowser(t *testing.T, e *Engine, flowID, initCode, identityID string) (sessionToken, returnCode string) {
	t.Helper()
	is := e.sessions.NewSession(httptest.NewRequest("GET", "/", nil), identityID, "oidc", "aal1")
	if err := e.store.CreateSession(t.Context(), is.Session); err != nil {
		t.Fatal(err)
	}
	code, err := e.sessions.CompleteExchange(t.Context(), flowID, token.Hash(initCode), is)
	if err != nil {
		t.Fatalf("CompleteExchange: %v", err)
	}
	return is.Token, code
}

func exchangeURL(base, initCode, returnCode string) string {
	return base + "/sessions/token-exchange?init_code=" + url.QueryEscape(initCode) + "&return_to_code=" + url.QueryEscape(returnCode)
}

func identityOf(t *testing.T, base, sessionToken string) string {
	t.Helper()
	who := do(t, nil, "GET", base+"/sessions/whoami", nil, map[string]string{"X-Session-Token": sessionToken})
	if who.status != 200 {
		t.Fatalf("whoami: %d %s", who.status, who.raw)
	}
	return who.body["identity"].(map[string]any)["id"].(string)
}

func wantNoSessionYet(t *testing.T, what string, r resp) {
	t.Helper()
	if r.status != 404 || r.body["error"].(map[string]any)["reason"] != `no session yet for this "code"` {
		t.Fatalf("%s: %d %s, want 404 no session yet", what, r.status, r.raw)
	}
}

// TestTokenExchangeNativeFlows: login and registration flows created with
// return_session_token_exchange_code=true answer 422 with the flow while
// open, then, completed in the browser, the session token once.
func TestTokenExchangeNativeFlows(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.AllowedReturnURLs = []string{exchangeReturnTo} })
	identityID := identityOf(t, srv.URL, registerNative(t, srv.URL, "x@example.com"))
	for _, kind := range []string{"login", "registration"} {
		flowID, initCode, returnCode := exchangeFlow(t, e, srv.URL, kind)
		wantNoSessionYet(t, kind+": wrong return_to_code", do(t, nil, "GET", exchangeURL(srv.URL, initCode, token.NewExchangeCode()), nil, nil))
		p := do(t, nil, "GET", exchangeURL(srv.URL, initCode, returnCode), nil, nil)
		if p.status != 422 || p.body["id"] != flowID || p.body["type"] != "api" || p.body["ui"] == nil || p.body["return_to"] != exchangeReturnTo {
			t.Fatalf("%s: pending: %d %s, want 422 with the flow", kind, p.status, p.raw)
		}
		if _, shown := p.body["session_token_exchange_code"]; shown {
			t.Fatalf("%s: the init code is shown again: %s", kind, p.raw)
		}
		sessionToken, got := completeInBrowser(t, e, flowID, initCode, identityID)
		if got != returnCode {
			t.Fatalf("%s: CompleteExchange gave %q, want the flow's return_to_code", kind, got)
		}
		back, err := url.Parse(session.ExchangeRedirect(exchangeReturnTo, got))
		if err != nil || back.Query().Get("code") != returnCode || back.Scheme != "myapp" {
			t.Fatalf("%s: redirect %v: %v", kind, back, err)
		}
		x := do(t, nil, "GET", exchangeURL(srv.URL, initCode, back.Query().Get("code")), nil, nil)
		if x.status != 200 || x.body["session_token"] != sessionToken {
			t.Fatalf("%s: exchange: %d %s", kind, x.status, x.raw)
		}
		if sess := x.body["session"].(map[string]any); sess["identity"].(map[string]any)["id"] != identityID || sess["active"] != true {
			t.Fatalf("%s: session %v", kind, sess)
		}
		if got := identityOf(t, srv.URL, x.body["session_token"].(string)); got != identityID {
			t.Fatalf("%s: whoami with the exchanged token: identity %s", kind, got)
		}
		wantNoSessionYet(t, kind+": second exchange", do(t, nil, "GET", exchangeURL(srv.URL, initCode, returnCode), nil, nil))
	}
}

// TestTokenExchangeAfterPasswordLogin: a native flow finished with the
// password has given its session directly; its pair finds nothing (as
// observed on Kratos: with password login nothing can be exchanged).
func TestTokenExchangeAfterPasswordLogin(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.AllowedReturnURLs = []string{exchangeReturnTo} })
	registerNative(t, srv.URL, "p@example.com")
	flowID, initCode, returnCode := exchangeFlow(t, e, srv.URL, "login")
	ok := do(t, nil, "POST", srv.URL+"/self-service/login?flow="+flowID,
		map[string]any{"method": "password", "identifier": "p@example.com", "password": "Gx7!qVt2#pLr9$wZk4"}, nil)
	if ok.status != 200 {
		t.Fatalf("login: %d %s", ok.status, ok.raw)
	}
	wantNoSessionYet(t, "after password login", do(t, nil, "GET", exchangeURL(srv.URL, initCode, returnCode), nil, nil))
}

// TestTokenExchangeRateLimit: wrong pairs count against the client's
// one-time-code limit (code_ip); right ones give their attempt back.
func TestTokenExchangeRateLimit(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) {
		c.AllowedReturnURLs = []string{exchangeReturnTo}
		c.RateLimits = flow.RateLimits{CodeFailuresPerIP: 2}
	})
	_, initCode, returnCode := exchangeFlow(t, e, srv.URL, "login")
	for i := range 3 {
		if r := do(t, nil, "GET", exchangeURL(srv.URL, initCode, returnCode), nil, nil); r.status != 422 {
			t.Fatalf("right pair %d: %d %s", i, r.status, r.raw)
		}
	}
	for range 2 {
		wantNoSessionYet(t, "wrong pair", do(t, nil, "GET", exchangeURL(srv.URL, initCode, token.NewExchangeCode()), nil, nil))
	}
	r := do(t, nil, "GET", exchangeURL(srv.URL, initCode, returnCode), nil, nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %s, want 429", r.status, r.raw)
	}
	// Missing parameters are refused before anything is counted.
	if r := do(t, nil, "GET", srv.URL+"/sessions/token-exchange?init_code="+initCode, nil, nil); r.status != 400 ||
		r.body["error"].(map[string]any)["reason"] != `"init_code" and "return_to_code" query params must be set` {
		t.Fatalf("missing return_to_code: %d %s", r.status, r.raw)
	}
}
