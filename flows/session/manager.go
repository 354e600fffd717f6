package session

import (
	"net/http"
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Manager issues, finds and checks sessions: the one way from a
// request to its session (cookie, X-Session-Token or Bearer), the AAL
// rule, whoami, the gate's check, the /sessions handlers and the
// assertions. The engine holds one (Engine.sessions).
type Manager struct {
	cfg     Config
	store   sessionstore.Storage
	cookies *token.CookieCodec
	urls    *wire.URLs
	logger  *zap.Logger
	// now is the engine's clock.
	now func() time.Time
	// factors are the second-factor methods the AAL rule asks.
	factors []SecondFactor

	// extending holds the ids of sessions being extended.
	extending sync.Map
	views     identityViews
	keys      assertionKeys
	// exchange is what the token exchange needs (exchange.go).
	exchange ExchangeConfig
}

// NewManager returns the session manager of a store. cookies seals the
// session cookie, urls builds the URLs of whoami and the gate, and now is
// the clock. The AAL rule asks the second-factor methods that
// UseSecondFactors hands in (the methods stand on the kernel, which
// stands on this manager, so they come last).
func NewManager(cfg Config, store sessionstore.Storage, cookies *token.CookieCodec, urls *wire.URLs,
	logger *zap.Logger, now func() time.Time) *Manager {
	return &Manager{cfg: cfg, store: store, cookies: cookies, urls: urls, logger: logger, now: now}
}

// UseSecondFactors sets the second-factor methods the AAL rule asks.
// The engine calls it once, before serving.
func (m *Manager) UseSecondFactors(fs []SecondFactor) { m.factors = fs }

// Config is what the session manager takes from the engine's
// configuration.
type Config struct {
	SessionLifespan        time.Duration
	EarliestPossibleExtend time.Duration
	CookieName             string
	CookieDomain           string
	CookiePath             string
	CookieSameSite         http.SameSite
	// Secure: cookies carry Secure (all but dev mode over plain http).
	Secure bool
	// RequiredAAL is highest_available or aal1.
	RequiredAAL string
	// PrivilegedSessionMaxAge is how long after its last first-factor
	// authentication a session may make sensitive settings changes.
	PrivilegedSessionMaxAge time.Duration
	// Events records what happens to sessions (nil: nothing).
	Events *event.Recorder
	// ObserveWhoami is told how long each whoami took (nil: not timed).
	ObserveWhoami func(time.Duration)
}

// Events is the engine's event recorder (nil records nothing).
func (m *Manager) Events() *event.Recorder { return m.cfg.Events }

// SecondFactor is a second-factor method as the AAL rule sees it: the name
// sessions record when it completes, and whether an identity holds an
// active credential of its kind.
type SecondFactor interface {
	ID() string
	HasActive(ident *sessionstore.Identity) bool
}

// secureCookies reports whether cookies carry Secure.
func (m *Manager) secureCookies(*http.Request) bool { return m.cfg.Secure }
