package wire

import (
	"errors"
	"net/http"
)

// IsUnavailable reports whether err (or an error it wraps) says the
// storage could not be reached: it has a method Unavailable() bool that
// returns true (sessionstore.ErrUnavailable has, for a PostgreSQL server
// that is down after the engine's bounded retries). Such a request did not
// take effect; the client may try again.
func IsUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// Unavailable is the 503 of an unreachable storage, with Retry-After.
func Unavailable() *Error {
	return NewError(http.StatusServiceUnavailable, "", "",
		"The storage is temporarily unavailable; the request was not carried out. Please try again in a few seconds.").WithRetryAfter(5)
}

// StoreError is the answer to a failed storage call: the 503 of
// Unavailable when the storage could not be reached, else Internal(reason).
// The one place a store failure becomes an answer.
func StoreError(err error, reason string) *Error {
	if IsUnavailable(err) {
		return Unavailable()
	}
	return Internal(reason)
}
