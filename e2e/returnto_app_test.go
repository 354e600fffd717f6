package e2e

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A native app's deep link in allowed_return_urls (exp://…, as Kratos
// allows for mobile apps): accepted exactly as listed, used at the end of
// the flow; other hosts and unsafe schemes are refused.

const appLink = "exp://example.com/my-app"

var (
	appLinkOnce sync.Once
	appLinkInst *instance
	appLinkErr  error
)

func appLinkInstance(t *testing.T) *instance {
	t.Helper()
	appLinkOnce.Do(func() {
		appLinkInst, appLinkErr = newSharedInstance("caddy-kratos-applink-", instanceOptions{GlobalKratos: []string{
			"rate_limits off",
			"allowed_return_urls " + appLink,
		}})
	})
	if appLinkErr != nil {
		t.Fatalf("instance with an app link did not start: %v", appLinkErr)
	}
	return appLinkInst
}

func TestReturnToAppLink(t *testing.T) {
	t.Parallel()
	in := appLinkInstance(t)
	u := registerNative(t, in)
	target := appLink + "/done?state=1"

	t.Run("native registration and login flows keep it", func(t *testing.T) {
		reg, resp, err := in.api().FrontendAPI.CreateNativeRegistrationFlow(ctx).ReturnTo(appLink).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if reg.ReturnTo == nil || *reg.ReturnTo != appLink {
			t.Errorf("registration return_to = %v, want %s", reg.ReturnTo, appLink)
		}
		login, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).ReturnTo(target).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if login.ReturnTo == nil || *login.ReturnTo != target {
			t.Errorf("login return_to = %v, want %s", login.ReturnTo, target)
		}
	})

	t.Run("browser JSON login continues to it", func(t *testing.T) {
		b := newBrowser(t, in)
		flow, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).ReturnTo(target).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		res, resp, err := b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).
			UpdateLoginFlowBody(passwordLoginBody(u.Email, u.Password, sdkCSRF(t, flow.Ui.Nodes))).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		if len(res.ContinueWith) != 1 || res.ContinueWith[0].ContinueWithRedirectBrowserTo == nil ||
			res.ContinueWith[0].ContinueWithRedirectBrowserTo.RedirectBrowserTo != target {
			t.Errorf("continue_with = %+v, want [redirect_browser_to %s]", res.ContinueWith, target)
		}
	})

	t.Run("browser form login redirects to it", func(t *testing.T) {
		b := newBrowser(t, in)
		r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/login/browser?return_to="+url.QueryEscape(target), hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		flowID := mustURL(r.Header.Get("Location")).Query().Get("flow")
		flow, resp, err := b.sdk.FrontendAPI.GetLoginFlow(ctx).Id(flowID).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		v := url.Values{"method": {"password"}, "csrf_token": {sdkCSRF(t, flow.Ui.Nodes)}, "identifier": {u.Email}, "password": {u.Password}}
		r, body = do(t, b.hc, "POST", in.apiBase+"/self-service/login?flow="+flowID,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(v.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != target {
			t.Errorf("Location = %q, want %q", got, target)
		}
	})

	t.Run("built-in pages let the form post end at the app", func(t *testing.T) {
		b := newBrowser(t, in)
		r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/registration/browser?return_to="+url.QueryEscape(appLink), hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusSeeOther)
		// The instance's registration UI is external; the built-in page
		// shows the same flow under /ui/.
		flowID := mustURL(r.Header.Get("Location")).Query().Get("flow")
		r, body = do(t, b.hc, "GET", in.apiBase+"/ui/registration?flow="+flowID, hdr{"Accept": "text/html"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, " exp://example.com") {
			t.Errorf("CSP form-action lacks exp://example.com: %s", csp)
		}
	})

	t.Run("other hosts, paths and schemes are refused", func(t *testing.T) {
		for _, rt := range []string{
			"exp://evil.example/",
			"exp://evil.example/my-app",
			"exp://example.com/my-apple",
			"exp://example.com.evil.example/my-app",
			"exps://example.com/my-app",
			"other-app://example.com/my-app",
			"javascript://example.com/my-app%0aalert(1)",
			"javascript:alert(1)",
			"data:text/html,<script>alert(1)</script>",
		} {
			_, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).ReturnTo(rt).Execute()
			wantSDKStatus(t, resp, err, http.StatusBadRequest)
			if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "self_service_flow_return_to_forbidden" {
				t.Errorf("native return_to %s: error.id = %q", rt, e.Error.ID)
			}
			_, resp, err = newBrowser(t, in).sdk.FrontendAPI.CreateBrowserRegistrationFlow(ctx).ReturnTo(rt).Execute()
			wantSDKStatus(t, resp, err, http.StatusBadRequest)
			if e := decodeError(t, 400, sdkErrBody(t, err)); e.Error.ID != "self_service_flow_return_to_forbidden" {
				t.Errorf("browser return_to %s: error.id = %q", rt, e.Error.ID)
			}
		}
	})
}

// Unsafe schemes in allowed_return_urls stop Caddy at start, naming the
// line.
func TestReturnToUnsafeSchemeRefusedAtConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, u := range []string{"javascript://example.com/%0aalert(1)", "data:text/html,x", "vbscript://example.com/"} {
		cf := filepath.Join(dir, "Caddyfile")
		content := "{\n\tkratos {\n\t\tpublic_url http://127.0.0.1:1/\n\t\tallowed_return_urls " + u + "\n\t}\n}\n"
		if err := os.WriteFile(cf, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binPath, "adapt", "--config", cf, "--adapter", "caddyfile").CombinedOutput()
		if err == nil {
			t.Errorf("allowed_return_urls %s: adapt succeeded, want a config error", u)
			continue
		}
		if want := "is never allowed as a return URL, at " + cf + ":4"; !strings.Contains(string(out), want) {
			t.Errorf("allowed_return_urls %s: output %q lacks %q", u, out, want)
		}
	}
}
