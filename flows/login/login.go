package login

import (
	"errors"
	"net/http"
	"slices"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Init builds a new login flow (not yet stored) for
// createBrowserLoginFlow / createNativeLoginFlow.
func (l *Flow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
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
	returnTo, rerr := l.kernel.ValidateReturnTo(r, q.Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	sess, err := l.sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		return nil, wire.StoreError(err, "unable to look up the session")
	}
	switch {
	case sess == nil && aal == "aal2":
		return nil, wire.AAL1Required()
	case sess != nil && !refresh && aal == "aal1":
		return nil, wire.SessionAlreadyAvailable()
	case sess != nil && aal == "aal2" && !refresh && l.sessions.EffectiveAAL(r.Context(), sess) == "aal2":
		return nil, wire.SessionAlreadyAvailable()
	}
	f := l.kernel.NewFlow(r, "login", typ)
	f.Refresh, f.RequestedAAL, f.ReturnTo, f.State = refresh, aal, returnTo, "choose_method"
	f.UI.Nodes = append(f.UI.Nodes, node.CSRF(""))
	switch {
	case aal == "aal2":
		f.IdentityID, f.SessionID = sess.IdentityID, sess.ID
		f.UI.Messages = []node.Text{node.NewText(1010004, nil)}
		if ident, err := l.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
			for _, m := range l.loginMethods {
				if l.secondFactorUsable(m, sess, ident) {
					m.LoginNodes(r, f, ident)
				}
			}
		}
	case refresh && sess != nil:
		f.IdentityID, f.SessionID = sess.IdentityID, sess.ID
		var ident *sessionstore.Identity
		identifier := ""
		if id, err := l.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
			ident = id
			if c, ok := id.Credentials["password"]; ok && len(c.Identifiers) > 0 {
				identifier = c.Identifiers[0]
			}
		}
		n := node.Input("default", "identifier", "hidden", nil).Value(identifier)
		f.UI.Nodes = append(f.UI.Nodes, n)
		for _, m := range l.loginMethods {
			if rm, ok := m.(flow.LoginRefresher); ok && m.Enabled() {
				rm.RefreshNodes(r, f, ident)
			}
		}
		f.UI.Messages = []node.Text{node.NewText(1010003, nil)}
	case l.cfg.LoginStyle == "identifier_first":
		l.identifierFirstNodes(r, f)
	default:
		for _, m := range l.loginMethods {
			if m.FirstFactor() && m.Enabled() {
				m.LoginNodes(r, f, nil)
			}
		}
		// Kratos sorts the default group (csrf_token, identifier) first,
		// then the methods' groups in strategy order (oidc first).
		slices.SortStableFunc(f.UI.Nodes, func(a, b *node.Node) int {
			return cmpBool(b.Group == "default", a.Group == "default")
		})
	}
	if typ == "api" && q.Get("return_session_token_exchange_code") == "true" && sess == nil {
		code := token.NewExchangeCode()
		f.ExchangeCode = code
		f.ExchangeCodeHash = token.Hash(code)
	}
	return f, nil
}

