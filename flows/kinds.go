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

type settingsKind struct{ e *Engine }

func (k settingsKind) Name() string { return "settings" }
func (k settingsKind) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	return k.e.renewSettingsFlow(r, typ)
}
func (k settingsKind) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	k.e.submitSettings(w, r, sub)
}
func (k settingsKind) Disabled() *wire.Error { return nil }
func (k settingsKind) Create(w http.ResponseWriter, r *http.Request, typ string) {
	k.e.createSettingsFlow(w, r, typ)
}
func (k settingsKind) Get(w http.ResponseWriter, r *http.Request) { k.e.getSettingsFlow(w, r) }

func errRegistrationDisabled() *wire.Error {
	return wire.FlowDisabled("Registration is not allowed because it was disabled.")
}
