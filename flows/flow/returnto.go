package flow

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// unsafeReturnSchemes run code, show local or in-memory data, or reach
// browser internals when a browser or app follows the redirect: they are
// never a return URL, whatever the allow-list says.
var unsafeReturnSchemes = map[string]bool{
	"javascript": true, "vbscript": true, "livescript": true, "mocha": true,
	"data": true, "file": true, "blob": true, "filesystem": true,
	"about": true, "view-source": true, "jar": true, "resource": true,
	"chrome": true, "chrome-extension": true, "moz-extension": true, "ms-appx": true,
}

// isHTTPScheme reports whether scheme is http or https (url.Parse lowers
// the scheme).
func isHTTPScheme(scheme string) bool { return scheme == "http" || scheme == "https" }

// CustomScheme reports whether scheme is a native app's custom scheme a
// return URL may use (not http(s), not one of the unsafe schemes).
func CustomScheme(scheme string) bool {
	return scheme != "" && !isHTTPScheme(scheme) && !unsafeReturnSchemes[scheme]
}

// CheckAllowedReturnURL checks an entry of allowed_return_urls: an
// absolute http(s) URL (its host may be a *.example.com wildcard), or a
// custom-scheme URL with a host such as exp://example.com/my-app, the deep
// link of a native app (Kratos allows any scheme). Custom schemes match
// only as listed: no wildcard host, and never one of the schemes that run
// code or show local data (javascript:, data:, file:, blob:, …).
func CheckAllowedReturnURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", s, err)
	}
	switch {
	case u.Scheme == "":
		return fmt.Errorf("invalid URL %q: must be absolute (https://… or a native app's scheme://host/…)", s)
	case unsafeReturnSchemes[u.Scheme]:
		return fmt.Errorf("invalid URL %q: the %s: scheme is never allowed as a return URL", s, u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("invalid URL %q: missing host (write scheme://host/path)", s)
	case u.User != nil:
		return fmt.Errorf("invalid URL %q: must not contain user info", s)
	case !isHTTPScheme(u.Scheme) && strings.Contains(u.Host, "*"):
		return fmt.Errorf("invalid URL %q: a custom scheme matches only as listed, without wildcard hosts", s)
	}
	return nil
}

// ValidateReturnTo applies security.md §6: an absolute URL whose scheme and
// host match an allowed entry (exact, or *.suffix for http(s)) and whose
// path starts with the entry's path. Allowed: the configured list, the
// public URL's /self-service path, and (our addition) the public URL's own
// origin. Relative values inherit scheme and host from the default return
// URL. A custom scheme (a native app's deep link, exp://…) can only match
// an allow-list entry of that scheme; unsafe schemes never match.
func (k *Kernel) ValidateReturnTo(r *http.Request, raw string) (string, *wire.Error) {
	if raw == "" {
		return "", nil
	}
	if len(raw) > 2048 || strings.ContainsAny(raw, "\\\x00\r\n\t") {
		return "", wire.ReturnToForbidden(raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", wire.ReturnToForbidden(raw)
	}
	if u.Scheme == "" && u.Host == "" {
		if strings.HasPrefix(raw, "//") || !strings.HasPrefix(u.Path, "/") {
			return "", wire.ReturnToForbidden(raw)
		}
		def, err := url.Parse(k.urls.DefaultReturn())
		if err != nil {
			return "", wire.ReturnToForbidden(raw)
		}
		u.Scheme, u.Host = def.Scheme, def.Host
	}
	if u.Host == "" || unsafeReturnSchemes[u.Scheme] {
		return "", wire.ReturnToForbidden(raw)
	}
	base, _ := url.Parse(k.urls.Base())
	candidates := append([]*url.URL{}, k.allowed...)
	candidates = append(candidates, &url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/"})
	for _, a := range candidates {
		if matchReturnTo(a, u) {
			return u.String(), nil
		}
	}
	return "", wire.ReturnToForbidden(raw)
}

func matchReturnTo(a, u *url.URL) bool {
	if !strings.EqualFold(a.Scheme, u.Scheme) {
		return false
	}
	ah, uh := strings.ToLower(a.Host), strings.ToLower(u.Host)
	if strings.HasPrefix(ah, "*.") {
		suffix := ah[1:]
		if !strings.HasSuffix(uh, suffix) || len(uh) <= len(suffix) || strings.Count(ah, ".") < 2 {
			return false
		}
	} else if ah != uh {
		return false
	}
	ap := a.Path
	if ap == "" {
		ap = "/"
	}
	up := u.Path
	if up == "" {
		up = "/"
	}
	if !strings.HasPrefix(up, ap) {
		return false
	}
	// A prefix must end at a path segment boundary ("/app" allows "/app/x",
	// not "/apple").
	return strings.HasSuffix(ap, "/") || len(up) == len(ap) || up[len(ap)] == '/' || up[len(ap)] == '?'
}
