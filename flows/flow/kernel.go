package flow

import (
	"net/http"
	"net/url"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Kernel is what every flow and method stands on: the stored flow
// (create, get, load, save, submit), CSRF, return_to, one-time codes,
// address challenges and mail, rate limits, and the registry of flow
// kinds.
type Kernel struct {
	cfg      Config
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
	// verifier starts the verification of new addresses.
	verifier AddressVerifier
	// kinds are the flow kinds by name.
	kinds map[string]Kind
	// masks keep what a method shows once out of stored flows (saveFlow).
	masks []func(*Flow) *Flow
	// claimDrops remove the first factors of an identity that a mailbox
	// sign-in claims an address of (claimAddress): each first-factor
	// method's own (the password, passkeys, passwordless keys).
	claimDrops []func(*sessionstore.Identity, time.Time) error
}

// NewKernel returns the kernel of a store. csrfName is the CSRF cookie's
// name, codeKey keys the MACs of one-time codes, allowed is the return_to
// allow-list, masks and claimDrops are the methods' hooks (kernel fields).
func NewKernel(cfg Config, store sessionstore.Storage, urls *wire.URLs, sessions *session.Manager, schemas *identity.Schemas,
	logger *zap.Logger, now func() time.Time, csrfName string, codeKey []byte, allowed []*url.URL,
	masks []func(*Flow) *Flow, claimDrops []func(*sessionstore.Identity, time.Time) error) *Kernel {
	return &Kernel{cfg: cfg, store: store, urls: urls, sessions: sessions, schemas: schemas, logger: logger, now: now,
		csrfName: csrfName, codeKey: codeKey, allowed: allowed, masks: masks, claimDrops: claimDrops, kinds: map[string]Kind{}}
}

// Register adds flow kinds.
func (k *Kernel) Register(kinds ...Kind) {
	for _, fk := range kinds {
		k.kinds[fk.Name()] = fk
	}
}

// Config is what the kernel takes from the engine's configuration.
type Config struct {
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
	// Events records what happens in the flows (nil: nothing).
	Events *event.Recorder
}

// Events is the engine's event recorder (nil records nothing).
func (k *Kernel) Events() *event.Recorder { return k.cfg.Events }
