package settings

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

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

func (s *Flow) settingsNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	f.UI.Nodes = []*node.Node{node.CSRF(csrf)}
	for _, m := range s.methods {
		if m.Enabled() {
			m.SettingsNodes(r, f, ident)
		}
	}
}

// Create serves create{Browser,Native}SettingsFlow.
func (s *Flow) Create(w http.ResponseWriter, r *http.Request, typ string) {
	var csrf []byte
	if typ == "browser" {
		csrf = s.kernel.EnsureCSRF(w, r)
	}
	returnTo, rerr := s.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		s.kernel.WriteError(w, r, typ, rerr)
		return
	}
	sess, err := s.sessions.Current(r)
	if wire.IsUnavailable(err) {
		wire.WriteError(w, r, wire.Unavailable())
		return
	}
	if err != nil {
		if typ == "browser" && wire.PrefersHTML(r) {
			wire.Redirect(w, r, http.StatusSeeOther, s.sessions.LoginBrowserURL(r, returnTo))
			return
		}
		// Kratos adds a stray top-level CredentialsMissing here.
		wire.WriteError(w, r, wire.SessionInactive().WithExtra("CredentialsMissing", false))
		return
	}
	ident, err := s.store.GetIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		wire.WriteError(w, r, wire.SessionInactive())
		return
	}
	if !s.sessions.AALSatisfied(sess, ident) {
		to := wire.WithQuery(s.urls.Public("self-service/login/browser"), "aal", "aal2", "return_to", s.urls.Request(r))
		if typ == "browser" && wire.PrefersHTML(r) {
			wire.Redirect(w, r, http.StatusSeeOther, to)
			return
		}
		wire.WriteError(w, r, wire.AAL2Required(to))
		return
	}
	f := s.NewFlow(r, typ, sess, ident, csrf)
	f.ReturnTo = returnTo
	if err := s.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if typ == "browser" && wire.PrefersHTML(r) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(s.urls.UI("settings"), "flow", f.ID))
		return
	}
	s.writeSettingsFlow(w, r, http.StatusOK, f, ident)
}

// Init is a new settings flow for the request's session, in
// place of an expired one (no assurance check: the submit makes it).
func (s *Flow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	sess, err := s.sessions.Current(r)
	if wire.IsUnavailable(err) {
		return nil, wire.Unavailable()
	}
	if err != nil {
		return nil, wire.SessionInactive()
	}
	ident, err := s.store.GetIdentity(r.Context(), sess.IdentityID)
	if wire.IsUnavailable(err) {
		return nil, wire.Unavailable()
	}
	if err != nil {
		return nil, wire.SessionInactive()
	}
	return s.NewFlow(r, typ, sess, ident, nil), nil
}

// NewFlow is a settings flow of sess and ident with every enabled
// method's group, bound to the CSRF token csrf (recovery ends in one).
func (s *Flow) NewFlow(r *http.Request, typ string, sess *sessionstore.Session, ident *sessionstore.Identity, csrf []byte) *flow.Flow {
	f := s.kernel.NewFlow(r, "settings", typ)
	f.State = "show_form"
	f.IdentityID, f.SessionID = ident.ID, sess.ID
	f.CSRFToken = csrf
	s.settingsNodes(r, f, ident)
	s.kernel.SetCSRFNode(f, csrf)
	return f
}

func (s *Flow) writeSettingsFlow(w http.ResponseWriter, r *http.Request, status int, f *flow.Flow, ident *sessionstore.Identity) {
	s.Reveal(r.Context(), f)
	f.Identity = s.sessions.IdentityJSON(r, ident)
	flow.WriteFlow(w, status, f)
}

