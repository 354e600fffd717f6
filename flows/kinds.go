package flows

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// The engine's flow kinds, until each moves into its own package.

type registrationKind struct{ e *Engine }

func (k registrationKind) Name() string { return "registration" }
func (k registrationKind) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	return k.e.initRegistration(r, typ)
}
func (k registrationKind) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	k.e.submitRegistration(w, r, sub)
}
func (k registrationKind) Disabled() *wire.Error {
	if k.e.cfg.DisableRegistration {
		return errRegistrationDisabled()
	}
	return nil
}

func errRegistrationDisabled() *wire.Error {
	return wire.FlowDisabled("Registration is not allowed because it was disabled.")
}
