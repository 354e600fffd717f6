package flows

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// listSchemas serves GET /schemas: every configured schema in
// configuration order, paginated with page and per_page (Kratos's
// defaults: page 0, 250 per page, at most 1000).
func (e *Engine) listSchemas(w http.ResponseWriter, r *http.Request) {
	e.kernel.EnsureCSRF(w, r)
	e.writeSchemaList(w, r)
}

// writeSchemaList is listSchemas without the CSRF cookie (the admin API
// sets none).
func (e *Engine) writeSchemaList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	perPage := 250
	if n, err := strconv.Atoi(q.Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 1000)
	}
	page := 0
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		page = n
	}
	total := len(e.schemas.List())
	out := []map[string]any{}
	if start := page * perPage; page < total && start < total {
		for _, s := range e.schemas.List()[start:min(start+perPage, total)] {
			out = append(out, map[string]any{"id": s.ID, "schema": json.RawMessage(s.Raw)})
		}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	// Kratos's links name at most as many per page as there are schemas.
	wire.SetLinks(w, wire.PageLinks("/schemas", page, max(1, min(perPage, total)), total)...)
	wire.WriteJSON(w, http.StatusOK, out)
}

// getSchema serves GET /schemas/{id}; id is the base64url of the schema id
// (as in schema_url) or the plain id.
func (e *Engine) getSchema(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s := e.schemas.Lookup(id)
	if s == nil {
		wire.WriteError(w, r, wire.NewError(http.StatusNotFound, "", "", "Identity schema `"+id+"` could not be found."))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.Raw) // #nosec G705 -- the body is a configured identity schema, not request data
}
