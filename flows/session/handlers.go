package session

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Whoami serves toSession. The check is the gate's (sessioncheck.go): the
// token is hashed without allocating, session and identity come from the
// store's caches, and the answer is appended by hand (whoami_json.go).
// With earliest_possible_extend it extends the session and, when the
// session came in a cookie, re-issues the cookie.
func (m *Manager) Whoami(w http.ResponseWriter, r *http.Request) {
	if observe := m.cfg.ObserveWhoami; observe != nil {
		// The monotonic clock, not m.now: a latency, whatever the
		// engine's clock says.
		start := time.Since(clockBase)
		m.whoami(w, r)
		observe(time.Since(clockBase) - start)
		return
	}
	m.whoami(w, r)
}

// clockBase anchors whoami's timing: time.Since reads only the monotonic
// clock, about half the cost of time.Now.
var clockBase = time.Now()

func (m *Manager) whoami(w http.ResponseWriter, r *http.Request) {
	var c requestCred
	sess, ident, err := m.checkSession(r, "", &c)
	if err != nil {
		if errors.Is(err, ErrAAL2Required) {
			wire.WriteError(w, r, wire.AAL2Required(wire.WithQuery(m.urls.Public("self-service/login/browser"), "aal", "aal2")))
			return
		}
		if wire.IsUnavailable(err) {
			wire.WriteError(w, r, wire.Unavailable())
			return
		}
		if !errors.Is(err, ErrNoSession) {
			m.logger.Error("whoami", zap.Error(err))
		}
		wire.WriteError(w, r, wire.NoCredentials())
		return
	}
	if m.cfg.EarliestPossibleExtend > 0 {
		sess = m.maybeExtend(r.Context(), sess)
	}
	m.reissueCookie(w, r, &c, sess)
	w.Header().Set("X-Kratos-Authenticated-Identity-Id", sess.IdentityID)
	m.writeWhoami(w, r, sess, ident)
}

// mySession is the gate of every /sessions handler: the caller's session
// and identity, or it answers 401 (no error id, as observed on /sessions)
// or 403 session_aal2_required when a second factor is due. Listing or
// revoking sessions with only the first factor of an identity that has a
// second one would let a stolen password sign out the owner's sessions.
func (m *Manager) mySession(w http.ResponseWriter, r *http.Request) (*sessionstore.Session, *sessionstore.Identity) {
	sess, err := m.Current(r)
	if wire.IsUnavailable(err) {
		wire.WriteError(w, r, wire.Unavailable())
		return nil, nil
	}
	if err != nil {
		wire.WriteError(w, r, wire.NewError(http.StatusUnauthorized, "", "", "No valid session cookie found."))
		return nil, nil
	}
	ident, err := m.store.GetIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the identity"))
		return nil, nil
	}
	if !m.AALSatisfied(sess, ident) {
		wire.WriteError(w, r, wire.AAL2Required(wire.WithQuery(m.urls.Public("self-service/login/browser"), "aal", "aal2")))
		return nil, nil
	}
	return sess, ident
}

// ListMine serves GET /sessions: the caller's other active sessions.
func (m *Manager) ListMine(w http.ResponseWriter, r *http.Request) {
	sess, ident := m.mySession(w, r)
	if sess == nil {
		return
	}
	page, size, perr := parseSessionsPage(r.URL.Query())
	if perr != nil {
		wire.WriteError(w, r, perr)
		return
	}
	active, err := m.OthersActive(r.Context(), sess)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to list sessions"))
		return
	}
	// Kratos lists sessions with a slim identity: no addresses and an
	// empty schema_url.
	idw := m.IdentityJSON(r, ident)
	idw.SchemaURL, idw.VerifiableAddresses, idw.RecoveryAddresses = "", nil, nil
	var others []*SessionWire
	for _, s := range active {
		others = append(others, m.SessionJSON(s, idw))
	}
	total := len(others)
	page = min(page, total/size+1) // past the end: no overflow in page*size
	start := min(page*size, total)
	end := min(start+size, total)
	out := others[start:end]
	if out == nil {
		out = []*SessionWire{}
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	wire.SetLinks(w, sessionsLinks(page, size, total)...)
	wire.WriteJSON(w, http.StatusOK, out)
}

