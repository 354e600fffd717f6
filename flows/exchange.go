package flows

import (
	"context"
	"errors"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
)

// exchangeConfig is what the session token exchange takes from the layers
// above sessions: the sealer, the flow of a pending exchange, and the
// client's limit.
func (e *Engine) exchangeConfig() session.ExchangeConfig {
	return session.ExchangeConfig{
		Sealer:      e.sealer,
		PendingFlow: e.pendingExchangeFlow,
		// A wrong pair counts as a wrong one-time code of the client
		// (code_ip): the exchange codes are one-time codes, and a client
		// scanning pairs is the abuse that rule bounds. The right pair
		// gives its attempt back.
		Limit: func(w http.ResponseWriter, r *http.Request) (func(), bool) {
			rv, ee := e.kernel.Reserve(r.Context(), "code_ip", e.kernel.LimitIP(r))
			if ee != nil {
				e.kernel.Refuse(w, r, nil, ee)
				return nil, false
			}
			return rv.Release, true
		},
	}
}

// pendingExchangeFlow is the public JSON of the login or registration flow
// of an exchange while the flow is still open.
func (e *Engine) pendingExchangeFlow(ctx context.Context, id string) (any, bool, error) {
	for _, kind := range []string{"login", "registration"} {
		f, err := e.kernel.Load(ctx, id, kind)
		if errors.Is(err, flow.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if f.State == "passed_challenge" || !e.now().Before(f.ExpiresAt) {
			return nil, false, nil
		}
		return f.Wire(), true, nil
	}
	return nil, false, nil
}
