package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// OthersActive returns the active sessions of sess's identity other than
// sess: what GET /sessions and the sessions page list.
func (m *Manager) OthersActive(ctx context.Context, sess *sessionstore.Session) ([]*sessionstore.Session, error) {
	all, err := m.store.ListSessionsByIdentity(ctx, sess.IdentityID)
	if err != nil {
		return nil, fmt.Errorf("listing the sessions of identity %s: %w", sess.IdentityID, err)
	}
	var out []*sessionstore.Session
	for _, s := range all {
		if s.ID != sess.ID && m.Active(s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// RevokeOwn revokes session id when it belongs to identityID, at the
// request of that identity's user (r). Revoking is scoped to the caller's
// identity: another identity's session id, or an unknown one, silently
// changes nothing.
func (m *Manager) RevokeOwn(r *http.Request, identityID, id string) error {
	other, err := m.store.GetSession(r.Context(), id)
	if err != nil || other.IdentityID != identityID {
		return nil
	}
	if err := m.store.RevokeSession(r.Context(), id); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		return fmt.Errorf("revoking session %s: %w", id, err)
	}
	m.cfg.Events.Emit(r, event.Event{Type: event.SessionRevoked, IdentityID: identityID, SessionID: id, Count: 1,
		Actor: event.ActorSelf})
	return nil
}

// RevokeOthers revokes every session of identityID but keep, at the
// request of that identity's user (r), and returns how many it revoked.
func (m *Manager) RevokeOthers(r *http.Request, identityID, keep string) (int, error) {
	n, err := m.store.RevokeSessionsOfIdentity(r.Context(), identityID, keep)
	if err != nil {
		return 0, fmt.Errorf("revoking the other sessions of identity %s: %w", identityID, err)
	}
	if n > 0 {
		m.cfg.Events.Emit(r, event.Event{Type: event.SessionRevoked, IdentityID: identityID, Count: n, Actor: event.ActorSelf,
			Reason: "other_sessions"})
	}
	return n, nil
}