// parseSessionsPage reads Kratos's mixed pagination of GET /sessions: the
// token form (page_size, page_token), else the deprecated page form
// (per_page, page; page counts from 0). Kratos takes the token form
// whenever page_size is present; the official SDKs send page_size=250 and
// per_page=250 as defaults with every call, so an explicit page (which
// they never add) selects the page form here. Sizes are capped at 1000 as
// Kratos caps them; a value that is no integer, or a token that is not
// one of ours, is a 400.
func parseSessionsPage(q url.Values) (page, size int, _ *wire.Error) {
	num := func(name string, def int) (int, *wire.Error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, wire.BadRequest(fmt.Sprintf("The query parameter %s must be an integer.", name))
		}
		return n, nil
	}
	if q.Has("page_token") || (q.Has("page_size") && !q.Has("page")) {
		n, err := num("page_size", 250)
		if err != nil {
			return 0, 0, err
		}
		size = min(max(n, 1), 1000)
		offset := 0
		if t := q.Get("page_token"); t != "" {
			var ok bool
			if offset, ok = decodeSessionsToken(t); !ok {
				return 0, 0, wire.BadRequest("Unable to parse pagination token.")
			}
		}
		return offset / size, size, nil
	}
	n, err := num("per_page", 250)
	if err != nil {
		return 0, 0, err
	}
	if n < 1 {
		return 0, 0, wire.BadRequest("per_page must be a positive integer")
	}
	size = min(n, 1000)
	if page, err = num("page", 0); err != nil {
		return 0, 0, err
	}
	if page < 0 {
		return 0, 0, wire.BadRequest("page must be a non-negative integer")
	}
	return page, size, nil
}

// encodeSessionsToken is Kratos's page token: base64url of
// {"offset":"<n>","v":2}.
func encodeSessionsToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(`{"offset":"` + strconv.Itoa(offset) + `","v":2}`))
}

func decodeSessionsToken(t string) (int, bool) {
	if len(t) > 128 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return 0, false
	}
	var tok struct {
		Offset json.Number `json:"offset"`
	}
	if json.Unmarshal(b, &tok) != nil {
		return 0, false
	}
	n, err := strconv.Atoi(tok.Offset.String())
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// sessionsLinks are Kratos's Link header of GET /sessions (ory/x
// migrationpagination): each link carries both forms of the page (page and
// per_page, page_size and page_token). Kratos also copies the request's
// other query parameters; the endpoint takes none, and echoing them would
// let a long request URL make a four times longer header. Kratos's rels:
// the first page has next and last; a middle page first, next, prev and
// last; the last page first and prev; a single page only first (with the
// size of what it holds). An empty list gets only first (Kratos adds next
// and prev links to nowhere).
func sessionsLinks(page, size, total int) []wire.Link {
	link := func(rel string, size, offset int) wire.Link {
		v := url.Values{}
		v.Set("page", strconv.Itoa(offset/size))
		v.Set("per_page", strconv.Itoa(size))
		v.Set("page_size", strconv.Itoa(size))
		v.Set("page_token", encodeSessionsToken(offset))
		return wire.Link{Rel: rel, URL: "/sessions?" + v.Encode()}
	}
	offset := page * size
	last := (total / size) * size
	if total%size == 0 {
		last = total - size
	}
	switch {
	case total == 0:
		return []wire.Link{link("first", size, 0)}
	case offset >= last && total <= size:
		return []wire.Link{link("first", total, 0)}
	case offset >= last:
		return []wire.Link{link("first", size, 0), link("prev", size, last-size)}
	case offset < size:
		return []wire.Link{link("next", size, size), link("last", size, last)}
	}
	return []wire.Link{link("first", size, 0), link("next", size, offset+size), link("prev", size, offset-size), link("last", size, last)}
}

// DisableMine serves DELETE /sessions/{id}.
func (m *Manager) DisableMine(w http.ResponseWriter, r *http.Request) {
	sess, _ := m.mySession(w, r)
	if sess == nil {
		return
	}
	id := r.PathValue("id")
	if id == "whoami" {
		m.Whoami(w, r)
		return
	}
	if _, err := uuid.Parse(id); err != nil {
		wire.WriteError(w, r, wire.BadRequest("The session id is not a valid UUID."))
		return
	}
	if id == sess.ID {
		ee := wire.NewError(http.StatusBadRequest, "", "cannot revoke current session", "")
		ee.Status = http.StatusText(http.StatusBadRequest)
		wire.WriteError(w, r, ee)
		return
	}
	if err := m.RevokeOwn(r, sess.IdentityID, id); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusNoContent)
}

// DisableOthers serves DELETE /sessions.
func (m *Manager) DisableOthers(w http.ResponseWriter, r *http.Request) {
	sess, _ := m.mySession(w, r)
	if sess == nil {
		return
	}
	n, err := m.RevokeOthers(r, sess.IdentityID, sess.ID)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke sessions"))
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]int{"count": n})
}
