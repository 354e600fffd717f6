package flows

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// whoami's answer without encoding/json on the hot path: the identity's
// JSON is encoded once per stored version of the identity (identityViews,
// keyed by the shared *Identity of the store's cache) and the session is
// appended by hand into a pooled buffer. The bytes are exactly what
// json.Marshal(e.sessionJSON(s, e.identityJSON(r, ident))) produces
// (TestWhoamiJSONMatchesEncodingJSON).

// identityViews caches per identity what the hot paths derive from it: the
// frontend JSON and the decoded traits. An entry is valid while the store
// hands out the same *Identity (UpdateIdentity replaces it), so it never
// serves stale data. Bounded (32768 identities); eviction is random.
type identityViews struct {
	m boundedMap[*identityView]
}

// identityView is what is derived from one stored version of an identity.
type identityView struct {
	ident *sessionstore.Identity

	jsonMu   sync.Mutex
	jsonBase string // public base URL the JSON was made for
	json     []byte

	traitsOnce sync.Once
	traits     map[string]any
	traitsErr  error
}

// get returns the view of ident, creating it if the cached one is of
// another version.
func (v *identityViews) get(ident *sessionstore.Identity) *identityView {
	if iv, ok := v.m.load(ident.ID); ok && iv.ident == ident {
		return iv
	}
	iv := &identityView{ident: ident}
	v.m.store(ident.ID, iv)
	return iv
}

// identityJSONBytes is json.Marshal(e.identityJSON(r, ident)), cached.
func (e *Engine) identityJSONBytes(r *http.Request, ident *sessionstore.Identity) ([]byte, error) {
	iv := e.gate.views.get(ident)
	base := ""
	if e.base == nil {
		base = e.baseURL(r) // derived per request: part of the key
	}
	iv.jsonMu.Lock()
	defer iv.jsonMu.Unlock()
	if iv.json != nil && iv.jsonBase == base {
		return iv.json, nil
	}
	b, err := json.Marshal(e.identityJSON(r, ident))
	if err != nil {
		return nil, err
	}
	iv.json, iv.jsonBase = b, base
	return b, nil
}

var whoamiBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// writeWhoami answers 200 with the session and its identity.
func (e *Engine) writeWhoami(w http.ResponseWriter, r *http.Request, s *sessionstore.Session, ident *sessionstore.Identity) {
	idJSON, err := e.identityJSONBytes(r, ident)
	if err != nil {
		writeError(w, r, errInternal("unable to encode response"))
		return
	}
	bp := whoamiBufPool.Get().(*[]byte)
	b := appendSessionJSON((*bp)[:0], s, e.sessionActive(s), idJSON)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b) // #nosec G705 -- a JSON body with Content-Type application/json, not HTML
	if cap(b) <= 64<<10 {
		*bp = b
		whoamiBufPool.Put(bp)
	}
}

// appendSessionJSON appends the sessionWire encoding of s with the
// identity's JSON (already encoded) in its place.
func appendSessionJSON(b []byte, s *sessionstore.Session, active bool, identity []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"active":`...)
	b = strconv.AppendBool(b, active)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTime(b, s.ExpiresAt)
	b = append(b, `,"authenticated_at":`...)
	b = appendJSONTime(b, s.AuthenticatedAt)
	b = append(b, `,"authenticator_assurance_level":`...)
	b = appendJSONString(b, s.AAL)
	b = append(b, `,"authentication_methods":[`...)
	for i, m := range s.AuthenticationMethods {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"method":`...)
		b = appendJSONString(b, m.Method)
		b = append(b, `,"aal":`...)
		b = appendJSONString(b, m.AAL)
		b = append(b, `,"completed_at":`...)
		b = appendJSONTime(b, m.CompletedAt)
		b = append(b, '}')
	}
	b = append(b, `],"issued_at":`...)
	b = appendJSONTime(b, s.IssuedAt)
	b = append(b, `,"identity":`...)
	if identity == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, identity...)
	}
	b = append(b, `,"devices":[`...)
	for i, d := range s.Devices {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, d.ID)
		b = append(b, `,"ip_address":`...)
		b = appendJSONStringPtr(b, d.IPAddress)
		b = append(b, `,"user_agent":`...)
		b = appendJSONStringPtr(b, d.UserAgent)
		b = append(b, `,"location":`...)
		b = appendJSONString(b, d.Location)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as encoding/json does: plain ASCII is copied,
// anything that needs escaping (quotes, controls, <>&, non-ASCII) takes
// encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, err := json.Marshal(s)
			if err != nil {
				return append(b, `""`...)
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendJSONStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *s)
}

// appendJSONTime appends t as time.Time.MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		enc, err := json.Marshal(t)
		if err != nil {
			return append(b, "null"...)
		}
		return append(b, enc...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
