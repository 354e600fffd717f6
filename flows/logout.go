package flows

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

type logoutFlow struct {
	LogoutURL   string `json:"logout_url"`
	LogoutToken string `json:"logout_token"`
}

// createLogoutFlow serves GET /self-service/logout/browser. It answers
// JSON even to browsers, as Kratos does.
func (e *Engine) createLogoutFlow(w http.ResponseWriter, r *http.Request) {
	e.kernel.EnsureCSRF(w, r)
	returnTo, rerr := e.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		e.kernel.WriteError(w, r, "browser", rerr)
		return
	}
	sess, err := e.sessions.Current(r)
	if wire.IsUnavailable(err) {
		wire.WriteError(w, r, wire.Unavailable())
		return
	}
	if err != nil {
		e.kernel.WriteError(w, r, "browser", wire.SessionInactive())
		return
	}
	token := e.sessions.LogoutToken(sess.ID)
	u := e.urls.Public("self-service/logout?token=" + token)
	if returnTo != "" {
		u = wire.WithQuery(u, "return_to", returnTo)
	}
	wire.WriteJSON(w, http.StatusOK, logoutFlow{LogoutURL: u, LogoutToken: token})
}

// updateLogoutFlow serves GET /self-service/logout?token=.
func (e *Engine) updateLogoutFlow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("token")
	if token == "" {
		e.kernel.WriteError(w, r, "browser", wire.BadRequest("Please include a token in the URL query."))
		return
	}
	returnTo, rerr := e.kernel.ValidateReturnTo(r, q.Get("return_to"))
	if rerr != nil {
		e.kernel.WriteError(w, r, "browser", rerr)
		return
	}
	sess, err := e.sessions.Current(r)
	if wire.IsUnavailable(err) {
		wire.WriteError(w, r, wire.Unavailable())
		return
	}
	if err != nil {
		e.kernel.WriteError(w, r, "browser", wire.SessionInactive())
		return
	}
	want := e.sessions.LogoutToken(sess.ID)
	if subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		e.kernel.WriteError(w, r, "browser", wire.NewError(http.StatusForbidden, "", "",
			"Unable to log out because the logout token in the URL query does not match the session cookie."))
		return
	}
	if err := e.store.RevokeSession(r.Context(), sess.ID); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
		return
	}
	e.sessions.ClearCookie(w, r)
	e.kernel.IssueCSRF(w, r)
	if wire.IsJSONRequest(r) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if returnTo == "" {
		returnTo = e.urls.DefaultReturn()
	}
	wire.Redirect(w, r, http.StatusSeeOther, returnTo)
}

// performNativeLogout serves DELETE /self-service/logout/api. A token that
// is already revoked still answers 204 (observed on Kratos).
func (e *Engine) performNativeLogout(w http.ResponseWriter, r *http.Request) {
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
	sess, err := e.sessions.ByToken(r.Context(), body.SessionToken)
	if errors.Is(err, sessionstore.ErrNotFound) {
		wire.WriteError(w, r, forbidden)
		return
	}
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to look up the session"))
		return
	}
	if sess.Active {
		if err := e.store.RevokeSession(r.Context(), sess.ID); err != nil {
			wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
