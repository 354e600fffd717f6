package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/mapper"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// maxFormPostBytes bounds a form_post callback's body (code, state, an
// error and Apple's user object).
const maxFormPostBytes = 64 << 10

// result is a verified callback: what the provider said, for the flow it
// resumes. The flow kinds hand it to the method in the request's context.
type result struct {
	provider provider.Provider
	res      *provider.Result
	pending  pending
	mapped   *mapper.Result
}

type resultKey struct{}

// resultOf is the verified callback the request resumes, or nil.
func resultOf(ctx context.Context) *result {
	cr, _ := ctx.Value(resultKey{}).(*result)
	return cr
}

// identifier is the oidc credential identifier: provider:subject.
func (cr *result) identifier() string {
	return cr.provider.Config().ID + ":" + cr.res.Claims.Subject
}

// aal is the level the provider asserted (aal2 only when configured to be
// trusted), aal1 otherwise.
func (cr *result) aal() string {
	if cr.res.AAL == "aal2" {
		return "aal2"
	}
	return "aal1"
}

// Callback serves GET and POST /self-service/methods/oidc/callback/{provider}:
// the browser's return from the provider.
func (m *Method) Callback(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("provider")
	p, ok := m.byID[id]
	if !m.enabled || !ok {
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	if r.Method == http.MethodPost {
		// response_mode=form_post arrives as a cross-site POST, which
		// carries no SameSite=Lax cookie: the same parameters again as a
		// GET, which does.
		r.Body = http.MaxBytesReader(w, r.Body, maxFormPostBytes)
		if err := r.ParseForm(); err != nil {
			wire.WriteError(w, r, wire.BadRequest("The callback's form could not be read."))
			return
		}
		q := url.Values{}
		for _, k := range []string{"code", "state", "error", "error_description", "user"} {
			if v := r.PostForm.Get(k); v != "" {
				q.Set(k, v)
			}
		}
		wire.Redirect(w, r, http.StatusSeeOther, p.RedirectURL()+"?"+q.Encode())
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	f, err := m.kernel.LoadAny(r.Context(), callbackFlowID(state), "login", "registration", "settings")
	if errors.Is(err, flow.ErrNotFound) {
		m.kernel.WriteError(w, r, "", wire.BadRequest(reasonCallback))
		return
	}
	if err != nil {
		m.logger.Error("loading flow", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the flow"))
		return
	}
	pd, ok := m.pendingOf(f)
	// Checked before anything is taken: a forged or foreign callback
	// (another state, another browser) leaves the real one intact.
	if !ok || pd.Auth.Provider != id || subtle.ConstantTimeCompare([]byte(state), []byte(pd.Auth.State)) != 1 ||
		(f.Type == "browser" && !continuityMatches(r, f.ID, pd.Continuity)) {
		m.kernel.WriteError(w, r, f.Type, wire.BadRequest(reasonCallback))
		return
	}
	// Taken once, atomically: a replayed callback finds nothing.
	raw, err := m.kernel.TakeInternal(r.Context(), f, pendingKey)
	if err != nil && !errors.Is(err, flow.ErrNotFound) {
		m.logger.Error("taking the authorization request", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	var taken pending
	if raw == "" || json.Unmarshal([]byte(raw), &taken) != nil ||
		subtle.ConstantTimeCompare([]byte(state), []byte(taken.Auth.State)) != 1 {
		m.kernel.WriteError(w, r, f.Type, wire.BadRequest(reasonCallback))
		return
	}
	if f.Type == "browser" {
		m.kernel.SetContinuity(w, "", 0)
	}
	sub := &flow.Submission{Flow: f, Method: "oidc", Body: map[string]any{"method": "oidc"}, ToUI: f.Type == "browser",
		Callback: true}
	ctx := detached(r.Context())
	res, err := p.Exchange(ctx, taken.Auth, provider.ParseCallback(q))
	if errors.Is(err, provider.ErrCallback) {
		m.kernel.WriteError(w, r, f.Type, wire.BadRequest(reasonCallback))
		return
	}
	if err != nil {
		m.logger.Info("oidc sign-in failed", zap.String("provider", id), zap.Error(err))
		m.failFlow(w, r, sub, flowReason(err))
		return
	}
	cr := &result{provider: p, res: res, pending: taken}
	if f.Kind == "registration" {
		// The flow validates the traits before the method sees them:
		// the mapper's, with what the user submitted on top.
		traits, err := m.signUpTraits(ctx, cr)
		if err != nil {
			m.logger.Warn("oidc mapper failed", zap.String("provider", id), zap.Error(err))
			m.failFlow(w, r, sub, reasonMapper)
			return
		}
		sub.Body["traits"] = traits
	}
	m.kernel.Resume(w, r.WithContext(context.WithValue(ctx, resultKey{}, cr)), sub)
}

// pendingOf reads the flow's authorization request (without taking it).
func (m *Method) pendingOf(f *flow.Flow) (pending, bool) {
	raw, _ := f.Internal[pendingKey].(string)
	var pd pending
	if raw == "" || json.Unmarshal([]byte(raw), &pd) != nil {
		return pd, false
	}
	return pd, true
}

// failFlow answers the flow of a failed callback with reason (400, or 303
// to its page for browsers); nothing else is written.
func (m *Method) failFlow(w http.ResponseWriter, r *http.Request, sub *flow.Submission, reason string) {
	sub.Flow.UI.ResetMessages()
	sub.Flow.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
	m.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// mapClaims runs the provider's mapper over the callback's claims (once).
func (m *Method) mapClaims(ctx context.Context, cr *result) (*mapper.Result, error) {
	if cr.mapped != nil {
		return cr.mapped, nil
	}
	mp := m.mappers[cr.provider.Config().ID]
	out, err := mp.Map(ctx, cr.res.Claims)
	if err != nil {
		return nil, err
	}
	cr.mapped = out
	return out, nil
}

// signUpTraits are the traits a sign-up from cr starts with: the mapper's,
// with the ones the user submitted on top.
func (m *Method) signUpTraits(ctx context.Context, cr *result) (map[string]any, error) {
	out, err := m.mapClaims(ctx, cr)
	if err != nil {
		return nil, err
	}
	traits := map[string]any{}
	if len(out.Traits) > 0 {
		if err := json.Unmarshal(out.Traits, &traits); err != nil {
			return nil, err
		}
	}
	mergeSubmitted(traits, cr.pending.Traits)
	return traits, nil
}

// mergeSubmitted puts the values the user submitted into traits, object
// by object. Empty values are not submissions: a sign-up form posts its
// empty inputs along with the provider's button, and they must not wipe
// what the provider said.
func mergeSubmitted(traits, submitted map[string]any) {
	for k, v := range submitted {
		switch x := v.(type) {
		case nil:
			continue
		case string:
			if x == "" {
				continue
			}
		case map[string]any:
			dst, ok := traits[k].(map[string]any)
			if !ok {
				dst = map[string]any{}
			}
			mergeSubmitted(dst, x)
			if len(dst) > 0 {
				traits[k] = dst
			}
			continue
		}
		traits[k] = v
	}
}
