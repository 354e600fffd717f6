package flow

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// Kind is one self-service flow (login, registration, settings,
// recovery, verification) as the kernel drives it: create, get and submit
// are the kernel's; a kind builds its new flows and handles its submits.
type Kind interface {
	// Name is the kind's name in paths and stored flows.
	Name() string
	// Init builds a new flow of type typ (api or browser), not yet stored,
	// for create*Flow and in place of an expired flow.
	Init(r *http.Request, typ string) (*Flow, *wire.Error)
	// Submit handles update*Flow once the kernel has checked the flow,
	// its CSRF token or API rules, its body and its expiry.
	Submit(w http.ResponseWriter, r *http.Request, sub *Submission)
	// Disabled is the answer while the configuration turns the kind off
	// (nil: on).
	Disabled() *wire.Error
}

// Creator is a kind that answers create*Flow itself (settings: the
// flow belongs to the request's session).
type Creator interface {
	Create(w http.ResponseWriter, r *http.Request, typ string)
}

// Getter is a kind that answers get*Flow itself.
type Getter interface {
	Get(w http.ResponseWriter, r *http.Request)
}
