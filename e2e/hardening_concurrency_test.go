package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// Races of the "Hardening" issue: one identifier registered 50 times at
// once, one recovery code and one backup code used by many requests at
// once, and sessions revoked while whoami and the gate are hammered with
// them.

var (
	hcOnce sync.Once
	hcInst *instance
	hcErr  error
)

// hcInstance is shared by the concurrency tests: no abuse limits (they
// send bursts from one address) and backup codes on.
func hcInstance(t *testing.T) *instance {
	t.Helper()
	hcOnce.Do(func() {
		hcInst, hcErr = newSharedInstance("caddy-kratos-hc-", instanceOptions{GlobalKratos: []string{"rate_limits off", "methods lookup_secret"}})
	})
	if hcErr != nil {
		t.Fatalf("concurrency instance did not start: %v", hcErr)
	}
	return hcInst
}

// hcResult is one answer in a burst.
type hcResult struct {
	status int
	body   []byte
	err    error
}

// hcBurst runs n requests at once: prepare builds each request's
// arguments before the start signal, so the requests themselves overlap.
func hcBurst(n int, send func(i int) hcResult) []hcResult {
	out := make([]hcResult, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			out[i] = send(i)
		}(i)
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out
}

func hcPost(hc *http.Client, u string, h hdr, body any) hcResult {
	b, _ := json.Marshal(body)
	hh := hdr{"Accept": "application/json", "Content-Type": "application/json"}
	for k, v := range h {
		hh[k] = v
	}
	r, rb, err := hbSend(hc, "POST", u, hh, b)
	if err != nil {
		return hcResult{err: err}
	}
	return hcResult{status: r.StatusCode, body: rb}
}

// TestHardeningConcurrentRegistration: 50 native registrations of one
// address (in three spellings) at once create exactly one identity; the
// 49 others get 400 with 4000007.
func TestHardeningConcurrentRegistration(t *testing.T) {
	t.Parallel()
	in := hcInstance(t)
	hc := hbClient()
	email := randEmail()
	spellings := []string{email, strings.ToUpper(email), strings.ToUpper(email[:1]) + email[1:]}
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = hbFlowID(t, hc, in, "registration", "api", nil)
	}
	res := hcBurst(n, func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/registration?flow="+ids[i], nil, map[string]any{
			"method": "password", "password": randPassword(), "traits": map[string]any{"email": spellings[i%len(spellings)]},
		})
	})
	var ok, dup int
	var winner struct {
		SessionToken string `json:"session_token"`
		Identity     struct {
			ID string `json:"id"`
		} `json:"identity"`
	}
	for i, r := range res {
		switch {
		case r.err != nil:
			t.Errorf("registration %d: no answer: %v", i, r.err)
		case r.status == http.StatusOK:
			ok++
			_ = json.Unmarshal(r.body, &winner)
		case r.status == http.StatusBadRequest:
			var f flowJSON
			if json.Unmarshal(r.body, &f) != nil || f.UI == nil || !containsID(f.messageIDs(), 4000007) {
				t.Errorf("registration %d: 400 without 4000007: %s", i, clip(r.body))
				continue
			}
			dup++
		default:
			t.Errorf("registration %d: status %d: %s", i, r.status, clip(r.body))
		}
	}
	if ok != 1 || dup != n-1 {
		t.Errorf("%d registrations of one address at once: %d succeeded, %d got 4000007; want 1 and %d", n, ok, dup, n-1)
	}
	for _, s := range spellings {
		if got := hbIdentitiesWith(t, in, s); got != 1 {
			t.Errorf("identities with identifier %q: %d, want 1", s, got)
		}
	}
	if winner.SessionToken != "" {
		if s, code := whoamiToken(t, in, winner.SessionToken); code != http.StatusOK || s.Identity == nil || s.Identity.Id != winner.Identity.ID {
			t.Errorf("the winner's session: whoami %d", code)
		}
	}
}

