package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// initLogin builds a new login flow (not yet stored) for
// createBrowserLoginFlow / createNativeLoginFlow.
func (e *Engine) initLogin(r *http.Request, typ string) (*flow, *Error) {
	q := r.URL.Query()
	refresh := q.Get("refresh") == "true"
	aal := q.Get("aal")
	switch aal {
	case "", "aal1":
		aal = "aal1"
	case "aal2":
	default:
		return nil, errBadRequest("Unable to parse AuthenticationMethod Assurance Level (AAL): expected one of [aal1, aal2] but got " + aal)
	}
	returnTo, rerr := e.validateReturnTo(r, q.Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	sess, _, err := e.currentSession(r)
	if err != nil && !errors.Is(err, ErrNoSession) {
		return nil, errInternal("unable to look up the session")
	}
	switch {
	case sess == nil && aal == "aal2":
		return nil, errAAL1Required()
	case sess != nil && !refresh && aal == "aal1":
		return nil, errSessionAlreadyAvailable()
	case sess != nil && aal == "aal2" && !refresh && e.effectiveAAL(r.Context(), sess) == "aal2":
		return nil, errSessionAlreadyAvailable()
	}
	f := e.newFlow(r, "login", typ)
	f.Refresh, f.RequestedAAL, f.ReturnTo, f.State = refresh, aal, returnTo, "choose_method"
	f.UI.Nodes = append(f.UI.Nodes, csrfNode(""))
	switch {
	case aal == "aal2":
		f.IdentityID, f.SessionID = sess.IdentityID, sess.ID
		f.UI.Messages = []Text{newText(1010004, nil)}
		if ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
			for _, m := range loginMethods {
				if e.secondFactorUsable(m, sess, ident) {
					m.nodes(e, r, f, ident)
				}
			}
		}
	case refresh && sess != nil:
		f.IdentityID, f.SessionID = sess.IdentityID, sess.ID
		ident := ""
		if id, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
			if c, ok := id.Credentials["password"]; ok && len(c.Identifiers) > 0 {
				ident = c.Identifiers[0]
			}
		}
		n := inputNode("default", "identifier", "hidden", nil).value(ident)
		f.UI.Nodes = append(f.UI.Nodes, n,
			inputNode("password", "password", "password", labelOf(1070001, nil)).required().autocomplete("current-password"),
			submitNode("password", "method", "password", labelOf(1010001, nil)))
		f.UI.Messages = []Text{newText(1010003, nil)}
	default:
		f.UI.Nodes = append(f.UI.Nodes,
			inputNode("default", "identifier", "text", e.schema.identifierLabel("password")).value("").required(),
			inputNode("password", "password", "password", labelOf(1070001, nil)).required().autocomplete("current-password"),
			submitNode("password", "method", "password", labelOf(1010022, nil)))
		// First factors besides password (passkey, passwordless webauthn, code).
		for _, m := range loginMethods {
			if m.aal == "aal1" && e.methodEnabled(m.name) {
				m.nodes(e, r, f, nil)
			}
		}
	}
	if typ == "api" && q.Get("return_session_token_exchange_code") == "true" && sess == nil {
		code := newExchangeCode()
		f.exchangeCode = code
		f.ExchangeCodeHash = hashToken(code)
	}
	return f, nil
}

