package oidc

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Login starts a sign-in with the submitted provider, or (on the
// provider's callback) signs in the identity linked to the provider
// account. An account nobody is linked to continues as a sign-up, as in
// Kratos: the login flow is replaced by a registration flow.
func (m *Method) Login(w http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	sub := st.Sub
	cr := resultOf(r.Context())
	if cr == nil {
		if m.start(w, r, sub, wire.BodyString(sub.Body, "provider"), nil, sub.Flow.Refresh) {
			return nil, flow.ErrAnswered
		}
		return nil, nil
	}
	ident, err := m.store.FindIdentityByCredential(r.Context(), "oidc", cr.identifier())
	if err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		return nil, wire.StoreError(err, "unable to look up the identity")
	}
	if ident == nil {
		if st.Session != nil {
			// Re-authenticating a session with an account not linked to it.
			sub.Flow.UI.Messages = []node.Text{node.TextReason(4000001, reasonNotLinked)}
			return nil, nil
		}
		m.continueAs(w, r, sub, "registration")
		return nil, flow.ErrAnswered
	}
	st.AuthMethod = &sessionstore.AuthMethod{Method: "oidc", AAL: cr.aal(), Provider: cr.provider.Config().ID}
	return ident, nil
}

// continueAs replaces the flow of sub by a new flow of kind (a login that
// found no account becomes a sign-up, a sign-up that found one becomes a
// login) carrying its return_to, transient payload, CSRF token and
// exchange code, and resumes it with the same callback.
func (m *Method) continueAs(w http.ResponseWriter, r *http.Request, sub *flow.Submission, kind string) {
	old := sub.Flow
	nf := m.kernel.NewFlow(r, kind, old.Type)
	nf.RequestURL, nf.ReturnTo, nf.TransientPayload = old.RequestURL, old.ReturnTo, old.TransientPayload
	nf.CSRFToken, nf.ExchangeCodeHash, nf.State = old.CSRFToken, old.ExchangeCodeHash, "choose_method"
	nf.IdentitySchema = old.IdentitySchema
	if kind == "login" {
		nf.RequestedAAL = "aal1"
	}
	nf.UI.Nodes = append(nf.UI.Nodes, node.CSRF(""))
	m.kernel.SetCSRFNode(nf, nf.CSRFToken)
	if !m.moveExchange(w, r, old, nf) {
		return
	}
	body := map[string]any{"method": "oidc", "provider": resultOf(r.Context()).provider.Config().ID}
	if kind == "registration" {
		traits, err := m.signUpTraits(r.Context(), resultOf(r.Context()))
		if err != nil {
			m.logger.Warn("oidc mapper failed", zap.Error(err))
			m.failFlow(w, r, sub, reasonMapper)
			return
		}
		body["traits"] = traits
	}
	m.kernel.Resume(w, r, &flow.Submission{Flow: nf, Method: "oidc", Body: body, ToUI: sub.ToUI, Callback: true})
}

// StartsElsewhere reports whether a sign-up submit of the method leaves
// for the provider: its traits come back with the provider's answer, so
// the flow does not validate them yet.
func (m *Method) StartsElsewhere(r *http.Request) bool { return resultOf(r.Context()) == nil }

// TraitsForm is Kratos's form for a provider's sign-up whose traits do
// not validate: the traits, filled, in the oidc group with the provider's
// button labelled "Continue" (1040003), so they are posted together and
// come back with the next trip to the provider (a silent one while the
// user's session there lives).
func (m *Method) TraitsForm(r *http.Request, f *flow.Flow, traits map[string]any) bool {
	cr := resultOf(r.Context())
	if cr == nil {
		return false
	}
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	m.kernel.FlowSchema(f).FillObjects(traits)
	f.UI.Nodes = append([]*node.Node{node.CSRF(csrf)}, m.kernel.FlowSchema(f).TraitNodes("oidc", traits, false)...)
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("oidc", "provider", cr.provider.Config().ID, node.Label(1040003, nil)))
	f.State = "choose_method"
	return true
}

// Register starts a sign-up with the submitted provider, or (on the
// callback, the traits from the mapper and the form valid) returns the
// new identity's oidc credential. An account already linked signs in
// instead; an identifier or address that belongs to another account
// starts account linking: nothing is created or merged until the user
// proves that account is theirs.
func (m *Method) Register(r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	sub := st.Sub
	cr := resultOf(r.Context())
	if cr == nil {
		if m.start(st.W, r, sub, wire.BodyString(sub.Body, "provider"), st.Traits, false) {
			return flow.RegistrationOutcome{Answered: true}
		}
		return flow.RegistrationOutcome{Invalid: true}
	}
	if lerr := st.Reserve(); lerr != nil {
		return flow.RegistrationOutcome{Refused: lerr}
	}
	ctx := r.Context()
	linked, err := m.store.FindIdentityByCredential(ctx, "oidc", cr.identifier())
	if err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		return flow.RegistrationOutcome{Refused: wire.StoreError(err, "unable to look up the identity")}
	}
	if linked != nil {
		m.continueAs(st.W, r, sub, "login")
		return flow.RegistrationOutcome{Answered: true}
	}
	sch := m.kernel.FlowSchema(sub.Flow)
	owner, dup, err := m.kernel.OwnerOf(ctx, sch, st.Traits, sch.Identifiers(st.Traits, "password"))
	if err != nil {
		return flow.RegistrationOutcome{Refused: wire.StoreError(err, "unable to look up the identity")}
	}
	if owner != nil {
		m.startLinking(st.W, r, sub, cr, owner, dup)
		return flow.RegistrationOutcome{Answered: true}
	}
	mapped, err := m.mapClaims(ctx, cr)
	if err != nil {
		sub.Flow.UI.Messages = []node.Text{node.TextReason(4000001, reasonMapper)}
		return flow.RegistrationOutcome{Invalid: true}
	}
	e, err := m.newEntry(ctx, cr)
	if err != nil {
		m.logger.Error("sealing oidc tokens", zap.Error(err))
		return flow.RegistrationOutcome{Refused: wire.StoreError(err, "unable to store the identity")}
	}
	var verified []string
	for _, a := range mapped.VerifiedAddresses {
		verified = append(verified, a.Value)
	}
	return flow.RegistrationOutcome{
		Creds:          map[string]sessionstore.Credential{"oidc": newCredential(e, m.now().UTC())},
		Verified:       verified,
		AuthMethod:     &sessionstore.AuthMethod{Method: "oidc", AAL: cr.aal(), Provider: cr.provider.Config().ID},
		MetadataPublic: mapped.MetadataPublic, MetadataAdmin: mapped.MetadataAdmin,
	}
}

