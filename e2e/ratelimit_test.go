package e2e

import (
	"net/http"
	"strconv"
	"testing"

	ory "github.com/ory/client-go"
)

// TestRateLimitFailedLogins: with a limit of 3 failures per identifier,
// three wrong passwords are answered 400, the fourth guess is refused
// (429, not evaluated), then even the right password is answered 429 with
// Retry-After in Kratos's error shape,
// while another identifier is unaffected. Limits are on by default; this
// instance only lowers one.
func TestRateLimitFailedLogins(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"registration_style unified", "rate_limits {\n\t\t\tlogin_failures_per_identifier 3\n\t\t}"}})
	u := registerNative(t, in)
	c := in.api()
	attempt := func(identifier, password string) (*http.Response, []byte) {
		f, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(
			ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(identifier, "password", password))).Execute()
		if resp == nil {
			t.Fatal(err)
		}
		var body []byte
		if err != nil {
			body = sdkErrBody(t, err)
		}
		return resp, body
	}
	for i := 0; i < 3; i++ {
		resp, body := attempt(u.Email, "wrong-"+randHex(6))
		if resp.StatusCode != 400 || !containsID(decodeFlow(t, body).messageIDs(), 4000006) {
			t.Fatalf("failure %d: %d %s", i, resp.StatusCode, clip(body))
		}
	}
	if resp, body := attempt(u.Email, "wrong-"+randHex(6)); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth guess at limit 3: %d %s, want 429", resp.StatusCode, clip(body))
	}
	resp, body := attempt(u.Email, u.Password)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("blocked identifier with the right password: %d %s", resp.StatusCode, clip(body))
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if e := decodeError(t, http.StatusTooManyRequests, body); e.Error.Code != 429 || e.Error.Message == "" {
		t.Fatalf("429 body: %s", clip(body))
	}
	other := registerNative(t, in)
	loginNative(t, in, other.Email, other.Password)
}
