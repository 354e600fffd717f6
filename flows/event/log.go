package event

import (
	"context"
	"errors"
	"time"
)

// AuditDropped is not an engine event: an audit trail records it when it
// had to drop events (its queue was full, its storage kept failing), with
// Count, so the gap shows in the trail itself.
const AuditDropped Type = "audit.dropped"

// Record is a stored event with its id, as an audit trail answers it.
type Record struct {
	ID string `json:"id"`
	Event
}

// Query selects stored events, newest first. Zero fields select
// everything.
type Query struct {
	// IdentityID keeps the events of one identity.
	IdentityID string
	// Types keeps the events of these types.
	Types []Type
	// Since and Until bound the events' time (both inclusive).
	Since, Until time.Time
	// PageSize is how many records one page holds (the log bounds it).
	PageSize int
	// PageToken continues a listing where the previous page ended (the
	// next token that page returned); empty starts with the newest.
	PageToken string
}

// Log is a queryable store of events (the audit trail), which the admin
// API lists.
type Log interface {
	// Query returns one page of the records q selects, newest first, and
	// the token of the next page ("" on the last one). An error wrapping
	// ErrInvalidQuery names a bad parameter (the caller's mistake).
	Query(ctx context.Context, q Query) (records []Record, next string, err error)
}

// ErrInvalidQuery is wrapped by a Log's errors that name a bad parameter.
var ErrInvalidQuery = errors.New("invalid query")

// KnownType reports whether t is one of Types or AuditDropped.
func KnownType(t Type) bool {
	if t == AuditDropped {
		return true
	}
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}
