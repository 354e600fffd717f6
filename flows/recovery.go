package flows

import (
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func (e *recoveryFlow) recoveryForm(f *flow.Flow, csrf string) {
	g := e.cfg.RecoveryUse
	f.State, f.Active = "choose_method", g
	f.UI.Nodes = []*node.Node{
		node.CSRF(csrf),
		node.Input(g, "email", "email", node.Label(1070007, nil)).Required(),
		node.Submit(g, "method", g, node.Label(1070009, nil)),
	}
}

func (e *recoveryFlow) recoverySent(f *flow.Flow, address string) {
	g := e.cfg.RecoveryUse
	f.State, f.Active = "sent_email", g
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	if g == "link" {
		f.UI.Nodes = []*node.Node{
			node.CSRF(csrf),
			node.Input(g, "email", "email", node.Label(1070007, nil)).Required().Value(address),
			node.Submit(g, "method", "link", node.Label(1070009, nil)),
		}
		f.UI.Messages = []node.Text{node.NewText(1060002, nil)}
		return
	}
	code := node.Input("code", "code", "text", node.Label(1070010, nil)).Required().Autocomplete("one-time-code")
	code.Input().Pattern, code.Input().MaxLength = "[0-9]+", 6
	f.UI.Nodes = []*node.Node{
		node.CSRF(csrf),
		code,
		node.Input("code", "method", "hidden", nil).Value("code"),
		node.Submit("code", "method", "code", node.Label(1070009, nil)),
		node.Submit("code", "email", address, node.Label(1070008, nil)),
	}
	f.UI.Messages = []node.Text{node.NewText(1060003, nil)}
}

func (e *recoveryFlow) initRecovery(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	if !e.cfg.RecoveryEnabled {
		return nil, errRecoveryDisabled()
	}
	returnTo, rerr := e.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	if sess, _ := e.sessions.Current(r); sess != nil {
		return nil, wire.SessionAlreadyAvailable()
	}
	f := e.kernel.NewFlow(r, "recovery", typ)
	f.ReturnTo = returnTo
	e.recoveryForm(f, "")
	return f, nil
}

func (e *recoveryFlow) submitRecovery(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if !e.cfg.RecoveryEnabled {
		e.kernel.WriteError(w, r, f.Type, errRecoveryDisabled())
		return
	}
	for _, k := range []string{"email", "code"} {
		if v, ok := sub.Body[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				// Kratos's body schema: both are strings.
				got := jsonKind(v)
				f.UI.AddNodeMessage(k, node.NewText(4000026, map[string]any{"allowed_types": []string{"string"}, "actual_type": got}, "string", got))
				e.kernel.Render(w, r, sub, http.StatusBadRequest)
				return
			}
		}
	}
	// Once a code was sent, a submit without an address is the code (as
	// Kratos reads it: the method may be left out); one with an address
	// asks for a new code.
	m, hasMethod := sub.Body["method"]
	codeStep := e.cfg.RecoveryUse == "code" && f.State == "sent_email" && wire.BodyString(sub.Body, "email") == "" && (!hasMethod || m == "")
	if sub.Method != e.cfg.RecoveryUse && !codeStep {
		f.UI.Messages = []node.Text{node.NewText(4010005, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.State == "passed_challenge" {
		e.recoveryReplayed(w, r, f)
		return
	}
	if e.cfg.RecoveryUse == "code" && f.State == "sent_email" && wire.BodyString(sub.Body, "email") == "" {
		e.recoverWithCode(w, r, sub, wire.BodyString(sub.Body, "code"))
		return
	}
	email := strings.ToLower(strings.TrimSpace(wire.BodyString(sub.Body, "email")))
	if email == "" || !validEmail(email) {
		if email == "" {
			f.UI.AddNodeMessage("email", node.NewText(4000002, map[string]any{"property": "email"}, "email"))
		} else {
			f.UI.SetValue("email", email)
			f.UI.AddNodeMessage("email", node.NewText(4000040, map[string]any{"value": email}))
		}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !e.kernel.ChallengeAddress(w, r, sub, flow.RecoveryAddress, email) {
		return
	}
	e.recoverySent(f, email)
	f.KeepTransient()
	e.kernel.Render(w, r, sub, http.StatusOK)
}

func (e *recoveryFlow) recoverWithCode(w http.ResponseWriter, r *http.Request, sub *flow.Submission, code string) {
	f := sub.Flow
	ok, c, err := e.kernel.ConsumeCode(r, f, code)
	if err != nil {
		// A limit refusal (429, or 503 when the limits cannot be
		// checked), else an internal error.
		e.kernel.Refuse(w, r, sub, flow.AsError(err, "unable to check the code"))
		return
	}
	sub.Flow = f
	if !ok && f.State == "passed_challenge" {
		e.recoveryReplayed(w, r, f)
		return
	}
	addr := ""
	if c != nil {
		addr = c.Address
	}
	if !ok {
		if c != nil && c.Attempts > e.cfg.CodeMaxSubmissions {
			// Too many wrong codes: the flow must be started again.
			e.recoveryForm(f, "")
			f.SetChallenge(nil)
			f.UI.Messages = []node.Text{node.NewText(4060002, nil)}
			e.kernel.Render(w, r, sub, http.StatusOK)
			return
		}
		e.recoverySent(f, addr)
		f.KeepTransient()
		f.UI.Messages = []node.Text{node.NewText(4060006, nil)}
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	e.completeRecovery(w, r, sub, c.IdentityID, c.Address, "code_recovery")
}

// recoveryLink serves GET /self-service/recovery?flow=&token= (the mailed
// link).
func (e *recoveryFlow) recoveryLink(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := e.kernel.Load(r.Context(), q.Get("flow"), "recovery")
	if err != nil {
		e.kernel.WriteError(w, r, "browser", wire.NotFound())
		return
	}
	if q.Get("token") == "" && e.openAdminRecovery(w, r, f) {
		return // an administrator's recovery code flow (admin_recovery.go)
	}
	sub := &flow.Submission{Flow: f, JSON: !wire.PrefersHTML(r), ToUI: wire.PrefersHTML(r)}
	if e.now().After(f.ExpiresAt) {
		e.kernel.ReplaceExpired(w, r, sub)
		return
	}
	f.UI.ResetMessages()
	lt, err := e.kernel.TakeLinkToken(r.Context(), "rtok", q.Get("token"))
	won := false
	if err == nil && lt.FlowID == f.ID {
		// Every send mails a new token: the first one used completes the
		// flow, atomically, and a completed flow takes no other.
		if won, err = e.kernel.Pass(r.Context(), f); err != nil {
			e.logger.Error("recovery link", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
			return
		}
	}
	if !won {
		passed := f.State == "passed_challenge"
		e.recoveryForm(f, "")
		if passed {
			f.State = "passed_challenge" // stays completed: it takes no token, and no new send
		}
		f.UI.Messages = []node.Text{node.NewText(4060004, nil)}
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	e.completeRecovery(w, r, sub, lt.IdentityID, lt.Address, "link_recovery")
}

// completeRecovery signs the identity in with a privileged session and
// hands over to a settings flow, answered per client kind as Kratos does.
func (e *recoveryFlow) completeRecovery(w http.ResponseWriter, r *http.Request, sub *flow.Submission, identityID, address, method string) {
	f := sub.Flow
	// The address just proved itself: it counts as verified (Kratos does
	// the same), and proving it for the first time claims the account.
	if _, err := e.kernel.ClaimAddress(r.Context(), identityID, address, ""); err != nil {
		e.logger.Error("recovery", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	ident, err := e.store.GetIdentity(r.Context(), identityID)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the identity"))
		return
	}
	if !e.cfg.KeepSessionsAfterRecovery {
		// Kratos's revoke_active_sessions hook: whoever held the account
		// before the recovery is signed out. Before the new session exists,
		// so a failure leaves nobody signed in by this recovery.
		if _, err := e.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, ""); err != nil {
			e.logger.Error("revoking sessions after recovery", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the sessions"))
			return
		}
	}
	is := e.sessions.NewSession(r, ident.ID, method, "aal1")
	if err := e.store.CreateSession(r.Context(), is.Session); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
		return
	}
	// The settings flow is for whoever continues: a browser that opened
	// the mailed link gets a browser flow bound to its CSRF cookie.
	typ, csrf := f.Type, f.CSRFToken
	if sub.ToUI && typ == "api" {
		typ, csrf = "browser", e.kernel.EnsureCSRF(w, r)
	}
	sf := e.newSettingsFlow(r, typ, is.Session, ident, csrf)
	sf.RequestURL = e.urls.Public("self-service/settings/" + typ)
	sf.ReturnTo = f.ReturnTo
	expires := is.Session.AuthenticatedAt.Add(e.cfg.PrivilegedSessionMaxAge)
	mins := float64(e.cfg.PrivilegedSessionMaxAge.Minutes())
	sf.UI.Messages = []node.Text{node.NewText(1060001, map[string]any{"privileged_session_expires_at": expires, "privileged_session_expires_at_unix": expires.Unix()}, mins)}
	if err := e.kernel.Save(r.Context(), sf); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	f.State = "passed_challenge"
	settingsURL := wire.WithQuery(e.urls.UI("settings"), "flow", sf.ID)
	if f.Type == "browser" || sub.ToUI {
		// A mailed link opens in a browser even for a native flow: that
		// browser is the one that proved the address, so it gets the
		// session cookie.
		e.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
	}
	showSettings := map[string]any{"action": "show_settings_ui", "flow": map[string]any{"id": sf.ID, "url": settingsURL}}
	// The stored flow never holds the session token: anyone who knows a
	// flow id can read the flow.
	f.ContinueWith = []any{showSettings}
	if err := e.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	switch {
	case sub.ToUI:
		wire.Redirect(w, r, http.StatusSeeOther, settingsURL)
	case e.cfg.UseContinueWithTransitions:
		if f.Type == "api" {
			// Handed out once, in this answer only.
			f.ContinueWith = []any{map[string]any{"action": "set_ory_session_token", "ory_session_token": is.Token}, showSettings}
		}
		flow.WriteFlow(w, http.StatusOK, f)
	default:
		// Kratos's default, for JSON clients native ones included: a
		// browser must continue; no session token is handed out.
		wire.WriteError(w, r, wire.BrowserLocationChange(settingsURL))
	}
}

// recoveryReplayed answers a submit to a flow that already passed: it
// cannot be replayed, so the client starts over (observed: 303 to a fresh
// flow, for every client kind).
func (e *recoveryFlow) recoveryReplayed(w http.ResponseWriter, r *http.Request, f *flow.Flow) {
	if _, lerr := e.kernel.Reserve(r.Context(), "flow_ip", e.kernel.LimitIP(r)); lerr != nil {
		e.kernel.Refuse(w, r, nil, lerr)
		return
	}
	nf, ferr := e.initRecovery(r, f.Type)
	if ferr != nil {
		e.kernel.WriteError(w, r, f.Type, ferr)
		return
	}
	nf.CSRFToken = f.CSRFToken
	e.kernel.SetCSRFNode(nf, nf.CSRFToken)
	nf.UI.Messages = []node.Text{node.NewText(4060001, nil)}
	if err := e.kernel.Save(r.Context(), nf); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	wire.Redirect(w, r, http.StatusSeeOther, e.urls.Public("self-service/recovery/flows?id="+nf.ID))
}

// jsonKind is the JSON type name of a decoded body value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "number"
}

// openAdminRecovery serves the recovery_link of an administrator's code
// flow (GET /self-service/recovery?flow=<id> without a token): the flow is
// bound to this browser's CSRF cookie (every opener rebinds it; the code
// is the secret) and the browser goes on to the recovery UI. It reports
// false for every other flow and for expired flows, which the caller
// handles as before.
func (e *recoveryFlow) openAdminRecovery(w http.ResponseWriter, r *http.Request, f *flow.Flow) bool {
	if admin, _ := f.Internal[flow.AdminCreated].(bool); !admin || f.Type != "browser" || f.State != "sent_email" ||
		f.Challenge() == nil || e.now().After(f.ExpiresAt) {
		return false
	}
	f.CSRFToken = e.kernel.EnsureCSRF(w, r)
	e.kernel.SetCSRFNode(f, f.CSRFToken)
	if err := e.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return true
	}
	if wire.PrefersHTML(r) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(e.urls.UI("recovery"), "flow", f.ID))
		return true
	}
	flow.WriteFlow(w, http.StatusOK, f)
	return true
}

func errRecoveryDisabled() *wire.Error {
	return wire.FlowDisabled("Recovery is not allowed because it was disabled.")
}

// recoveryFlow is the recovery flow (flow.Kind): an address proves who
// the account is (a mailed code or link), a session is issued and a
// settings flow opens for the new password.
type recoveryFlow struct {
	cfg      recoveryConfig
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	urls     *wire.URLs
	logger   *zap.Logger
	now      func() time.Time
	// newSettingsFlow is the settings flow a recovery ends in.
	newSettingsFlow func(r *http.Request, typ string, sess *sessionstore.Session, ident *sessionstore.Identity, csrf []byte) *flow.Flow
}

// recoveryConfig is what the recovery flow takes from the configuration.
type recoveryConfig struct {
	RecoveryEnabled            bool
	RecoveryUse                string
	CodeMaxSubmissions         int
	KeepSessionsAfterRecovery  bool
	PrivilegedSessionMaxAge    time.Duration
	UseContinueWithTransitions bool
}

// newRecoveryFlow returns the recovery flow; newSettings makes the
// settings flow a recovery ends in.
func newRecoveryFlow(cfg recoveryConfig, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, urls *wire.URLs,
	logger *zap.Logger, now func() time.Time,
	newSettings func(r *http.Request, typ string, sess *sessionstore.Session, ident *sessionstore.Identity, csrf []byte) *flow.Flow) *recoveryFlow {
	return &recoveryFlow{cfg: cfg, kernel: k, sessions: sessions, store: store, urls: urls, logger: logger, now: now, newSettingsFlow: newSettings}
}

// Name is "recovery".
func (e *recoveryFlow) Name() string { return "recovery" }

// Init builds a new recovery flow.
func (e *recoveryFlow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	return e.initRecovery(r, typ)
}

// Submit handles updateRecoveryFlow.
func (e *recoveryFlow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	e.submitRecovery(w, r, sub)
}

// Disabled is the answer while recovery is off.
func (e *recoveryFlow) Disabled() *wire.Error {
	if !e.cfg.RecoveryEnabled {
		return errRecoveryDisabled()
	}
	return nil
}
