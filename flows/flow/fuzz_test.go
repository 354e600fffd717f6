package flow

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

func FuzzReturnTo(f *testing.F) {
	e := &Kernel{urls: wire.NewURLs("https://auth.example.com/", "/ui/", nil, "https://app.example.com/")}
	for _, s := range []string{"https://app.example.com/x", "https://auth.example.com/self-service/x", "//evil.com", "/\\evil.com",
		"https://evil.com", "javascript:alert(1)", "https://auth.example.com@evil.com/", "https:evil.com", "\\\\evil.com",
		"https://auth.example.com.evil.com/", "%2F%2Fevil.com", "/relative/path", "HTTPS://AUTH.EXAMPLE.COM/ok"} {
		f.Add(s)
	}
	allowed, _ := url.Parse("https://app.example.com/")
	e.allowed = append(e.allowed, allowed)
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "https://auth.example.com/self-service/login/browser", nil)
		got, err := e.ValidateReturnTo(r, s)
		if err != nil || got == "" {
			return
		}
		// Whatever was accepted must point at an allowed host over http(s).
		u, perr := parseAbs(got)
		if perr != nil {
			t.Fatalf("accepted unparsable %q -> %q", s, got)
		}
		host := strings.ToLower(u.Host)
		if host != "app.example.com" && host != "auth.example.com" {
			t.Fatalf("open redirect: %q -> %q (host %q)", s, got, host)
		}
		if u.Scheme != "https" {
			t.Fatalf("scheme changed: %q -> %q", s, got)
		}
	})
}

func parseAbs(s string) (*struct{ Scheme, Host string }, error) {
	req, err := http.NewRequest("GET", s, nil)
	if err != nil {
		return nil, err
	}
	return &struct{ Scheme, Host string }{req.URL.Scheme, req.URL.Host}, nil
}

func TestIPSubjectAggregatesIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"::ffff:192.0.2.7":          "192.0.2.7",
		"2001:db8:1:2::1":           "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":           "2001:db8:1:3::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not-an-ip":                 "not-an-ip",
	} {
		if got := ipSubject(in); got != want {
			t.Errorf("ipSubject(%q) = %q, want %q", in, got, want)
		}
	}
}
