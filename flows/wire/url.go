package wire

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// URLs are the engine's public addresses. Every one is built from the
// configured public URL, never from a request (its Host header and
// X-Forwarded-* are the client's choice): links in mails, redirects, flow
// actions and schema URLs point where the operator says.
type URLs struct {
	base          string
	uiPrefix      string
	ui            map[string]string
	defaultReturn string
}

// NewURLs returns the URLs under base (an absolute URL with a trailing
// slash). uiPrefix is the path of the built-in pages, ui the configured
// UI page per flow kind (login, …, error), defaultReturn
// selfservice.default_browser_return_url (empty: base).
func NewURLs(base, uiPrefix string, ui map[string]string, defaultReturn string) *URLs {
	return &URLs{base: base, uiPrefix: uiPrefix, ui: ui, defaultReturn: defaultReturn}
}

// Base is the public base URL with a trailing slash.
func (u *URLs) Base() string { return u.base }

// Public joins the public base and a path (a leading slash is dropped).
func (u *URLs) Public(path string) string {
	return u.base + strings.TrimPrefix(path, "/")
}

// Schema is the public getIdentitySchema URL of an identity schema (its
// id in base64url, as Kratos's schema_url).
func (u *URLs) Schema(id string) string {
	return u.Public("schemas/" + base64.RawURLEncoding.EncodeToString([]byte(id)))
}

// UI is the configured UI page of a flow kind, or the built-in page.
func (u *URLs) UI(kind string) string {
	if s, ok := u.ui[kind]; ok && s != "" {
		return s
	}
	return u.Public(u.uiPrefix + kind)
}

// DefaultReturn is where finished browser flows go without a return_to.
func (u *URLs) DefaultReturn() string {
	if u.defaultReturn != "" {
		return u.defaultReturn
	}
	return u.base
}

// Request rebuilds the absolute URL of r on the public base.
func (u *URLs) Request(r *http.Request) string {
	return strings.TrimSuffix(u.base, "/") + r.URL.RequestURI()
}

// WithQuery appends query parameters (key, value, …) to a URL string.
func WithQuery(u string, kv ...string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// Redirect answers a redirect. Like net/http's Redirect (which Kratos
// uses), only GET and HEAD get the small HTML body; a form post's 303 has
// none.
func Redirect(w http.ResponseWriter, r *http.Request, code int, to string) {
	w.Header().Set("Location", to)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<a href=\"%s\">%s</a>.\n\n", HTMLEscape(to), http.StatusText(code)) // #nosec G705 -- the only interpolated value is escaped by HTMLEscape
}

// HTMLEscape escapes s for HTML text and attribute values.
func HTMLEscape(s string) string {
	return htmlEscaper.Replace(s)
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