// settingsSession answers 401/403 unless the request's session may use f.
func (s *Flow) settingsSession(w http.ResponseWriter, r *http.Request, f *flow.Flow) (*sessionstore.Session, *sessionstore.Identity, bool) {
	sess, err := s.sessions.Current(r)
	if wire.IsUnavailable(err) {
		wire.WriteError(w, r, wire.Unavailable())
		return nil, nil, false
	}
	if err != nil {
		if f != nil && f.Type == "browser" && wire.PrefersHTML(r) && !wire.IsJSONRequest(r) {
			wire.Redirect(w, r, http.StatusSeeOther, s.sessions.LoginBrowserURL(r, ""))
			return nil, nil, false
		}
		wire.WriteError(w, r, wire.NewError(http.StatusUnauthorized, "", "", "No valid session credentials found in the request."))
		return nil, nil, false
	}
	if f != nil && f.IdentityID != sess.IdentityID {
		wire.WriteError(w, r, wire.NewError(http.StatusForbidden, "security_identity_mismatch", "",
			"The request was made for another identity and has been blocked for security reasons."))
		return nil, nil, false
	}
	ident, err := s.store.GetIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		wire.WriteError(w, r, wire.NoCredentials())
		return nil, nil, false
	}
	if !s.sessions.AALSatisfied(sess, ident) {
		// Step-up keeps the way back (Kratos's Get): after
		// the second factor the browser returns to this flow in the UI.
		back := ""
		if f != nil {
			back = wire.WithQuery(s.urls.UI("settings"), "flow", f.ID)
		}
		to := s.AAL2LoginURL(r, back)
		if f != nil && f.Type == "browser" && r.Method == http.MethodPost && !wire.IsJSONRequest(r) {
			wire.Redirect(w, r, http.StatusSeeOther, to) // a form post, as Kratos answers it
			return nil, nil, false
		}
		wire.WriteError(w, r, wire.AAL2Required(to))
		return nil, nil, false
	}
	return sess, ident, true
}

// AAL2LoginURL is the browser login flow for a second factor. returnTo,
// where the browser goes after it, is kept only when that login flow will
// accept it (allowed_return_urls): otherwise the flow would refuse to
// start, and without it the login ends at the default return URL.
func (s *Flow) AAL2LoginURL(r *http.Request, returnTo string) string {
	to := wire.WithQuery(s.urls.Public("self-service/login/browser"), "aal", "aal2")
	if returnTo != "" {
		if _, err := s.kernel.ValidateReturnTo(r, returnTo); err == nil {
			to = wire.WithQuery(to, "return_to", returnTo)
		}
	}
	return to
}

// Get serves GET /self-service/settings/flows?id=.
func (s *Flow) Get(w http.ResponseWriter, r *http.Request) {
	s.kernel.EnsureCSRF(w, r)
	f, err := s.kernel.Load(r.Context(), r.URL.Query().Get("id"), "settings")
	if err != nil {
		if errors.Is(err, flow.ErrNotFound) {
			wire.WriteError(w, r, wire.NotFound())
			return
		}
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the flow"))
		return
	}
	_, ident, ok := s.settingsSession(w, r, f)
	if !ok {
		return
	}
	if f.Type == "browser" {
		cookie := s.kernel.CSRFFromCookie(r)
		if cookie == nil || !token.Equal(cookie, f.CSRFToken) {
			wire.WriteError(w, r, wire.CSRFViolation(flow.CSRFMismatch))
			return
		}
	}
	if s.now().After(f.ExpiresAt) {
		details := map[string]any{}
		if f.Type == "browser" {
			details["redirect_to"] = s.urls.Public("self-service/settings/browser")
		} else {
			details["api"] = s.urls.Public("self-service/settings/api")
		}
		wire.WriteError(w, r, wire.FlowExpired(f.ExpiresAt, details))
		return
	}
	s.kernel.SetCSRFNode(f, f.CSRFToken)
	s.writeSettingsFlow(w, r, http.StatusOK, f, ident)
}

