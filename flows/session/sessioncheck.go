package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// requestCred is the session credential of a request: the SHA-256 of its
// token and where it came from.
type requestCred struct {
	hash       [32]byte
	fromCookie bool
	// cookieExp is the expiry sealed into the cookie (unix seconds); a
	// session whose ExpiresAt moved past it gets a new cookie.
	cookieExp int64
	// cookie is the session cookie's value (hash is its token's).
	cookie string
	// cands are the distinct session cookies that opened, in the order
	// they came, when there is more than one (resolveCookies picks).
	cands  [maxCookieCands]cookieCand
	ncands int
}

// cookieCand is one session cookie that opened with the cookie secrets.
type cookieCand struct {
	hash  [32]byte
	exp   int64
	value string
}

// maxCookieCands bounds the session cookies of one name a request may
// carry; more than that is no browser's doing and gets no session.
const maxCookieCands = 4

// requestCredential finds the session token like requestToken
// (X-Session-Token, then the session cookie, then Authorization: Bearer)
// and hashes it into c. False when the request carries none of a valid
// shape.
func (e *Manager) requestCredential(r *http.Request, c *requestCred) bool {
	if t := r.Header.Get("X-Session-Token"); t != "" {
		if !token.ValidShape(t) {
			return false
		}
		token.HashTo(t, &c.hash)
		return true
	}
	// Every session cookie of the name is tried: a planted one that does
	// not open (sealed with another key, or garbage) never hides the
	// valid one behind it. When several open, resolveCookies decides.
	now, tooMany := e.now(), false
	token.EachCookie(r.Header, e.cfg.CookieName, func(v string) bool {
		var cand cookieCand
		exp, err := e.cookies.OpenHash(v, now, &cand.hash)
		if err != nil {
			return true
		}
		for i := 0; i < c.ncands; i++ {
			if c.cands[i].hash == cand.hash {
				return true // the same token twice
			}
		}
		if c.ncands == maxCookieCands {
			tooMany = true
			return false
		}
		cand.exp, cand.value = exp, v
		c.cands[c.ncands] = cand
		c.ncands++
		return true
	})
	if tooMany {
		return false
	}
	if c.ncands > 0 {
		first := &c.cands[0]
		c.hash, c.cookieExp, c.cookie, c.fromCookie = first.hash, first.exp, first.value, true
		return true
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		t := strings.TrimSpace(a[7:])
		if !token.ValidShape(t) {
			return false
		}
		token.HashTo(t, &c.hash)
		return true
	}
	return false
}

// checkSession is toSession without the response: the request's active
// session and its identity (both shared with the store's caches: read
// only), or ErrNoSession, ErrAAL2Required, ErrAAL2SetupRequired or a store
// error. requiredAAL is aal1, aal2 or highest_available; empty means the
// engine's required_aal.
func (e *Manager) checkSession(r *http.Request, requiredAAL string, c *requestCred) (*sessionstore.Session, *sessionstore.Identity, error) {
	if !e.requestCredential(r, c) {
		return nil, nil, ErrNoSession
	}
	if c.ncands > 1 {
		if err := e.resolveCookies(r.Context(), c); err != nil {
			return nil, nil, err
		}
	}
	s, err := e.sessionByHash(r.Context(), &c.hash)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("session lookup: %w", err)
	}
	if !e.Active(s) {
		return nil, nil, ErrNoSession
	}
	// The identity decides whether the session still counts (state) and
	// whether a second factor is due.
	ident, err := e.store.GetIdentityShared(r.Context(), s.IdentityID)
	if err != nil {
		if wire.IsUnavailable(err) {
			return nil, nil, fmt.Errorf("identity lookup: %w", err)
		}
		return nil, nil, ErrNoSession
	}
	if ident.State != "" && ident.State != "active" {
		return nil, nil, ErrNoSession
	}
	level, err := e.checkAAL(s, ident, requiredAAL)
	if err != nil {
		return nil, nil, err
	}
	if level != s.AAL && s.AAL == "aal2" {
		// Stored before its mailed code stopped counting (an older rule,
		// or a strong factor added since): answer with the level the
		// session has now. Rare, so the copy costs nothing on the hot path.
		c := s.Clone()
		c.AAL = level
		s = c
	}
	return s, ident, nil
}

// hashBufs lends the hot path the token hash it hands the store: a slice
// of the caller's requestCred passed through the Storage interface would
// make the whole credential escape to the heap, one allocation per check.
// The stores copy what they keep of the hash (cache keys, query
// arguments), so the array goes back to the pool once the call returns.
var hashBufs = sync.Pool{New: func() any { return new([32]byte) }}

// sessionByHash is store.GetSessionByTokenHash without the allocation.
func (e *Manager) sessionByHash(ctx context.Context, h *[32]byte) (*sessionstore.Session, error) {
	buf := hashBufs.Get().(*[32]byte)
	*buf = *h
	s, err := e.store.GetSessionByTokenHash(ctx, buf[:])
	hashBufs.Put(buf)
	return s, err
}

// minExtendStep is the least an extension moves ExpiresAt: it bounds the
// writes to one per session per minute (per tenth of the lifespan when
// that is shorter).
func (e *Manager) minExtendStep() time.Duration {
	return min(time.Minute, e.cfg.SessionLifespan/10)
}

