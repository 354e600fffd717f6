package session

import (
	"errors"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// ErrNoSession is returned by Authenticate when the request carries no
// valid session.
var ErrNoSession = errors.New("flows: no valid session")

// ErrAAL2Required is returned by Authenticate when the session is valid but
// a second factor is due (required_aal highest_available).
var ErrAAL2Required = errors.New("flows: session must complete a second factor")

// ErrAAL2SetupRequired is returned by CheckGate when the policy asks for
// aal2 but the identity has no second factor yet: the user must add one
// (settings) before the session can reach aal2.
var ErrAAL2SetupRequired = errors.New("flows: aal2 required but the identity has no second factor")

// WriteUnauthorized answers 401 in Kratos's JSON error shape, as whoami does
// without a session.
func WriteUnauthorized(w http.ResponseWriter, r *http.Request) {
	wire.WriteError(w, r, wire.NoCredentials())
}

// WriteAAL2Required answers 403 session_aal2_required with
// redirect_browser_to, as whoami does when a second factor is due.
func WriteAAL2Required(w http.ResponseWriter, r *http.Request, redirectTo string) {
	wire.WriteError(w, r, wire.AAL2Required(redirectTo))
}
