package ui

import (
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/locale"
)

func TestDescribeUserAgent(t *testing.T) {
	en := locale.Builtin().Localizer(locale.English, nil, time.Now())
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36":                     "Chrome on Linux",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15": "Safari on macOS",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0":                                      "Firefox on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile":   "Safari on iOS",
		"curl/8.4.0":         "curl",
		"caddy-kratos-e2e/1": "caddy-kratos-e2e",
	} {
		if got := describeUserAgent(en, ua); got != want {
			t.Errorf("%q: %q, want %q", ua, got, want)
		}
	}
	de := locale.Builtin().Localizer("de", nil, time.Now())
	if got := describeUserAgent(de, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"); got != "Chrome unter Linux" {
		t.Errorf("German: %q", got)
	}
}
