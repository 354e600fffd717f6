package flows

import (
	"encoding/json"
	"errors"
	"net/http"

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

// initRegistration builds a new registration flow (not yet stored).
func (e *Engine) initRegistration(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	if e.cfg.DisableRegistration {
		return nil, errRegistrationDisabled()
	}
	returnTo, rerr := e.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	schemaID := r.URL.Query().Get("identity_schema")
	if _, serr := e.schemas.SelfService(schemaID); serr != nil {
		return nil, serr
	}
	sess, err := e.sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		return nil, wire.StoreError(err, "unable to look up the session")
	}
	if sess != nil {
		return nil, wire.SessionAlreadyAvailable()
	}
	f := e.kernel.NewFlow(r, "registration", typ)
	f.ReturnTo, f.State, f.IdentitySchema = returnTo, "choose_method", schemaID
	if typ == "api" && r.URL.Query().Get("return_session_token_exchange_code") == "true" {
		code := token.NewExchangeCode()
		f.ExchangeCode = code
		f.ExchangeCodeHash = token.Hash(code)
	}
	e.registrationForm(f, nil)
	return f, nil
}

// registrationForm renders the first screen: traits (and, in the unified
// style, the password) with values from traits.
func (e *Engine) registrationForm(f *flow.Flow, traits map[string]any) {
	e.registrationFormFor(nil, f, traits)
}

// registrationFormFor is registrationForm with the request, which methods
// need for URLs (nil is fine for password-only forms).
func (e *Engine) registrationFormFor(r0 *http.Request, f *flow.Flow, traits map[string]any) {
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	f.UI.Nodes = []*node.Node{node.CSRF(csrf)}
	f.UI.Nodes = append(f.UI.Nodes, e.kernel.FlowSchema(f).TraitNodes("default", traits, false)...)
	if e.cfg.RegistrationStyle == "unified" {
		e.passwordRegistrationNodes(f)
		e.registrationMethodNodes(r0, f, traits)
	} else {
		f.UI.Nodes = append(f.UI.Nodes, node.Submit("profile", "method", "profile", node.Label(1040001, nil)))
	}
	f.State = "choose_method"
}

// passwordRegistrationNodes appends the password field and its submit,
// unless the password method is off.
func (e *Engine) passwordRegistrationNodes(f *flow.Flow) {
	if !e.methodEnabled("password") {
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("new-password"),
		node.Submit("password", "method", "password", node.Label(1040001, nil)))
}

// credentialSelection renders the second screen of profile_first: traits
// hidden, then the credential methods, then "Back".
func (e *Engine) credentialSelection(r *http.Request, f *flow.Flow, traits map[string]any) {
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	f.UI.Nodes = []*node.Node{node.CSRF(csrf)}
	f.UI.Nodes = append(f.UI.Nodes, e.kernel.FlowSchema(f).TraitNodes("default", traits, true)...)
	e.passwordRegistrationNodes(f)
	e.registrationMethodNodes(r, f, traits)
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("profile", "screen", "previous", node.Label(1040008, nil)))
	f.UI.Messages = []node.Text{node.NewText(1040009, nil)}
	f.State = "choose_method"
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	f.Internal["traits"] = traits
}

