package session

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// whoami's answer without encoding/json on the hot path: the session and
// its identity are appended by hand into a pooled buffer. The bytes are
// exactly what json.Marshal(m.SessionJSON(s, m.IdentityJSON(r, ident)))
// produces (TestWhoamiJSONMatchesEncodingJSON); values the appenders do not
// handle themselves (strings that need escaping, traits or metadata that
// are not compact plain ASCII JSON) go through encoding/json.

// whoamiBuf is the scratch memory of one whoami answer.
type whoamiBuf struct{ identity, out []byte }

var whoamiBufPool = sync.Pool{New: func() any {
	return &whoamiBuf{identity: make([]byte, 0, 1024), out: make([]byte, 0, 2048)}
}}

// writeWhoami answers 200 with the session and its identity.
func (m *Manager) writeWhoami(w http.ResponseWriter, r *http.Request, s *sessionstore.Session, ident *sessionstore.Identity) {
	buf := whoamiBufPool.Get().(*whoamiBuf)
	defer func() {
		if cap(buf.identity) <= 64<<10 && cap(buf.out) <= 64<<10 {
			whoamiBufPool.Put(buf)
		}
	}()
	idJSON, ok := m.appendIdentityJSON(buf.identity[:0], r, ident)
	if ok {
		buf.identity = idJSON
	} else {
		enc, err := json.Marshal(m.IdentityJSON(r, ident))
		if err != nil {
			wire.WriteError(w, r, wire.StoreError(err, "unable to encode response"))
			return
		}
		idJSON = enc
	}
	buf.out = appendSessionJSON(buf.out[:0], s, m.Active(s), idJSON)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.out)
}

// appendIdentityJSON appends the identityWire encoding of ident. False
// when a value needs encoding/json (traits or metadata that are not
// compact plain ASCII JSON).
func (m *Manager) appendIdentityJSON(b []byte, r *http.Request, ident *sessionstore.Identity) ([]byte, bool) {
	traits, metadata := []byte(ident.Traits), []byte(ident.MetadataPublic)
	if len(traits) == 0 {
		traits = []byte("{}")
	}
	if len(metadata) == 0 {
		metadata = []byte("null")
	}
	if !plainCompactJSON(traits) || !plainCompactJSON(metadata) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, ident.ID)
	b = append(b, `,"schema_id":`...)
	b = appendJSONString(b, ident.SchemaID)
	b = append(b, `,"schema_url":`...)
	base := m.urls.Base()
	if !plainJSONString(base) {
		return b, false
	}
	b = append(b, '"')
	b = append(b, base...)
	b = append(b, "schemas/"...)
	b = base64.RawURLEncoding.AppendEncode(b, []byte(ident.SchemaID))
	b = append(b, `","state":`...)
	b = appendJSONString(b, ident.State)
	b = append(b, `,"state_changed_at":`...)
	b = appendJSONTime(b, ident.StateChangedAt)
	b = append(b, `,"traits":`...)
	b = append(b, traits...)
	b = append(b, `,"verifiable_addresses":[`...)
	for i, a := range ident.VerifiableAddresses {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, a.ID)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, a.Value)
		b = append(b, `,"verified":`...)
		b = strconv.AppendBool(b, a.Verified)
		b = append(b, `,"via":`...)
		b = appendJSONString(b, a.Via)
		b = append(b, `,"status":`...)
		b = appendJSONString(b, a.Status)
		if a.VerifiedAt != nil {
			b = append(b, `,"verified_at":`...)
			b = appendJSONTime(b, *a.VerifiedAt)
		}
		b = append(b, `,"created_at":`...)
		b = appendJSONTime(b, a.CreatedAt)
		b = append(b, `,"updated_at":`...)
		b = appendJSONTime(b, a.UpdatedAt)
		b = append(b, '}')
	}
	b = append(b, `],"recovery_addresses":[`...)
	for i, a := range ident.RecoveryAddresses {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, a.ID)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, a.Value)
		b = append(b, `,"via":`...)
		b = appendJSONString(b, a.Via)
		b = append(b, `,"created_at":`...)
		b = appendJSONTime(b, a.CreatedAt)
		b = append(b, `,"updated_at":`...)
		b = appendJSONTime(b, a.UpdatedAt)
		b = append(b, '}')
	}
	b = append(b, `],"metadata_public":`...)
	b = append(b, metadata...)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, ident.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, ident.UpdatedAt)
	return append(b, `,"organization_id":null}`...), true
}

// plainCompactJSON reports whether raw JSON would come out of
// encoding/json unchanged: printable ASCII without <, > and &, and no
// whitespace outside strings. (The store only holds valid JSON.)
func plainCompactJSON(raw []byte) bool {
	inString, escaped := false, false
	for _, c := range raw {
		if c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == ' ':
			return false
		}
	}
	return true
}

// plainJSONString reports whether s needs no escaping in a JSON string.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
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
		if m.Provider != "" {
			b = append(b, `,"provider":`...)
			b = appendJSONString(b, m.Provider)
		}
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
