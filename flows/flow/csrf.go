package flow

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// CSRFFromCookie returns the raw CSRF token of the request's first
// well-formed CSRF cookie, or nil.
func (k *Kernel) CSRFFromCookie(r *http.Request) []byte {
	var tok []byte
	k.eachCSRFCookie(r, func(t []byte) bool {
		tok = t
		return false
	})
	return tok
}

// eachCSRFCookie calls fn with the raw token of every well-formed CSRF
// cookie of the request, in order, until fn returns false. Several arrive
// when one was set for a parent domain too (tossed from a sibling
// subdomain): checkCSRF accepts the request when any of them matches, so
// a planted cookie cannot make the real one fail.
func (k *Kernel) eachCSRFCookie(r *http.Request, fn func(tok []byte) bool) {
	token.EachCookie(r.Header, k.csrfName, func(v string) bool {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != 32 {
			return true
		}
		return fn(b)
	})
}

// EnsureCSRF returns the request's CSRF token, issuing a new cookie when it
// has none (Kratos does this on every non-exempt GET).
func (k *Kernel) EnsureCSRF(w http.ResponseWriter, r *http.Request) []byte {
	if t := k.CSRFFromCookie(r); t != nil {
		return t
	}
	return k.IssueCSRF(w, r)
}

// IssueCSRF sets a fresh CSRF cookie (also used to regenerate it on login
// and logout).
func (k *Kernel) IssueCSRF(w http.ResponseWriter, r *http.Request) []byte {
	t := token.RandomBytes(32)
	secure := k.secureCookies(r)
	same := k.cfg.CookieSameSite
	if !secure && same == http.SameSiteNoneMode {
		same = http.SameSiteLaxMode
	}
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- HttpOnly and SameSite are set; Secure is off only in dev mode over plain http (kratos --dev)
		Name:     k.csrfName,
		Value:    base64.StdEncoding.EncodeToString(t),
		Path:     k.cfg.CookiePath,
		Domain:   k.cfg.CookieDomain,
		MaxAge:   int((365 * 24 * time.Hour).Seconds()),
		HttpOnly: true,
		Secure:   secure,
		SameSite: same,
	})
	return t
}

// secureCookies: Secure unless dev mode over plain http (__Host- cookies
// are always Secure).
func (k *Kernel) secureCookies(*http.Request) bool { return k.cfg.Secure }

// Reject reasons, Kratos's texts.
const (
	csrfNoCookieHeader = "The HTTP Cookie Header was not set. Please ensure that the cookie header is set in the request."
	csrfCookieMissing  = "The HTTP Cookie Header was set but did not include the anti-CSRF cookie. We recommend deleting all cookies for this domain and retrying the flow."
	CSRFMismatch       = "The HTTP Cookie Header was set and a CSRF token was sent but they do not match. We recommend deleting all cookies for this domain and retrying the flow."
)

// CheckCSRF is EnsureCSRF for a browser flow submit: the token from the
// body (or X-CSRF-Token) must match the cookie, and the cookie must match
// the token the flow was created with.
func (k *Kernel) CheckCSRF(r *http.Request, f *Flow, bodyToken string) *wire.Error {
	if r.Header.Get("Cookie") == "" {
		return wire.CSRFViolation(csrfNoCookieHeader)
	}
	if k.CSRFFromCookie(r) == nil {
		return wire.CSRFViolation(csrfCookieMissing)
	}
	if bodyToken == "" {
		bodyToken = r.Header.Get("X-CSRF-Token")
	}
	if bodyToken == "" {
		return wire.CSRFViolation(CSRFMismatch)
	}
	sent, err := token.UnmaskCSRF(bodyToken)
	if err != nil {
		return wire.CSRFViolation(CSRFMismatch)
	}
	// One cookie must match both the submitted token and the token the
	// flow was created with.
	ok := false
	k.eachCSRFCookie(r, func(cookie []byte) bool {
		ok = token.Equal(sent, cookie) && (len(f.CSRFToken) == 0 || token.Equal(f.CSRFToken, cookie))
		return !ok
	})
	if !ok {
		return wire.CSRFViolation(CSRFMismatch)
	}
	return nil
}

// HoldsCSRF reports whether the request carries a CSRF cookie that is
// the browser flow's own token: only such a request may read the flow with
// its csrf_token value.
func (k *Kernel) HoldsCSRF(r *http.Request, f *Flow) bool {
	if len(f.CSRFToken) == 0 {
		return false
	}
	ok := false
	k.eachCSRFCookie(r, func(cookie []byte) bool {
		ok = token.Equal(cookie, f.CSRFToken)
		return !ok
	})
	return ok
}

// checkAPIRequest is EnsureCSRF for an API flow submit: no Origin header
// and no cookies except Cloudflare's.
func checkAPIRequest(r *http.Request) *wire.Error {
	if r.Header.Get("Origin") != "" {
		return wire.BadRequest("The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF). The request contained an HTTP Origin header indicating that it was made by a Browser. This flow was however initiated as an API request. Use the Browser flow for browser-based requests.")
	}
	var found []string
	for _, c := range r.Cookies() {
		n := c.Name
		if strings.HasPrefix(n, "__cf") || strings.HasPrefix(n, "_cf") || strings.HasPrefix(n, "cf_") {
			continue
		}
		found = append(found, n)
	}
	if len(found) > 0 {
		return wire.BadRequest("The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF). The request contained HTTP Cookies indicating that it was made by a Browser. This flow was however initiated as an API request. Use the Browser flow for browser-based requests.").
			WithDetail("found cookies", found)
	}
	return nil
}

// ContinuityCookie is the cookie that binds a social sign-in's callback
// to the browser that started it (Kratos's ory_kratos_continuity).
const ContinuityCookie = "ory_kratos_continuity"

// SetContinuity sets (maxAge > 0) or clears the continuity cookie with the
// session cookie's domain and path. It is SameSite=Lax whatever the
// session cookie's setting: the provider sends the browser back with a
// cross-site top-level GET, which Lax cookies ride along and Strict ones
// do not.
func (k *Kernel) SetContinuity(w http.ResponseWriter, value string, maxAge int) {
	if maxAge <= 0 {
		value, maxAge = "", -1
	}
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- HttpOnly and SameSite are set; Secure is off only in dev mode over plain http (kratos --dev)
		Name:     ContinuityCookie,
		Value:    value,
		Path:     k.cfg.CookiePath,
		Domain:   k.cfg.CookieDomain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   k.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	})
}
