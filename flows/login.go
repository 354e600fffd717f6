package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// initLogin builds a new login flow (not yet stored) for
// createBrowserLoginFlow / createNativeLoginFlow.
func (e *Engine) initLogin(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	q := r.URL.Query()
	refresh := q.Get("refresh") == "true"
	aal := q.Get("aal")
	switch aal {
	case "", "aal1":
		aal = "aal1"
	case "aal2":
	default:
		return nil, wire.BadRequest("Unable to parse AuthenticationMethod Assurance Level (AAL): expected one of [aal1, aal2] but got " + aal)
	}
	returnTo, rerr := e.kernel.ValidateReturnTo(r, q.Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	sess, err := e.sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		return nil, wire.Internal("unable to look up the session")
	}
	switch {
	case sess == nil && aal == "aal2":
		return nil, wire.AAL1Required()
	case sess != nil && !refresh && aal == "aal1":
		return nil, wire.SessionAlreadyAvailable()
	case sess != nil && aal == "aal2" && !refresh && e.sessions.EffectiveAAL(r.Context(), sess) == "aal2":
		return nil, wire.SessionAlreadyAvailable()
	}
	f := e.kernel.NewFlow(r, "login", typ)
	f.Refresh, f.RequestedAAL, f.ReturnTo, f.State = refresh, aal, returnTo, "choose_method"
	f.UI.Nodes = append(f.UI.Nodes, node.CSRF(""))
	switch {
	case aal == "aal2":
		f.IdentityID, f.SessionID = sess.IdentityID, sess.ID
		f.UI.Messages = []node.Text{node.NewText(1010004, nil)}
		if ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
			for _, m := range e.loginMethods {
				if e.secondFactorUsable(m, sess, ident) {
					m.LoginNodes(r, f, ident)
				}
			}
		}
	case refresh && sess != nil:
		f.IdentityID, f.SessionID = sess.IdentityID, sess.ID
		var ident *sessionstore.Identity
		identifier := ""
		if id, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
			ident = id
			if c, ok := id.Credentials["password"]; ok && len(c.Identifiers) > 0 {
				identifier = c.Identifiers[0]
			}
		}
		n := node.Input("default", "identifier", "hidden", nil).Value(identifier)
		f.UI.Nodes = append(f.UI.Nodes, n)
		for _, m := range e.loginMethods {
			if rm, ok := m.(flow.LoginRefresher); ok && m.Enabled() {
				rm.RefreshNodes(r, f, ident)
			}
		}
		f.UI.Messages = []node.Text{node.NewText(1010003, nil)}
	case e.cfg.LoginStyle == "identifier_first":
		e.identifierFirstNodes(r, f)
	default:
		for _, m := range e.loginMethods {
			if m.FirstFactor() && m.Enabled() {
				m.LoginNodes(r, f, nil)
			}
		}
	}
	if typ == "api" && q.Get("return_session_token_exchange_code") == "true" && sess == nil {
		code := token.NewExchangeCode()
		f.ExchangeCode = code
		f.ExchangeCodeHash = token.Hash(code)
	}
	return f, nil
}

