package oidc

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// pendingKey is the flow's Internal key of the authorization request on
// its way to the provider (taken once by the callback).
const pendingKey = "oidc"

// pending is one authorization request: what the callback is checked
// against and what it resumes the flow with. It lives in the stored flow
// (server side); the browser holds only the state (in the provider's URL)
// and the continuity cookie's secret.
type pending struct {
	Auth provider.AuthState `json:"auth"`
	// Continuity is the hash of the continuity cookie's secret (browser
	// flows): the callback must come from the browser that started it.
	Continuity []byte `json:"continuity,omitempty"`
	// Traits are the traits submitted with a sign-up: they win over the
	// mapper's.
	Traits map[string]any `json:"traits,omitempty"`
}

// Reasons of the flow messages (4000001) of the method.
const (
	reasonUnavailable    = "The identity provider is unavailable, please try again later."
	reasonDenied         = "The identity provider did not sign you in."
	reasonRejected       = "The identity provider's answer could not be verified, please try again."
	reasonScopeMissing   = "Unable to finish because one or more permissions were not granted. Please retry and accept all permissions."
	reasonNotAllowed     = "This account of the identity provider is not allowed to sign in here."
	reasonMapper         = "The identity provider's answer could not be turned into an account."
	reasonNotLinked      = "This account of the identity provider is not linked to your account."
	reasonCallback       = "The OpenID Connect callback does not belong to this browser's flow. Please start again."
	reasonLastCredential = "This is the last way to sign in to your account: it cannot be unlinked."
)

// unknownProvider is Kratos's reason for a provider it has no config for.
func unknownProvider(id string) string {
	return `OpenID Connect Provider "` + id + `" is unknown or has not been configured`
}

// start sends the browser of sub to provider id: a fresh state, nonce and
// PKCE verifier, kept in the flow with the continuity cookie's hash; the
// browser gets the provider's URL (303 for browser form posts, 422
// browser_location_change_required otherwise). It returns false with a
// message on the flow when it did not answer (unknown provider, provider
// down): the caller answers the flow with 400.
func (m *Method) start(w http.ResponseWriter, r *http.Request, sub *flow.Submission, id string, traits map[string]any, forceLogin bool) bool {
	f := sub.Flow
	p, ok := m.byID[id]
	if !ok {
		f.UI.Messages = []node.Text{node.TextReason(4000001, unknownProvider(id))}
		return false
	}
	st, err := p.NewAuthState(r.Context())
	if err != nil {
		m.logger.Error("drawing an oidc state", zap.Error(err))
		f.UI.Messages = []node.Text{node.TextReason(4000001, reasonUnavailable)}
		return false
	}
	// The flow's id leads the state so the callback finds the flow; the
	// whole state is still compared, in constant time.
	st.State = f.ID + "." + st.State
	st.ForceLogin = forceLogin
	to, err := p.AuthCodeURL(r.Context(), st, provider.AuthOptions{UpstreamParameters: upstreamParameters(sub.Body),
		RequestAAL2: f.RequestedAAL == "aal2"})
	if err != nil {
		m.logger.Warn("oidc provider unavailable", zap.String("provider", id), zap.Error(err))
		f.UI.Messages = []node.Text{node.TextReason(4000001, reasonUnavailable)}
		return false
	}
	pd := pending{Auth: st, Traits: traits}
	var secret string
	if f.Type == "browser" {
		secret = token.RandomString(32, token.Alnum)
		pd.Continuity = token.Hash(secret)
	}
	raw, err := json.Marshal(pd)
	if err != nil {
		wire.WriteError(w, r, wire.Internal("unable to encode the authorization request"))
		return true
	}
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	f.Internal[pendingKey] = string(raw)
	if err := m.kernel.Save(r.Context(), f); err != nil {
		m.logger.Error("saving flow", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return true
	}
	if secret != "" {
		m.kernel.SetContinuity(w, f.ID+"."+secret, int(f.ExpiresAt.Sub(m.now()).Seconds())+1)
	}
	if f.Type == "browser" && !sub.JSON {
		wire.Redirect(w, r, http.StatusSeeOther, to)
		return true
	}
	wire.WriteError(w, r, wire.BrowserLocationChange(to))
	return true
}

// upstreamParameters reads upstream_parameters from a submit: an object
// (JSON) or upstream_parameters.<name> fields (forms). The provider
// passes on only the ones Kratos does.
func upstreamParameters(body map[string]any) map[string]string {
	out := map[string]string{}
	if obj, ok := body["upstream_parameters"].(map[string]any); ok {
		for k, v := range obj {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
	}
	for k, v := range body {
		if name, ok := strings.CutPrefix(k, "upstream_parameters."); ok {
			if s, ok := v.(string); ok {
				out[name] = s
			}
		}
	}
	return out
}

// callbackFlowID is the flow id that leads a state.
func callbackFlowID(state string) string {
	id, _, _ := strings.Cut(state, ".")
	return id
}

// continuityMatches reports whether the request carries the continuity
// cookie of flow f whose secret hashes to want.
func continuityMatches(r *http.Request, flowID string, want []byte) bool {
	if len(want) == 0 {
		return false
	}
	found := false
	token.EachCookie(r.Header, flow.ContinuityCookie, func(v string) bool {
		id, secret, ok := strings.Cut(v, ".")
		if ok && id == flowID && subtle.ConstantTimeCompare(token.Hash(secret), want) == 1 {
			found = true
			return false
		}
		return true
	})
	return found
}

// flowReason is the message of a provider failure, by sentinel.
func flowReason(err error) string {
	switch {
	case errors.Is(err, provider.ErrUnavailable):
		return reasonUnavailable
	case errors.Is(err, provider.ErrDenied):
		return reasonDenied
	case errors.Is(err, provider.ErrScopeMissing):
		return reasonScopeMissing
	case errors.Is(err, provider.ErrNotAllowed):
		return reasonNotAllowed
	}
	return reasonRejected
}
