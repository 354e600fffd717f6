package flows

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// Native fuzz targets for everything that parses untrusted input. Seed
// corpora live in testdata/fuzz/<Target>/ and CI runs each target briefly
// (test.sh). Each target asserts the parser's contract, not just "no
// panic".

func FuzzReturnTo(f *testing.F) {
	e := &kernel{urls: wire.NewURLs("https://auth.example.com/", "/ui/", nil, "https://app.example.com/")}
	for _, s := range []string{"https://app.example.com/x", "https://auth.example.com/self-service/x", "//evil.com", "/\\evil.com",
		"https://evil.com", "javascript:alert(1)", "https://auth.example.com@evil.com/", "https:evil.com", "\\\\evil.com",
		"https://auth.example.com.evil.com/", "%2F%2Fevil.com", "/relative/path", "HTTPS://AUTH.EXAMPLE.COM/ok"} {
		f.Add(s)
	}
	allowed, _ := parseBaseURL("https://app.example.com/")
	e.allowed = append(e.allowed, allowed)
	f.Fuzz(func(t *testing.T, s string) {
		r := httptest.NewRequest("GET", "https://auth.example.com/self-service/login/browser", nil)
		got, err := e.validateReturnTo(r, s)
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
