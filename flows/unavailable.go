package flows

import (
	"errors"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// IsUnavailable reports whether err says the storage could not be reached
// (a PostgreSQL server that is down or restarting; the engine has already
// retried within its bound). Such a request did not take effect and is
// answered 503, never 500: the client may try again, and the gateway
// recovers by itself when the database returns.
func IsUnavailable(err error) bool { return errors.Is(err, sessionstore.ErrUnavailable) }

func errUnavailable() *wire.Error {
	return wire.NewError(http.StatusServiceUnavailable, "", "",
		"The storage is temporarily unavailable; the request was not carried out. Please try again in a few seconds.").WithRetryAfter(5)
}

// orUnavailable is wire.Internal(reason), or the 503 of an unreachable
// storage when err is one: the one place a store failure becomes an
// answer.
func orUnavailable(err error, reason string) *wire.Error {
	if IsUnavailable(err) {
		return errUnavailable()
	}
	return wire.Internal(reason)
}

// WriteUnavailable answers 503 in Kratos's error shape with Retry-After,
// for the gate when the session could not be looked up.
func WriteUnavailable(w http.ResponseWriter, r *http.Request) {
	wire.WriteError(w, r, errUnavailable())
}
