package wire

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// NoCache is the Cache-Control Kratos sends on its GET routes and on
// every admin answer.
const NoCache = "private, no-cache, no-store, must-revalidate"

// WriteJSON writes v with Kratos's success content type.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, nil, Internal("unable to encode response"))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes e in Kratos's error shape with the Ory-Error-Id header
// (present and empty when e has no id, as Kratos does).
func WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	if r != nil {
		if id := r.Header.Get("X-Request-Id"); id != "" && e.Request == "" {
			e.Request = id
		}
	}
	body := map[string]any{"error": e}
	for k, v := range e.extra {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(`{"error":{"code":500,"status":"Internal Server Error","message":"An internal server error occurred, please contact the system administrator"}}`)
		e.Code = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h["Ory-Error-Id"] = []string{e.ID}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.WriteHeader(e.Code)
	_, _ = w.Write(b)
}
