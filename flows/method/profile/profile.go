package profile

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Method is the profile method: the settings flow's group of traits.
type Method struct {
	kernel   *flow.Kernel
	sessions *session.Manager
	schemas  *identity.Schemas
	now      func() time.Time
}

// New returns the profile method.
func New(k *flow.Kernel, sessions *session.Manager, schemas *identity.Schemas, now func() time.Time) *Method {
	return &Method{kernel: k, sessions: sessions, schemas: schemas, now: now}
}

// ID is "profile".
func (m *Method) ID() string { return "profile" }

// Enabled is true: the profile is always on.
func (m *Method) Enabled() bool { return true }

var _ flow.SettingsMethod = (*Method)(nil)

// SettingsNodes adds the traits of ident and the save button.
func (m *Method) SettingsNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes, m.schemas.Of(ident).TraitNodes("profile", identity.TraitsOf(ident), false)...)
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("profile", "method", "profile", node.Label(1070003, nil)))
}

// UpdateSettings changes the traits: validated by the identity's schema,
// in a privileged session when identifiers or addresses change, with
// new addresses verified.
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	traits, _ := st.Sub.Body["traits"].(map[string]any)
	if traits == nil {
		traits = map[string]any{}
	}
	sch := m.schemas.Of(st.Identity)
	if errs := sch.Validate(traits); len(errs) > 0 {
		st.RebuildForm()
		for _, fe := range errs {
			if fe.Name == "" {
				f.UI.Messages = append(f.UI.Messages, fe.Text)
			} else {
				f.UI.SetValue(fe.Name, mustLookup(traits, fe.Name))
				f.UI.AddNodeMessage(fe.Name, fe.Text)
			}
		}
		return flow.SettingsOutcome{Invalid: true}
	}
	now := m.now().UTC()
	sch.FillObjects(traits)
	traitsJSON, _ := json.Marshal(traits)
	// Whether the change needs a privileged session is decided on the
	// identity as read, and again on the identity as it is at write time.
	changedIdentifiers, changedAddresses, _ := m.applyProfile(cloneIdentity(st.Identity), traits, traitsJSON, now)
	var stored *sessionstore.Identity
	var newAddrs []sessionstore.VerifiableAddress
	sess := st.Session
	return flow.SettingsOutcome{
		Privileged: changedIdentifiers || changedAddresses,
		Success:    true,
		Apply: func(cur *sessionstore.Identity) error {
			ids, addrs, added := m.applyProfile(cur, traits, traitsJSON, now)
			if (ids || addrs) && !m.sessions.Privileged(sess) {
				return &flow.SettingsRefused{Out: flow.SettingsOutcome{Privileged: true}}
			}
			stored, newAddrs = cur, added
			return nil
		},
		After: func(f *flow.Flow) {
			for _, a := range newAddrs {
				m.kernel.VerifyAddress(r, stored, a, f)
			}
		},
	}
}

// applyProfile sets traits on ident with the addresses and credential
// identifiers they imply. Unchanged addresses keep their ids and
// verification state. It reports whether credential identifiers or
// addresses changed, and the new addresses that need verification.
func (m *Method) applyProfile(ident *sessionstore.Identity, traits map[string]any, traitsJSON json.RawMessage, now time.Time) (changedIdentifiers, changedAddresses bool, newAddrs []sessionstore.VerifiableAddress) {
	old := *ident
	ident.Traits = traitsJSON
	sch := m.schemas.Of(ident)
	ver, rec := sch.Addresses(traits, now)
	for i, a := range ver {
		for _, o := range old.VerifiableAddresses {
			if o.Value == a.Value && o.Via == a.Via {
				ver[i] = o
			}
		}
	}
	for i, a := range rec {
		for _, o := range old.RecoveryAddresses {
			if o.Value == a.Value && o.Via == a.Via {
				rec[i] = o
			}
		}
	}
	ident.VerifiableAddresses, ident.RecoveryAddresses = ver, rec
	for typ, c := range ident.Credentials {
		ids := sch.Identifiers(traits, typ)
		if len(ids) > 0 && !slices.Equal(ids, c.Identifiers) {
			c.Identifiers = ids
			c.UpdatedAt = now
			ident.Credentials[typ] = c
			changedIdentifiers = true
		}
	}
	changedAddresses = !sameAddresses(&old, ident)
	for _, a := range ver {
		if a.Status == "pending" && !a.Verified {
			known := false
			for _, o := range old.VerifiableAddresses {
				if o.Value == a.Value {
					known = true
				}
			}
			if !known {
				newAddrs = append(newAddrs, a)
			}
		}
	}
	return changedIdentifiers, changedAddresses, newAddrs
}

func mustLookup(traits map[string]any, name string) any {
	v, _ := identity.LookupPath(traits, trimTraits(name))
	return v
}

func trimTraits(name string) string {
	if len(name) > 7 && name[:7] == "traits." {
		return name[7:]
	}
	return name
}

func sameAddresses(a, b *sessionstore.Identity) bool {
	if len(a.VerifiableAddresses) != len(b.VerifiableAddresses) || len(a.RecoveryAddresses) != len(b.RecoveryAddresses) {
		return false
	}
	for i := range a.VerifiableAddresses {
		if a.VerifiableAddresses[i].Value != b.VerifiableAddresses[i].Value {
			return false
		}
	}
	for i := range a.RecoveryAddresses {
		if a.RecoveryAddresses[i].Value != b.RecoveryAddresses[i].Value {
			return false
		}
	}
	return true
}

// cloneIdentity copies an identity deeply enough to change traits,
// addresses and credentials.
func cloneIdentity(in *sessionstore.Identity) *sessionstore.Identity {
	out := *in
	out.VerifiableAddresses = append([]sessionstore.VerifiableAddress(nil), in.VerifiableAddresses...)
	out.RecoveryAddresses = append([]sessionstore.RecoveryAddress(nil), in.RecoveryAddresses...)
	out.Credentials = make(map[string]sessionstore.Credential, len(in.Credentials))
	for k, v := range in.Credentials {
		v.Identifiers = append([]string(nil), v.Identifiers...)
		out.Credentials[k] = v
	}
	return &out
}