// submitRegistration is updateRegistrationFlow after the shared checks.
func (e *Engine) submitRegistration(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if e.cfg.DisableRegistration {
		e.kernel.WriteError(w, r, f.Type, errRegistrationDisabled())
		return
	}
	if f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4040002, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if sess, _ := e.sessions.Current(r); sess != nil {
		if f.Type == "browser" && !sub.JSON {
			wire.Redirect(w, r, http.StatusFound, e.urls.DefaultReturn())
			return
		}
		f.UI.Messages = []node.Text{node.TextReason(4000001, wire.SessionAlreadyAvailable().Reason)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	traits, _ := sub.Body["traits"].(map[string]any)
	if traits == nil {
		if t, ok := f.Internal["traits"].(map[string]any); ok {
			traits = t
		}
	}
	switch sub.Method {
	case "profile":
		if e.cfg.RegistrationStyle != "profile_first" {
			break
		}
		if wire.BodyString(sub.Body, "screen") == "previous" {
			e.registrationForm(f, traits)
			e.kernel.Render(w, r, sub, http.StatusOK)
			return
		}
		if traits == nil {
			traits = map[string]any{}
		}
		if errs := e.kernel.FlowSchema(f).Validate(traits); len(errs) > 0 {
			e.registrationForm(f, traits)
			applyFieldErrors(&f.UI, errs)
			e.kernel.Render(w, r, sub, http.StatusBadRequest)
			return
		}
		e.credentialSelection(r, f, traits)
		f.KeepTransient()
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	case "password":
		if !e.methodEnabled("password") {
			break // no strategy: 4010003 below
		}
		e.registerPassword(w, r, sub, traits)
		return
	}
	for _, m := range e.registrationMethods {
		if m.name == sub.Method && e.methodEnabled(m.name) {
			e.registerWith(w, r, sub, traits, m)
			return
		}
	}
	f.UI.Messages = []node.Text{node.NewText(4010003, nil)}
	e.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// setTraitValues writes the values of traits into the flow's trait nodes
// that exist (their types stay as the form made them).
func (e *Engine) setTraitValues(f *flow.Flow, traits map[string]any) {
	for _, fd := range e.kernel.FlowSchema(f).Fields {
		if v, ok := identity.LookupPath(traits, fd.Path); ok {
			f.UI.SetValue("traits."+fd.Path, v)
		}
	}
}

// applyFieldErrors puts validation messages on trait nodes (or the flow).
func applyFieldErrors(c *node.Container, errs []identity.FieldError) {
	for _, fe := range errs {
		if fe.Name == "" {
			c.Messages = append(c.Messages, fe.Text)
			continue
		}
		c.AddNodeMessage(fe.Name, fe.Text)
	}
}

func (e *Engine) registerPassword(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any) {
	f := sub.Flow
	password := wire.BodyString(sub.Body, "password")
	if traits == nil {
		traits = map[string]any{}
	}
	fail := func() {
		// Kratos keeps the flow's screen and writes the submitted trait
		// values back; a message for a node the screen lacks (the password
		// of a one-step submit on profile_first's first screen) got a node
		// of its own (addNodeMessage), as Kratos's AddMessage does.
		e.setTraitValues(f, traits)
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
	}
	if errs := e.kernel.FlowSchema(f).Validate(traits); len(errs) > 0 {
		e.registrationForm(f, traits)
		applyFieldErrors(&f.UI, errs)
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	identifiers := e.kernel.FlowSchema(f).Identifiers(traits, "password")
	if len(identifiers) == 0 {
		f.UI.Messages = []node.Text{node.NewText(4000009, nil)}
		fail()
		return
	}
	if password == "" {
		f.UI.AddNodeMessage("password", node.NewText(4000002, map[string]any{"property": "password"}, "password"))
		fail()
		return
	}
	if t := identity.PolicyViolation(password, identifiers, !e.cfg.DisableBreachedPasswordCheck); t != nil {
		f.UI.AddNodeMessage("password", *t)
		fail()
		return
	}
	// Every sign-up attempt that gets this far counts, duplicates
	// included: each one costs a lookup and tells whether an account
	// exists.
	if _, lerr := e.kernel.Reserve(r.Context(), "reg_ip", e.kernel.LimitIP(r)); lerr != nil {
		e.kernel.Refuse(w, r, sub, lerr)
		return
	}
	// A taken identifier is answered before the password is hashed; the
	// store's transaction still decides races (finishRegistration).
	taken, err := e.identifiersTaken(r, e.kernel.FlowSchema(f), traits, identifiers)
	if err != nil {
		e.logger.Error("looking up identifiers", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	if taken {
		e.answerDuplicate(w, r, sub, traits)
		return
	}
	hash, err := e.hasher.Hash(r.Context(), password)
	if errors.Is(err, identity.ErrHashBusy) {
		wire.WriteError(w, r, identity.HashersBusy())
		return
	}
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to hash the password"))
		return
	}
	now := e.now().UTC()
	creds := map[string]sessionstore.Credential{
		"password": {Type: "password", Identifiers: identifiers, Config: identity.EncodeConfig(identity.PasswordConfig{HashedPassword: hash}),
			CreatedAt: now, UpdatedAt: now},
	}
	e.finishRegistration(w, r, sub, traits, creds, "password")
}

// finishRegistration creates the identity with creds (unique identifiers
// checked in the store's transaction), runs the session and verification
// after-hooks and answers per client kind.
func (e *Engine) finishRegistration(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any, creds map[string]sessionstore.Credential, method string, verified ...string) {
	f := sub.Flow
	now := e.now().UTC()
	sch := e.kernel.FlowSchema(f)
	sch.FillObjects(traits)
	traitsJSON, _ := json.Marshal(traits)
	ident := &sessionstore.Identity{
		ID: uuid.NewString(), SchemaID: sch.ID, State: "active", StateChangedAt: now,
		Traits: traitsJSON, MetadataPublic: json.RawMessage("null"), MetadataAdmin: json.RawMessage("null"),
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
	if err := e.store.CreateIdentity(r.Context(), ident); err != nil {
		if errors.Is(err, sessionstore.ErrDuplicateCredential) {
			e.answerDuplicate(w, r, sub, traits)
			return
		}
		e.logger.Error("creating identity", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	// The session after-hook: the new identity is signed in — unless
	// require_verified_address wants a verified address first (Kratos: the
	// login hook would refuse this session, so it is not issued).
	var is *session.Issued
	if !(e.cfg.RequireVerifiedAddress && !identity.HasVerifiedAddress(ident)) {
		is = e.sessions.NewSession(r, ident.ID, method, "aal1")
		if err := e.store.CreateSession(r.Context(), is.Session); err != nil {
			e.logger.Error("creating session", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
			return
		}
	}
	f.Active = method
	f.ContinueWith = nil
	for _, a := range ident.VerifiableAddresses {
		if !a.Verified {
			e.kernel.VerifyAddress(r, ident, a, f)
		}
	}
	if len(f.ContinueWith) > 0 {
		// Reload: the addresses are now "sent".
		if fresh, err := e.store.GetIdentity(r.Context(), ident.ID); err == nil {
			ident = fresh
		}
	}
	e.kernel.Complete(r.Context(), f)
	idw := e.sessions.IdentityJSON(r, ident)
	if is == nil {
		// Kratos's answer without the session hook: the identity only.
		if f.Type == "api" {
			wire.WriteJSON(w, http.StatusOK, map[string]any{"identity": idw, "continue_with": f.ContinueWith})
			return
		}
		to := e.kernel.ReturnTo(r, f)
		e.kernel.Finish(w, r, sub, to, nil, map[string]any{"identity": idw, "continue_with": append(f.ContinueWith, flow.ContinueRedirect(to))})
		return
	}
	sw := e.sessions.SessionJSON(is.Session, idw)
	if f.Type == "api" {
		wire.WriteJSON(w, http.StatusOK, map[string]any{
			"session_token": is.Token, "session": sw, "identity": idw,
			"continue_with": append([]any{map[string]any{"action": "set_ory_session_token", "ory_session_token": is.Token}}, f.ContinueWith...),
		})
		return
	}
	e.kernel.IssueCSRF(w, r)
	e.sessions.SetCookie(w, r, is.Token, is.Session.ExpiresAt)
	to := e.kernel.ReturnTo(r, f)
	e.kernel.Finish(w, r, sub, to, nil, map[string]any{"session": sw, "identity": idw, "continue_with": append(f.ContinueWith, flow.ContinueRedirect(to))})
}

// answerDuplicate answers a sign-up whose identifier or address belongs to
// another identity (Kratos's 4000007 on the first screen).
func (e *Engine) answerDuplicate(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any) {
	e.kernel.FlowSchema(sub.Flow).FillObjects(traits)
	e.registrationFormFor(r, sub.Flow, traits)
	sub.Flow.UI.Messages = []node.Text{node.NewText(4000007, nil)}
	e.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// identifiersTaken reports whether one of the password identifiers or
// addresses of traits is already indexed for another identity: the
// indexes CreateIdentity would refuse to claim.
func (e *Engine) identifiersTaken(r *http.Request, sch *identity.Schema, traits map[string]any, identifiers []string) (bool, error) {
	type key struct{ typ, value string }
	var keys []key
	for _, id := range identifiers {
		keys = append(keys, key{"password", id})
	}
	ver, rec := sch.Addresses(traits, e.now().UTC())
	for _, a := range ver {
		keys = append(keys, key{sessionstore.AddressIndexType("verification", a.Via), a.Value})
	}
	for _, a := range rec {
		keys = append(keys, key{sessionstore.AddressIndexType("recovery", a.Via), a.Value})
	}
	for _, k := range keys {
		if k.value == "" {
			continue
		}
		_, err := e.store.FindIdentityByCredential(r.Context(), k.typ, k.value)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, sessionstore.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// registrationMethod is a credential offered at sign-up besides password
// (code, passkey, webauthn). A new method is one new file that appends
// entry in the engine's list (registerMethods).
type registrationMethod struct {
	name string
	// nodes appends the method's nodes to the credential-selection screen
	// (profile_first) or the one-step form (unified).
	nodes func(e *Engine, r *http.Request, f *flow.Flow, traits map[string]any)
	// register handles a submit whose method is name, with traits already
	// validated against the schema.
	register func(e *Engine, r *http.Request, st *registrationState) registrationOutcome
}

type registrationState struct {
	sub    *flow.Submission
	traits map[string]any
}

// registrationOutcome: creds set → create the identity with them; invalid
// → 400 with the flow's messages; show → 200 with the flow (e.g. a code
// was sent); err → a non-flow error.
type registrationOutcome struct {
	creds map[string]sessionstore.Credential
	// verified lists addresses the method proved.
	verified []string
	invalid  bool
	show     bool
	err      *wire.Error
}

func (e *Engine) registrationMethodNodes(r *http.Request, f *flow.Flow, traits map[string]any) {
	for _, m := range e.registrationMethods {
		if e.methodEnabled(m.name) {
			m.nodes(e, r, f, traits)
		}
	}
}

func (e *Engine) registerWith(w http.ResponseWriter, r *http.Request, sub *flow.Submission, traits map[string]any, m *registrationMethod) {
	f := sub.Flow
	// Early refusal while blocked (before a code is mailed, say); the
	// attempt itself is counted below, when an identity is to be created.
	if d, err := e.kernel.Blocked(r.Context(), "reg_ip", e.kernel.LimitIP(r)); err != nil || d > 0 {
		if err != nil {
			e.logger.Error("rate limit state unavailable; refusing the attempt", zap.Error(err))
			e.kernel.Refuse(w, r, sub, flow.LimitsUnavailable())
			return
		}
		e.kernel.TooMany(w, r, sub, d)
		return
	}
	if traits == nil {
		traits = map[string]any{}
	}
	if errs := e.kernel.FlowSchema(f).Validate(traits); len(errs) > 0 {
		e.registrationFormFor(r, f, traits)
		applyFieldErrors(&f.UI, errs)
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	out := m.register(e, r, &registrationState{sub: sub, traits: traits})
	switch {
	case out.err != nil:
		e.kernel.WriteError(w, r, f.Type, out.err)
	case out.invalid:
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
	case out.show:
		e.kernel.Render(w, r, sub, http.StatusOK)
	case out.creds != nil:
		if _, lerr := e.kernel.Reserve(r.Context(), "reg_ip", e.kernel.LimitIP(r)); lerr != nil {
			e.kernel.Refuse(w, r, sub, lerr)
			return
		}
		e.finishRegistration(w, r, sub, traits, out.creds, m.name, out.verified...)
	default:
		wire.WriteError(w, r, wire.Internal("registration method gave no outcome"))
	}
}
