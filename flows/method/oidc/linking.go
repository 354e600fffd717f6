package oidc

import (
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// linkKey is the login flow's Internal key of a provider account waiting
// to be linked to the account its address belongs to.
const linkKey = "oidc_link"

// pendingLink is a provider account that signed up with an identifier or
// address of an existing account (OwnerID). It is linked only when a
// sign-in on this login flow proves that account is the user's.
type pendingLink struct {
	OwnerID    string       `json:"owner_id"`
	Identifier string       `json:"identifier"`
	Entry      credProvider `json:"entry"`
}

// startLinking answers a sign-up whose provider account's identifier dup
// belongs to owner: a new login flow (active oidc) asks the user to sign
// in to that account with one of its ways (Kratos's 1010016), and keeps
// the provider account to link afterwards. Nothing is created or merged,
// whatever the provider says about the address being verified.
func (m *Method) startLinking(w http.ResponseWriter, r *http.Request, sub *flow.Submission, cr *result, owner *sessionstore.Identity, dup string) {
	ctx := r.Context()
	old := sub.Flow
	e, err := m.newEntry(ctx, cr)
	if err != nil {
		m.logger.Error("sealing oidc tokens", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	raw, _ := json.Marshal(pendingLink{OwnerID: owner.ID, Identifier: dup, Entry: e})
	lf := m.kernel.NewFlow(r, "login", old.Type)
	lf.RequestURL, lf.ReturnTo, lf.TransientPayload = old.RequestURL, old.ReturnTo, old.TransientPayload
	lf.CSRFToken, lf.ExchangeCodeHash = old.CSRFToken, old.ExchangeCodeHash
	lf.RequestedAAL, lf.State, lf.Active = "aal1", "choose_method", "oidc"
	lf.Internal = map[string]any{linkKey: string(raw)}
	lf.UI.Nodes = append(lf.UI.Nodes, node.CSRF(""),
		node.Input("default", "identifier", "hidden", node.Label(1070004, nil)).Value(dup))
	m.kernel.SetCSRFNode(lf, lf.CSRFToken)
	if !m.moveExchange(w, r, old, lf) {
		return
	}
	types, _ := identity.SignInHints(owner)
	if identity.HasPasswordHash(owner) {
		lf.UI.Nodes = append(lf.UI.Nodes,
			node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
			node.Submit("password", "method", "password", node.Label(1010022, nil)))
	}
	providers := []string{}
	linked := linkedProviders(owner)
	for _, p := range m.providers {
		c := p.Config()
		if linked[c.ID] {
			providers = append(providers, c.ID)
			lf.UI.Nodes = append(lf.UI.Nodes, node.Submit("oidc", "provider", c.ID,
				node.Label(1010018, map[string]any{"provider": c.DisplayName()}, c.DisplayName())))
		}
	}
	name := cr.provider.Config().DisplayName()
	newLogin := wire.WithQuery(m.kernel.URLs().UI("login"), "flow", lf.ID)
	lf.UI.Messages = []node.Text{node.NewText(1010016, map[string]any{
		"duplicateIdentifier": dup, "duplicate_identifier": dup, "provider": name,
		"newLoginUrl": newLogin, "new_login_url": newLogin,
		"available_credential_types": types, "available_providers": providers,
	}, dup, name)}
	m.kernel.Render(w, r, &flow.Submission{Flow: lf, ToUI: old.Type == "browser", Callback: true}, http.StatusOK)
}

// LoginCompleted links the provider account waiting on the flow (account
// linking) to ident, which just signed in on it — only when ident is the
// account the address belongs to (else 4010009, nothing linked). The new
// session then records the provider too.
func (m *Method) LoginCompleted(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) (*sessionstore.AuthMethod, *node.Text, error) {
	raw, _ := f.Internal[linkKey].(string)
	if raw == "" {
		return nil, nil, nil
	}
	var pl pendingLink
	if err := json.Unmarshal([]byte(raw), &pl); err != nil {
		return nil, nil, err
	}
	if pl.OwnerID != ident.ID {
		t := node.NewText(4010009, nil)
		return nil, &t, nil
	}
	_, err := m.store.ModifyIdentity(r.Context(), ident.ID, func(cur *sessionstore.Identity) error {
		if linkedProviders(cur)[pl.Entry.Provider] {
			return sessionstore.ErrNoChange
		}
		addEntry(cur, pl.Entry, m.now().UTC())
		return nil
	})
	switch {
	case errors.Is(err, sessionstore.ErrNoChange):
	case errors.Is(err, sessionstore.ErrDuplicateCredential):
		// The provider account was linked elsewhere meanwhile.
		t := node.NewText(4000027, nil)
		return nil, &t, nil
	case err != nil:
		return nil, nil, err
	}
	delete(f.Internal, linkKey)
	return &sessionstore.AuthMethod{Method: "oidc", AAL: "aal1", Provider: pl.Entry.Provider}, nil, nil
}
