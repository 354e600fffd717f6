package flow

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// A native app's deep link (a custom scheme) is a return URL only as
// listed: same scheme, same host, path under the listed one; unsafe schemes
// never, whatever the list says.
func TestReturnToCustomSchemes(t *testing.T) {
	e := &Kernel{urls: wire.NewURLs("https://auth.example.com/", "/ui/", nil, "https://app.example.com/")}
	for _, s := range []string{"https://app.example.com/", "exp://example.com/my-app", "com.example.app://callback/"} {
		if err := CheckAllowedReturnURL(s); err != nil {
			t.Fatalf("CheckAllowedReturnURL(%q) = %v", s, err)
		}
		u, _ := url.Parse(s)
		e.allowed = append(e.allowed, u)
	}
	r := httptest.NewRequest("GET", "https://auth.example.com/self-service/login/browser", nil)
	for _, s := range []string{
		"exp://example.com/my-app",
		"exp://example.com/my-app/done?x=1",
		"EXP://EXAMPLE.COM/my-app",
		"com.example.app://callback/",
		"com.example.app://callback/x",
	} {
		if got, err := e.ValidateReturnTo(r, s); err != nil || got == "" {
			t.Errorf("validateReturnTo(%q) refused: %v", s, err)
		}
	}
	for _, s := range []string{
		"exp://evil.example/",
		"exp://example.com.evil.example/my-app",
		"exp://example.com/my-apple",
		"exp://example.com/",
		"exp://user@example.com/my-app",
		"exp:/my-app",
		"exp:example.com/my-app",
		"other://example.com/my-app",
		"exps://example.com/my-app",
		"javascript://example.com/my-app%0aalert(1)",
		"javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"com.example.app://evil/",
	} {
		if got, err := e.ValidateReturnTo(r, s); err == nil {
			t.Errorf("validateReturnTo(%q) = %q, want return_to_forbidden", s, got)
		} else if err.ID != "self_service_flow_return_to_forbidden" {
			t.Errorf("validateReturnTo(%q): error id %q", s, err.ID)
		}
	}
}

func TestCheckAllowedReturnURL(t *testing.T) {
	for s, want := range map[string]string{
		"javascript://example.com/":   "javascript: scheme is never allowed",
		"JavaScript://example.com/":   "javascript: scheme is never allowed",
		"data://example.com/":         "data: scheme is never allowed",
		"vbscript://example.com/":     "vbscript: scheme is never allowed",
		"file:///etc/passwd":          "file: scheme is never allowed",
		"blob://example.com/x":        "blob: scheme is never allowed",
		"javascript:alert(1)":         "javascript: scheme is never allowed",
		"exp:/my-app":                 "missing host",
		"exp:my-app":                  "missing host",
		"exp://*.example.com/my-app":  "without wildcard hosts",
		"exp://u:p@example.com/":      "user info",
		"example.com/my-app":          "must be absolute",
		"/relative":                   "must be absolute",
		"https://":                    "missing host",
		"ht tp://example.com/":        "invalid URL",
		"exp://example.com/my-app":    "",
		"https://*.example.com/":      "",
		"http://127.0.0.1:8080/x":     "",
		"my.app-1+x://host:19000/--/": "",
	} {
		err := CheckAllowedReturnURL(s)
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckAllowedReturnURL(%q) = %v, want nil", s, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckAllowedReturnURL(%q) = %v, want an error containing %q", s, err, want)
		}
	}
}
