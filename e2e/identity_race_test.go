package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Issue 11, item 10: a write that read the identity before an admin
// deactivation (a settings password change, a login that upgrades the
// password hash) must not store the old "active" copy over it. The
// instances hash with bcrypt cost 13 (about 0.6 s a hash here), so the
// admin request lands while the other one is hashing, between its read of
// the identity and its write.

// raceAnswer is the answer of a request sent in the background.
type raceAnswer struct {
	status int
	body   []byte
	err    error
	at     time.Time
}

// sendInBackground POSTs body as JSON and delivers the answer on the
// returned channel.
func sendInBackground(url string, h hdr, body any) <-chan raceAnswer {
	out := make(chan raceAnswer, 1)
	b, _ := json.Marshal(body)
	go func() {
		req, err := http.NewRequest("POST", url, bytes.NewReader(b))
		if err != nil {
			out <- raceAnswer{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: time.Minute, CheckRedirect: noRedirect}).Do(req)
		if err != nil {
			out <- raceAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		rb, err := io.ReadAll(resp.Body)
		out <- raceAnswer{status: resp.StatusCode, body: rb, err: err, at: time.Now()}
	}()
	return out
}

// deactivateDuring waits a little (the background request reads the
// identity and starts hashing), deactivates id through the admin API and
// returns when that answered.
func deactivateDuring(t *testing.T, in *instance, id string) time.Time {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	off := admJSON[admIdentity](t, in, "PATCH", "/admin/identities/"+id,
		[]map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, http.StatusOK)
	if off.State != "inactive" {
		t.Fatalf("state after the admin patch = %q", off.State)
	}
	return time.Now()
}

// assertLockedOut checks that the deactivated identity stays out: state
// inactive, the password login refused with 4010011, the other password
// refused, and the gate and whoami refuse every token it ever had.
func assertLockedOut(t *testing.T, in *instance, id, email, password, otherPassword string, otherMsg int64, tokens ...string) {
	t.Helper()
	got := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+id, nil, http.StatusOK)
	if got.State != "inactive" {
		t.Errorf("identity state after the race = %q, want inactive: the deactivation was undone", got.State)
	}
	if f := admLoginFails(t, in, email, password); !containsID(sdkMessageIDs(f.Ui.Messages), 4010011) {
		t.Errorf("login with the password after deactivation: messages %v, want 4010011", sdkMessageIDs(f.Ui.Messages))
	}
	if otherPassword != "" {
		if f := admLoginFails(t, in, email, otherPassword); !containsID(sdkMessageIDs(f.Ui.Messages), otherMsg) {
			t.Errorf("login with the other password after deactivation: messages %v, want %d", sdkMessageIDs(f.Ui.Messages), otherMsg)
		}
	}
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		r, body, echo := gateGet(t, in, plainHTTP(), "/private/after-race", hdr{"Accept": "application/json", "X-Session-Token": tok})
		if echo != nil {
			t.Errorf("the gate let a session of the deactivated identity through")
		} else {
			wantStatus(t, r, body, http.StatusUnauthorized)
		}
		if _, st := whoamiToken(t, in, tok); st != http.StatusUnauthorized {
			t.Errorf("whoami of a session of the deactivated identity = %d, want 401", st)
		}
	}
}

// TestSettingsPasswordChangeKeepsDeactivation: the password change read
// the identity (active) before the deactivation and writes after it. The
// identity stays inactive; the change is refused (401: the session was
// revoked with the deactivation), so the new password does not work
// either.
func TestSettingsPasswordChangeKeepsDeactivation(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{BcryptCost: 13})
	email, password := randEmail(), randPassword()
	id := admCreate(t, in, email, password)
	token, _ := loginNative(t, in, email, password)
	f, resp, err := in.api().FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	newPassword := randPassword()
	start := time.Now()
	answer := sendInBackground(f.Ui.Action, hdr{"X-Session-Token": token},
		map[string]any{"method": "password", "password": newPassword})
	deactivated := deactivateDuring(t, in, id.ID)
	a := <-answer
	if a.err != nil {
		t.Fatal(a.err)
	}
	if !a.at.After(deactivated) {
		t.Fatalf("the password change answered (%v after the start) before the deactivation: the race window was missed", a.at.Sub(start))
	}
	t.Logf("settings answered %v after the start, %v after the deactivation", a.at.Sub(start), a.at.Sub(deactivated))

	assertLockedOut(t, in, id.ID, email, password, newPassword, 4000006, token)
	if a.status != http.StatusUnauthorized {
		t.Errorf("settings answer after the deactivation: %d %s, want 401", a.status, clip(a.body))
	} else if e := decodeError(t, http.StatusUnauthorized, a.body); e.Error.Reason != "No valid session credentials found in the request." {
		t.Errorf("settings answer after the deactivation: %+v", e.Error)
	}
}

// TestLoginHashUpgradeKeepsDeactivation: a login with an imported bcrypt
// cost 10 hash upgrades it to cost 13; the deactivation lands while the
// new hash is computed. The upgrade is kept, the deactivation too, and the
// login is refused with 4010011.
func TestLoginHashUpgradeKeepsDeactivation(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{BcryptCost: 13})
	email := randEmail()
	id := admJSON[admIdentity](t, in, "POST", "/admin/identities", map[string]any{
		"schema_id": "default", "traits": map[string]any{"email": email},
		"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": admHashes["bcrypt"]}}},
	}, http.StatusCreated)
	flow, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	start := time.Now()
	answer := sendInBackground(flow.Ui.Action, nil, map[string]any{"method": "password", "identifier": email, "password": "test"})
	deactivated := deactivateDuring(t, in, id.ID)
	a := <-answer
	if a.err != nil {
		t.Fatal(a.err)
	}
	if !a.at.After(deactivated) {
		t.Fatalf("the login answered (%v after the start) before the deactivation: the race window was missed", a.at.Sub(start))
	}
	var login struct {
		SessionToken string `json:"session_token"`
		UI           struct {
			Messages []uiText `json:"messages"`
		} `json:"ui"`
	}
	_ = json.Unmarshal(a.body, &login)

	assertLockedOut(t, in, id.ID, email, "test", "", 0, login.SessionToken)
	if h := admHash(t, in, id.ID); !strings.HasPrefix(h, "$2a$13$") {
		t.Errorf("hash after the login = %q, want the upgrade to bcrypt cost 13 kept", h)
	}
	ids := []int64{}
	for _, m := range login.UI.Messages {
		ids = append(ids, m.ID)
	}
	if a.status != http.StatusBadRequest || !containsID(ids, 4010011) || login.SessionToken != "" {
		t.Errorf("login racing the deactivation: %d messages %v session token issued %v, want 400 with 4010011 and no session",
			a.status, ids, login.SessionToken != "")
	}
}
