package flows

import (
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// linkedTOTP registers email, links an authenticator app and returns its
// secret and the code used to link it.
func linkedTOTP(t *testing.T, base, email string) (secret, linkCode string) {
	t.Helper()
	token := registerNative(t, base, email)
	s := nativeSettings(t, base, token)
	secret = totpSecret(t, s)
	linkCode, _ = totp.GenerateCode(secret, time.Now())
	if r := do(t, nil, "POST", actionOf(t, s), map[string]any{"method": "totp", "totp_code": linkCode}, tokenHeader(token)); r.status != 200 {
		t.Fatalf("link: %d %s", r.status, r.raw)
	}
	return secret, linkCode
}

// aal2Flow signs in with the password and opens an aal2 flow: the token
// and the flow's action.
func aal2Flow(t *testing.T, base, email string) (string, string) {
	t.Helper()
	tok := nativeLogin(t, base, email).body["session_token"].(string)
	f := do(t, nil, "GET", base+"/self-service/login/api?aal=aal2", nil, tokenHeader(tok))
	if f.status != 200 {
		t.Fatalf("aal2 flow: %d %s", f.status, f.raw)
	}
	return tok, actionOf(t, f)
}

// TestTOTPCodeIsSingleUse (item 15): a code brings one sign-in to aal2,
// never a second one (the code that linked the app included: it may sign
// in once, as Kratos clients expect); a later code works, an earlier one
// no longer does.
func TestTOTPCodeIsSingleUse(t *testing.T) {
	_, base := totpEngine(t)
	const email = "replay@example.com"
	secret, linkCode := linkedTOTP(t, base, email)

	submit := func(code string) resp {
		tok, action := aal2Flow(t, base, email)
		return do(t, nil, "POST", action, map[string]any{"method": "totp", "totp_code": code}, tokenHeader(tok))
	}
	refused := func(what string, r resp) {
		t.Helper()
		if r.status != 400 || !contains(nodeMessageIDs(mustNode(t, r, "totp_code")), 4000008) {
			t.Fatalf("%s: %d %s, want 400 with 4000008", what, r.status, r.raw)
		}
	}
	if r := submit(linkCode); r.status != 200 {
		t.Fatalf("the linking code at the first sign-in: %d %s", r.status, r.raw)
	}
	refused("the linking code at a second sign-in", submit(linkCode))
	next, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	if r := submit(next); r.status != 200 || r.body["session"].(map[string]any)["authenticator_assurance_level"] != "aal2" {
		t.Fatalf("a fresh code: %d %s", r.status, r.raw)
	}
	refused("the same code in a second session", submit(next))
	if prev, _ := totp.GenerateCode(secret, time.Now().Add(-30*time.Second)); prev != next {
		refused("an earlier step's code", submit(prev))
	}
}

// TestTOTPConcurrentReplay: 20 sessions submit one code at once; exactly
// one reaches aal2.
func TestTOTPConcurrentReplay(t *testing.T) {
	_, base := totpEngine(t)
	const email = "burst@example.com"
	secret, _ := linkedTOTP(t, base, email)
	const n = 20
	toks, actions := make([]string, n), make([]string, n)
	for i := range n {
		toks[i], actions[i] = aal2Flow(t, base, email)
	}
	code, _ := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = do(t, nil, "POST", actions[i], map[string]any{"method": "totp", "totp_code": code}, tokenHeader(toks[i])).status
		}()
	}
	close(start)
	wg.Wait()
	ok, bad := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 400, 429:
			// A replay (400), or over the per-identity code limit, which
			// reserves attempts before they are evaluated (429).
			bad++
		}
	}
	if ok != 1 || bad != n-1 {
		t.Fatalf("statuses %v: %d succeeded, %d refused; want 1 and %d", statuses, ok, bad, n-1)
	}
	aal2 := 0
	for _, tok := range toks {
		if r := whoamiStatus(t, base, tok); r.status == 200 {
			aal2++
		}
	}
	if aal2 != 1 {
		t.Fatalf("%d sessions at aal2, want 1", aal2)
	}
}
