package logout

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Logout is the logout flow: the browser's logout URL and token, the
// logout itself, and the native apps' session revocation.
type Logout struct {
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	urls     *wire.URLs
}

// New returns the logout flow.
func New(k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, urls *wire.URLs) *Logout {
	return &Logout{kernel: k, sessions: sessions, store: store, urls: urls}
}

// logoutFlow is createBrowserLogoutFlow's answer.
type logoutFlow struct {
	LogoutURL   string `json:"logout_url"`
	LogoutToken string `json:"logout_token"`
}

// CreateBrowser serves GET /self-service/logout/browser. It answers
// JSON even to browsers, as Kratos does.
func (l *Logout) CreateBrowser(w http.ResponseWriter, r *http.Request) {
	l.kernel.EnsureCSRF(w, r)
	returnTo, sess := l.browserSession(w, r)
	if sess == nil {
		return
	}
	token := l.sessions.LogoutToken(sess.ID)
	u := l.urls.Public("self-service/logout?token=" + token)
	if returnTo != "" {
		u = wire.WithQuery(u, "return_to", returnTo)
	}
	wire.WriteJSON(w, http.StatusOK, logoutFlow{LogoutURL: u, LogoutToken: token})
}

// Update serves GET /self-service/logout?token=.
func (l *Logout) Update(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("token")
	if token == "" {
		l.kernel.WriteError(w, r, "browser", wire.BadRequest("Please include a token in the URL query."))
		return
	}
	returnTo, sess := l.browserSession(w, r)
	if sess == nil {
		return
	}
	want := l.sessions.LogoutToken(sess.ID)
	if subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		l.kernel.WriteError(w, r, "browser", wire.NewError(http.StatusForbidden, "", "",
			"Unable to log out because the logout token in the URL query does not match the session cookie."))
		return
	}
	if err := l.store.RevokeSession(r.Context(), sess.ID); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
		return
	}
	l.loggedOut(r, sess)
	l.sessions.ClearCookie(w, r)
	l.kernel.IssueCSRF(w, r)
	if wire.IsJSONRequest(r) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if returnTo == "" {
		returnTo = l.urls.DefaultReturn()
	}
	wire.Redirect(w, r, http.StatusSeeOther, returnTo)
}

// PerformNative serves DELETE /self-service/logout/api. A token that
// is already revoked still answers 204 (observed on Kratos).
func (l *Logout) PerformNative(w http.ResponseWriter, r *http.Request) {
	var body struct {
		SessionToken string `json:"session_token"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, wire.SmallBodyBytes+1))
	if err != nil || len(raw) > wire.SmallBodyBytes || json.Unmarshal(raw, &body) != nil {
		wire.WriteError(w, r, wire.BadRequest("Unable to decode the request body as JSON."))
		return
	}
	forbidden := wire.NewError(http.StatusForbidden, "", "", "The provided Ory Session Token could not be found, is invalid, or otherwise malformed.")
	if body.SessionToken == "" {
		wire.WriteError(w, r, forbidden)
		return
	}
	sess, err := l.sessions.ByToken(r.Context(), body.SessionToken)
	if errors.Is(err, sessionstore.ErrNotFound) {
		wire.WriteError(w, r, forbidden)
		return
	}
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to look up the session"))
		return
	}
	if sess.Active {
		if err := l.store.RevokeSession(r.Context(), sess.ID); err != nil {
			wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
			return
		}
		l.loggedOut(r, sess)
	}
	w.WriteHeader(http.StatusNoContent)
}

// browserSession checks the request's return_to and finds its session;
// it answers the request itself and returns a nil session when either
// fails.
func (l *Logout) browserSession(w http.ResponseWriter, r *http.Request) (string, *sessionstore.Session) {
	returnTo, rerr := l.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		l.kernel.WriteError(w, r, "browser", rerr)
		return "", nil
	}
	sess, err := l.sessions.Current(r)
	if wire.IsUnavailable(err) {
		wire.WriteError(w, r, wire.Unavailable())
		return "", nil
	}
	if err != nil {
		l.kernel.WriteError(w, r, "browser", wire.SessionInactive())
		return "", nil
	}
	return returnTo, sess
}

// loggedOut records the end of sess by its own user.
func (l *Logout) loggedOut(r *http.Request, sess *sessionstore.Session) {
	l.kernel.Events().Emit(r, event.Event{Type: event.Logout, Flow: "logout", IdentityID: sess.IdentityID, SessionID: sess.ID,
		Actor: event.ActorSelf})
}
