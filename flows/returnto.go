package flows

import (
	"net/http"
	"net/url"
	"strings"
)

// validateReturnTo applies security.md §6: an absolute http(s) URL whose
// scheme and host match an allowed entry (exact, or *.suffix) and whose path
// starts with the entry's path. Allowed: the configured list, the public
// URL's /self-service path, and (our addition) the public URL's own origin.
// Relative values inherit scheme and host from the default return URL.
func (e *Engine) validateReturnTo(r *http.Request, raw string) (string, *Error) {
	if raw == "" {
		return "", nil
	}
	if len(raw) > 2048 || strings.ContainsAny(raw, "\\\x00\r\n\t") {
		return "", errReturnToForbidden(raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", errReturnToForbidden(raw)
	}
	if u.Scheme == "" && u.Host == "" {
		if strings.HasPrefix(raw, "//") || !strings.HasPrefix(u.Path, "/") {
			return "", errReturnToForbidden(raw)
		}
		def, err := url.Parse(e.defaultReturnURL(r))
		if err != nil {
			return "", errReturnToForbidden(raw)
		}
		u.Scheme, u.Host = def.Scheme, def.Host
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", errReturnToForbidden(raw)
	}
	base, _ := url.Parse(e.baseURL(r))
	candidates := append([]*url.URL{}, e.allowed...)
	candidates = append(candidates, &url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/"})
	for _, a := range candidates {
		if matchReturnTo(a, u) {
			return u.String(), nil
		}
	}
	return "", errReturnToForbidden(raw)
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