// submitLogin is updateLoginFlow after the shared checks.
func (e *Engine) submitLogin(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4010007, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	sess, err := e.sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		wire.WriteError(w, r, wire.Internal("unable to look up the session"))
		return
	}
	if sess != nil && !f.Refresh && f.RequestedAAL != "aal2" {
		if f.Type == "browser" && !sub.JSON {
			wire.Redirect(w, r, http.StatusSeeOther, e.urls.DefaultReturn())
			return
		}
		f.UI.Messages = []node.Text{node.TextReason(4000001, wire.SessionAlreadyAvailable().Reason)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.RequestedAAL == "aal2" && sess == nil {
		e.kernel.WriteError(w, r, f.Type, wire.AAL1Required())
		return
	}
	if sub.Method == "identifier_first" {
		e.loginIdentifierFirst(w, r, sub, sess)
		return
	}
	second := f.RequestedAAL == "aal2"
	for _, m := range e.loginMethods {
		if m.ID() == sub.Method && m.Enabled() && (second && m.SecondFactor() || !second && m.FirstFactor()) {
			e.loginWith(w, r, sub, sess, m)
			return
		}
	}
	f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
	e.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// loginWith runs a login method and signs in or upgrades the session.
func (e *Engine) loginWith(w http.ResponseWriter, r *http.Request, sub *flow.Submission, sess *sessionstore.Session, m flow.LoginMethod) {
	f := sub.Flow
	aal := "aal1"
	if f.RequestedAAL == "aal2" {
		aal = "aal2"
	}
	st := &flow.LoginState{Sub: sub, Session: sess}
	if sess != nil {
		ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID)
		if err != nil {
			wire.WriteError(w, r, wire.Internal("unable to load the identity"))
			return
		}
		st.Identity = ident
	}
	if aal == "aal2" && !e.secondFactorUsable(m, sess, st.Identity) {
		// Not a second factor for this session and identity (the
		// assurance rule, session's aal.go): as Kratos answers a method
		// it does not offer.
		f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	ident, ferr := m.Login(w, r, st)
	if ferr == flow.ErrAnswered {
		return
	}
	if ferr == flow.ErrShowFlow {
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if ferr != nil {
		e.kernel.WriteError(w, r, f.Type, ferr)
		return
	}
	if ident == nil {
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if ident.State != "" && ident.State != "active" {
		f.UI.Messages = []node.Text{node.NewText(4010011, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if aal == "aal1" && !(sess != nil && f.Refresh) && e.addressUnverified(ident) {
		f.UI.Messages = []node.Text{node.NewText(4000010, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	var issued *session.Issued
	if sess != nil && (aal == "aal2" || f.Refresh) {
		if sess.IdentityID != ident.ID {
			e.kernel.WriteError(w, r, f.Type, wire.NewError(http.StatusForbidden, "security_identity_mismatch", "",
				"The requested identity does not match the identity of the current session."))
			return
		}
		// A second factor adds to the session; a first factor here is a
		// refresh, which re-authenticates it.
		var err error
		if issued, err = e.sessions.Upgrade(r, sess, m.ID(), aal, aal == "aal1"); err != nil {
			e.upgradeFailed(w, r, f, err)
			return
		}
	} else {
		issued = e.sessions.NewSession(r, ident.ID, m.ID(), aal)
		if err := e.store.CreateSession(r.Context(), issued.Session); err != nil {
			e.sessionNotCreated(w, r, sub, err)
			return
		}
	}
	f.Active = m.ID()
	e.kernel.Complete(r.Context(), f)
	e.answerLogin(w, r, sub, ident, issued)
}

// upgradeFailed answers a login step whose session could not be upgraded.
func (e *Engine) upgradeFailed(w http.ResponseWriter, r *http.Request, f *flow.Flow, err error) {
	if errors.Is(err, session.ErrSessionGone) {
		e.kernel.WriteError(w, r, f.Type, wire.SessionInactive())
		return
	}
	e.logger.Error("upgrading session", zap.Error(err))
	wire.WriteError(w, r, wire.Internal("unable to store the session"))
}

// sessionNotCreated answers a sign-in whose session the store refused: an
// identity deactivated while the credential was being checked gets the
// same answer as one that was inactive before (4010011).
func (e *Engine) sessionNotCreated(w http.ResponseWriter, r *http.Request, sub *flow.Submission, err error) {
	if errors.Is(err, sessionstore.ErrIdentityInactive) {
		sub.Flow.UI.Messages = []node.Text{node.NewText(4010011, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	e.logger.Error("creating session", zap.Error(err))
	wire.WriteError(w, r, wire.Internal("unable to store the session"))
}

// addressUnverified is Kratos's require_verified_address login hook: with
// the option on, a first-factor sign-in of an identity none of whose
// addresses is verified gets no session (message 4000010). Re-authenticating
// an existing session (refresh) and second factors are not sign-ins.
func (e *Engine) addressUnverified(ident *sessionstore.Identity) bool {
	return e.cfg.RequireVerifiedAddress && !identity.HasVerifiedAddress(ident)
}

// passwordLogin is the password method's Login: the identifier and the
// password, counted against the identifier and the client before the hash
// comparison, forgiven when they match.
func (e *Engine) passwordLogin(w http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	sub, sess := st.Sub, st.Session
	f := sub.Flow
	identifier := wire.BodyString(sub.Body, "identifier")
	if identifier == "" {
		identifier = wire.BodyString(sub.Body, "password_identifier")
	}
	password := wire.BodyString(sub.Body, "password")
	if f.Refresh && sess != nil {
		if n := f.UI.Find("identifier"); n != nil && identifier == "" {
			identifier, _ = n.Input().Value.(string)
		}
	}
	f.UI.SetValue("identifier", identifier)
	missing := false
	if identifier == "" {
		f.UI.AddNodeMessage("identifier", node.NewText(4000002, map[string]any{"property": "identifier"}, "identifier"))
		missing = true
	}
	if password == "" {
		f.UI.AddNodeMessage("password", node.NewText(4000002, map[string]any{"property": "password"}, "password"))
		missing = true
	}
	if missing {
		return nil, nil
	}
	// The guess is counted before it is checked; a wrong one keeps it.
	rv, lerr := e.kernel.Reserve(r.Context(), "login_id", identity.NormalizeIdentifier(identifier), "login_ip", e.kernel.LimitIP(r))
	if lerr != nil {
		e.kernel.Refuse(w, r, sub, lerr)
		return nil, flow.ErrAnswered
	}
	ident, ok, err := e.checkPassword(r.Context(), identifier, password)
	if err != nil {
		rv.Release() // not evaluated
		if errors.Is(err, identity.ErrHashBusy) {
			wire.WriteError(w, r, identity.HashersBusy())
			return nil, flow.ErrAnswered
		}
		e.logger.Error("password login", zap.Error(err))
		wire.WriteError(w, r, wire.Internal("unable to verify credentials"))
		return nil, flow.ErrAnswered
	}
	if !ok {
		f.UI.Messages = []node.Text{node.NewText(4000006, nil)}
		return nil, nil
	}
	if !identity.Active(ident) {
		rv.Release() // answered 4010011 by the login flow
		return ident, nil
	}
	rv.Forgive("login_id")
	rv.Release()
	return ident, nil
}

// checkPassword verifies identifier/password. Unknown identifiers cost the
// same hash comparison as wrong passwords (no enumeration by timing).
// Hashes in another format are upgraded on success.
func (e *Engine) checkPassword(ctx context.Context, identifier, password string) (*sessionstore.Identity, bool, error) {
	ident, err := e.store.FindIdentityByCredential(ctx, "password", identity.NormalizeIdentifier(identifier))
	if errors.Is(err, sessionstore.ErrNotFound) {
		err := e.hasher.VerifyDummy(ctx, password)
		return nil, false, identity.BusyOnly(err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("find identity: %w", err)
	}
	cred, ok := ident.Credentials["password"]
	if !ok {
		err := e.hasher.VerifyDummy(ctx, password)
		return nil, false, identity.BusyOnly(err)
	}
	var cfg identity.PasswordConfig
	_ = identity.DecodeConfig(cred.Config, &cfg)
	match, err := e.hasher.Verify(ctx, password, cfg.HashedPassword)
	if err != nil || !match {
		return nil, false, identity.BusyOnly(err)
	}
	if e.hasher.NeedsRehash(cfg.HashedPassword) {
		if h, err := e.hasher.Hash(ctx, password); err == nil {
			// The new hash goes into the identity as it is now (hashing
			// takes a while: an admin may have deactivated it meanwhile),
			// and only while it still holds the hash just verified.
			checked := cfg.HashedPassword
			now := e.now().UTC()
			// A client that goes away now must not decide what is stored.
			up, err := e.store.ModifyIdentity(context.WithoutCancel(ctx), ident.ID, func(cur *sessionstore.Identity) error {
				c, ok := cur.Credentials["password"]
				var cc identity.PasswordConfig
				if !ok || identity.DecodeConfig(c.Config, &cc) != nil || cc.HashedPassword != checked {
					return sessionstore.ErrNoChange
				}
				cc.HashedPassword = h
				c.Config = identity.EncodeConfig(cc)
				c.UpdatedAt = now
				cur.Credentials["password"] = c
				return nil
			})
			if err != nil {
				e.logger.Warn("upgrading password hash", zap.Error(err))
			} else {
				return up, true, nil
			}
		}
	}
	// The caller decides on the identity as it is now, not as it was
	// before the hash comparison (its state above all: a deactivation
	// during the comparison must refuse this login). A client that went
	// away meanwhile gets the same answer as one that stayed.
	fresh, err := e.store.GetIdentity(context.WithoutCancel(ctx), ident.ID)
	switch {
	case errors.Is(err, sessionstore.ErrNotFound):
		return nil, false, nil // deleted meanwhile
	case err != nil:
		return nil, false, fmt.Errorf("reload identity: %w", err)
	}
	return fresh, true, nil
}

// answerLogin answers a successful login per client kind.
func (e *Engine) answerLogin(w http.ResponseWriter, r *http.Request, sub *flow.Submission, ident *sessionstore.Identity, is *session.Issued) {
	f := sub.Flow
	needAAL2 := !e.sessions.AALSatisfied(is.Session, ident)
	var idw *session.IdentityWire
	if !needAAL2 {
		idw = e.sessions.IdentityJSON(r, ident)
	}
	sw := e.sessions.SessionJSON(is.Session, idw)
	if f.Type == "api" {
		if is.Rotated {
			// The session came in a cookie: that cookie's token is gone.
			e.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
		}
		// With a second factor still due, the identity is withheld.
		wire.WriteJSON(w, http.StatusOK, map[string]any{"session_token": is.Token, "session": sw, "continue_with": nil})
		return
	}
	if !is.Upgraded {
		// A new session gets a new CSRF token. Raising or refreshing the
		// request's own session (same identity) keeps it, as Kratos does,
		// so the flows bound to it (a settings flow waiting for this
		// second factor) go on; the session token itself is rotated.
		e.kernel.IssueCSRF(w, r)
	}
	e.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
	to := e.kernel.ReturnTo(r, f)
	if needAAL2 {
		aal2 := wire.WithQuery(e.urls.Public("self-service/login/browser"), "aal", "aal2")
		if f.ReturnTo != "" {
			aal2 = wire.WithQuery(aal2, "return_to", f.ReturnTo)
		}
		if sub.JSON {
			wire.WriteError(w, r, wire.BrowserLocationChange(aal2))
		} else {
			wire.Redirect(w, r, http.StatusSeeOther, aal2)
		}
		return
	}
	e.kernel.Finish(w, r, sub, to, nil, map[string]any{"session": sw, "continue_with": []any{flow.ContinueRedirect(to)}})
}
