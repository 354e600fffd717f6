package flows

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// whoami serves toSession. The check is the gate's (sessioncheck.go): the
// token is hashed without allocating, session and identity come from the
// store's caches, and the answer is appended by hand (whoami_json.go).
// With earliest_possible_extend it extends the session and, when the
// session came in a cookie, re-issues the cookie.
func (e *Engine) whoami(w http.ResponseWriter, r *http.Request) {
	var c requestCred
	sess, ident, err := e.checkSession(r, "", &c)
	if err != nil {
		if errors.Is(err, ErrAAL2Required) {
			writeError(w, r, errAAL2Required(withQuery(e.publicURL(r, "self-service/login/browser"), "aal", "aal2")))
			return
		}
		if !errors.Is(err, ErrNoSession) {
			e.logger.Error("whoami", zapErr(err))
		}
		writeError(w, r, errNoCredentials())
		return
	}
	if e.cfg.EarliestPossibleExtend > 0 {
		sess = e.maybeExtend(r.Context(), sess)
	}
	e.reissueCookie(w, r, &c, sess)
	w.Header().Set("X-Kratos-Authenticated-Identity-Id", sess.IdentityID)
	e.writeWhoami(w, r, sess, ident)
}

// mySession is the gate of every /sessions handler: the caller's session
// and identity, or it answers 401 (no error id, as observed on /sessions)
// or 403 session_aal2_required when a second factor is due. Listing or
// revoking sessions with only the first factor of an identity that has a
// second one would let a stolen password sign out the owner's sessions.
func (e *Engine) mySession(w http.ResponseWriter, r *http.Request) (*sessionstore.Session, *sessionstore.Identity) {
	sess, _, err := e.currentSession(r)
	if err != nil {
		writeError(w, r, newError(http.StatusUnauthorized, "", "", "No valid session cookie found."))
		return nil, nil
	}
	ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		writeError(w, r, errInternal("unable to load the identity"))
		return nil, nil
	}
	if !e.aalSatisfied(sess, ident) {
		writeError(w, r, errAAL2Required(withQuery(e.publicURL(r, "self-service/login/browser"), "aal", "aal2")))
		return nil, nil
	}
	return sess, ident
}

// listMySessions serves GET /sessions: the caller's other active sessions.
func (e *Engine) listMySessions(w http.ResponseWriter, r *http.Request) {
	sess, ident := e.mySession(w, r)
	if sess == nil {
		return
	}
	q := r.URL.Query()
	perPage := 250
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, r, errBadRequest("per_page must be a positive integer"))
			return
		}
		perPage = min(n, 1000)
	}
	page := 0
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, r, errBadRequest("page must be a non-negative integer"))
			return
		}
		page = n
	}
	all, err := e.store.ListSessionsByIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		writeError(w, r, errInternal("unable to list sessions"))
		return
	}
	// Kratos lists sessions with a slim identity: no addresses and an
	// empty schema_url.
	idw := e.identityJSON(r, ident)
	idw.SchemaURL, idw.VerifiableAddresses, idw.RecoveryAddresses = "", nil, nil
	var others []*sessionWire
	for _, s := range all {
		if s.ID == sess.ID || !e.sessionActive(s) {
			continue
		}
		others = append(others, e.sessionJSON(s, idw))
	}
	total := len(others)
	start := min(page*perPage, total)
	end := min(start+perPage, total)
	out := others[start:end]
	if out == nil {
		out = []*sessionWire{}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	w.Header().Set("Link", paginationLink("/sessions", page, perPage, total))
	writeJSON(w, http.StatusOK, out)
}

// paginationLink builds the Link header (first/prev/next/last).
func paginationLink(path string, page, perPage, total int) string {
	last := 0
	if total > 0 {
		last = (total - 1) / perPage
	}
	link := func(p int, rel string) string {
		return fmt.Sprintf("<%s?page=%d&per_page=%d>; rel=%q", path, p, perPage, rel)
	}
	out := link(0, "first")
	if page > 0 {
		out += "," + link(page-1, "prev")
	}
	if page < last {
		out += "," + link(page+1, "next") + "," + link(last, "last")
	}
	return out
}

// disableMySession serves DELETE /sessions/{id}.
func (e *Engine) disableMySession(w http.ResponseWriter, r *http.Request) {
	sess, _ := e.mySession(w, r)
	if sess == nil {
		return
	}
	id := r.PathValue("id")
	if id == "whoami" {
		e.whoami(w, r)
		return
	}
	if _, err := uuid.Parse(id); err != nil {
		writeError(w, r, errBadRequest("The session id is not a valid UUID."))
		return
	}
	if id == sess.ID {
		ee := newError(http.StatusBadRequest, "", "cannot revoke current session", "")
		ee.Status = http.StatusText(http.StatusBadRequest)
		writeError(w, r, ee)
		return
	}
	// Revoking is scoped to the caller's identity: another identity's
	// session id silently changes nothing.
	other, err := e.store.GetSession(r.Context(), id)
	if err == nil && other.IdentityID == sess.IdentityID {
		if err := e.store.RevokeSession(r.Context(), id); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
			writeError(w, r, errInternal("unable to revoke the session"))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusNoContent)
}

// disableMyOtherSessions serves DELETE /sessions.
func (e *Engine) disableMyOtherSessions(w http.ResponseWriter, r *http.Request) {
	sess, _ := e.mySession(w, r)
	if sess == nil {
		return
	}
	n, err := e.store.RevokeSessionsOfIdentity(r.Context(), sess.IdentityID, sess.ID)
	if err != nil {
		writeError(w, r, errInternal("unable to revoke sessions"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"count": n})
}

// exchangeSessionToken serves GET /sessions/token-exchange. A code pair
// only completes through a browser redirect back to a native app (social
// sign-in), which this gateway does not offer; with password login nothing
// can be exchanged, exactly as observed on Kratos, so every well-formed
// request answers "no session yet".
func (e *Engine) exchangeSessionToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("init_code") == "" || q.Get("return_to_code") == "" {
		writeError(w, r, errBadRequest(`"init_code" and "return_to_code" query params must be set`))
		return
	}
	writeError(w, r, newError(http.StatusNotFound, "", "", `no session yet for this "code"`))
}
