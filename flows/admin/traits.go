package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// What every identity write (create, update, patch) does with the body's
// schema, state, traits and metadata, and how addresses and credential
// identifiers follow the traits.

func errIdentityConflict() *wire.Error {
	return wire.NewError(http.StatusConflict, "", "The resource could not be created due to a conflict",
		"This identity conflicts with another identity that already exists.")
}

func errInvalidState(s string) *wire.Error {
	return wire.BadRequest(fmt.Sprintf("The supplied state ('%s') was not valid. Valid states are ('active', 'inactive').", s))
}

func errInvalidTraits(errs []identity.FieldError) *wire.Error {
	var parts []string
	details := map[string]any{}
	for _, fe := range errs {
		name := fe.Name
		if name == "" {
			name = "traits"
		}
		parts = append(parts, name+": "+fe.Text.Text)
		details[name] = fe.Text.Text
	}
	e := wire.BadRequest("The traits do not match the identity schema: " + strings.Join(parts, "; "))
	e.Details = details
	return e
}

// checkState validates a state value ("" means keep / default).
func checkState(s string) *wire.Error {
	switch s {
	case "", "active", "inactive":
		return nil
	}
	return errInvalidState(s)
}

// decodeTraits parses and validates traits against the identity schema sch.
func decodeTraits(sch *identity.Schema, raw json.RawMessage) (map[string]any, json.RawMessage, *wire.Error) {
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	v, err := decodeJSONValue(raw)
	if err != nil {
		return nil, nil, wire.BadRequest("traits are not valid JSON")
	}
	traits, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			return nil, nil, wire.BadRequest("traits must be a JSON object")
		}
		traits = map[string]any{}
	}
	if errs := sch.Validate(traits); len(errs) > 0 {
		return nil, nil, errInvalidTraits(errs)
	}
	b, err := json.Marshal(traits)
	if err != nil {
		return nil, nil, wire.BadRequest("traits are not valid JSON")
	}
	return traits, b, nil
}

// traitsOf decodes an identity's stored traits (an empty object when they
// are not one).
func traitsOf(id *sessionstore.Identity) map[string]any {
	v, err := decodeJSONValue(id.Traits)
	if err != nil {
		return map[string]any{}
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// schema is the schema a body's schema_id names: nil for an empty id (the
// caller's default: the default schema for a new identity, the identity's
// own schema for an update), 400 for an id not configured.
func (a *API) schema(id string) (*identity.Schema, *wire.Error) {
	if id == "" {
		return nil, nil
	}
	if s := a.schemas.Named(id); s != nil {
		return s, nil
	}
	return nil, wire.BadRequest(fmt.Sprintf("unable to find JSON Schema ID: %s", id))
}

func metadata(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func identityActive(id *sessionstore.Identity) bool {
	return id.State == "" || id.State == "active"
}

// mergeAddresses derives the addresses from traits as registration does,
// keeping id, verification state and timestamps of addresses that already
// exist (same value and channel). Addresses the traits no longer hold go.
func mergeAddresses(sch *identity.Schema, traits map[string]any, now time.Time, oldVer []sessionstore.VerifiableAddress,
	oldRec []sessionstore.RecoveryAddress) ([]sessionstore.VerifiableAddress, []sessionstore.RecoveryAddress) {
	ver, rec := sch.Addresses(traits, now)
	keepExisting(ver, oldVer, func(a *sessionstore.VerifiableAddress) (*string, string) { return &a.Value, a.Via })
	keepExisting(rec, oldRec, func(a *sessionstore.RecoveryAddress) (*string, string) { return &a.Value, a.Via })
	return ver, rec
}

// keepExisting replaces each derived address with the old one of the same
// value (case-insensitively) and channel, spelt as derived; key gives an
// address's value (to respell) and channel.
func keepExisting[A any](derived, old []A, key func(*A) (value *string, via string)) {
	for i := range derived {
		value, via := key(&derived[i])
		for _, o := range old {
			oldValue, oldVia := key(&o)
			if strings.EqualFold(*oldValue, *value) && oldVia == via {
				*oldValue = *value
				derived[i] = o
				break
			}
		}
	}
}

// reindexCredentials follows trait changes in credential identifiers: the
// password identifiers always mirror the identifier traits; another
// credential type's identifiers are replaced when they were exactly the
// ones derived from the old traits (under the old schema).
func reindexCredentials(ident *sessionstore.Identity, oldSch *identity.Schema, oldTraits map[string]any,
	sch *identity.Schema, traits map[string]any, now time.Time) *wire.Error {
	for t, c := range ident.Credentials {
		derived := sch.Identifiers(traits, t)
		switch {
		case t == "password":
			if len(derived) == 0 {
				return wire.BadRequest("The identity has a password but no password identifier: no trait marked as a password identifier in the identity schema has a value.")
			}
		case len(derived) == 0 || !sameIdentifiers(c.Identifiers, oldSch.Identifiers(oldTraits, t)):
			continue
		}
		if !sameIdentifiers(c.Identifiers, derived) {
			c.Identifiers = derived
			c.UpdatedAt = now
			ident.Credentials[t] = c
		}
	}
	return nil
}

func sameIdentifiers(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
