package flows

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/admin"
)

// AdminHandler returns the handler of the Kratos admin API (package
// admin). It expects paths without any mount prefix (/admin/identities,
// …) and has no access control of its own: caddymodule mounts it on
// Caddy's admin endpoint, never on a public site.
func (e *Engine) AdminHandler() http.Handler { return e.admin }

// WriteAdminUnavailable answers 503 in Kratos's error shape: the admin API
// is mounted but no kratos app is running.
func WriteAdminUnavailable(w http.ResponseWriter, r *http.Request, reason string) {
	admin.WriteUnavailable(w, r, reason)
}

// WriteAdminForbidden answers 403 in Kratos's error shape: the admin API
// refuses this request (see caddymodule's kratos_admin).
func WriteAdminForbidden(w http.ResponseWriter, r *http.Request, reason string) {
	admin.WriteForbidden(w, r, reason)
}
