package flows

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func traitsMap(ident *sessionstore.Identity) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(ident.Traits, &m)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func profileNodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes, e.schemas.Of(ident).TraitNodes("profile", traitsMap(ident), false)...)
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("profile", "method", "profile", node.Label(1070003, nil)))
}

func profileUpdate(e *Engine, r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	traits, _ := st.Sub.Body["traits"].(map[string]any)
	if traits == nil {
		traits = map[string]any{}
	}
	sch := e.schemas.Of(st.Identity)
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
	now := e.now().UTC()
	sch.FillObjects(traits)
	traitsJSON, _ := json.Marshal(traits)
	// Whether the change needs a privileged session is decided on the
	// identity as read, and again on the identity as it is at write time.
	changedIdentifiers, changedAddresses, _ := e.applyProfile(cloneIdentity(st.Identity), traits, traitsJSON, now)
	var stored *sessionstore.Identity
	var newAddrs []sessionstore.VerifiableAddress
	sess := st.Session
	return flow.SettingsOutcome{
		Privileged: changedIdentifiers || changedAddresses,
		Success:    true,
		Apply: func(cur *sessionstore.Identity) error {
			ids, addrs, added := e.applyProfile(cur, traits, traitsJSON, now)
			if (ids || addrs) && !e.sessions.Privileged(sess) {
				return &flow.SettingsRefused{Out: flow.SettingsOutcome{Privileged: true}}
			}
			stored, newAddrs = cur, added
			return nil
		},
		After: func(f *flow.Flow) {
			for _, a := range newAddrs {
				e.kernel.VerifyAddress(r, stored, a, f)
			}
		},
	}
}

// applyProfile sets traits on ident with the addresses and credential
// identifiers they imply. Unchanged addresses keep their ids and
// verification state. It reports whether credential identifiers or
// addresses changed, and the new addresses that need verification.
func (e *Engine) applyProfile(ident *sessionstore.Identity, traits map[string]any, traitsJSON json.RawMessage, now time.Time) (changedIdentifiers, changedAddresses bool, newAddrs []sessionstore.VerifiableAddress) {
	old := *ident
	ident.Traits = traitsJSON
	sch := e.schemas.Of(ident)
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

func passwordSettingsNodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("new-password"),
		node.Submit("password", "method", "password", node.Label(1070003, nil)))
}

func passwordSettingsUpdate(e *Engine, r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	password := wire.BodyString(st.Sub.Body, "password")
	fail := func(t node.Text) flow.SettingsOutcome {
		f.UI.AddNodeMessage("password", t)
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	if !e.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if password == "" {
		return fail(node.NewText(4000002, map[string]any{"property": "password"}, "password"))
	}
	ids := e.schemas.Of(st.Identity).Identifiers(traitsMap(st.Identity), "password")
	if t := identity.PolicyViolation(password, ids, !e.cfg.DisableBreachedPasswordCheck); t != nil {
		return fail(*t)
	}
	if cred, had := st.Identity.Credentials["password"]; had {
		var pc identity.PasswordConfig
		_ = identity.DecodeConfig(cred.Config, &pc)
		same, err := e.hasher.Verify(r.Context(), password, pc.HashedPassword)
		if errors.Is(err, identity.ErrHashBusy) {
			return flow.SettingsOutcome{Err: identity.HashersBusy()}
		}
		if same {
			return fail(node.NewText(4000039, nil))
		}
	}
	hash, err := e.hasher.Hash(r.Context(), password)
	if errors.Is(err, identity.ErrHashBusy) {
		return flow.SettingsOutcome{Err: identity.HashersBusy()}
	}
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to hash the password")}
	}
	now := e.now().UTC()
	return flow.SettingsOutcome{Privileged: true, Success: true, RevokeOtherSessions: e.cfg.RevokeSessionsAfterPasswordChange, Apply: func(cur *sessionstore.Identity) error {
		cred, had := cur.Credentials["password"]
		if !had {
			cred = sessionstore.Credential{Type: "password", CreatedAt: now}
		}
		cred.Identifiers = e.schemas.Of(cur).Identifiers(traitsMap(cur), "password")
		cred.Config = identity.EncodeConfig(identity.PasswordConfig{HashedPassword: hash})
		cred.UpdatedAt = now
		identity.SetCredential(cur, "password", cred)
		return nil
	}}
}