// TestHardeningConcurrentRecoveryCode: one mailed recovery code sent by 20
// requests at once to its flow recovers the account once: exactly one
// success (422 browser_location_change_required) and exactly one new
// session; the flow ends passed, and no other answer carries a session.
func TestHardeningConcurrentRecoveryCode(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	hc := hbClient()
	u := registerNative(t, in)
	flowID := startRecovery(t, in, u.Email)
	code := mails.last(t, u.Email, subjectRecovery, 1).code(t)
	before := hbActiveSessions(t, in, u.IdentityID)
	const n = 20
	res := hcBurst(n, func(int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/recovery?flow="+flowID, nil, map[string]any{"method": "code", "code": code})
	})
	var wins int
	var leaks []string
	for i, r := range res {
		switch {
		case r.err != nil:
			t.Errorf("submit %d: no answer: %v", i, r.err)
			continue
		case r.status >= 500:
			t.Errorf("submit %d: server error %d: %s", i, r.status, clip(r.body))
		case r.status == http.StatusUnprocessableEntity:
			var e errorJSON
			if json.Unmarshal(r.body, &e) == nil && e.Error != nil && e.Error.ID == "browser_location_change_required" {
				wins++
			} else {
				t.Errorf("submit %d: 422 %s", i, clip(r.body))
			}
		}
		if strings.Contains(string(r.body), "ory_st_") {
			leaks = append(leaks, fmt.Sprintf("submit %d (%d): %s", i, r.status, clip(r.body)))
		}
	}
	if wins != 1 {
		t.Errorf("one recovery code sent %d times at once succeeded %d times, want exactly 1", n, wins)
	}
	// The code stays spent after the race.
	if r := hcPost(hc, in.apiBase+"/self-service/recovery?flow="+flowID, nil, map[string]any{"method": "code", "code": code}); r.status == http.StatusUnprocessableEntity || r.status >= 500 {
		t.Errorf("the code once more after the race: %d %s", r.status, clip(r.body))
	}
	// A recovery signs out the identity's other sessions (the default
	// revoke_active_sessions recovery): what is left active is the one
	// session the recovery created, and it created exactly one.
	if n := secSessionsWithMethod(t, in, u.IdentityID, "code_recovery"); n != 1 {
		t.Errorf("sessions created by the recovery: %d, want exactly one", n)
	}
	if after := hbActiveSessions(t, in, u.IdentityID); after != 1 {
		t.Errorf("active sessions of the identity: %d → %d, want exactly one recovery session (the %d before are revoked)", before, after, before)
	}
	t.Run("no answer carries the session token", func(t *testing.T) {
		for _, l := range leaks {
			t.Errorf("a session token in a refused answer: %s", l)
		}
	})
	t.Run("the flow stays passed", func(t *testing.T) {
		r, body := do(t, hc, "GET", in.apiBase+"/self-service/recovery/flows?id="+flowID, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		if f := decodeFlow(t, body); f.State != "passed_challenge" {
			t.Errorf("recovery flow state after the race = %v, want passed_challenge", f.State)
		}
	})
}

// TestHardeningRecoveryFlowHoldsNoToken: with the default (422) answer a
// native recovery hands out no session token (observed.md); fetching the
// flow afterwards must not either, or whoever knows the flow id gets a
// privileged session.
func TestHardeningRecoveryFlowHoldsNoToken(t *testing.T) {
	t.Parallel()
	in, mails := sharedMail(t)
	u := registerNative(t, in)
	flowID := startRecovery(t, in, u.Email)
	wantRecovered(t, in, flowID, mails.last(t, u.Email, subjectRecovery, 1).code(t))
	r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/recovery/flows?id="+flowID, hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	if strings.Contains(string(body), "ory_st_") {
		t.Errorf("the recovered flow hands out a session token: %s", clip(body))
	}
}

// hcLookupSetup gives u backup codes (settings: regenerate, confirm) and
// returns them.
func hcLookupSetup(t *testing.T, in *instance, u user) []string {
	t.Helper()
	c := in.api()
	s, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	update := func(body ory.UpdateSettingsFlowWithLookupMethod) *ory.SettingsFlow {
		body.Method = "lookup_secret"
		f, resp, err := c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).XSessionToken(u.Token).
			UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithLookupMethodAsUpdateSettingsFlowBody(&body)).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		return f
	}
	codes := lookupCodes(t, update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretRegenerate: ptr(true)}).Ui.Nodes)
	if f := update(ory.UpdateSettingsFlowWithLookupMethod{LookupSecretConfirm: ptr(true)}); f.State != "success" {
		t.Fatalf("confirming the backup codes: state %v", f.State)
	}
	return codes
}

