package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The session check of whoami and the gate, built for the hot path: the
// token is found and hashed without allocating (token.CookieValue, OpenHash,
// HashTo), the session and the identity come from the store's shared
// caches (one Badger read on a miss of either), and nothing is encoded.
// The flows use Current, which finds the same sessions the same way
// (find) and leaves the identity and assurance checks to them.

// RequestToken extracts the session token: X-Session-Token, then the
// session cookie, then Authorization: Bearer (Kratos's order).
func (m *Manager) RequestToken(r *http.Request) (string, bool) {
	if t := r.Header.Get("X-Session-Token"); t != "" {
		return t, true
	}
	var c requestCred
	if m.requestCredential(r, &c) && c.fromCookie {
		// The same choice among several session cookies as the gate's.
		if c.ncands > 1 && m.resolveCookies(r.Context(), &c) != nil {
			return "", false
		}
		if t, err := m.cookies.Open(c.cookie, c.now); err == nil {
			return t, true
		}
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:]), true
	}
	return "", false
}

// ByToken returns the stored session for token (active or not).
func (m *Manager) ByToken(ctx context.Context, tok string) (*sessionstore.Session, error) {
	if !token.ValidShape(tok) {
		return nil, sessionstore.ErrNotFound
	}
	return m.store.GetSessionByTokenHash(ctx, token.Hash(tok))
}

// Current returns the request's active session, found as the gate finds
// it (find), without the gate's identity and assurance checks: the flows
// apply their own.
func (m *Manager) Current(r *http.Request) (*sessionstore.Session, error) {
	var c requestCred
	return m.find(r, &c)
}

// requestCredential finds the session token like requestToken
// (X-Session-Token, then the session cookie, then Authorization: Bearer)
// and hashes it into c. False when the request carries none of a valid
// shape. It reads the clock into c.now, the request's time from then on.
func (m *Manager) requestCredential(r *http.Request, c *requestCred) bool {
	c.now = m.now()
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
	now, tooMany := c.now, false
	token.EachCookie(r.Header, m.cfg.CookieName, func(v string) bool {
		var cand cookieCand
		exp, err := m.cookies.OpenHash(v, now, &cand.hash)
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

// find is the one way from a request to its session: the credential
// (X-Session-Token, the session cookie, Authorization: Bearer), the choice
// among several session cookies, and the store's lookup by the token's
// hash. It returns the active session, ErrNoSession or a store error.
func (m *Manager) find(r *http.Request, c *requestCred) (*sessionstore.Session, error) {
	if !m.requestCredential(r, c) {
		return nil, ErrNoSession
	}
	if c.ncands > 1 {
		if err := m.resolveCookies(r.Context(), c); err != nil {
			return nil, err
		}
	}
	s, err := m.sessionByHash(r.Context(), &c.hash)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session lookup: %w", err)
	}
	if !activeAt(s, c.now) {
		return nil, ErrNoSession
	}
	return s, nil
}

// checkSession is toSession without the response: the request's active
// session and its identity (both shared with the store's caches: read
// only), or ErrNoSession, ErrAAL2Required, ErrAAL2SetupRequired or a store
// error. requiredAAL is aal1, aal2 or highest_available; empty means the
// engine's required_aal.
func (m *Manager) checkSession(r *http.Request, requiredAAL string, c *requestCred) (*sessionstore.Session, *sessionstore.Identity, error) {
	s, err := m.find(r, c)
	if err != nil {
		return nil, nil, err
	}
	// The identity decides whether the session still counts (state) and
	// whether a second factor is due.
	ident, err := m.store.GetIdentityShared(r.Context(), s.IdentityID)
	if err != nil {
		return nil, nil, identityLookupError(err)
	}
	if ident.State != "" && ident.State != "active" {
		return nil, nil, ErrNoSession
	}
	level, err := m.checkAAL(s, ident, requiredAAL)
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

// sessionByHash is store.GetSessionByTokenHash without the allocation.
func (m *Manager) sessionByHash(ctx context.Context, h *[32]byte) (*sessionstore.Session, error) {
	buf := hashBufs.Get().(*[32]byte)
	*buf = *h
	s, err := m.store.GetSessionByTokenHash(ctx, buf[:])
	hashBufs.Put(buf)
	return s, err
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
func (m *Manager) resolveCookies(ctx context.Context, c *requestCred) error {
	chosen, identity := -1, ""
	for i := 0; i < c.ncands; i++ {
		s, err := m.sessionByHash(ctx, &c.cands[i].hash)
		if errors.Is(err, sessionstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("session lookup: %w", err)
		}
		if !activeAt(s, c.now) {
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

// requestCred is the session credential of a request: the SHA-256 of its
// token and where it came from.
type requestCred struct {
	// now is when the request is judged (requestCredential reads it).
	now        time.Time
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

// hashBufs lends the hot path the token hash it hands the store: a slice
// of the caller's requestCred passed through the Storage interface would
// make the whole credential escape to the heap, one allocation per check.
// The stores copy what they keep of the hash (cache keys, query
// arguments), so the array goes back to the pool once the call returns.
var hashBufs = sync.Pool{New: func() any { return new([32]byte) }}

// identityLookupError is what a failed identity read means for a session:
// none (the identity is gone), or, when the storage could not be reached,
// that error (the caller answers 503, never "no session"). Out of line so
// the hot path above keeps its zero allocations.
//
//go:noinline
func identityLookupError(err error) error {
	if wire.IsUnavailable(err) {
		return fmt.Errorf("identity lookup: %w", err)
	}
	return ErrNoSession
}
