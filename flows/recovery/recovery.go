package recovery

import (
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Form is the recovery flow's first screen: the address and the send
// button.
func (rf *Flow) Form(f *flow.Flow, csrf string) {
	g := rf.cfg.RecoveryUse
	f.State, f.Active = "choose_method", g
	f.UI.Nodes = []*node.Node{
		node.CSRF(csrf),
		node.Input(g, "email", "email", node.Label(1070007, nil)).Required(),
		node.Submit(g, "method", g, node.Label(1070009, nil)),
	}
}

// Sent is the screen after the code or link went out (code: the code
// input).
func (rf *Flow) Sent(f *flow.Flow, address string) {
	g := rf.cfg.RecoveryUse
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

// Init builds a new recovery flow (not yet stored).
func (rf *Flow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	if !rf.cfg.RecoveryEnabled {
		return nil, ErrDisabled()
	}
	returnTo, rerr := rf.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	if sess, _ := rf.sessions.Current(r); sess != nil {
		return nil, wire.SessionAlreadyAvailable()
	}
	f := rf.kernel.NewFlow(r, "recovery", typ)
	f.ReturnTo = returnTo
	rf.Form(f, "")
	return f, nil
}

// Submit is updateRecoveryFlow after the kernel's checks.
func (rf *Flow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if !rf.cfg.RecoveryEnabled {
		rf.kernel.WriteError(w, r, f.Type, ErrDisabled())
		return
	}
	for _, k := range []string{"email", "code"} {
		if v, ok := sub.Body[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				// Kratos's body schema: both are strings.
				got := jsonKind(v)
				f.UI.AddNodeMessage(k, node.NewText(4000026, map[string]any{"allowed_types": []string{"string"}, "actual_type": got}, "string", got))
				rf.kernel.Render(w, r, sub, http.StatusBadRequest)
				return
			}
		}
	}
	// Once a code was sent, a submit without an address is the code (as
	// Kratos reads it: the method may be left out); one with an address
	// asks for a new code.
	m, hasMethod := sub.Body["method"]
	codeStep := rf.cfg.RecoveryUse == "code" && f.State == "sent_email" && wire.BodyString(sub.Body, "email") == "" && (!hasMethod || m == "")
	if sub.Method != rf.cfg.RecoveryUse && !codeStep {
		f.UI.Messages = []node.Text{node.NewText(4010005, nil)}
		rf.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.State == "passed_challenge" {
		rf.recoveryReplayed(w, r, f)
		return
	}
	if rf.cfg.RecoveryUse == "code" && f.State == "sent_email" && wire.BodyString(sub.Body, "email") == "" {
		rf.recoverWithCode(w, r, sub, wire.BodyString(sub.Body, "code"))
		return
	}
	email := strings.ToLower(strings.TrimSpace(wire.BodyString(sub.Body, "email")))
	if email == "" || !identity.ValidEmail(email) {
		if email == "" {
			f.UI.AddNodeMessage("email", node.NewText(4000002, map[string]any{"property": "email"}, "email"))
		} else {
			f.UI.SetValue("email", email)
			f.UI.AddNodeMessage("email", node.NewText(4000040, map[string]any{"value": email}))
		}
		rf.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !rf.kernel.ChallengeAddress(w, r, sub, flow.RecoveryAddress, email) {
		return
	}
	rf.Sent(f, email)
	f.KeepTransient()
	rf.kernel.Render(w, r, sub, http.StatusOK)
}

func (rf *Flow) recoverWithCode(w http.ResponseWriter, r *http.Request, sub *flow.Submission, code string) {
	f := sub.Flow
	ok, c, err := rf.kernel.ConsumeCode(r, f, code)
	if err != nil {
		// A limit refusal (429, or 503 when the limits cannot be
		// checked), else an internal error.
		rf.kernel.Refuse(w, r, sub, flow.AsError(err, "unable to check the code"))
		return
	}
	sub.Flow = f
	if !ok && f.State == "passed_challenge" {
		rf.recoveryReplayed(w, r, f)
		return
	}
	addr := ""
	if c != nil {
		addr = c.Address
	}
	if !ok {
		rf.kernel.Events().Emit(r, event.Event{Type: event.RecoveryFailed, Flow: "recovery", Method: "code", Reason: "4060006",
			Actor: event.ActorSelf})
		if c != nil && c.Attempts > rf.cfg.CodeMaxSubmissions {
			// Too many wrong codes: the flow must be started again.
			rf.Form(f, "")
			f.SetChallenge(nil)
			f.UI.Messages = []node.Text{node.NewText(4060002, nil)}
			rf.kernel.Render(w, r, sub, http.StatusOK)
			return
		}
		rf.Sent(f, addr)
		f.KeepTransient()
		f.UI.Messages = []node.Text{node.NewText(4060006, nil)}
		rf.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	rf.completeRecovery(w, r, sub, c.IdentityID, c.Address, "code_recovery")
}

// Link serves GET /self-service/recovery?flow=&token= (the mailed
// link).
func (rf *Flow) Link(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := rf.kernel.Load(r.Context(), q.Get("flow"), "recovery")
	if err != nil {
		rf.kernel.WriteError(w, r, "browser", wire.NotFound())
		return
	}
	if q.Get("token") == "" && rf.OpenAdmin(w, r, f) {
		return // an administrator's recovery code flow (admin_recovery.go)
	}
	sub := &flow.Submission{Flow: f, JSON: !wire.PrefersHTML(r), ToUI: wire.PrefersHTML(r)}
	if rf.now().After(f.ExpiresAt) {
		rf.kernel.ReplaceExpired(w, r, sub)
		return
	}
	f.UI.ResetMessages()
	lt, err := rf.kernel.TakeLinkToken(r.Context(), "rtok", q.Get("token"))
	won := false
	if err == nil && lt.FlowID == f.ID {
		// Every send mails a new token: the first one used completes the
		// flow, atomically, and a completed flow takes no other.
		if won, err = rf.kernel.Pass(r.Context(), f); err != nil {
			rf.logger.Error("recovery link", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
			return
		}
	}
	if !won {
		passed := f.State == "passed_challenge"
		rf.Form(f, "")
		if passed {
			f.State = "passed_challenge" // stays completed: it takes no token, and no new send
		}
		f.UI.Messages = []node.Text{node.NewText(4060004, nil)}
		rf.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	rf.completeRecovery(w, r, sub, lt.IdentityID, lt.Address, "link_recovery")
}

// completeRecovery signs the identity in with a privileged session and
// hands over to a settings flow, answered per client kind as Kratos does.
func (rf *Flow) completeRecovery(w http.ResponseWriter, r *http.Request, sub *flow.Submission, identityID, address, method string) {
	f := sub.Flow
	// The address just proved itself: it counts as verified (Kratos does
	// the same), and proving it for the first time claims the account.
	if _, err := rf.kernel.ClaimAddress(r.Context(), identityID, address, ""); err != nil {
		rf.logger.Error("recovery", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	ident, err := rf.store.GetIdentity(r.Context(), identityID)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the identity"))
		return
	}
	if !rf.cfg.KeepSessionsAfterRecovery {
		// Kratos's revoke_active_sessions hook: whoever held the account
		// before the recovery is signed out. Before the new session exists,
		// so a failure leaves nobody signed in by this recovery.
		n, err := rf.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, "")
		if err != nil {
			rf.logger.Error("revoking sessions after recovery", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the sessions"))
			return
		}
		if n > 0 {
			rf.kernel.Events().Emit(r, event.Event{Type: event.SessionRevoked, IdentityID: ident.ID, Count: n,
				Actor: event.ActorSystem, Reason: "recovery"})
		}
	}
	is := rf.sessions.NewSession(r, ident.ID, method, "aal1")
	if err := rf.store.CreateSession(r.Context(), is.Session); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
		return
	}
	rf.kernel.Events().Emit(r, event.Event{Type: event.RecoveryUsed, Flow: "recovery", Method: method, IdentityID: ident.ID,
		SessionID: is.Session.ID, Actor: event.ActorSelf})
	// The settings flow is for whoever continues: a browser that opened
	// the mailed link gets a browser flow bound to its CSRF cookie.
	typ, csrf := f.Type, f.CSRFToken
	if sub.ToUI && typ == "api" {
		typ, csrf = "browser", rf.kernel.EnsureCSRF(w, r)
	}
	sf := rf.newSettingsFlow(r, typ, is.Session, ident, csrf)
	sf.RequestURL = rf.urls.Public("self-service/settings/" + typ)
	sf.ReturnTo = f.ReturnTo
	expires := is.Session.AuthenticatedAt.Add(rf.cfg.PrivilegedSessionMaxAge)
	mins := float64(rf.cfg.PrivilegedSessionMaxAge.Minutes())
	sf.UI.Messages = []node.Text{node.NewText(1060001, map[string]any{"privileged_session_expires_at": expires, "privileged_session_expires_at_unix": expires.Unix()}, mins)}
	if err := rf.kernel.Save(r.Context(), sf); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	f.State = "passed_challenge"
	settingsURL := wire.WithQuery(rf.urls.UI("settings"), "flow", sf.ID)
	if f.Type == "browser" || sub.ToUI {
		// A mailed link opens in a browser even for a native flow: that
		// browser is the one that proved the address, so it gets the
		// session cookie.
		rf.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
	}
	showSettings := map[string]any{"action": "show_settings_ui", "flow": map[string]any{"id": sf.ID, "url": settingsURL}}
	// The stored flow never holds the session token: anyone who knows a
	// flow id can read the flow.
	f.ContinueWith = []any{showSettings}
	if err := rf.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	switch {
	case sub.ToUI:
		wire.Redirect(w, r, http.StatusSeeOther, settingsURL)
	case rf.cfg.UseContinueWithTransitions:
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
func (rf *Flow) recoveryReplayed(w http.ResponseWriter, r *http.Request, f *flow.Flow) {
	if _, lerr := rf.kernel.Reserve(r.Context(), "flow_ip", rf.kernel.LimitIP(r)); lerr != nil {
		rf.kernel.Refuse(w, r, nil, lerr)
		return
	}
	nf, ferr := rf.Init(r, f.Type)
	if ferr != nil {
		rf.kernel.WriteError(w, r, f.Type, ferr)
		return
	}
	nf.CSRFToken = f.CSRFToken
	rf.kernel.SetCSRFNode(nf, nf.CSRFToken)
	nf.UI.Messages = []node.Text{node.NewText(4060001, nil)}
	if err := rf.kernel.Save(r.Context(), nf); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	wire.Redirect(w, r, http.StatusSeeOther, rf.urls.Public("self-service/recovery/flows?id="+nf.ID))
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

// OpenAdmin serves the recovery_link of an administrator's code
// flow (GET /self-service/recovery?flow=<id> without a token): the flow is
// bound to this browser's CSRF cookie (every opener rebinds it; the code
// is the secret) and the browser goes on to the recovery UI. It reports
// false for every other flow and for expired flows, which the caller
// handles as before.
func (rf *Flow) OpenAdmin(w http.ResponseWriter, r *http.Request, f *flow.Flow) bool {
	if admin, _ := f.Internal[flow.AdminCreated].(bool); !admin || f.Type != "browser" || f.State != "sent_email" ||
		f.Challenge() == nil || rf.now().After(f.ExpiresAt) {
		return false
	}
	f.CSRFToken = rf.kernel.EnsureCSRF(w, r)
	rf.kernel.SetCSRFNode(f, f.CSRFToken)
	if err := rf.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return true
	}
	if wire.PrefersHTML(r) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(rf.urls.UI("recovery"), "flow", f.ID))
		return true
	}
	flow.WriteFlow(w, http.StatusOK, f)
	return true
}

// ErrDisabled is the answer while recovery is off.
func ErrDisabled() *wire.Error {
	return wire.FlowDisabled("Recovery is not allowed because it was disabled.")
}

// Flow is the recovery flow (flow.Kind): an address proves who
// the account is (a mailed code or link), a session is issued and a
// settings flow opens for the new password.
type Flow struct {
	cfg      Config
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	urls     *wire.URLs
	logger   *zap.Logger
	now      func() time.Time
	// newSettingsFlow is the settings flow a recovery ends in.
	newSettingsFlow func(r *http.Request, typ string, sess *sessionstore.Session, ident *sessionstore.Identity, csrf []byte) *flow.Flow
}

// Config is what the recovery flow takes from the configuration.
type Config struct {
	RecoveryEnabled            bool
	RecoveryUse                string
	CodeMaxSubmissions         int
	KeepSessionsAfterRecovery  bool
	PrivilegedSessionMaxAge    time.Duration
	UseContinueWithTransitions bool
}

// New returns the recovery flow; newSettings makes the
// settings flow a recovery ends in.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, urls *wire.URLs,
	logger *zap.Logger, now func() time.Time,
	newSettings func(r *http.Request, typ string, sess *sessionstore.Session, ident *sessionstore.Identity, csrf []byte) *flow.Flow) *Flow {
	return &Flow{cfg: cfg, kernel: k, sessions: sessions, store: store, urls: urls, logger: logger, now: now, newSettingsFlow: newSettings}
}

// Name is "recovery".
func (rf *Flow) Name() string { return "recovery" }

// Disabled is the answer while recovery is off.
func (rf *Flow) Disabled() *wire.Error {
	if !rf.cfg.RecoveryEnabled {
		return ErrDisabled()
	}
	return nil
}
