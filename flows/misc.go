package flows

import (
	"crypto/sha512"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
)

//go:embed assets/webauthn.js
var webauthnJS []byte

// webauthnIntegrity is the SRI hash script nodes advertise for webauthnJS.
var webauthnIntegrity = func() string {
	h := sha512.Sum512(webauthnJS)
	return "sha512-" + base64.StdEncoding.EncodeToString(h[:])
}()

func (e *Engine) webauthnJS(w http.ResponseWriter, r *http.Request) {
	e.ensureCSRF(w, r)
	w.Header().Set("Content-Type", "text/javascript; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(webauthnJS)
}

// listSchemas serves GET /schemas.
func (e *Engine) listSchemas(w http.ResponseWriter, r *http.Request) {
	e.ensureCSRF(w, r)
	w.Header().Set("X-Total-Count", "1")
	w.Header().Set("Link", paginationLink("/schemas", 0, 1, 1))
	writeJSON(w, http.StatusOK, []map[string]any{{"id": e.schema.ID, "schema": json.RawMessage(e.schema.Raw)}})
}

// getSchema serves GET /schemas/{id}; id is the base64url of the schema id
// (as in schema_url) or the plain id.
func (e *Engine) getSchema(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	match := id == e.schema.ID
	if !match {
		if b, err := base64.RawURLEncoding.DecodeString(id); err == nil && string(b) == e.schema.ID {
			match = true
		}
	}
	if !match {
		writeError(w, r, newError(http.StatusNotFound, "", "", "Identity schema `"+id+"` could not be found."))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.schema.Raw)
}
