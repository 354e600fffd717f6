package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// listAudit is GET /admin/audit: the audit trail's records, newest first,
// paginated like the identity list (page_size, an opaque page_token, the
// next page in the Link header), filtered by identity, type (repeated or
// comma-separated), since and until (RFC 3339, or a duration back from
// now such as 24h).
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) *wire.Error {
	if a.cfg.Audit == nil {
		return wire.NewError(http.StatusNotFound, "", "", "The audit trail is not configured.")
	}
	q := r.URL.Query()
	p, ferr := parsePage(q)
	if ferr != nil {
		return ferr
	}
	if p.paged {
		return wire.BadRequest("The audit trail is paginated with page_size and page_token, not page and per_page.")
	}
	aq := event.Query{IdentityID: q.Get("identity"), PageSize: p.size, PageToken: p.token}
	for _, v := range q["type"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if !event.KnownType(event.Type(t)) {
				return wire.BadRequest(fmt.Sprintf("The query parameter type has an unknown event type %q.", t))
			}
			aq.Types = append(aq.Types, event.Type(t))
		}
	}
	now := a.now()
	for _, b := range []struct {
		name string
		to   *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		if v := q.Get(b.name); v != "" {
			t, err := parseAuditTime(v, now)
			if err != nil {
				return wire.BadRequest(fmt.Sprintf("The query parameter %s %v.", b.name, err))
			}
			*b.to = t
		}
	}
	if !aq.Since.IsZero() && !aq.Until.IsZero() && aq.Until.Before(aq.Since) {
		return wire.BadRequest("The query parameter until is before since.")
	}
	records, next, err := a.cfg.Audit.Query(r.Context(), aq)
	if errors.Is(err, event.ErrInvalidQuery) {
		return wire.BadRequest(fmt.Sprintf("The audit query is invalid: %v.", err))
	}
	if err != nil {
		return a.storeError(err, "read the audit trail")
	}
	if records == nil {
		records = []event.Record{}
	}
	p.setLinks(w, r, next)
	wire.WriteJSON(w, http.StatusOK, records)
	return nil
}

// parseAuditTime reads an RFC 3339 time or a positive duration back from
// now.
func parseAuditTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, errors.New("must be an RFC 3339 time (2006-01-02T15:04:05Z) or a duration back from now (24h)")
	}
	return now.Add(-d).UTC(), nil
}
