package flow

import (
	"context"
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

// Mailer queues a templated message durably before returning.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Mail is one message for the courier: a Kratos template name (as
// courier.TemplateID: recovery_code_valid, …) and its data.
type Mail struct {
	To       string
	Template string
	// Data fields as Kratos's templates see them.
	RecoveryCode, RecoveryURL         string
	VerificationCode, VerificationURL string
	LoginCode, RegistrationCode       string
	Identity                          map[string]any
	RequestURL                        string
	TransientPayload                  map[string]any
	ExpiresInMinutes                  int
}