// maybeExtend implements earliest_possible_extend: a session whose
// remaining lifetime is below it is extended by the session lifespan. It
// returns the session to answer with (the stored, extended copy, or s
// unchanged). Concurrent requests of one session extend it once; the
// others go on with s. A failed write is logged and ignored: the session
// is still valid.
func (e *Manager) maybeExtend(ctx context.Context, s *sessionstore.Session) *sessionstore.Session {
	epe := e.cfg.EarliestPossibleExtend
	if epe <= 0 {
		return s
	}
	now := e.now()
	if s.ExpiresAt.Sub(now) >= epe {
		return s
	}
	next := now.UTC().Add(e.cfg.SessionLifespan)
	if next.Sub(s.ExpiresAt) < e.minExtendStep() {
		return s
	}
	if _, busy := e.extending.LoadOrStore(s.ID, struct{}{}); busy {
		return s
	}
	defer e.extending.Delete(s.ID)
	// Applied to the stored session, not to s: a concurrent AAL upgrade
	// is kept, and a token rotated meanwhile is never brought back.
	c, err := e.store.ModifySession(ctx, s.ID, s.TokenHash, func(c *sessionstore.Session) error {
		if c.ExpiresAt.Before(next) {
			c.ExpiresAt = next
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, sessionstore.ErrTokenChanged) {
			e.logger.Warn("extending session", zap.Error(err))
		}
		return s
	}
	return c
}

// resolveCookies chooses among several session cookies that all opened
// (c.ncands > 1): the active sessions among them must all belong to one
// identity, and the first of those is used. Active sessions of different
// identities — one of them a session cookie tossed from a sibling
// subdomain, say, to sign the victim into the attacker's account — give
// no session at all (ErrNoSession): a planted cookie never wins over a
// valid one, and an ambiguous request is refused rather than guessed. If
// none is active, c keeps the first (its lookup then fails). This path
// costs one session lookup per cookie; a single cookie never takes it.
func (e *Manager) resolveCookies(ctx context.Context, c *requestCred) error {
	chosen, identity := -1, ""
	for i := 0; i < c.ncands; i++ {
		s, err := e.sessionByHash(ctx, &c.cands[i].hash)
		if errors.Is(err, sessionstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("session lookup: %w", err)
		}
		if !e.Active(s) {
			continue
		}
		switch {
		case chosen < 0:
			chosen, identity = i, s.IdentityID
		case s.IdentityID != identity:
			return ErrNoSession
		}
	}
	if chosen > 0 {
		ch := &c.cands[chosen]
		c.hash, c.cookieExp, c.cookie = ch.hash, ch.exp, ch.value
	}
	return nil
}

// reissueCookie sets a new session cookie when the request's cookie was
// sealed with an expiry that the session has since moved past (an
// extension), as Kratos's whoami does. It needs the token, so it opens the
// cookie once more: this happens once per extension, not per request.
func (e *Manager) reissueCookie(w http.ResponseWriter, r *http.Request, c *requestCred, s *sessionstore.Session) {
	if w == nil || !c.fromCookie || c.cookieExp >= s.ExpiresAt.Unix() {
		return
	}
	tok, err := e.cookies.Open(c.cookie, e.now())
	if err != nil {
		return
	}
	e.SetCookie(w, r, tok, s.ExpiresAt)
}

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
}

// NewManager returns the session manager of a store. cookies seals
// the session cookie, urls builds the URLs of whoami and the gate, now is
// the clock, and factors are the second-factor methods the AAL rule asks.
func NewManager(cfg Config, store sessionstore.Storage, cookies *token.CookieCodec, urls *wire.URLs,
	logger *zap.Logger, now func() time.Time, factors []SecondFactor) *Manager {
	return &Manager{cfg: cfg, store: store, cookies: cookies, urls: urls, logger: logger, now: now, factors: factors}
}

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
}

// SecondFactor is a second-factor method as the AAL rule sees it: the name
// sessions record when it completes, and whether an identity holds an
// active credential of its kind.
type SecondFactor interface {
	Method() string
	HasActive(ident *sessionstore.Identity) bool
}

// secureCookies reports whether cookies carry Secure.
func (e *Manager) secureCookies(*http.Request) bool { return e.cfg.Secure }

// boundedMap is a small sharded map with a size bound (random eviction)
// for the gate's per-session and per-identity caches. Its zero value is
// ready and holds up to 16 × 2048 entries.
type boundedMap[V any] struct {
	once sync.Once
	seed maphash.Seed
	// perShard bounds each of the 16 shards. Default (0): 2048.
	perShard int
	shards   [boundedShards]boundedShard[V]
}

const boundedShards = 16

type boundedShard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
	_  [40]byte // keep neighbouring locks off one cache line
}

func (b *boundedMap[V]) shard(key string) *boundedShard[V] {
	b.once.Do(func() {
		b.seed = maphash.MakeSeed()
		for i := range b.shards {
			b.shards[i].m = make(map[string]V)
		}
	})
	return &b.shards[maphash.String(b.seed, key)&(boundedShards-1)]
}

func (b *boundedMap[V]) load(key string) (V, bool) {
	sh := b.shard(key)
	sh.mu.RLock()
	v, ok := sh.m[key]
	sh.mu.RUnlock()
	return v, ok
}

func (b *boundedMap[V]) store(key string, v V) {
	sh := b.shard(key)
	sh.mu.Lock()
	if _, ok := sh.m[key]; !ok && len(sh.m) >= cmp.Or(b.perShard, 2048) {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[key] = v
	sh.mu.Unlock()
}
