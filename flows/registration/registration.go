package registration

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Flow is the registration flow.
type Flow struct {
	cfg      Config
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	schemas  *identity.Schemas
	urls     *wire.URLs
	logger   *zap.Logger
	now      func() time.Time
	// methods are the credential methods in display order.
	methods []flow.RegistrationMethod
}

// Config is what the registration flow takes from the configuration.
type Config struct {
	// Disabled closes self-service registration.
	Disabled bool
	// Style is profile_first (traits first, then a credential) or unified
	// (one form).
	Style string
	// RequireVerifiedAddress issues no session at sign-up until an
	// address is verified (Kratos's require_verified_address hook).
	RequireVerifiedAddress bool
	// MitigateAccountEnumeration keeps the duplicate answer free of hints
	// about the existing account.
	MitigateAccountEnumeration bool
}

// New returns the registration flow over the kernel with these methods.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, schemas *identity.Schemas,
	urls *wire.URLs, logger *zap.Logger, now func() time.Time, methods []flow.RegistrationMethod) *Flow {
	return &Flow{cfg: cfg, kernel: k, sessions: sessions, store: store, schemas: schemas, urls: urls, logger: logger, now: now,
		methods: methods}
}

// Name is "registration".
func (g *Flow) Name() string { return "registration" }

// Disabled answers while registration is closed.
func (g *Flow) Disabled() *wire.Error {
	if g.cfg.Disabled {
		return ErrDisabled()
	}
	return nil
}

// ErrDisabled is the answer to every registration request while
// registration is closed.
func ErrDisabled() *wire.Error {
	return wire.FlowDisabled("Registration is not allowed because it was disabled.")
}

// Init builds a new registration flow (not yet stored).
func (g *Flow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	if g.cfg.Disabled {
		return nil, ErrDisabled()
	}
	returnTo, rerr := g.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	schemaID := r.URL.Query().Get("identity_schema")
	if _, serr := g.schemas.SelfService(schemaID); serr != nil {
		return nil, serr
	}
	sess, err := g.sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		return nil, wire.StoreError(err, "unable to look up the session")
	}
	if sess != nil {
		return nil, wire.SessionAlreadyAvailable()
	}
	f := g.kernel.NewFlow(r, "registration", typ)
	f.ReturnTo, f.State, f.IdentitySchema = returnTo, "choose_method", schemaID
	if typ == "api" && r.URL.Query().Get("return_session_token_exchange_code") == "true" {
		code := token.NewExchangeCode()
		f.ExchangeCode = code
		f.ExchangeCodeHash = token.Hash(code)
	}
	g.form(r, f, nil)
	return f, nil
}

// form renders the first screen: the traits with values from traits and,
// in the unified style, every method's nodes. profile_first's first
// screen has the buttons of the methods that start elsewhere (the social
// sign-in providers, as in Kratos): they need no valid traits first, and
// a sign-up the provider's traits did not complete comes back to this
// screen to be pressed again.
func (g *Flow) form(r *http.Request, f *flow.Flow, traits map[string]any) {
	f.UI.Nodes = []*node.Node{node.CSRF(csrfValue(f))}
	f.UI.Nodes = append(f.UI.Nodes, g.kernel.FlowSchema(f).TraitNodes("default", traits, false)...)
	if g.cfg.Style == "unified" {
		g.methodNodes(r, f, traits)
	} else {
		for _, m := range g.methods {
			if _, ok := m.(flow.RegistrationRedirector); ok && m.Enabled() {
				m.RegistrationNodes(r, f, traits)
			}
		}
		f.UI.Nodes = append(f.UI.Nodes, node.Submit("profile", "method", "profile", node.Label(1040001, nil)))
	}
	f.State = "choose_method"
}

// credentialSelection renders the second screen of profile_first: traits
// hidden, then the credential methods, then "Back".
func (g *Flow) credentialSelection(r *http.Request, f *flow.Flow, traits map[string]any) {
	f.UI.Nodes = []*node.Node{node.CSRF(csrfValue(f))}
	f.UI.Nodes = append(f.UI.Nodes, g.kernel.FlowSchema(f).TraitNodes("default", traits, true)...)
	g.methodNodes(r, f, traits)
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("profile", "screen", "previous", node.Label(1040008, nil)))
	f.UI.Messages = []node.Text{node.NewText(1040009, nil)}
	f.State = "choose_method"
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	f.Internal["traits"] = traits
}

