package flow

import (
	"context"
	"errors"
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
	// finishNative hands a native flow's session to its app (the token
	// exchange) when the flow finished in a browser (SetFinishNative).
	finishNative func(ctx context.Context, f *Flow, is *session.Issued) (returnToCode string, err error)
}

// SetFinishNative sets how a native flow that finished in a browser (a
// social sign-in) hands its session over: fn stores it for the token
// exchange and returns the return_to code.
func (k *Kernel) SetFinishNative(fn func(ctx context.Context, f *Flow, is *session.Issued) (string, error)) {
	k.finishNative = fn
}

// FinishNative answers the browser that finished native flow f with the
// new session is: the session waits for the app's token exchange, and the
// browser goes back to the app's return_to with ?code=<return_to_code>
// (Kratos's social sign-in for native apps). Without a return_to (or an
// exchange code) the app cannot collect it: the browser gets the flow's
// default return URL and the session is stored all the same.
func (k *Kernel) FinishNative(w http.ResponseWriter, r *http.Request, f *Flow, is *session.Issued) {
	to := k.ReturnTo(r, f)
	if len(f.ExchangeCodeHash) > 0 && k.finishNative != nil {
		code, err := k.finishNative(r.Context(), f, is)
		switch {
		case errors.Is(err, session.ErrNoExchange):
			// Expired or completed meanwhile: the app gets no session.
			k.logger.Warn("a native flow finished in a browser without a pending token exchange")
		case err != nil:
			k.logger.Error("storing a session for the token exchange", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the session"))
			return
		default:
			if u := session.ExchangeRedirect(f.ReturnTo, code); u != "" {
				to = u
			}
		}
	}
	wire.Redirect(w, r, http.StatusSeeOther, to)
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

// URLs builds the public URLs (the API's, the UI pages').
func (k *Kernel) URLs() *wire.URLs { return k.urls }