// Submit is updateSettingsFlow after the shared checks.
func (s *Flow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	sess, ident, ok := s.settingsSession(w, r, f)
	if !ok {
		return
	}
	f.UI.ResetMessages()
	var m flow.SettingsMethod
	for _, cand := range s.methods {
		if cand.ID() == sub.Method && cand.Enabled() {
			m = cand
		}
	}
	if m == nil {
		f.UI.Messages = []node.Text{node.NewText(4010004, nil)}
		s.renderSettings(w, r, sub, ident, http.StatusBadRequest)
		return
	}
	st := &flow.SettingsState{Sub: sub, Identity: ident, Session: sess, W: w, RebuildForm: func() { s.settingsNodes(r, f, ident) }}
	out := m.UpdateSettings(r, st)
	if out.Answered {
		return
	}
	if out.Err != nil {
		s.kernel.WriteError(w, r, f.Type, out.Err)
		return
	}
	if out.Privileged && !s.sessions.Privileged(sess) {
		s.settingsRefreshRequired(w, r, sub)
		return
	}
	switch {
	case out.Invalid:
		s.kernel.Events().Emit(r, event.Event{Type: event.SettingsFailed, Flow: "settings", Method: sub.Method,
			IdentityID: ident.ID, Reason: f.UI.FirstErrorID(), Actor: event.ActorSelf})
		s.renderSettings(w, r, sub, ident, http.StatusBadRequest)
		return
	case out.Show:
		f.KeepTransient()
		s.renderSettings(w, r, sub, ident, http.StatusOK)
		return
	}
	if out.Apply != nil {
		// The change is made to the identity as it is now, not to the
		// copy read before the method ran (hashing takes a while).
		up, err := s.store.ModifyIdentity(r.Context(), ident.ID, func(cur *sessionstore.Identity) error {
			if !identity.Active(cur) {
				// Deactivated meanwhile (which also revoked this session).
				return &flow.SettingsRefused{Out: flow.SettingsOutcome{Err: wire.NoCredentials()}}
			}
			if err := out.Apply(cur); err != nil {
				return err
			}
			cur.UpdatedAt = s.now().UTC()
			return nil
		})
		var refused *flow.SettingsRefused
		switch {
		case errors.As(err, &refused):
			s.answerSettingsRefusal(w, r, sub, ident, refused.Out)
			return
		case errors.Is(err, sessionstore.ErrDuplicateCredential):
			f.UI.Messages = []node.Text{node.NewText(4000007, nil)}
			s.renderSettings(w, r, sub, ident, http.StatusBadRequest)
			return
		case errors.Is(err, sessionstore.ErrConflict):
			s.kernel.WriteError(w, r, f.Type, identity.ChangedMeanwhile())
			return
		case errors.Is(err, sessionstore.ErrNotFound):
			// Deleted meanwhile, with its sessions.
			s.kernel.WriteError(w, r, f.Type, wire.NoCredentials())
			return
		case err != nil:
			s.logger.Error("updating identity", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
			return
		}
		ident = up
		s.kernel.Events().Emit(r, event.Event{Type: changeType(sub), Flow: "settings", Method: sub.Method, IdentityID: ident.ID,
			SessionID: sess.ID, Actor: event.ActorSelf})
		if out.RevokeOtherSessions {
			// The revoke_active_sessions settings hook: every other session
			// of the identity ends with the old password.
			n, err := s.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, sess.ID)
			if err != nil {
				s.logger.Error("revoking sessions after a password change", zap.Error(err))
				wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the sessions"))
				return
			}
			if n > 0 {
				s.kernel.Events().Emit(r, event.Event{Type: event.SessionRevoked, IdentityID: ident.ID, Count: n,
					Actor: event.ActorSystem, Reason: "password_changed"})
			}
		}
	}
	f.ContinueWith = nil
	if out.After != nil {
		out.After(f)
	}
	if st.Issued != nil && st.Issued.Rotated {
		s.sessions.SetCookie(w, r, st.Issued.Token, st.Issued.Session.ExpiresAt)
	}
	f.State = "success"
	s.settingsNodes(r, f, ident)
	s.kernel.SetCSRFNode(f, f.CSRFToken)
	f.UI.Messages = []node.Text{node.NewText(1050001, nil)}
	if sub.ToUI {
		if err := s.kernel.Save(r.Context(), f); err != nil {
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
			return
		}
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(s.urls.UI("settings"), "flow", f.ID))
		return
	}
	if err := s.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	s.writeSettingsFlow(w, r, http.StatusOK, f, ident)
}

