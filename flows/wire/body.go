package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/budget"
)

// Submit bodies are read into memory, so they are bounded one by one and
// all together.
const (
	// maxBodyBytes caps one submit body. Kratos has no cap of its own and
	// answers a submit with a 1 MB password with its validation messages
	// (4000006 at login, 4000033 at registration and settings), which
	// clients show; the cap sits well above such a request. Bigger bodies
	// get 4000001, without being read when Content-Length announces them.
	maxBodyBytes = 4 << 20
	// SmallBodyBytes: bodies up to this size (every real form and JSON
	// submit) are read without taking from the large-body budget.
	SmallBodyBytes = 64 << 10
	// largeBodyBudgetKiB bounds the memory of all larger bodies being
	// decoded and handled at once (twice the body: the bytes and the
	// decoded values); a body that finds no room within largeBodyWait is
	// refused with 503.
	largeBodyBudgetKiB = 64 << 10
	largeBodyWait      = 5 * time.Second
)

// largeBodies is the process-wide budget of large submit bodies (every
// engine of the process, old and new config during a reload, shares the
// machine's memory). The gate's smallest share is 1 KiB.
var largeBodies = budget.New(largeBodyBudgetKiB, largeBodyBudgetKiB, largeBodyWait)

// ErrBodiesBusy: the large-body budget stayed taken for largeBodyWait.
var ErrBodiesBusy = errors.New("large request bodies are saturated")

// LargeBodiesBusy is the answer when ErrBodiesBusy refused a submit.
func LargeBodiesBusy() *Error {
	ee := NewError(http.StatusServiceUnavailable, "", "", "The server is busy reading other large requests; this one was not read. Please try again in a few seconds.")
	ee.WithRetryAfter(5)
	return ee
}

// reasonError is an error whose text is Kratos's user-facing reason
// (capitalised sentences, as clients show them).
type reasonError string

func (e reasonError) Error() string { return string(e) }

// errBodyTooLarge marks a body over maxBodyBytes.
var errBodyTooLarge = reasonError("The request body is too large.")

// errBodyUnreadable: the body could not be read (the client went away).
var errBodyUnreadable = reasonError("Unable to read the request body.")

// DecodeBodyRelease reads a submit body (JSON, url-encoded or multipart
// form) into a JSON-like map. Form field names with dots (traits.email)
// become nested objects; form bodies also come back as their values. Errors
// carry Kratos's reason texts, except ErrBodiesBusy. The caller calls
// release when it no longer holds the body's values (a large body's share
// of the budget).
func DecodeBodyRelease(r *http.Request) (_ map[string]any, form url.Values, release func(), err error) {
	raw := r.Header.Get("Content-Type")
	ct, params, err := mime.ParseMediaType(raw)
	if raw == "" {
		ct, err = "application/x-www-form-urlencoded", nil
	}
	if err != nil {
		ct = raw
	}
	body, release, err := readBody(r)
	if err != nil {
		return nil, nil, release, err
	}
	m, form, err := decodeBytes(r, ct, params, raw, body)
	if err != nil {
		release()
		return nil, nil, func() {}, err
	}
	return m, form, release, nil
}

// DecodeBody is decodeBodyRelease for callers that are done with the body
// once it is decoded (small, short-lived requests).
func DecodeBody(r *http.Request) (map[string]any, error) {
	m, _, release, err := DecodeBodyRelease(r)
	if err != nil {
		return nil, err
	}
	release()
	return m, nil
}

// readBody reads a submit body of at most maxBodyBytes. A body larger
// than smallBodyBytes first takes its share of the large-body budget;
// release gives it back (a no-op for small bodies).
func readBody(r *http.Request) (body []byte, release func(), err error) {
	release = func() {}
	if r.ContentLength > maxBodyBytes {
		return nil, release, errBodyTooLarge
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, SmallBodyBytes+1))
	if err != nil {
		return nil, release, errBodyUnreadable
	}
	if len(head) <= SmallBodyBytes {
		return head, release, nil
	}
	need := int64(maxBodyBytes)
	if r.ContentLength > 0 {
		need = r.ContentLength
	}
	rel, err := largeBodies.Acquire(r.Context(), 2*need/1024+1)
	if err != nil {
		return nil, release, ErrBodiesBusy
	}
	buf := bytes.NewBuffer(make([]byte, 0, need+1))
	buf.Write(head)
	if _, err := io.Copy(buf, io.LimitReader(r.Body, maxBodyBytes+1-int64(len(head)))); err != nil {
		rel()
		return nil, release, errBodyUnreadable
	}
	if buf.Len() > maxBodyBytes {
		rel()
		return nil, release, errBodyTooLarge
	}
	return buf.Bytes(), rel, nil
}

// decodeBytes decodes a body read by readBody per its media type ct;
// form bodies also come back as their values (for schema-typed traits).
func decodeBytes(r *http.Request, ct string, params map[string]string, raw string, body []byte) (map[string]any, url.Values, error) {
	switch ct {
	case "application/json":
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || m == nil {
			return nil, nil, reasonError("Unable to decode form as JSON.")
		}
		if dec.More() {
			return nil, nil, reasonError("Unable to decode form as JSON.")
		}
		return m, nil, nil
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, reasonError("Unable to parse the form body.")
		}
		return expandForm(vals), vals, nil
	case "multipart/form-data":
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.Header.Set("Content-Type", mime.FormatMediaType(ct, params))
		if err := r2.ParseMultipartForm(maxBodyBytes); err != nil { // #nosec G120 -- the body was already read through a maxBodyBytes limit
			return nil, nil, reasonError("Unable to parse the form body.")
		}
		// File parts are never used; the ones spilled to disk go now.
		_ = r2.MultipartForm.RemoveAll()
		vals := url.Values(r2.MultipartForm.Value)
		return expandForm(vals), vals, nil
	default:
		return nil, nil, reasonError(fmt.Sprintf("HTTP %s Request used unknown HTTP Header \"Content-Type: %s\", only [multipart/form-data application/x-www-form-urlencoded application/json] are supported.", r.Method, raw))
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

// BodyString returns body[k] as a string: strings as they are, numbers and booleans
// formatted, anything else "".
// Only JSON strings count: Kratos's method bodies declare these fields as
// strings, so a number or boolean (e.g. "password": 1234567890) is treated
// as missing and the submit is refused rather than coerced.
func BodyString(body map[string]any, k string) string {
	v, _ := body[k].(string)
	return v
}

// BodyBool returns body[k] as a bool (true, "true", "1", "on").
func BodyBool(body map[string]any, k string) bool {
	switch v := body[k].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b || v == "on"
	}
	return false
}
