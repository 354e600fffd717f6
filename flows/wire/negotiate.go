package wire

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

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

// IsJSONRequest is Kratos's IsJSONRequest for submits: JSON body or JSON
// preferred.
func IsJSONRequest(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/json" || !PrefersHTML(r)
}