// settingsRefreshRequired answers a change that needs a privileged
// session: a browser goes to a refresh login, an API client gets 403.
func (s *Flow) settingsRefreshRequired(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	settingsURL := wire.WithQuery(s.urls.UI("settings"), "flow", sub.Flow.ID)
	to := wire.WithQuery(s.urls.Public("self-service/login/browser"), "refresh", "true", "return_to", settingsURL)
	if sub.ToUI {
		wire.Redirect(w, r, http.StatusSeeOther, to)
		return
	}
	ee := wire.NewError(http.StatusForbidden, "session_refresh_required", "The login session is too old and thus not allowed to update these fields. Please re-authenticate.",
		"The login session is too old and thus not allowed to update these fields. Please re-authenticate.")
	wire.WriteError(w, r, ee.WithExtra("redirect_browser_to", to))
}

// answerSettingsRefusal answers a change its method refused at write time.
func (s *Flow) answerSettingsRefusal(w http.ResponseWriter, r *http.Request, sub *flow.Submission, ident *sessionstore.Identity, out flow.SettingsOutcome) {
	switch {
	case out.Err != nil:
		s.kernel.WriteError(w, r, sub.Flow.Type, out.Err)
	case out.Invalid:
		s.renderSettings(w, r, sub, ident, http.StatusBadRequest)
	default: // the change needs a privileged session now
		s.settingsRefreshRequired(w, r, sub)
	}
}

// renderSettings answers the settings flow with its messages.
func (s *Flow) renderSettings(w http.ResponseWriter, r *http.Request, sub *flow.Submission, ident *sessionstore.Identity, status int) {
	f := sub.Flow
	for _, n := range f.UI.Nodes {
		if a := n.Input(); a != nil && a.Type == "password" {
			a.Value = nil
		}
	}
	if err := s.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if sub.ToUI {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(s.urls.UI("settings"), "flow", f.ID))
		return
	}
	s.kernel.SetCSRFNode(f, f.CSRFToken)
	s.writeSettingsFlow(w, r, status, f, ident)
}

// Reveal puts back what methods showed once and the stored flow keeps
// out (backup codes). Callers have checked that the request's session
// belongs to the flow's identity.
func (s *Flow) Reveal(ctx context.Context, f *flow.Flow) {
	for _, m := range s.methods {
		if rv, ok := m.(flow.SettingsRevealer); ok {
			rv.Reveal(ctx, f)
		}
	}
}

// Flow is the settings flow (flow.Kind): the signed-in identity
// changes its traits and credentials, one method's group at a time; the
// flow belongs to the request's session.
type Flow struct {
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	urls     *wire.URLs
	logger   *zap.Logger
	now      func() time.Time
	// settingsMethods are the groups of the form, in display order.
	methods []flow.SettingsMethod
}

// New returns the settings flow with these methods.
func New(k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, urls *wire.URLs, logger *zap.Logger,
	now func() time.Time, methods []flow.SettingsMethod) *Flow {
	return &Flow{kernel: k, sessions: sessions, store: store, urls: urls, logger: logger, now: now, methods: methods}
}

// AddMethod adds a method after the configured ones (tests add probes).
func (s *Flow) AddMethod(m flow.SettingsMethod) {
	s.methods = append(s.methods, m)
}

// Name is "settings".
func (s *Flow) Name() string { return "settings" }

// Disabled is nil: settings are always on.
func (s *Flow) Disabled() *wire.Error { return nil }

// changeType is the event of a settings change that was written: the
// profile, the password, or a credential added or removed (a submit that
// removes names the key or turns the method off: webauthn_remove,
// passkey_remove, totp_unlink, lookup_secret_disable).
func changeType(sub *flow.Submission) event.Type {
	switch sub.Method {
	case "profile":
		return event.ProfileChanged
	case "password":
		return event.PasswordChanged
	}
	for k, v := range sub.Body {
		if (strings.HasSuffix(k, "_remove") || strings.HasSuffix(k, "_unlink") || strings.HasSuffix(k, "_disable")) &&
			v != nil && v != false && v != "" && v != "false" {
			return event.CredentialRemoved
		}
	}
	return event.CredentialAdded
}
