package flows

import (
	"net/http"
	"net/url"
	"strings"
)

// CORS for single-page apps on other origins, as Kratos's serve.public.cors
// (github.com/rs/cors with allow_credentials): listed origins get their
// Origin echoed with credentials allowed; "*" lets any other origin in with
// a literal "*" and never with credentials (rs/cors does the same, and
// browsers refuse credentials with "*"), so a page on any site cannot make
// requests with the user's session cookie and read the answers. A preflight
// is answered here with 204 because the mux has no OPTIONS routes; other
// origins get no CORS headers at all (a preflight from them is still
// answered 204, as rs/cors does, but the browser then refuses the request).

var (
	corsMethods        = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	corsAllowedHeaders = []string{"Authorization", "Content-Type", "X-Session-Token", "X-CSRF-Token", "Cookie"}
	corsExposedHeaders = "Content-Type, Set-Cookie"
)

// cors adds the CORS headers to r's answer. It reports true when r was a
// preflight and has been answered.
func (e *Engine) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(e.cfg.CORSAllowedOrigins) == 0 {
		return false
	}
	origin := r.Header.Get("Origin")
	h := w.Header()
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Origin")
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		method := strings.ToUpper(strings.TrimSpace(r.Header.Get("Access-Control-Request-Method")))
		if allow := e.corsAllow(origin); allow != corsDenied && corsMethodAllowed(method) {
			if reqHeaders, ok := corsHeadersAllowed(r.Header.Values("Access-Control-Request-Headers")); ok {
				setCORSOrigin(h, origin, allow)
				h.Set("Access-Control-Allow-Methods", method)
				if reqHeaders != "" {
					h.Set("Access-Control-Allow-Headers", reqHeaders)
				}
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	h.Add("Vary", "Origin")
	allow := e.corsAllow(origin)
	if allow == corsDenied || !corsMethodAllowed(r.Method) && r.Method != http.MethodHead {
		return false
	}
	setCORSOrigin(h, origin, allow)
	h.Set("Access-Control-Expose-Headers", corsExposedHeaders)
	return false
}

// corsAccess is what the configuration grants an origin.
type corsAccess int

const (
	corsDenied      corsAccess = iota
	corsAny                    // by "*": a literal "*", no credentials
	corsCredentials            // listed: the origin echoed, with credentials
)

// setCORSOrigin sets Access-Control-Allow-Origin (and -Credentials) for
// an allowed origin.
func setCORSOrigin(h http.Header, origin string, allow corsAccess) {
	if allow == corsAny {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
}

// corsAllow matches origin against the configured origins: exact
// (case-insensitive, trailing slash ignored) or one wildcard in the host,
// e.g. https://*.example.com, allow it with credentials; "*" allows any
// other origin without them. "null" and an empty origin are never allowed.
func (e *Engine) corsAllow(origin string) corsAccess {
	origin = strings.ToLower(strings.TrimSuffix(origin, "/"))
	if origin == "" || origin == "null" {
		return corsDenied
	}
	access := corsDenied
	for _, allowed := range e.cfg.CORSAllowedOrigins {
		a := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(allowed), "/"))
		switch {
		case a == "*":
			access = corsAny
		case a == origin:
			return corsCredentials
		case strings.Contains(a, "*"):
			prefix, suffix, _ := strings.Cut(a, "*")
			if len(origin) > len(prefix)+len(suffix) && strings.HasPrefix(origin, prefix) && strings.HasSuffix(origin, suffix) {
				// The wildcard stands for host labels only.
				mid := origin[len(prefix) : len(origin)-len(suffix)]
				if !strings.ContainsAny(mid, "/:@?#") {
					return corsCredentials
				}
			}
		}
	}
	return access
}

func corsMethodAllowed(m string) bool {
	for _, x := range corsMethods {
		if x == m {
			return true
		}
	}
	return false
}

// corsHeadersAllowed checks the requested headers (comma-separated, maybe
// over several header lines) and returns them canonicalized.
func corsHeadersAllowed(values []string) (string, bool) {
	var out []string
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			canon := http.CanonicalHeaderKey(name)
			ok := false
			for _, a := range corsAllowedHeaders {
				if strings.EqualFold(a, canon) {
					ok = true
					break
				}
			}
			if !ok {
				return "", false
			}
			out = append(out, canon)
		}
	}
	return strings.Join(out, ", "), true
}

// ValidCORSOrigin reports whether s is an acceptable CORS origin setting:
// "*", or scheme://host[:port] with at most one * in the host and no path.
func ValidCORSOrigin(s string) bool {
	if s == "*" {
		return true
	}
	s = strings.TrimSuffix(s, "/")
	if strings.Count(s, "*") > 1 {
		return false
	}
	u, err := url.Parse(strings.Replace(s, "*", "wildcard", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && !strings.HasSuffix(s, "?")
}
