package flows

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// IsUnavailable reports whether err says the storage could not be reached
// (wire.IsUnavailable): the gate then answers 503, never passes.
func IsUnavailable(err error) bool { return wire.IsUnavailable(err) }

// WriteUnavailable answers 503 in Kratos's error shape with Retry-After,
// for the gate when the session could not be looked up.
func WriteUnavailable(w http.ResponseWriter, r *http.Request) {
	wire.WriteError(w, r, wire.Unavailable())
}