// TestHardeningConcurrentLookupCode: one backup code sent at once as the
// second factor of 20 password sessions upgrades exactly one of them.
func TestHardeningConcurrentLookupCode(t *testing.T) {
	t.Parallel()
	in := hcInstance(t)
	hc := hbClient()
	u := registerNative(t, in)
	codes := hcLookupSetup(t, in, u)
	const n = 20
	tokens, flows := make([]string, n), make([]string, n)
	for i := range tokens {
		tokens[i], _ = loginNative(t, in, u.Email, u.Password)
		flows[i], _ = hbFlowID(t, hc, in, "login", "api?aal=aal2", hdr{"X-Session-Token": tokens[i]})
	}
	res := hcBurst(n, func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/login?flow="+flows[i], hdr{"X-Session-Token": tokens[i]},
			map[string]any{"method": "lookup_secret", "lookup_secret": codes[0]})
	})
	var wins, refused int
	for i, r := range res {
		switch {
		case r.err != nil:
			t.Errorf("submit %d: no answer: %v", i, r.err)
		case r.status == http.StatusOK:
			wins++
		case r.status == http.StatusBadRequest:
			refused++
			var f flowJSON
			if json.Unmarshal(r.body, &f) != nil || f.UI == nil || !containsID(f.messageIDs(), 4000012) {
				t.Errorf("submit %d: 400 without 4000012 (used code): %s", i, clip(r.body))
			}
		default:
			t.Errorf("submit %d: status %d: %s", i, r.status, clip(r.body))
		}
	}
	if wins != 1 || refused != n-1 {
		t.Errorf("one backup code used by %d sessions at once: %d upgraded, %d refused; want 1 and %d", n, wins, refused, n-1)
	}
	var aal2 int
	for _, tok := range tokens {
		if _, code := whoamiToken(t, in, tok); code == http.StatusOK {
			aal2++
		}
	}
	if aal2 != 1 {
		t.Errorf("%d sessions pass whoami (aal2) after the race, want exactly 1", aal2)
	}
	// The other codes are untouched: the next one still works.
	tok, _ := loginNative(t, in, u.Email, u.Password)
	lf, _ := hbFlowID(t, hc, in, "login", "api?aal=aal2", hdr{"X-Session-Token": tok})
	if r := hcPost(hc, in.apiBase+"/self-service/login?flow="+lf, hdr{"X-Session-Token": tok}, map[string]any{"method": "lookup_secret", "lookup_secret": codes[1]}); r.status != http.StatusOK {
		t.Errorf("the next backup code after the race: %d %s", r.status, clip(r.body))
	}
}

// hcProbe is one request of the hammer.
type hcProbe struct {
	what       string
	start, end time.Time
	status     int
	passed     bool // whoami 200, or the gate let the request through to the app
	err        error
}

// hcHammer sends whoami and gate requests with the credential h from
// workers goroutines until stop is closed; passing is closed when the
// first request passed.
func hcHammer(in *instance, h hdr, workers int, stop <-chan struct{}) (collect func() []hcProbe, passing <-chan struct{}) {
	var mu sync.Mutex
	var probes []hcProbe
	var wg sync.WaitGroup
	passed := make(chan struct{})
	var passedOnce sync.Once
	hc := hbClient()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := hcProbe{what: "whoami"}
				u := in.apiBase + "/sessions/whoami"
				if (i+w)%2 == 1 {
					p.what, u = "gate", in.appBase+"/private/hammer"
				}
				hh := hdr{"Accept": "application/json"}
				for k, v := range h {
					hh[k] = v
				}
				p.start = time.Now()
				r, _, err := hbSend(hc, "GET", u, hh, nil)
				p.end = time.Now()
				if err != nil {
					p.err = err
				} else {
					p.status = r.StatusCode
					p.passed = r.StatusCode == http.StatusOK && (p.what == "whoami" || r.Header.Get("X-Echo-Upstream") != "")
				}
				mu.Lock()
				probes = append(probes, p)
				mu.Unlock()
				if p.passed {
					passedOnce.Do(func() { close(passed) })
				}
			}
		}(w)
	}
	return func() []hcProbe {
		wg.Wait()
		return probes
	}, passed
}