// submitLogin is updateLoginFlow after the shared checks.
func (e *Engine) submitLogin(w http.ResponseWriter, r *http.Request, sub *submission) {
	f := sub.f
	f.UI.resetMessages()
	if f.State == "passed_challenge" {
		f.UI.Messages = []Text{newText(4010007, nil)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	sess, _, err := e.currentSession(r)
	if err != nil && !errors.Is(err, ErrNoSession) {
		writeError(w, r, errInternal("unable to look up the session"))
		return
	}
	if sess != nil && !f.Refresh && f.RequestedAAL != "aal2" {
		if f.Type == "browser" && !sub.json {
			redirect(w, r, http.StatusSeeOther, e.defaultReturnURL(r))
			return
		}
		f.UI.Messages = []Text{textReason(4000001, errSessionAlreadyAvailable().Reason)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.RequestedAAL == "aal2" && sess == nil {
		e.writeBrowserOrJSONError(w, r, f.Type, errAAL1Required())
		return
	}
	if sub.method == "password" {
		e.loginPassword(w, r, sub, sess)
		return
	}
	for _, m := range loginMethods {
		if m.name == sub.method && e.methodEnabled(m.name) && (m.aal == f.RequestedAAL || m.aal == "aal1" && f.RequestedAAL == "") {
			e.loginWith(w, r, sub, sess, m)
			return
		}
	}
	f.UI.Messages = []Text{newText(4010002, nil)}
	e.renderFlowError(w, r, sub, http.StatusBadRequest)
}

// loginMethod is a login factor other than password. A new method is one
// new file that appends itself to loginMethods in init().
type loginMethod struct {
	name string
	// aal is "aal1" for a first factor, "aal2" for a second factor.
	aal string
	// nodes appends the method's nodes to a login flow. For aal2 flows
	// ident is the session's identity (show nodes only if it has the
	// credential); for aal1 flows it is nil.
	nodes func(e *Engine, r *http.Request, f *flow, ident *sessionstore.Identity)
	// verify checks a submission. It returns the identity that passed, or
	// nil after putting messages on the flow (answered with 400), or
	// errShowFlow when the flow moved on to another step (answered 200).
	verify func(e *Engine, r *http.Request, st *loginState) (*sessionstore.Identity, *Error)
	// active (second factors) reports whether the identity holds a
	// credential of this kind it can still use (Kratos's
	// CountActiveMultiFactorCredentials); see the assurance rule in mfa.go.
	active func(e *Engine, ident *sessionstore.Identity) bool
}

// loginState is what a method's verify sees.
type loginState struct {
	sub *submission
	// sess and ident are the current session and its identity (aal2 and
	// refresh flows), nil otherwise.
	sess  *sessionstore.Session
	ident *sessionstore.Identity
}

var loginMethods []*loginMethod

// errShowFlow is returned by a method's verify when the flow moved to its
// next step (e.g. a code was sent): the flow is answered with 200.
var errShowFlow = &Error{Code: http.StatusOK}

// loginWith runs a registered method and signs in or upgrades the session.
func (e *Engine) loginWith(w http.ResponseWriter, r *http.Request, sub *submission, sess *sessionstore.Session, m *loginMethod) {
	f := sub.f
	st := &loginState{sub: sub, sess: sess}
	if sess != nil {
		ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID)
		if err != nil {
			writeError(w, r, errInternal("unable to load the identity"))
			return
		}
		st.ident = ident
	}
	if m.aal == "aal2" && !e.secondFactorUsable(m, sess, st.ident) {
		// Not a second factor for this session and identity (the
		// assurance rule, mfa.go): as Kratos answers a method it does not
		// offer.
		f.UI.Messages = []Text{newText(4010002, nil)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	ident, ferr := m.verify(e, r, st)
	if ferr == errShowFlow {
		e.renderFlowError(w, r, sub, http.StatusOK)
		return
	}
	if ferr != nil {
		e.writeBrowserOrJSONError(w, r, f.Type, ferr)
		return
	}
	if ident == nil {
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	if ident.State != "" && ident.State != "active" {
		f.UI.Messages = []Text{newText(4010011, nil)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	var issued *issuedSession
	if sess != nil && (m.aal == "aal2" || f.Refresh) {
		if sess.IdentityID != ident.ID {
			e.writeBrowserOrJSONError(w, r, f.Type, newError(http.StatusForbidden, "security_identity_mismatch", "",
				"The requested identity does not match the identity of the current session."))
			return
		}
		up, err := e.upgradeSession(r, sess, m.name, m.aal)
		if err != nil {
			writeError(w, r, errInternal("unable to store the session"))
			return
		}
		token, _ := e.requestToken(r)
		issued = &issuedSession{sess: up, token: token}
	} else {
		issued = e.newSession(r, ident.ID, m.name, m.aal)
		if err := e.store.CreateSession(r.Context(), issued.sess); err != nil {
			writeError(w, r, errInternal("unable to store the session"))
			return
		}
	}
	f.Active = m.name
	e.completeFlow(r.Context(), f)
	e.answerLogin(w, r, sub, ident, issued)
}

// upgradeSession records a completed method on an existing session:
// authenticated_at moves, and the AAL is recomputed.
func (e *Engine) upgradeSession(r *http.Request, sess *sessionstore.Session, method, aal string) (*sessionstore.Session, error) {
	now := e.now().UTC()
	up := sess.Clone()
	up.AuthenticatedAt = now
	up.AuthenticationMethods = append(up.AuthenticationMethods, sessionstore.AuthMethod{Method: method, AAL: aal, CompletedAt: now})
	up.AAL = sessionAAL(up.AuthenticationMethods)
	if err := e.store.UpdateSession(r.Context(), up); err != nil {
		return nil, err
	}
	return up, nil
}

// normalizeIdentifier lower-cases and trims identifiers, as Kratos does for
// email-like identifiers.
func normalizeIdentifier(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

func (e *Engine) loginPassword(w http.ResponseWriter, r *http.Request, sub *submission, sess *sessionstore.Session) {
	f := sub.f
	if f.RequestedAAL == "aal2" {
		f.UI.Messages = []Text{newText(4010002, nil)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	identifier := str(sub.body, "identifier")
	if identifier == "" {
		identifier = str(sub.body, "password_identifier")
	}
	password := str(sub.body, "password")
	if f.Refresh && sess != nil {
		if n := f.UI.findNode("identifier"); n != nil && identifier == "" {
			identifier, _ = n.input().Value.(string)
		}
	}
	f.UI.setValue("identifier", identifier)
	missing := false
	if identifier == "" {
		f.UI.addNodeMessage("identifier", newText(4000002, map[string]any{"property": "identifier"}, "identifier"))
		missing = true
	}
	if password == "" {
		f.UI.addNodeMessage("password", newText(4000002, map[string]any{"property": "password"}, "password"))
		missing = true
	}
	if missing {
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	ip, idKey := e.clientIP(r), normalizeIdentifier(identifier)
	if d := e.firstBlock(r.Context(), "login_id", idKey, "login_ip", ip); d > 0 {
		e.tooMany(w, r, sub, d)
		return
	}
	ident, ok, err := e.checkPassword(r.Context(), identifier, password)
	if err != nil {
		e.logger.Error("password login", zapErr(err))
		writeError(w, r, errInternal("unable to verify credentials"))
		return
	}
	if !ok {
		e.hit(r.Context(), "login_id", idKey)
		e.hit(r.Context(), "login_ip", ip)
		f.UI.Messages = []Text{newText(4000006, nil)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	if ident.State != "" && ident.State != "active" {
		f.UI.Messages = []Text{newText(4010011, nil)}
		e.renderFlowError(w, r, sub, http.StatusBadRequest)
		return
	}
	e.forgive(r.Context(), "login_id", idKey)
	if f.Refresh && sess != nil && sess.IdentityID != ident.ID {
		e.writeBrowserOrJSONError(w, r, f.Type, newError(http.StatusForbidden, "security_identity_mismatch",
			"", "The requested identity does not match the identity of the current session."))
		return
	}
	var issued *issuedSession
	if f.Refresh && sess != nil {
		// Refresh: re-authenticate the same session.
		up, err := e.upgradeSession(r, sess, "password", "aal1")
		if err != nil {
			writeError(w, r, errInternal("unable to store the session"))
			return
		}
		token, _ := e.requestToken(r)
		issued = &issuedSession{sess: up, token: token}
	} else {
		issued = e.newSession(r, ident.ID, "password", "aal1")
		if err := e.store.CreateSession(r.Context(), issued.sess); err != nil {
			e.logger.Error("creating session", zapErr(err))
			writeError(w, r, errInternal("unable to store the session"))
			return
		}
	}
	e.completeFlow(r.Context(), f)
	e.answerLogin(w, r, sub, ident, issued)
}

// checkPassword verifies identifier/password. Unknown identifiers cost the
// same hash comparison as wrong passwords (no enumeration by timing).
// Hashes in another format are upgraded on success.
func (e *Engine) checkPassword(ctx context.Context, identifier, password string) (*sessionstore.Identity, bool, error) {
	ident, err := e.store.FindIdentityByCredential(ctx, "password", normalizeIdentifier(identifier))
	if errors.Is(err, sessionstore.ErrNotFound) {
		_, _ = verify(password, e.hasher.dummy)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("find identity: %w", err)
	}
	cred, ok := ident.Credentials["password"]
	if !ok {
		_, _ = verify(password, e.hasher.dummy)
		return nil, false, nil
	}
	var cfg passwordConfig
	_ = jsonUnmarshal(cred.Config, &cfg)
	match, err := verify(password, cfg.HashedPassword)
	if err != nil || !match {
		return nil, false, nil
	}
	if e.hasher.needsRehash(cfg.HashedPassword) {
		if h, err := e.hasher.hash(password); err == nil {
			cfg.HashedPassword = h
			cred.Config = jsonMarshal(cfg)
			cred.UpdatedAt = e.now().UTC()
			ident.Credentials["password"] = cred
			if err := e.store.UpdateIdentity(ctx, ident); err != nil {
				e.logger.Warn("upgrading password hash", zapErr(err))
			}
		}
	}
	return ident, true, nil
}

type passwordConfig struct {
	HashedPassword string `json:"hashed_password"`
}

// completeFlow marks a flow done so it cannot be replayed.
func (e *Engine) completeFlow(ctx context.Context, f *flow) {
	f.State = "passed_challenge"
	if err := e.saveFlow(ctx, f); err != nil {
		e.logger.Warn("marking flow complete", zapErr(err))
	}
}

// answerLogin answers a successful login per client kind.
func (e *Engine) answerLogin(w http.ResponseWriter, r *http.Request, sub *submission, ident *sessionstore.Identity, is *issuedSession) {
	f := sub.f
	needAAL2 := !e.aalSatisfied(is.sess, ident)
	var idw *identityWire
	if !needAAL2 {
		idw = e.identityJSON(r, ident)
	}
	sw := e.sessionJSON(is.sess, idw)
	if f.Type == "api" {
		// With a second factor still due, the identity is withheld.
		writeJSON(w, http.StatusOK, map[string]any{"session_token": is.token, "session": sw, "continue_with": nil})
		return
	}
	e.issueCSRF(w, r)
	e.setSessionCookie(w, r, is.token, is.sess.ExpiresAt)
	to := e.flowReturnTo(r, f)
	if needAAL2 {
		aal2 := withQuery(e.publicURL(r, "self-service/login/browser"), "aal", "aal2")
		if f.ReturnTo != "" {
			aal2 = withQuery(aal2, "return_to", f.ReturnTo)
		}
		if sub.json {
			writeError(w, r, errBrowserLocationChange(aal2))
		} else {
			redirect(w, r, http.StatusSeeOther, aal2)
		}
		return
	}
	e.finish(w, r, sub, to, nil, map[string]any{"session": sw, "continue_with": []any{continueRedirect(to)}})
}
