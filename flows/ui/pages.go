package ui

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Config is what the pages need of the engine's configuration.
type Config struct {
	// Prefix is the path prefix of the pages, with a leading and a
	// trailing slash (/ui/).
	Prefix string
	// ProductName, LogoURL and PrimaryColor brand the pages (empty or
	// invalid: the defaults).
	ProductName  string
	LogoURL      string
	PrimaryColor string
	// AllowedReturnURLs and UIURLs are the origins a form post may end on
	// (the Content-Security-Policy's form-action).
	AllowedReturnURLs []string
	UIURLs            map[string]string
	// RegistrationEnabled and RecoveryEnabled show the links to sign-up
	// and recovery.
	RegistrationEnabled bool
	RecoveryEnabled     bool
	// Locale holds the pages' texts in every offered language. Nil: the
	// built-in languages (locale.Builtin).
	Locale *locale.Catalog
	// SecureCookies and CookieDomain are the Secure and Domain attributes
	// of the language cookie, as the engine's other cookies have them.
	SecureCookies bool
	CookieDomain  string
	// SocialProviders are the configured social sign-in providers: how
	// their buttons look (label, icon) and where their sign-in sends the
	// browser. Only the configuration says so: nothing of a request or a
	// flow becomes an icon URL or a CSP source.
	SocialProviders []SocialProvider
}

// SocialProvider is one social sign-in provider as the pages show it.
type SocialProvider struct {
	// ID is the provider's id: the value of its provider, link and unlink
	// nodes.
	ID string
	// Label is its display name ("": the ID).
	Label string
	// Icon is an https URL or an absolute path on the site shown on its
	// buttons ("" or anything else: a letter instead). An https icon's
	// origin is added to the pages' img-src.
	Icon string
}

// Identities reads identities (the store).
type Identities interface {
	GetIdentity(ctx context.Context, id string) (*sessionstore.Identity, error)
}

// Settings is what the settings page needs of the settings flow.
type Settings interface {
	// AAL2LoginURL is the browser login for a second factor that returns
	// to returnTo.
	AAL2LoginURL(r *http.Request, returnTo string) string
	// Reveal puts back on f what its methods show only to their owner
	// (backup codes).
	Reveal(ctx context.Context, f *flow.Flow)
}

// Pages serves the built-in pages. Create it with New.
type Pages struct {
	cfg        Config
	kernel     *flow.Kernel
	sessions   *session.Manager
	identities Identities
	settings   Settings
	urls       *wire.URLs
	logger     *zap.Logger
	now        func() time.Time
	cat        *locale.Catalog
	tmpls      map[string]*template.Template // by language
	social     *socialSet
}

// New returns the pages of an engine: its kernel loads the flows and checks
// CSRF, sessions finds, lists and revokes sessions.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, identities Identities, settings Settings,
	urls *wire.URLs, logger *zap.Logger, now func() time.Time) *Pages {
	cat := cfg.Locale
	if cat == nil {
		cat = locale.Builtin()
	}
	return &Pages{cfg: cfg, kernel: k, sessions: sessions, identities: identities, settings: settings,
		urls: urls, logger: logger, now: now, cat: cat, tmpls: templatesFor(cat), social: newSocialSet(cfg.SocialProviders)}
}

var flowPages = map[string]bool{"login": true, "registration": true, "settings": true, "recovery": true, "verification": true}

// Page serves GET <prefix>{page}: a flow's page, error, sessions or
// welcome.
func (p *Pages) Page(w http.ResponseWriter, r *http.Request) {
	page := r.PathValue("page")
	switch {
	case page == "error":
		p.errorPage(w, r)
	case page == "sessions":
		p.sessionsPage(w, r)
	case page == "welcome":
		p.Welcome(w, r)
	case flowPages[page]:
		p.flowPage(w, r, page)
	default:
		wire.WriteError(w, r, wire.NotFound())
	}
}
