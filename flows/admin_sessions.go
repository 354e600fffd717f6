package flows

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// adminListIdentitySessions serves GET /admin/identities/{id}/sessions:
// the identity's stored sessions, newest first, with the identity and
// devices expanded (as Kratos lists them); ?active=true|false filters.
func (e *Engine) adminListIdentitySessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var active *bool
	if v := q.Get("active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			wire.WriteError(w, r, wire.BadRequest("The query parameter active must be true or false."))
			return
		}
		active = &b
	}
	pp, ferr := parseAdminPage(q)
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	ident := e.adminLoadIdentity(w, r, r.PathValue("id"))
	if ident == nil {
		return
	}
	all, err := e.store.ListSessionsByIdentity(r.Context(), ident.ID)
	if err != nil {
		wire.WriteError(w, r, e.adminStoreError(err, "list sessions"))
		return
	}
	var list []*sessionstore.Session
	for _, s := range all {
		if active == nil || e.sessions.Active(s) == *active {
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
	idw := e.adminIdentityWire(r, ident)
	out := make([]*adminSession, 0, end-start)
	for _, s := range list[start:end] {
		out = append(out, e.adminSessionJSON(s, idw, true))
	}
	next := ""
	if end < len(list) && end > start {
		next = list[end-1].ID
	}
	if pp.paged {
		adminPageLinks(w, r, pp, next != "")
	} else {
		adminLinkHeader(w, r, pp.size, next)
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(len(list)))
	wire.WriteJSON(w, http.StatusOK, out)
}

// adminDeleteIdentitySessions serves DELETE /admin/identities/{id}/sessions.
// Kratos deletes the sessions; here they are revoked (they stay listed as
// inactive until they expire), which invalidates them just the same.
func (e *Engine) adminDeleteIdentitySessions(w http.ResponseWriter, r *http.Request) {
	ident := e.adminLoadIdentity(w, r, r.PathValue("id"))
	if ident == nil {
		return
	}
	if _, err := e.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, ""); err != nil {
		wire.WriteError(w, r, e.adminStoreError(err, "revoke the sessions"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminLoadSession loads the path's session or answers 404/500.
func (e *Engine) adminLoadSession(w http.ResponseWriter, r *http.Request) *sessionstore.Session {
	s, err := e.store.GetSession(r.Context(), r.PathValue("id"))
	if err == nil {
		return s
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		wire.WriteError(w, r, wire.NotFound())
		return nil
	}
	wire.WriteError(w, r, e.adminStoreError(err, "load the session"))
	return nil
}

// adminGetSession serves GET /admin/sessions/{id}; ?expand=identity and
// ?expand=devices add those.
func (e *Engine) adminGetSession(w http.ResponseWriter, r *http.Request) {
	var withIdentity, withDevices bool
	for _, v := range r.URL.Query()["expand"] {
		switch v {
		case "identity", "Identity":
			withIdentity = true
		case "devices", "Devices":
			withDevices = true
		default:
			wire.WriteError(w, r, wire.BadRequest("The query parameter expand must be identity or devices."))
			return
		}
	}
	s := e.adminLoadSession(w, r)
	if s == nil {
		return
	}
	var idw *session.IdentityWire
	if withIdentity {
		ident, err := e.store.GetIdentity(r.Context(), s.IdentityID)
		if err == nil {
			idw = e.adminIdentityWire(r, ident)
		}
	}
	wire.WriteJSON(w, http.StatusOK, e.adminSessionJSON(s, idw, withDevices))
}

// adminDisableSession serves DELETE /admin/sessions/{id}: the session is
// deactivated, not deleted.
func (e *Engine) adminDisableSession(w http.ResponseWriter, r *http.Request) {
	if err := e.store.RevokeSession(r.Context(), r.PathValue("id")); err != nil {
		if errors.Is(err, sessionstore.ErrNotFound) {
			wire.WriteError(w, r, wire.NotFound())
			return
		}
		wire.WriteError(w, r, e.adminStoreError(err, "revoke the session"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminExtendSession serves PATCH /admin/sessions/{id}/extend: an active
// session's expiry moves to now plus the session lifespan. Inactive or
// expired sessions answer 404, as in Kratos. The answer is 200 with the
// session (Kratos's older behaviour, which its SDKs decode).
func (e *Engine) adminExtendSession(w http.ResponseWriter, r *http.Request) {
	s := e.adminLoadSession(w, r)
	if s == nil {
		return
	}
	if !e.sessions.Active(s) {
		wire.WriteError(w, r, wire.NotFound().WithDetail("reason", "The session is not active."))
		return
	}
	expires := e.now().UTC().Add(e.cfg.SessionLifespan)
	// By id, on the stored session: the token may have been rotated since
	// it was read.
	s, err := e.store.ModifySession(r.Context(), s.ID, nil, func(c *sessionstore.Session) error {
		c.ExpiresAt = expires
		return nil
	})
	if err != nil {
		wire.WriteError(w, r, e.adminStoreError(err, "extend the session"))
		return
	}
	wire.WriteJSON(w, http.StatusOK, e.adminSessionJSON(s, nil, true))
}
