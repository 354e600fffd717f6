package flows

import (
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// kernel is what every flow and method stands on: the stored flow
// (create, get, load, save, submit), CSRF, return_to, one-time codes,
// address challenges and mail, rate limits, and the registry of flow
// kinds.
type kernel struct {
	cfg      kernelConfig
	store    sessionstore.Storage
	urls     *wire.URLs
	sessions *session.Manager
	schemas  *identity.Schemas
	logger   *zap.Logger
	// now is the engine's clock.
	now func() time.Time
	// csrfName is the CSRF cookie's name (from the public URL).
	csrfName string
	// codeKey keys the MACs of one-time codes (codes.go).
	codeKey []byte
	// allowed is the return_to allow-list.
	allowed []*url.URL
	// kinds are the flow kinds by name.
	kinds map[string]flowKind
	// masks keep what a method shows once out of stored flows (saveFlow).
	masks []func(*flow) *flow
}

// kernelConfig is what the kernel takes from the engine's configuration.
type kernelConfig struct {
	FlowLifespan   time.Duration
	CookieDomain   string
	CookiePath     string
	CookieSameSite http.SameSite
	// Secure: cookies carry Secure (all but dev mode over plain http).
	Secure                  bool
	CodeLifespan            time.Duration
	CodeMaxSubmissions      int
	NotifyUnknownRecipients bool
	RecoveryUse             string
	VerificationUse         string
	RateLimits              RateLimits
	ClientIP                func(*http.Request) string
	Mailer                  Mailer
}
