package flows

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func init() {
	settingsMethods = append(settingsMethods,
		&settingsMethod{name: "profile", nodes: profileNodes, update: profileUpdate},
		&settingsMethod{name: "password", nodes: passwordSettingsNodes, update: passwordSettingsUpdate})
}

func traitsMap(ident *sessionstore.Identity) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(ident.Traits, &m)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func profileNodes(e *Engine, r *http.Request, f *flow, ident *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes, e.schema.traitNodes("profile", traitsMap(ident), false)...)
	f.UI.Nodes = append(f.UI.Nodes, submitNode("profile", "method", "profile", labelOf(1070003, nil)))
}

func profileUpdate(e *Engine, r *http.Request, st *settingsState) settingsOutcome {
	f := st.sub.f
	traits, _ := st.sub.body["traits"].(map[string]any)
	if traits == nil {
		traits = map[string]any{}
	}
	if errs := e.schema.validate(traits); len(errs) > 0 {
		e.settingsNodes(r, f, st.ident)
		for _, fe := range errs {
			if fe.Name == "" {
				f.UI.Messages = append(f.UI.Messages, fe.Text)
			} else {
				f.UI.setValue(fe.Name, mustLookup(traits, fe.Name))
				f.UI.addNodeMessage(fe.Name, fe.Text)
			}
		}
		return settingsOutcome{invalid: true}
	}
	now := e.now().UTC()
	up := cloneIdentity(st.ident)
	e.schema.fillObjects(traits)
	up.Traits, _ = json.Marshal(traits)
	ver, rec := e.addresses(traits, now)
	// Unchanged addresses keep their ids and verification state.
	for i, a := range ver {
		for _, old := range st.ident.VerifiableAddresses {
			if old.Value == a.Value && old.Via == a.Via {
				ver[i] = old
			}
		}
	}
	for i, a := range rec {
		for _, old := range st.ident.RecoveryAddresses {
			if old.Value == a.Value && old.Via == a.Via {
				rec[i] = old
			}
		}
	}
	up.VerifiableAddresses, up.RecoveryAddresses = ver, rec
	changedIdentifiers := false
	for typ, c := range up.Credentials {
		ids := e.identifiers(traits, typ)
		if len(ids) > 0 && !slices.Equal(ids, c.Identifiers) {
			c.Identifiers = ids
			c.UpdatedAt = now
			up.Credentials[typ] = c
			changedIdentifiers = true
		}
	}
	changedAddresses := !sameAddresses(st.ident, up)
	var newAddrs []sessionstore.VerifiableAddress
	for _, a := range ver {
		if a.Status == "pending" && !a.Verified {
			known := false
			for _, old := range st.ident.VerifiableAddresses {
				if old.Value == a.Value {
					known = true
				}
			}
			if !known {
				newAddrs = append(newAddrs, a)
			}
		}
	}
	return settingsOutcome{
		ident:      up,
		privileged: changedIdentifiers || changedAddresses,
		success:    true,
		after: func(f *flow) {
			for _, a := range newAddrs {
				e.sendVerificationForAddress(r, up, a, f)
			}
		},
	}
}

func mustLookup(traits map[string]any, name string) any {
	v, _ := lookupPath(traits, trimTraits(name))
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

func passwordSettingsNodes(e *Engine, r *http.Request, f *flow, ident *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		inputNode("password", "password", "password", labelOf(1070001, nil)).required().autocomplete("new-password"),
		submitNode("password", "method", "password", labelOf(1070003, nil)))
}

func passwordSettingsUpdate(e *Engine, r *http.Request, st *settingsState) settingsOutcome {
	f := st.sub.f
	password := str(st.sub.body, "password")
	fail := func(t Text) settingsOutcome {
		f.UI.addNodeMessage("password", t)
		return settingsOutcome{invalid: true, privileged: true}
	}
	if !e.privileged(st.sess) {
		return settingsOutcome{privileged: true}
	}
	if password == "" {
		return fail(newText(4000002, map[string]any{"property": "password"}, "password"))
	}
	ids := e.identifiers(traitsMap(st.ident), "password")
	if t := e.passwordPolicy(password, ids); t != nil {
		return fail(*t)
	}
	up := cloneIdentity(st.ident)
	now := e.now().UTC()
	cred, had := up.Credentials["password"]
	if had {
		var pc passwordConfig
		_ = jsonUnmarshal(cred.Config, &pc)
		same, err := e.hasher.verify(r.Context(), password, pc.HashedPassword)
		if errors.Is(err, errHashBusy) {
			return settingsOutcome{err: errHashersBusy()}
		}
		if same {
			return fail(newText(4000039, nil))
		}
	} else {
		cred = sessionstore.Credential{Type: "password", CreatedAt: now}
	}
	hash, err := e.hasher.hash(r.Context(), password)
	if errors.Is(err, errHashBusy) {
		return settingsOutcome{err: errHashersBusy()}
	}
	if err != nil {
		return settingsOutcome{err: errInternal("unable to hash the password")}
	}
	cred.Identifiers = ids
	cred.Config = jsonMarshal(passwordConfig{HashedPassword: hash})
	cred.UpdatedAt = now
	up.Credentials["password"] = cred
	return settingsOutcome{ident: up, privileged: true, success: true}
}