// TestHardeningRevocationUnderLoad: while whoami and the gate are hammered
// with a session, the session is revoked (native logout, browser logout,
// admin revoke, revoke from another session of the identity, identity
// deactivation). Once the revoking call has returned, no request started
// later is answered 200 or reaches the app.
func TestHardeningRevocationUnderLoad(t *testing.T) {
	t.Parallel()
	in := hcInstance(t)
	type target struct {
		cred   hdr
		revoke func() // must not return before the revocation is done
	}
	kinds := []struct {
		name  string
		setup func(t *testing.T) target
	}{
		{"native logout", func(t *testing.T) target {
			u := registerNative(t, in)
			return target{hdr{"X-Session-Token": u.Token}, func() {
				r, body := do(t, plainHTTP(), "DELETE", in.apiBase+"/self-service/logout/api", hdr{"Content-Type": "application/json"}, []byte(`{"session_token":"`+u.Token+`"}`))
				wantStatus(t, r, body, http.StatusNoContent)
			}}
		}},
		{"browser logout", func(t *testing.T) target {
			u := registerNative(t, in)
			b := newBrowser(t, in)
			b.login(t, u.Email, u.Password)
			lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
			wantSDKStatus(t, resp, err, http.StatusOK)
			cookies := b.cookieHeader()
			return target{hdr{"Cookie": cookies}, func() {
				r, body := do(t, plainHTTP(), "GET", lf.LogoutUrl, hdr{"Accept": "application/json", "Cookie": cookies}, nil)
				wantStatus(t, r, body, http.StatusNoContent)
			}}
		}},
		{"admin revoke", func(t *testing.T) target {
			u := registerNative(t, in)
			return target{hdr{"Authorization": "Bearer " + u.Token}, func() {
				r, body := admCall(t, in, "DELETE", "/admin/sessions/"+u.SessionID, nil)
				wantStatus(t, r, body, http.StatusNoContent)
			}}
		}},
		{"revoke from another session", func(t *testing.T) target {
			u := registerNative(t, in)
			other, _ := loginNative(t, in, u.Email, u.Password)
			return target{hdr{"X-Session-Token": u.Token}, func() {
				r, body := do(t, plainHTTP(), "DELETE", in.apiBase+"/sessions/"+u.SessionID, hdr{"X-Session-Token": other}, nil)
				wantStatus(t, r, body, http.StatusNoContent)
			}}
		}},
		{"revoke all others", func(t *testing.T) target {
			u := registerNative(t, in)
			other, _ := loginNative(t, in, u.Email, u.Password)
			return target{hdr{"X-Session-Token": u.Token}, func() {
				r, body := do(t, plainHTTP(), "DELETE", in.apiBase+"/sessions", hdr{"Accept": "application/json", "X-Session-Token": other}, nil)
				wantStatus(t, r, body, http.StatusOK)
			}}
		}},
		{"identity deactivated", func(t *testing.T) target {
			u := registerNative(t, in)
			return target{hdr{"X-Session-Token": u.Token}, func() {
				admJSON[admIdentity](t, in, "PATCH", "/admin/identities/"+u.IdentityID, []map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, http.StatusOK)
			}}
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			tg := k.setup(t)
			stop := make(chan struct{})
			collect, passing := hcHammer(in, tg.cred, 4, stop)
			// Revoke once the credential has passed (on a loaded machine
			// a fixed wait could end before any answer came back).
			select {
			case <-passing:
			case <-time.After(10 * time.Second):
			}
			time.Sleep(100 * time.Millisecond)
			revokeStart := time.Now()
			tg.revoke()
			revoked := time.Now()
			time.Sleep(200 * time.Millisecond)
			close(stop)
			probes := collect()

			var before, after, late int
			for _, p := range probes {
				if p.err != nil {
					t.Errorf("%s: no answer: %v", p.what, p.err)
					continue
				}
				if p.status >= 500 {
					t.Errorf("%s: server error %d", p.what, p.status)
				}
				if p.passed && p.end.Before(revokeStart) {
					before++
				}
				if p.start.After(revoked) {
					after++
					if p.passed {
						late++
						t.Errorf("%s started %v after the revocation returned and was answered %d (passed)", p.what, p.start.Sub(revoked), p.status)
					} else if p.status != http.StatusUnauthorized {
						t.Errorf("%s after the revocation: status %d, want 401", p.what, p.status)
					}
				}
			}
			if before == 0 || after == 0 {
				t.Fatalf("the hammer is vacuous: %d passed before the revocation, %d requests after it", before, after)
			}
			t.Logf("%d requests, %d passed before the revocation (%v), %d started after it, %d of those passed", len(probes), before, revoked.Sub(revokeStart), after, late)
		})
	}
}