// csrfValue is the CSRF token the flow's form carries.
func csrfValue(f *flow.Flow) string {
	if n := f.UI.Find("csrf_token"); n != nil {
		s, _ := n.Input().Value.(string)
		return s
	}
	return ""
}

func (g *Flow) methodNodes(r *http.Request, f *flow.Flow, traits map[string]any) {
	for _, m := range g.methods {
		if m.Enabled() {
			m.RegistrationNodes(r, f, traits)
		}
	}
}

// Submit is updateRegistrationFlow after the kernel's checks.
func (g *Flow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if g.cfg.Disabled {
		g.kernel.WriteError(w, r, f.Type, ErrDisabled())
		return
	}
	if f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4040002, nil)}
		g.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if sess, _ := g.sessions.Current(r); sess != nil {
		if f.Type == "browser" && !sub.JSON {
			wire.Redirect(w, r, http.StatusFound, g.urls.DefaultReturn())
			return
		}
		f.UI.Messages = []node.Text{node.TextReason(4000001, wire.SessionAlreadyAvailable().Reason)}
		g.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	traits, _ := sub.Body["traits"].(map[string]any)
	if traits == nil {
		if t, ok := f.Internal["traits"].(map[string]any); ok {
			traits = t
		}
	}
	if sub.Method == "profile" && g.cfg.Style == "profile_first" {
		g.profileScreen(w, r, sub, traits)
		return
	}
	for _, m := range g.methods {
		if m.ID() == sub.Method && m.Enabled() {
			g.register(w, r, sub, traits, m)
			return
		}
	}
	// No strategy takes the submit (a method that is off included).
	f.UI.Messages = []node.Text{node.NewText(4010003, nil)}
	g.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// profileScreen handles profile_first's first screen: "Back", or traits
// that must be valid before the credential screen.
func (g *Flow) profileScreen(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any) {
	f := sub.Flow
	if wire.BodyString(sub.Body, "screen") == "previous" {
		g.form(nil, f, traits)
		g.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if traits == nil {
		traits = map[string]any{}
	}
	if g.invalidTraits(w, nil, r, sub, traits) {
		return
	}
	g.credentialSelection(r, f, traits)
	f.KeepTransient()
	g.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// invalidTraits answers 400 with the first screen and the schema's
// messages when traits do not validate, and reports whether it did. form
// is the request the form's method nodes are built for (nil: none).
func (g *Flow) invalidTraits(w http.ResponseWriter, form, r *http.Request, sub *flow.Submission, traits map[string]any) bool {
	errs := g.kernel.FlowSchema(sub.Flow).Validate(traits)
	if len(errs) == 0 {
		return false
	}
	g.form(form, sub.Flow, traits)
	identity.ApplyFieldErrors(&sub.Flow.UI, errs)
	g.kernel.Render(w, r, sub, http.StatusBadRequest)
	return true
}

// register runs method m on a submit: the limit, the traits, the method,
// then the identity and its session.
func (g *Flow) register(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any, m flow.RegistrationMethod) {
	// Early refusal while blocked (before a code is mailed or a password
	// hashed); the attempt itself is counted once an identity is to be
	// created, or earlier when the method asks (st.Reserve).
	if d, err := g.kernel.Blocked(r.Context(), "reg_ip", g.kernel.LimitIP(r)); err != nil || d > 0 {
		if err != nil {
			g.logger.Error("rate limit state unavailable; refusing the attempt", zap.Error(err))
			g.kernel.Refuse(w, r, sub, flow.LimitsUnavailable())
			return
		}
		g.kernel.TooMany(w, r, sub, d)
		return
	}
	if traits == nil {
		traits = map[string]any{}
	}
	if rr, ok := m.(flow.RegistrationRedirector); !ok || !rr.StartsElsewhere(r) {
		if tf, ok := m.(flow.RegistrationTraitsForm); ok {
			// A provider's traits that do not validate: the method's own
			// form to complete them (Kratos's oidc shape).
			if errs := g.kernel.FlowSchema(sub.Flow).Validate(traits); len(errs) > 0 && tf.TraitsForm(r, sub.Flow, traits) {
				identity.ApplyFieldErrors(&sub.Flow.UI, errs)
				g.failed(r, m.ID(), sub.Flow.UI.FirstErrorID())
				g.kernel.Render(w, r, sub, http.StatusBadRequest)
				return
			}
		}
		if g.invalidTraits(w, r, r, sub, traits) {
			g.failed(r, m.ID(), sub.Flow.UI.FirstErrorID())
			return
		}
	}
	reserved := false
	st := &flow.RegistrationState{Sub: sub, Traits: traits, W: w, Reserve: func() *wire.Error {
		if reserved {
			return nil
		}
		reserved = true
		_, lerr := g.kernel.Reserve(r.Context(), "reg_ip", g.kernel.LimitIP(r))
		return lerr
	}}
	out := m.Register(r, st)
	f := st.Sub.Flow
	switch {
	case out.Answered:
	case out.Err != nil:
		g.kernel.WriteError(w, r, f.Type, out.Err)
	case out.Refused != nil:
		g.kernel.Refuse(w, r, sub, out.Refused)
	case out.Duplicate:
		g.answerDuplicate(w, r, sub, traits)
	case out.Invalid:
		g.failed(r, m.ID(), f.UI.FirstErrorID())
		g.kernel.Render(w, r, sub, http.StatusBadRequest)
	case out.Show:
		g.kernel.Render(w, r, sub, http.StatusOK)
	case out.Creds != nil:
		if lerr := st.Reserve(); lerr != nil {
			g.kernel.Refuse(w, r, sub, lerr)
			return
		}
		g.finish(w, r, sub, traits, m.ID(), out)
	default:
		wire.WriteError(w, r, wire.Internal("registration method gave no outcome"))
	}
}

// finish creates the identity with creds (unique identifiers checked in
// the store's transaction), runs the session and verification
// after-hooks and answers per client kind.
func (g *Flow) finish(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any, method string, out flow.RegistrationOutcome) {
	f := sub.Flow
	creds, verified := out.Creds, out.Verified
	now := g.now().UTC()
	sch := g.kernel.FlowSchema(f)
	sch.FillObjects(traits)
	traitsJSON, _ := json.Marshal(traits)
	ident := &sessionstore.Identity{
		ID: uuid.NewString(), SchemaID: sch.ID, State: "active", StateChangedAt: now,
		Traits: traitsJSON, MetadataPublic: metadata(out.MetadataPublic), MetadataAdmin: metadata(out.MetadataAdmin),
		CreatedAt: now, UpdatedAt: now, Credentials: creds,
	}
	ident.VerifiableAddresses, ident.RecoveryAddresses = sch.Addresses(traits, now)
	// Addresses the method itself proved (a mailed sign-up code) start out
	// verified and need no verification mail.
	for i, a := range ident.VerifiableAddresses {
		for _, v := range verified {
			if a.Value == v {
				t := now
				ident.VerifiableAddresses[i].Verified, ident.VerifiableAddresses[i].Status, ident.VerifiableAddresses[i].VerifiedAt = true, "completed", &t
			}
		}
	}
	if err := g.store.CreateIdentity(r.Context(), ident); err != nil {
		if errors.Is(err, sessionstore.ErrDuplicateCredential) {
			g.answerDuplicate(w, r, sub, traits)
			return
		}
		g.logger.Error("creating identity", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	// The session after-hook: the new identity is signed in — unless
	// require_verified_address wants a verified address first (Kratos: the
	// login hook would refuse this session, so it is not issued).
	var is *session.Issued
	if !(g.cfg.RequireVerifiedAddress && !identity.HasVerifiedAddress(ident)) {
		am := sessionstore.AuthMethod{Method: method, AAL: "aal1"}
		if out.AuthMethod != nil {
			am = *out.AuthMethod
		}
		is = g.sessions.NewSessionFrom(r, ident.ID, am)
		if err := g.store.CreateSession(r.Context(), is.Session); err != nil {
			g.logger.Error("creating session", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
			return
		}
	}
	ev := event.Event{Type: event.RegistrationSucceeded, Flow: "registration", Method: method, IdentityID: ident.ID,
		Actor: event.ActorSelf}
	if is != nil {
		ev.SessionID, ev.AAL = is.Session.ID, is.Session.AAL
	}
	g.kernel.Events().Emit(r, ev)
	f.Active = method
	f.ContinueWith = nil
	for _, a := range ident.VerifiableAddresses {
		if !a.Verified {
			g.kernel.VerifyAddress(r, ident, a, f)
		}
	}
	if len(f.ContinueWith) > 0 {
		// Reload: the addresses are now "sent".
		if fresh, err := g.store.GetIdentity(r.Context(), ident.ID); err == nil {
			ident = fresh
		}
	}
	g.kernel.Complete(r.Context(), f)
	idw := g.sessions.IdentityJSON(r, ident)
	if is == nil {
		// Kratos's answer without the session hook: the identity only.
		if f.Type == "api" {
			wire.WriteJSON(w, http.StatusOK, map[string]any{"identity": idw, "continue_with": f.ContinueWith})
			return
		}
		to := g.kernel.ReturnTo(r, f)
		g.kernel.Finish(w, r, sub, to, nil, map[string]any{"identity": idw, "continue_with": append(f.ContinueWith, flow.ContinueRedirect(to))})
		return
	}
	sw := g.sessions.SessionJSON(is.Session, idw)
	if f.Type == "api" && sub.Callback {
		g.kernel.FinishNative(w, r, f, is)
		return
	}
	if f.Type == "api" {
		wire.WriteJSON(w, http.StatusOK, map[string]any{
			"session_token": is.Token, "session": sw, "identity": idw,
			"continue_with": append([]any{map[string]any{"action": "set_ory_session_token", "ory_session_token": is.Token}}, f.ContinueWith...),
		})
		return
	}
	g.kernel.IssueCSRF(w, r)
	g.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
	to := g.kernel.ReturnTo(r, f)
	g.kernel.Finish(w, r, sub, to, nil, map[string]any{"session": sw, "identity": idw, "continue_with": append(f.ContinueWith, flow.ContinueRedirect(to))})
}

// answerDuplicate answers a sign-up whose identifier or address belongs to
// another identity (Kratos's 4000007 on the first screen).
func (g *Flow) answerDuplicate(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any) {
	g.failed(r, sub.Method, "4000007")
	g.kernel.FlowSchema(sub.Flow).FillObjects(traits)
	g.form(r, sub.Flow, traits)
	sub.Flow.UI.Messages = []node.Text{g.duplicateText(r, sub.Flow, traits)}
	g.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// duplicateText is Kratos's 4000007; or, when the existing account has
// no password to sign in with (it signs in with a social provider) and
// account enumeration is not mitigated, 4000028 with hints on how it
// signs in, so the user is not left trying passwords.
func (g *Flow) duplicateText(r *http.Request, f *flow.Flow, traits map[string]any) node.Text {
	plain := node.NewText(4000007, nil)
	if g.cfg.MitigateAccountEnumeration {
		return plain
	}
	sch := g.kernel.FlowSchema(f)
	owner, dup, err := g.kernel.OwnerOf(r.Context(), sch, traits, sch.Identifiers(traits, "password"))
	if err != nil || owner == nil || identity.HasPasswordHash(owner) {
		return plain
	}
	types, providers := identity.SignInHints(owner)
	if len(types) == 0 {
		return plain
	}
	return node.Text{ID: 4000028, Type: "error", Text: identity.DuplicateHintText(dup, types, providers),
		Context: map[string]any{"available_credential_types": types, "available_oidc_providers": providers,
			"credential_identifier_hint": dup}}
}

// failed records a sign-up a method or the schema refused (reason: the
// first error's message id).
func (g *Flow) failed(r *http.Request, method, reason string) {
	g.kernel.Events().Emit(r, event.Event{Type: event.RegistrationFailed, Flow: "registration", Method: method, Reason: reason,
		Actor: event.ActorSelf})
}

// metadata is a new identity's metadata: a method's (a social sign-in's
// mapper output), or JSON null.
func metadata(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}
