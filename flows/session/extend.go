package session

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// minExtendStep is the least an extension moves ExpiresAt: it bounds the
// writes to one per session per minute (per tenth of the lifespan when
// that is shorter).
func (m *Manager) minExtendStep() time.Duration {
	return min(time.Minute, m.cfg.SessionLifespan/10)
}

// maybeExtend implements earliest_possible_extend: a session whose
// remaining lifetime is below it is extended by the session lifespan. It
// returns the session to answer with (the stored, extended copy, or s
// unchanged). Concurrent requests of one session extend it once; the
// others go on with s. A failed write is logged and ignored: the session
// is still valid.
func (m *Manager) maybeExtend(ctx context.Context, s *sessionstore.Session) *sessionstore.Session {
	epe := m.cfg.EarliestPossibleExtend
	if epe <= 0 {
		return s
	}
	now := m.now()
	if s.ExpiresAt.Sub(now) >= epe {
		return s
	}
	next := now.UTC().Add(m.cfg.SessionLifespan)
	if next.Sub(s.ExpiresAt) < m.minExtendStep() {
		return s
	}
	if _, busy := m.extending.LoadOrStore(s.ID, struct{}{}); busy {
		return s
	}
	defer m.extending.Delete(s.ID)
	// Applied to the stored session, not to s: a concurrent AAL upgrade
	// is kept, and a token rotated meanwhile is never brought back.
	c, err := m.store.ModifySession(ctx, s.ID, s.TokenHash, func(c *sessionstore.Session) error {
		if c.ExpiresAt.Before(next) {
			c.ExpiresAt = next
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, sessionstore.ErrTokenChanged) {
			m.logger.Warn("extending session", zap.Error(err))
		}
		return s
	}
	return c
}

// reissueCookie sets a new session cookie when the request's cookie was
// sealed with an expiry that the session has since moved past (an
// extension), as Kratos's whoami does. It needs the token, so it opens the
// cookie once more: this happens once per extension, not per request.
func (m *Manager) reissueCookie(w http.ResponseWriter, r *http.Request, c *requestCred, s *sessionstore.Session) {
	if w == nil || !c.fromCookie || c.cookieExp >= s.ExpiresAt.Unix() {
		return
	}
	tok, err := m.cookies.Open(c.cookie, m.now())
	if err != nil {
		return
	}
	m.SetCookie(w, r, tok, s.ExpiresAt)
}
