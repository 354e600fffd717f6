package flows

import (
	"net/http"

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

// errIdentityChanged answers a write that kept losing to concurrent
// writes of the same identity (Store.ModifyIdentity gave up).
func errIdentityChanged() *wire.Error {
	return wire.NewError(http.StatusConflict, "", "",
		"The identity was changed by another request at the same time. Please try again.")
}

// identityActive reports whether ident may act (state active or unset).
func identityActive(ident *sessionstore.Identity) bool {
	return ident.State == "" || ident.State == "active"
}

// setCredential stores c as ident's credential of type typ.
func setCredential(ident *sessionstore.Identity, typ string, c sessionstore.Credential) {
	if ident.Credentials == nil {
		ident.Credentials = map[string]sessionstore.Credential{}
	}
	ident.Credentials[typ] = c
}

// settingsRefused is what a settings method's apply function returns when
// its change no longer fits the identity as it is now (a key removed
// meanwhile, a change that now needs a privileged session, a deactivated
// identity): out is answered as if the method's update had returned it.
type settingsRefused struct{ out settingsOutcome }

func (*settingsRefused) Error() string { return "settings change refused" }