// SettingsNodes adds, per provider, "Link" for those ident is not linked
// to and "Unlink" for those it is — the latter only while another way to
// sign in remains (Kratos hides it on the last one).
func (m *Method) SettingsNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	linked := linkedProviders(ident)
	for _, p := range m.providers {
		id := p.Config().ID
		switch {
		case !linked[id]:
			f.UI.Nodes = append(f.UI.Nodes, node.Submit("oidc", "link", id, node.Label(1050002, map[string]any{"provider": id}, id)))
		case firstFactors(ident, id) > 0:
			f.UI.Nodes = append(f.UI.Nodes, node.Submit("oidc", "unlink", id, node.Label(1050003, map[string]any{"provider": id}, id)))
		}
	}
}

// UpdateSettings links (a trip to the provider, forced to authenticate
// again) or unlinks a provider; both need a privileged session.
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	sub := st.Sub
	f := sub.Flow
	if cr := resultOf(r.Context()); cr != nil {
		return m.linkDone(r, st, cr)
	}
	if !m.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if id := wire.BodyString(sub.Body, "unlink"); id != "" {
		return m.unlink(st, id)
	}
	id := wire.BodyString(sub.Body, "link")
	if id == "" {
		id = wire.BodyString(sub.Body, "provider")
	}
	if linkedProviders(st.Identity)[id] {
		f.UI.Messages = []node.Text{node.TextReason(4000001, "This provider is linked to your account already.")}
		st.RebuildForm()
		return flow.SettingsOutcome{Invalid: true}
	}
	if m.start(st.W, r, sub, id, nil, true) {
		return flow.SettingsOutcome{Answered: true}
	}
	st.RebuildForm()
	return flow.SettingsOutcome{Invalid: true}
}

// unlink removes provider id from the identity, never its last way in.
func (m *Method) unlink(st *flow.SettingsState, id string) flow.SettingsOutcome {
	f := st.Sub.Flow
	refuse := func(reason string) flow.SettingsOutcome {
		st.RebuildForm()
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		return flow.SettingsOutcome{Invalid: true}
	}
	if _, ok := m.byID[id]; !ok {
		return refuse(unknownProvider(id))
	}
	if !linkedProviders(st.Identity)[id] {
		return refuse(reasonNotLinked)
	}
	if firstFactors(st.Identity, id) == 0 {
		return refuse(reasonLastCredential)
	}
	return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
		// Checked again on the identity as it is now: another tab may
		// have removed the password meanwhile.
		if !linkedProviders(cur)[id] {
			return sessionstore.ErrNoChange
		}
		if firstFactors(cur, id) == 0 {
			return &flow.SettingsRefused{Out: refuse(reasonLastCredential)}
		}
		removeProvider(cur, id, m.now().UTC())
		return nil
	}}
}

// linkDone adds the provider account of a settings callback to the
// identity, unless it belongs to another account or is linked already.
func (m *Method) linkDone(r *http.Request, st *flow.SettingsState, cr *result) flow.SettingsOutcome {
	f := st.Sub.Flow
	refuse := func(t node.Text) flow.SettingsOutcome {
		st.RebuildForm()
		f.UI.Messages = []node.Text{t}
		return flow.SettingsOutcome{Invalid: true}
	}
	owner, err := m.store.FindIdentityByCredential(r.Context(), "oidc", cr.identifier())
	switch {
	case err != nil && !errors.Is(err, sessionstore.ErrNotFound):
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to look up the identity")}
	case owner != nil && owner.ID != st.Identity.ID:
		return refuse(node.NewText(4000027, nil))
	case owner != nil:
		return refuse(node.TextReason(4000001, "This provider is linked to your account already."))
	}
	e, err := m.newEntry(r.Context(), cr)
	if err != nil {
		m.logger.Error("sealing oidc tokens", zap.Error(err))
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to store the identity")}
	}
	id := cr.provider.Config().ID
	return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
		if linkedProviders(cur)[id] {
			return sessionstore.ErrNoChange
		}
		addEntry(cur, e, m.now().UTC())
		return nil
	}}
}

// moveExchange points a native app's token exchange at nf, the flow that
// replaces old (false: answered with the error).
func (m *Method) moveExchange(w http.ResponseWriter, r *http.Request, old, nf *flow.Flow) bool {
	if len(old.ExchangeCodeHash) == 0 {
		return true
	}
	if err := m.sessions.MoveExchange(r.Context(), old.ExchangeCodeHash, nf.ID, nf.ExpiresAt); err != nil &&
		!errors.Is(err, session.ErrNoExchange) {
		m.logger.Error("moving the token exchange", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return false
	}
	return true
}
