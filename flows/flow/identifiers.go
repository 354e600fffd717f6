package flow

import (
	"context"
	"errors"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// IdentifiersTaken reports whether one of the password identifiers or
// the addresses of traits is already indexed for another identity: the
// indexes CreateIdentity would refuse to claim. A sign-up asks before it
// hashes a password; the store's transaction still decides races.
func (k *Kernel) IdentifiersTaken(ctx context.Context, sch *identity.Schema, traits map[string]any, identifiers []string) (bool, error) {
	owner, _, err := k.OwnerOf(ctx, sch, traits, identifiers)
	return owner != nil, err
}

// OwnerOf returns the identity that one of the password identifiers or
// the addresses of traits is already indexed for, and that identifier
// (nil, "" when none is taken).
func (k *Kernel) OwnerOf(ctx context.Context, sch *identity.Schema, traits map[string]any, identifiers []string) (*sessionstore.Identity, string, error) {
	type key struct{ typ, value string }
	var keys []key
	for _, id := range identifiers {
		keys = append(keys, key{"password", id})
	}
	ver, rec := sch.Addresses(traits, k.now().UTC())
	for _, a := range ver {
		keys = append(keys, key{sessionstore.AddressIndexType("verification", a.Via), a.Value})
	}
	for _, a := range rec {
		keys = append(keys, key{sessionstore.AddressIndexType("recovery", a.Via), a.Value})
	}
	for _, kv := range keys {
		if kv.value == "" {
			continue
		}
		owner, err := k.store.FindIdentityByCredential(ctx, kv.typ, kv.value)
		if err == nil {
			return owner, kv.value, nil
		}
		if !errors.Is(err, sessionstore.ErrNotFound) {
			return nil, "", err
		}
	}
	return nil, "", nil
}
