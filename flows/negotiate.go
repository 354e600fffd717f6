package flows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBodyBytes caps submit bodies. Kratos has no explicit cap; ours keeps a
// hostile client from making us buffer megabytes per request.
const maxBodyBytes = 256 << 10

// PrefersHTML reports whether the client prefers text/html over
// application/json: no Accept, */* and text/html count as HTML; JSON wins
// when its quality is higher, or equal with an exact match against a
// wildcard (axios' "application/json, text/plain, */*").
func PrefersHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return true
	}
	var jsonQ, htmlQ float64 = -1, -1
	var jsonExact, htmlExact bool
	for _, part := range strings.Split(accept, ",") {
		mt, q := parseAcceptPart(part)
		switch mt {
		case "application/json":
			if q > jsonQ || (q == jsonQ && !jsonExact) {
				jsonQ, jsonExact = q, true
			}
		case "text/html":
			if q > htmlQ || (q == htmlQ && !htmlExact) {
				htmlQ, htmlExact = q, true
			}
		case "application/*":
			if jsonQ < 0 || (!jsonExact && q > jsonQ) {
				jsonQ = q
			}
		case "text/*":
			if htmlQ < 0 || (!htmlExact && q > htmlQ) {
				htmlQ = q
			}
		case "*/*":
			if htmlQ < 0 {
				htmlQ = q
			}
		}
	}
	if jsonQ <= 0 {
		return true
	}
	if jsonQ > htmlQ {
		return false
	}
	if jsonQ == htmlQ && jsonExact && !htmlExact {
		return false
	}
	return true
}

func parseAcceptPart(part string) (string, float64) {
	part = strings.TrimSpace(part)
	mt, params, _ := strings.Cut(part, ";")
	q := 1.0
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, "q") {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
	}
	return strings.ToLower(strings.TrimSpace(mt)), q
}

// isJSONRequest is Kratos's IsJSONRequest for submits: JSON body or JSON
// preferred.
func isJSONRequest(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/json" || !PrefersHTML(r)
}

// reasonError is an error whose text is Kratos's user-facing reason
// (capitalised sentences, as clients show them).
type reasonError string

func (e reasonError) Error() string { return string(e) }

// errBodyTooLarge marks a body over maxBodyBytes.
var errBodyTooLarge = reasonError("The request body is too large.")

// decodeBody reads a submit body (JSON, url-encoded or multipart form) into
// a JSON-like map. Form field names with dots (traits.email) become nested
// objects. Errors carry Kratos's reason texts.
func decodeBody(r *http.Request) (map[string]any, error) {
	raw := r.Header.Get("Content-Type")
	ct, params, err := mime.ParseMediaType(raw)
	if raw == "" {
		ct, err = "application/x-www-form-urlencoded", nil
	}
	if err != nil {
		ct = raw
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, reasonError("Unable to read the request body.")
	}
	if len(body) > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	switch ct {
	case "application/json":
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || m == nil {
			return nil, reasonError("Unable to decode form as JSON.")
		}
		if dec.More() {
			return nil, reasonError("Unable to decode form as JSON.")
		}
		return m, nil
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, reasonError("Unable to parse the form body.")
		}
		return expandForm(vals), nil
	case "multipart/form-data":
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.Header.Set("Content-Type", mime.FormatMediaType(ct, params))
		if err := r2.ParseMultipartForm(maxBodyBytes); err != nil { // #nosec G120 -- the body was already read through a maxBodyBytes limit
			return nil, reasonError("Unable to parse the form body.")
		}
		return expandForm(r2.MultipartForm.Value), nil
	default:
		return nil, reasonError(fmt.Sprintf("HTTP %s Request used unknown HTTP Header \"Content-Type: %s\", only [multipart/form-data application/x-www-form-urlencoded application/json] are supported.", r.Method, raw))
	}
}

// expandForm turns dotted form names into nested maps; the last value of a
// repeated name wins, except that a name ending in [] keeps all values.
func expandForm(vals url.Values) map[string]any {
	out := map[string]any{}
	for k, vs := range vals {
		if len(vs) == 0 {
			continue
		}
		var v any = vs[len(vs)-1]
		if strings.HasSuffix(k, "[]") {
			k = strings.TrimSuffix(k, "[]")
			list := make([]any, len(vs))
			for i, s := range vs {
				list[i] = s
			}
			v = list
		}
		parts := strings.Split(k, ".")
		m := out
		for i, p := range parts {
			if i == len(parts)-1 {
				m[p] = v
				break
			}
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
	}
	return out
}

// str returns body[k] as a string: strings as they are, numbers and booleans
// formatted, anything else "".
// Only JSON strings count: Kratos's method bodies declare these fields as
// strings, so a number or boolean (e.g. "password": 1234567890) is treated
// as missing and the submit is refused rather than coerced.
func str(body map[string]any, k string) string {
	v, _ := body[k].(string)
	return v
}

// boolField returns body[k] as a bool (true, "true", "1", "on").
func boolField(body map[string]any, k string) bool {
	switch v := body[k].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b || v == "on"
	}
	return false
}