// Submit is updateLoginFlow after the shared checks.
func (l *Flow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4010007, nil)}
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	sess, err := l.sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		wire.WriteError(w, r, wire.StoreError(err, "unable to look up the session"))
		return
	}
	if sess != nil && !f.Refresh && f.RequestedAAL != "aal2" {
		if f.Type == "browser" && !sub.JSON {
			wire.Redirect(w, r, http.StatusSeeOther, l.urls.DefaultReturn())
			return
		}
		f.UI.Messages = []node.Text{node.TextReason(4000001, wire.SessionAlreadyAvailable().Reason)}
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.RequestedAAL == "aal2" && sess == nil {
		l.kernel.WriteError(w, r, f.Type, wire.AAL1Required())
		return
	}
	if sub.Method == "identifier_first" {
		l.loginIdentifierFirst(w, r, sub, sess)
		return
	}
	second := f.RequestedAAL == "aal2"
	for _, m := range l.loginMethods {
		if m.ID() == sub.Method && m.Enabled() && (second && m.SecondFactor() || !second && m.FirstFactor()) {
			l.loginWith(w, r, sub, sess, m)
			return
		}
	}
	f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
	l.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// loginWith runs a login method and signs in or upgrades the session.
func (l *Flow) loginWith(w http.ResponseWriter, r *http.Request, sub *flow.Submission, sess *sessionstore.Session, m flow.LoginMethod) {
	f := sub.Flow
	aal := "aal1"
	if f.RequestedAAL == "aal2" {
		aal = "aal2"
	}
	st := &flow.LoginState{Sub: sub, Session: sess}
	if sess != nil {
		ident, err := l.store.GetIdentity(r.Context(), sess.IdentityID)
		if err != nil {
			wire.WriteError(w, r, wire.StoreError(err, "unable to load the identity"))
			return
		}
		st.Identity = ident
	}
	if aal == "aal2" && !l.secondFactorUsable(m, sess, st.Identity) {
		// Not a second factor for this session and identity (the
		// assurance rule, session's aal.go): as Kratos answers a method
		// it does not offer.
		f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	ident, ferr := m.Login(w, r, st)
	if ferr == flow.ErrAnswered {
		return
	}
	if ferr == flow.ErrShowFlow {
		l.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if ferr != nil {
		l.kernel.WriteError(w, r, f.Type, ferr)
		return
	}
	if ident == nil {
		l.failed(r, sub, m, st.Identity, f.UI.FirstErrorID())
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if ident.State != "" && ident.State != "active" {
		f.UI.Messages = []node.Text{node.NewText(4010011, nil)}
		l.failed(r, sub, m, ident, "4010011")
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if aal == "aal1" && !(sess != nil && f.Refresh) && l.addressUnverified(ident) {
		f.UI.Messages = []node.Text{node.NewText(4000010, nil)}
		l.failed(r, sub, m, ident, "4000010")
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	am := sessionstore.AuthMethod{Method: m.ID(), AAL: aal}
	if st.AuthMethod != nil {
		am = *st.AuthMethod
	}
	var extra []sessionstore.AuthMethod
	for _, c := range l.loginMethods {
		lc, ok := c.(flow.LoginCompleter)
		if !ok {
			continue
		}
		more, refuse, err := lc.LoginCompleted(r, f, ident)
		if err != nil {
			l.logger.Error("completing a login", zap.String("method", c.ID()), zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
			return
		}
		if refuse != nil {
			f.UI.Messages = []node.Text{*refuse}
			l.failed(r, sub, m, ident, f.UI.FirstErrorID())
			l.kernel.Render(w, r, sub, http.StatusBadRequest)
			return
		}
		if more != nil {
			extra = append(extra, *more)
		}
	}
	var issued *session.Issued
	if sess != nil && (aal == "aal2" || f.Refresh) {
		if sess.IdentityID != ident.ID {
			l.kernel.WriteError(w, r, f.Type, wire.NewError(http.StatusForbidden, "security_identity_mismatch", "",
				"The requested identity does not match the identity of the current session."))
			return
		}
		// A second factor adds to the session; a first factor here is a
		// refresh, which re-authenticates it.
		var err error
		if issued, err = l.sessions.UpgradeWith(r, sess, am, aal == "aal1"); err != nil {
			l.upgradeFailed(w, r, f, err)
			return
		}
	} else {
		issued = l.sessions.NewSessionFrom(r, ident.ID, am)
		for _, x := range extra {
			x.CompletedAt = issued.Session.AuthenticatedAt
			issued.Session.AuthenticationMethods = append(issued.Session.AuthenticationMethods, x)
		}
		if err := l.store.CreateSession(r.Context(), issued.Session); err != nil {
			l.sessionNotCreated(w, r, sub, err)
			return
		}
	}
	f.Active = m.ID()
	l.kernel.Complete(r.Context(), f)
	l.kernel.Events().Emit(r, event.Event{Type: event.LoginSucceeded, Flow: "login", Method: m.ID(), AAL: am.AAL,
		IdentityID: ident.ID, SessionID: issued.Session.ID, Actor: event.ActorSelf})
	l.answerLogin(w, r, sub, ident, issued)
}

// failed records a refused sign-in step: the identity when it is known
// (a second factor, a refused account), else the identifier's hash.
func (l *Flow) failed(r *http.Request, sub *flow.Submission, m flow.LoginMethod, ident *sessionstore.Identity, reason string) {
	ev := event.Event{Type: event.LoginFailed, Flow: "login", Method: m.ID(), Reason: reason, Actor: event.ActorSelf,
		AAL: sub.Flow.RequestedAAL}
	if ident != nil {
		ev.IdentityID = ident.ID
	} else {
		ev.Identifier = l.kernel.Events().HashIdentifier(wire.BodyString(sub.Body, "identifier"))
	}
	l.kernel.Events().Emit(r, ev)
}

// upgradeFailed answers a login step whose session could not be upgraded.
func (l *Flow) upgradeFailed(w http.ResponseWriter, r *http.Request, f *flow.Flow, err error) {
	if errors.Is(err, session.ErrSessionGone) {
		l.kernel.WriteError(w, r, f.Type, wire.SessionInactive())
		return
	}
	l.logger.Error("upgrading session", zap.Error(err))
	wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
}

// sessionNotCreated answers a sign-in whose session the store refused: an
// identity deactivated while the credential was being checked gets the
// same answer as one that was inactive before (4010011).
func (l *Flow) sessionNotCreated(w http.ResponseWriter, r *http.Request, sub *flow.Submission, err error) {
	if errors.Is(err, sessionstore.ErrIdentityInactive) {
		sub.Flow.UI.Messages = []node.Text{node.NewText(4010011, nil)}
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	l.logger.Error("creating session", zap.Error(err))
	wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
}

// addressUnverified is Kratos's require_verified_address login hook: with
// the option on, a first-factor sign-in of an identity none of whose
// addresses is verified gets no session (message 4000010). Re-authenticating
// an existing session (refresh) and second factors are not sign-ins.
func (l *Flow) addressUnverified(ident *sessionstore.Identity) bool {
	return l.cfg.RequireVerifiedAddress && !identity.HasVerifiedAddress(ident)
}

// answerLogin answers a successful login per client kind.
func (l *Flow) answerLogin(w http.ResponseWriter, r *http.Request, sub *flow.Submission, ident *sessionstore.Identity, is *session.Issued) {
	f := sub.Flow
	needAAL2 := !l.sessions.AALSatisfied(is.Session, ident)
	var idw *session.IdentityWire
	if !needAAL2 {
		idw = l.sessions.IdentityJSON(r, ident)
	}
	sw := l.sessions.SessionJSON(is.Session, idw)
	if f.Type == "api" && sub.Callback {
		l.kernel.FinishNative(w, r, f, is)
		return
	}
	if f.Type == "api" {
		if is.Rotated {
			// The session came in a cookie: that cookie's token is gone.
			l.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
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
		l.kernel.IssueCSRF(w, r)
	}
	l.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
	to := l.kernel.ReturnTo(r, f)
	if needAAL2 {
		aal2 := wire.WithQuery(l.urls.Public("self-service/login/browser"), "aal", "aal2")
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
	l.kernel.Finish(w, r, sub, to, nil, map[string]any{"session": sw, "continue_with": []any{flow.ContinueRedirect(to)}})
}

// secondFactorUsable reports whether the login method m may complete the
// second factor of sess: offered on an aal2 login flow and accepted there.
func (l *Flow) secondFactorUsable(m flow.LoginMethod, sess *sessionstore.Session, ident *sessionstore.Identity) bool {
	if !m.SecondFactor() || sess == nil || ident == nil || !m.Enabled() || !m.HasActive(ident) {
		return false
	}
	return session.SecondCounts(m.ID(), sess.AuthenticationMethods, l.sessions.IdentityFactors(ident))
}

// Flow is the login flow (flow.Kind): sign-in with the first factors
// of its methods, a second factor for an aal1 session, re-authentication
// of a session (refresh), and identifier-first login.
type Flow struct {
	cfg      Config
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	schemas  *identity.Schemas
	urls     *wire.URLs
	logger   *zap.Logger
	// loginMethods are the login methods in display order;
	// idFirstMethods the first factors of identifier-first login, in the
	// order of its second screen.
	loginMethods   []flow.LoginMethod
	idFirstMethods []flow.IdentifierFirstMethod
}

// Config is what the login flow takes from the configuration.
type Config struct {
	// LoginStyle is unified or identifier_first.
	LoginStyle                 string
	RequireVerifiedAddress     bool
	MitigateAccountEnumeration bool
}

// New returns the login flow over the kernel with these methods.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, schemas *identity.Schemas,
	urls *wire.URLs, logger *zap.Logger, methods []flow.LoginMethod, idFirst []flow.IdentifierFirstMethod) *Flow {
	return &Flow{cfg: cfg, kernel: k, sessions: sessions, store: store, schemas: schemas, urls: urls, logger: logger,
		loginMethods: methods, idFirstMethods: idFirst}
}

// Name is "login".
func (l *Flow) Name() string { return "login" }

// Disabled is nil: login is always on.
func (l *Flow) Disabled() *wire.Error { return nil }

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
