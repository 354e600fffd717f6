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

// jsonContentType is the Content-Type of Kratos's JSON answers.
const jsonContentType = "application/json; charset=utf-8"

// whoamiBuf is the scratch memory of one whoami answer.
type whoamiBuf struct{ identity, out []byte }

var whoamiBufPool = sync.Pool{New: func() any {
	return &whoamiBuf{identity: make([]byte, 0, 1024), out: make([]byte, 0, 2048)}
}}

// writeWhoami answers 200 with the session and its identity (active: the
// session's "active" at the request's time), and Cache-Control when
// noCache is set.
func (m *Manager) writeWhoami(w http.ResponseWriter, r *http.Request, s *sessionstore.Session, ident *sessionstore.Identity, active, noCache bool) {
	// The answer's headers share one backing array, their only
	// allocation; each value slice is capped at 1 so that an append
	// elsewhere copies. It is the request's own: the access log reads the
	// headers after the handler returns and Caddy's header rules rewrite
	// values in place, so it can neither be pooled nor shared.
	h := w.Header()
	vals := make([]string, 3)
	vals[0], vals[1], vals[2] = s.IdentityID, jsonContentType, wire.NoCache
	h["X-Kratos-Authenticated-Identity-Id"] = vals[0:1:1]
	h["Content-Type"] = vals[1:2:2]
	if noCache {
		h["Cache-Control"] = vals[2:3:3]
	}
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
	buf.out = appendSessionJSON(buf.out[:0], s, active, idJSON)
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
		if !jsonPlain[s[i]] {
			return false
		}
	}
	return true
}

// jsonPlain marks the bytes encoding/json copies into a string as they
// are: printable ASCII but '"', '\\', '<', '>' and '&'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

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
		if !jsonPlain[s[i]] {
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

// appendJSONTime appends t as time.Time.MarshalJSON does. UTC times (all
// the store hands out) take appendUTC, about twice as fast as
// AppendFormat; others, and years outside 0–9999, take the time package.
func appendJSONTime(b []byte, t time.Time) []byte {
	if t.Location() == time.UTC {
		if out, ok := appendUTC(b, t); ok {
			return out
		}
	}
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

// appendUTC appends a UTC time quoted in RFC 3339 with nanoseconds,
// trailing zeros of the fraction dropped (time.RFC3339Nano), and "Z".
// False, with b unchanged, for a year outside 0–9999.
// TestAppendUTCMatchesTime and FuzzAppendUTC pin it to the time package.
func appendUTC(b []byte, t time.Time) ([]byte, bool) {
	secs := t.Unix()
	if secs < minJSONUnix || secs > maxJSONUnix {
		return b, false
	}
	// Days from 0000-03-01 less one 400-year era, so that everything is
	// unsigned (Howard Hinnant's civil_from_days).
	u := uint64(secs - minJSONUnix + marchOffset) // #nosec G115 -- non-negative by the range check above
	days, sod := u/86400, u%86400
	era := days / 146097
	doe := days - era*146097                               // day of the era, [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of the era, [0, 399]
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the year from March 1, [0, 365]
	mp := (5*doy + 2) / 153                                // month from March, [0, 11]
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	y := yoe + era*400 - 400
	if m <= 2 {
		y++
	}
	hh, mm, ss := sod/3600, sod/60%60, sod%60
	b = append(b, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10))
	if ns := uint32(t.Nanosecond()); ns != 0 { // #nosec G115 -- in [0, 1e9)
		n := 9
		for ns%10 == 0 {
			ns /= 10
			n--
		}
		var frac [10]byte
		frac[0] = '.'
		for i := n; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		b = append(b, frac[:n+1]...)
	}
	return append(b, 'Z', '"'), true
}

// The seconds of the years 0 to 9999 (what MarshalJSON accepts), and the
// days from 0000-03-01 back to -0400-03-01 plus those to 0000-01-01 in
// seconds: the shift that makes appendUTC's arithmetic unsigned.
const (
	minJSONUnix = -62167219200 // 0000-01-01T00:00:00Z
	maxJSONUnix = 253402300799 // 9999-12-31T23:59:59Z
	marchOffset = (146097 - 60) * 86400
)
