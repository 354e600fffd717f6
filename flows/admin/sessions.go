package admin

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// listIdentitySessions serves GET /admin/identities/{id}/sessions: the
// identity's stored sessions, newest first, with the identity and devices
// expanded (as Kratos lists them); ?active=true|false filters.
func (a *API) listIdentitySessions(w http.ResponseWriter, r *http.Request) *wire.Error {
	q := r.URL.Query()
	var active *bool
	if v := q.Get("active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return wire.BadRequest("The query parameter active must be true or false.")
		}
		active = &b
	}
	pp, ferr := parsePage(q)
	if ferr != nil {
		return ferr
	}
	ident, ferr := a.loadIdentity(r, r.PathValue("id"))
	if ferr != nil {
		return ferr
	}
	all, err := a.store.ListSessionsByIdentity(r.Context(), ident.ID)
	if err != nil {
		return a.storeError(err, "list sessions")
	}
	var list []*sessionstore.Session
	for _, s := range all {
		if active == nil || a.sessions.Active(s) == *active {
			list = append(list, s)
		}
	}
	// The page token is the id of the last session of the previous page.
	start := pp.offset
	if pp.token != "" {
		start = len(list)
		for i, s := range list {
			if s.ID == pp.token {
				start = i + 1
				break
			}
		}
	}
	start = min(start, len(list))
	end := min(start+pp.size, len(list))
	idw := a.sessions.IdentityJSON(r, ident)
	out := make([]*sessionWire, 0, end-start)
	for _, s := range list[start:end] {
		out = append(out, a.sessionJSON(s, idw, true))
	}
	next := ""
	if end < len(list) && end > start {
		next = list[end-1].ID
	}
	pp.setLinks(w, r, next)
	w.Header().Set("X-Total-Count", strconv.Itoa(len(list)))
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// deleteIdentitySessions serves DELETE /admin/identities/{id}/sessions.
// Kratos deletes the sessions; here they are revoked (they stay listed as
// inactive until they expire), which invalidates them just the same.
func (a *API) deleteIdentitySessions(w http.ResponseWriter, r *http.Request) *wire.Error {
	ident, ferr := a.loadIdentity(r, r.PathValue("id"))
	if ferr != nil {
		return ferr
	}
	n, err := a.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, "")
	if err != nil {
		return a.storeError(err, "revoke the sessions")
	}
	if n > 0 {
		a.emit(r, event.Event{Type: event.SessionRevoked, IdentityID: ident.ID, Count: n})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// loadSession loads the path's session, or says 404/500.
func (a *API) loadSession(r *http.Request) (*sessionstore.Session, *wire.Error) {
	s, err := a.store.GetSession(r.Context(), r.PathValue("id"))
	if err == nil {
		return s, nil
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, wire.NotFound()
	}
	return nil, a.storeError(err, "load the session")
}

// getSession serves GET /admin/sessions/{id}; ?expand=identity and
// ?expand=devices add those.
func (a *API) getSession(w http.ResponseWriter, r *http.Request) *wire.Error {
	var withIdentity, withDevices bool
	for _, v := range r.URL.Query()["expand"] {
		switch v {
		case "identity", "Identity":
			withIdentity = true
		case "devices", "Devices":
			withDevices = true
		default:
			return wire.BadRequest("The query parameter expand must be identity or devices.")
		}
	}
	s, ferr := a.loadSession(r)
	if ferr != nil {
		return ferr
	}
	var idw *session.IdentityWire
	if withIdentity {
		ident, err := a.store.GetIdentity(r.Context(), s.IdentityID)
		if err == nil {
			idw = a.sessions.IdentityJSON(r, ident)
		}
	}
	wire.WriteJSON(w, http.StatusOK, a.sessionJSON(s, idw, withDevices))
	return nil
}

// disableSession serves DELETE /admin/sessions/{id}: the session is
// deactivated, not deleted.
func (a *API) disableSession(w http.ResponseWriter, r *http.Request) *wire.Error {
	if err := a.store.RevokeSession(r.Context(), r.PathValue("id")); err != nil {
		if errors.Is(err, sessionstore.ErrNotFound) {
			return wire.NotFound()
		}
		return a.storeError(err, "revoke the session")
	}
	a.emit(r, event.Event{Type: event.SessionRevoked, SessionID: r.PathValue("id"), Count: 1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// extendSession serves PATCH /admin/sessions/{id}/extend: an active
// session's expiry moves to now plus the session lifespan. Inactive or
// expired sessions answer 404, as in Kratos. The answer is 200 with the
// session (Kratos's older behaviour, which its SDKs decode).
func (a *API) extendSession(w http.ResponseWriter, r *http.Request) *wire.Error {
	s, ferr := a.loadSession(r)
	if ferr != nil {
		return ferr
	}
	if !a.sessions.Active(s) {
		return wire.NotFound().WithDetail("reason", "The session is not active.")
	}
	expires := a.now().UTC().Add(a.cfg.SessionLifespan)
	// By id, on the stored session: the token may have been rotated since
	// it was read.
	s, err := a.store.ModifySession(r.Context(), s.ID, nil, func(c *sessionstore.Session) error {
		c.ExpiresAt = expires
		return nil
	})
	if err != nil {
		return a.storeError(err, "extend the session")
	}
	wire.WriteJSON(w, http.StatusOK, a.sessionJSON(s, nil, true))
	return nil
}
