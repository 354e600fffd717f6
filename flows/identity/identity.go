package identity

import (
	"encoding/json"
	"net/http"
	"net/mail"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Identity writes. Every writer changes the identity through
// Store.ModifyIdentity with a function of the identity as it is at write
// time, never by storing a copy read earlier: a request that read the
// identity and then spent a second hashing a password must not write back
// the "active" state an admin has changed meanwhile (issue 11, item 10).
// The store checks the identity's version inside its transaction and
// re-runs the function on the new identity when another write won.

// ChangedMeanwhile answers a write that kept losing to concurrent
// writes of the same identity (Store.ModifyIdentity gave up).
func ChangedMeanwhile() *wire.Error {
	return wire.NewError(http.StatusConflict, "", "",
		"The identity was changed by another request at the same time. Please try again.")
}

// Active reports whether ident may act (state active or unset).
func Active(ident *sessionstore.Identity) bool {
	return ident.State == "" || ident.State == "active"
}

// HasVerifiedAddress reports whether one of ident's addresses is verified
// (Kratos's require_verified_address asks it).
func HasVerifiedAddress(ident *sessionstore.Identity) bool {
	for _, a := range ident.VerifiableAddresses {
		if a.Verified {
			return true
		}
	}
	return false
}

// ValidEmail is a syntactic check for submitted addresses.
func ValidEmail(s string) bool {
	if len(s) > 320 || strings.ContainsAny(s, " \r\n<>") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s, "@")
}

// TraitsOf is ident's traits, decoded ({} when there are none).
func TraitsOf(ident *sessionstore.Identity) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(ident.Traits, &m)
	if m == nil {
		m = map[string]any{}
	}
	return m
}
