package session

import (
	"errors"
)

// ErrNoSession is returned by Authenticate when the request carries no
// valid session.
var ErrNoSession = errors.New("flows: no valid session")

// ErrAAL2Required is returned by Authenticate when the session is valid but
// a second factor is due (required_aal highest_available).
var ErrAAL2Required = errors.New("flows: session must complete a second factor")
