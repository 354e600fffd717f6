package flows

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestObserveWhoami: every whoami, answered 200 or 401, is timed through
// Config.ObserveWhoami, and timing it costs no allocation.
func TestObserveWhoami(t *testing.T) {
	var calls atomic.Int64
	var total atomic.Int64
	observe := func(d time.Duration) {
		calls.Add(1)
		total.Add(int64(d))
	}
	timed, srv := testEngine(t, func(c *Config) { c.ObserveWhoami = observe })
	plain, plainSrv := testEngine(t, nil)
	_, _, tok := gateFixture(t, timed, `{"email":"w@example.com"}`, nil, "aal1")
	_, _, plainTok := gateFixture(t, plain, `{"email":"w@example.com"}`, nil, "aal1")

	whoami := func(e *Engine, base, tok string) int {
		w := &discardWriter{h: http.Header{}}
		e.ServeHTTP(w, tokenRequest(base+"/sessions/whoami", tok))
		return w.status
	}
	if s := whoami(timed, srv.URL, tok); s != http.StatusOK {
		t.Fatalf("whoami: %d", s)
	}
	if s := whoami(timed, srv.URL, "ory_st_unknown"); s != http.StatusUnauthorized {
		t.Fatalf("whoami without a session: %d", s)
	}
	if n := calls.Load(); n != 2 || total.Load() <= 0 {
		t.Fatalf("observed %d whoami calls taking %v, want 2", n, time.Duration(total.Load()))
	}

	// The same request to both engines: the request itself allocates
	// (httptest), the observer adds nothing.
	req := tokenRequest(srv.URL+"/sessions/whoami", tok)
	plainReq := tokenRequest(plainSrv.URL+"/sessions/whoami", plainTok)
	w := &discardWriter{h: http.Header{}}
	with := testing.AllocsPerRun(200, func() { clear(w.h); timed.ServeHTTP(w, req) })
	without := testing.AllocsPerRun(200, func() { clear(w.h); plain.ServeHTTP(w, plainReq) })
	t.Logf("whoami allocates %.1f times with the observer, %.1f without", with, without)
	if with > without {
		t.Errorf("whoami allocates %.1f times with the observer, %.1f without", with, without)
	}
}
