package password

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// RegistrationNodes adds the new password and the sign-up button.
func (m *Method) RegistrationNodes(_ *http.Request, f *flow.Flow, _ map[string]any) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("new-password"),
		node.Submit("password", "method", "password", node.Label(1040001, nil)))
}

// Register checks the new password against the policy, counts the
// attempt, answers a taken identifier before hashing, and hands the hash
// to the flow as the password credential (flow.RegistrationMethod).
func (m *Method) Register(r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	password := wire.BodyString(st.Sub.Body, "password")
	// Kratos keeps the flow's screen and writes the submitted trait
	// values back; a message for a node the screen lacks (the password of
	// a one-step submit on profile_first's first screen) gets a node of
	// its own (AddNodeMessage), as Kratos's AddMessage does.
	invalid := func() flow.RegistrationOutcome {
		sch := m.kernel.FlowSchema(f)
		for _, fd := range sch.Fields {
			if v, ok := identity.LookupPath(st.Traits, fd.Path); ok {
				f.UI.SetValue("traits."+fd.Path, v)
			}
		}
		return flow.RegistrationOutcome{Invalid: true}
	}
	sch := m.kernel.FlowSchema(f)
	identifiers := sch.Identifiers(st.Traits, "password")
	if len(identifiers) == 0 {
		f.UI.Messages = []node.Text{node.NewText(4000009, nil)}
		return invalid()
	}
	if password == "" {
		f.UI.AddNodeMessage("password", node.NewText(4000002, map[string]any{"property": "password"}, "password"))
		return invalid()
	}
	if t := identity.PolicyViolation(password, identifiers, m.breachCheck); t != nil {
		f.UI.AddNodeMessage("password", *t)
		return invalid()
	}
	// Every sign-up attempt that gets this far counts, duplicates
	// included: each one costs a lookup and tells whether an account
	// exists.
	if lerr := st.Reserve(); lerr != nil {
		return flow.RegistrationOutcome{Refused: lerr}
	}
	taken, err := m.kernel.IdentifiersTaken(r.Context(), sch, st.Traits, identifiers)
	if err != nil {
		m.logger.Error("looking up identifiers", zap.Error(err))
		return flow.RegistrationOutcome{Refused: wire.StoreError(err, "unable to store the identity")}
	}
	if taken {
		return flow.RegistrationOutcome{Duplicate: true}
	}
	hash, err := m.hasher.Hash(r.Context(), password)
	if errors.Is(err, identity.ErrHashBusy) {
		return flow.RegistrationOutcome{Refused: identity.HashersBusy()}
	}
	if err != nil {
		return flow.RegistrationOutcome{Refused: wire.StoreError(err, "unable to hash the password")}
	}
	now := m.now().UTC()
	return flow.RegistrationOutcome{Creds: map[string]sessionstore.Credential{
		"password": {Type: "password", Identifiers: identifiers, Config: identity.EncodeConfig(identity.PasswordConfig{HashedPassword: hash}),
			CreatedAt: now, UpdatedAt: now},
	}}
}

var _ flow.RegistrationMethod = (*Method)(nil)
