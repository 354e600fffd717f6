package flow

import (
	"context"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// SettingsMethod is a method of the settings flow: a group of the form
// (profile, password, totp, …) and the change a submit of it makes.
type SettingsMethod interface {
	Method
	// SettingsNodes adds the method's nodes for ident to f.
	SettingsNodes(r *http.Request, f *Flow, ident *sessionstore.Identity)
	// UpdateSettings decides what a submit of the method changes.
	UpdateSettings(r *http.Request, st *SettingsState) SettingsOutcome
}

// SettingsRevealer is a settings method that shows something once
// (backup codes): the stored flow keeps it out (the kernel's masks), and
// Reveal puts it back when the flow is answered to its own identity.
type SettingsRevealer interface {
	Reveal(ctx context.Context, f *Flow)
}

// SettingsState is what a settings method's UpdateSettings sees.
type SettingsState struct {
	Sub      *Submission
	Identity *sessionstore.Identity
	Session  *sessionstore.Session
	// RebuildForm builds the settings form of the flow anew (all methods'
	// groups), for a method that answers with messages on it.
	RebuildForm func()
	// Issued is set when linking a method upgraded the session
	// (Kernel.RecordLinkedMethod); a rotated token goes out as the new cookie.
	Issued *session.Issued
	// W is the response, for a method that answers itself (oidc's link
	// sends the browser to the provider): it then returns
	// Outcome.Answered.
	W http.ResponseWriter
}

// SettingsOutcome is what a method's update decided.
type SettingsOutcome struct {
	// Apply, when set, makes the method's change to the identity as it is
	// at write time (the store re-runs it on the new identity when another
	// write won, so it must not keep side effects across runs). It
	// returns a *SettingsRefused when the change no longer fits, or
	// sessionstore.ErrNoChange when there is nothing left to do.
	Apply func(cur *sessionstore.Identity) error
	// Privileged: the change needs a recent login.
	Privileged bool
	// Success: state success and message 1050001.
	Success bool
	// Invalid: answer the flow with its messages (status 400).
	Invalid bool
	// Show: answer the flow as it is now (status 200), e.g. revealed codes.
	Show bool
	// RevokeOtherSessions ends the identity's other sessions once the
	// change is stored (the revoke_active_sessions hook).
	RevokeOtherSessions bool
	// Err: a non-flow error.
	Err *wire.Error
	// Answered: the method answered the request itself (st.W).
	Answered bool
	// After runs once the identity is stored (verification mails, session
	// upgrades); it may add continue_with items.
	After func(f *Flow)
}

// SettingsRefused is what a settings method's apply function returns when
// its change no longer fits the identity as it is now (a key removed
// meanwhile, a change that now needs a privileged session, a deactivated
// identity): out is answered as if the method's update had returned it.
type SettingsRefused struct{ Out SettingsOutcome }

func (*SettingsRefused) Error() string { return "settings change refused" }

// RecordLinkedMethod records on the settings session a method the user
// just proved by linking it (a TOTP code, confirmed backup codes, a new
// key), as Kratos does. Linking is no re-authentication: authenticated_at
// stays, so it cannot renew the privileged window. A session that came in
// the cookie gets a new token (session.Manager.Upgrade), which st.Issued
// carries to the settings flow's answer.
func (k *Kernel) RecordLinkedMethod(r *http.Request, st *SettingsState, method, aal string) {
	is, err := k.sessions.Upgrade(r, st.Session, method, aal, false)
	if err != nil {
		k.logger.Error("recording a linked method on the session", zap.String("method", method), zap.Error(err))
		return
	}
	st.Issued = is
}
