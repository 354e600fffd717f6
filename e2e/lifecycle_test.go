package e2e

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// loadConfig posts a Caddyfile to the admin API's /load endpoint.
func (in *instance) loadConfig(t *testing.T, opts instanceOptions) {
	t.Helper()
	cfg := in.caddyfile(opts)
	if err := os.WriteFile(in.configPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r, body := do(t, plainHTTP(), "POST", in.adminBase+"/load", hdr{"Content-Type": "text/caddyfile"}, []byte(cfg))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("POST /load = %d: %s", r.StatusCode, clip(body))
	}
}

func sessionLifetime(s *ory.Session) time.Duration {
	if s == nil || s.ExpiresAt == nil || s.AuthenticatedAt == nil {
		return 0
	}
	return s.ExpiresAt.Sub(*s.AuthenticatedAt)
}

func within(d, want, slack time.Duration) bool { return d >= want-slack && d <= want+slack }

// TestReload changes the configuration through the admin API twice; the
// shared store survives and sessions made before keep working.
func TestReload(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	_, s := loginNative(t, in, u.Email, u.Password)
	if d := sessionLifetime(s); !within(d, 24*time.Hour, time.Minute) {
		t.Errorf("session lifetime before reload = %v, want 24h", d)
	}

	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"reloaded\" 200\n}\n", ports[0])
	in.loadConfig(t, instanceOptions{GlobalKratos: []string{"session_lifespan 48h"}, ExtraSites: extra})

	// The new site is served.
	r, body := do(t, plainHTTP(), "GET", fmt.Sprintf("http://127.0.0.1:%d/", ports[0]), nil, nil)
	if r.StatusCode != http.StatusOK || string(body) != "reloaded" {
		t.Errorf("new site after reload: %d %q", r.StatusCode, body)
	}
	if !in.running() {
		t.Fatal("caddy-kratos died during reload")
	}

	checkOld := func(stage string) {
		t.Helper()
		if ws, code := whoamiToken(t, in, u.Token); code != http.StatusOK || ws.Identity == nil || ws.Identity.Id != u.IdentityID {
			t.Errorf("%s: whoami with a pre-reload token = %d", stage, code)
		}
		if _, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute(); resp == nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s: whoami with a pre-reload cookie = %v %v", stage, resp, err)
		}
		_, _, echo := gateGet(t, in, plainHTTP(), "/private", hdr{"Accept": "application/json", "X-Session-Token": u.Token})
		if echo == nil || len(seenIdentity(echo)) != 1 || seenIdentity(echo)[0] != u.IdentityID {
			t.Errorf("%s: gate with a pre-reload token did not pass the identity", stage)
		}
	}
	checkOld("after reload 1")

	// The new session_lifespan applies to new sessions.
	_, s = loginNative(t, in, u.Email, u.Password)
	if d := sessionLifetime(s); !within(d, 48*time.Hour, time.Minute) {
		t.Errorf("session lifetime after reload = %v, want 48h (session_lifespan 48h)", d)
	}

	// Back to the original configuration.
	in.loadConfig(t, instanceOptions{})
	checkOld("after reload 2")
	tok, s := loginNative(t, in, u.Email, u.Password)
	if d := sessionLifetime(s); !within(d, 24*time.Hour, time.Minute) {
		t.Errorf("session lifetime after second reload = %v, want 24h", d)
	}
	if _, code := whoamiToken(t, in, tok); code != http.StatusOK {
		t.Errorf("whoami with a post-reload token = %d", code)
	}
	if r, err := plainHTTP().Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0])); err == nil {
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			t.Error("the removed site still answers after the second reload")
		}
	}
}

// TestRestart stops the process with SIGTERM and starts it again on the same
// storage directory: identities, sessions (token and cookie) and pending flows
// survive.
func TestRestart(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	u := registerNative(t, in)
	b := newBrowser(t, in)
	b.login(t, u.Email, u.Password)
	pending, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	if !in.stop() {
		t.Error("caddy-kratos did not exit within 5s of SIGTERM (killed)")
	}
	if _, err := http.Get(in.apiBase + "/health/alive"); err == nil {
		t.Fatal("the API still answers after stop")
	}
	if err := in.start(); err != nil {
		t.Fatalf("restart on the same storage failed: %v", err)
	}

	if ws, code := whoamiToken(t, in, u.Token); code != http.StatusOK || ws.Identity == nil || ws.Identity.Id != u.IdentityID {
		t.Errorf("whoami with a pre-restart token = %d", code)
	}
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK || s.Identity == nil || s.Identity.Id != u.IdentityID {
		t.Errorf("whoami with a pre-restart cookie = %v %v", resp, err)
	}

	// The flow created before the restart can be completed.
	res, resp, err := in.api().FrontendAPI.UpdateLoginFlow(ctx).Flow(pending.Id).UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.Session.Identity == nil || res.Session.Identity.Id != u.IdentityID {
		t.Errorf("login on a pre-restart flow: identity %+v", res.Session.Identity)
	}

	// The identifier is still taken.
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(
		ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
			ory.NewUpdateRegistrationFlowWithPasswordMethod("password", randPassword(), map[string]any{"email": u.Email}))).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if f := decodeFlow(t, sdkErrBody(t, err)); !containsID(f.messageIDs(), 4000007) {
		t.Errorf("re-registering after restart: messages %v, want 4000007", f.messageIDs())
	}

	// The session list still knows the browser session.
	list, resp, err := in.api().FrontendAPI.ListMySessions(ctx).XSessionToken(u.Token).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(list) != 2 {
		t.Errorf("sessions listed after restart = %d, want 2 (browser + login on the old flow)", len(list))
	}
}
