package flow

import (
	"errors"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"go.uber.org/zap"
)

// Create serves create{Browser,Native}{Login,Registration}Flow.
func (k *Kernel) Create(w http.ResponseWriter, r *http.Request, kind, typ string) {
	// Every flow is stored for its lifespan: creations per client are
	// limited so they cannot fill the store.
	if _, lerr := k.Reserve(r.Context(), "flow_ip", k.LimitIP(r)); lerr != nil {
		k.Refuse(w, r, nil, lerr)
		return
	}
	var csrf []byte
	if typ == "browser" {
		csrf = k.EnsureCSRF(w, r)
	}
	fk := k.kinds[kind]
	if c, ok := fk.(Creator); ok {
		c.Create(w, r, typ)
		return
	}
	f, ferr := fk.Init(r, typ)
	if ferr != nil {
		if ferr.ID == "session_already_available" && typ == "browser" && wire.PrefersHTML(r) {
			// Already signed in: go where the user wanted to go.
			to := k.urls.DefaultReturn()
			if rt, err := k.ValidateReturnTo(r, r.URL.Query().Get("return_to")); err == nil && rt != "" {
				to = rt
			}
			code := http.StatusSeeOther
			if kind == "registration" || kind == "recovery" {
				code = http.StatusFound
			}
			wire.Redirect(w, r, code, to)
			return
		}
		k.WriteError(w, r, typ, ferr)
		return
	}
	f.CSRFToken = csrf
	k.SetCSRFNode(f, csrf)
	if f.ExchangeCodeHash != nil {
		// A native flow asked for a session token exchange code: its
		// exchange exists from now on (the app may poll it), and a flow
		// answered without one could never be redeemed.
		if err := k.sessions.RegisterExchange(r.Context(), f.ID, f.ExchangeCodeHash, f.ExpiresAt); err != nil {
			k.logger.Error("registering the session token exchange", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
			return
		}
	}
	if err := k.Save(r.Context(), f); err != nil {
		k.logger.Error("saving flow", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if typ == "browser" && wire.PrefersHTML(r) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(k.urls.UI(kind), "flow", f.ID))
		return
	}
	WriteFlow(w, http.StatusOK, f)
}

// SetCSRFNode puts the (masked, for browsers) CSRF token on the flow's node.
// A flow shows one masked value for as long as it is bound to the same
// token: Kratos stores the flow's token, and UIs compare and cache it, so
// every read of the flow answers the value it was created with. Any mask
// of the token verifies against the cookie (checkCSRF).
func (k *Kernel) SetCSRFNode(f *Flow, raw []byte) {
	v := ""
	if f.Type == "browser" && raw != nil {
		cur := f.CSRFMasked
		if n := f.UI.Find("csrf_token"); cur == "" && n != nil {
			cur, _ = n.Input().Value.(string) // a flow stored before csrf_masked
		}
		if !token.IsMaskOf(cur, raw) {
			cur = token.MaskCSRF(raw)
		}
		f.CSRFMasked, v = cur, cur
	}
	if n := f.UI.Find("csrf_token"); n != nil {
		n.Input().Value = v
		return
	}
	if f.Kind == "verification" && f.Type == "api" {
		return // Kratos's native verification flows carry no csrf_token node
	}
	f.UI.Nodes = append([]*node.Node{node.CSRF(v)}, f.UI.Nodes...)
}

// Get serves get{Login,Registration,Recovery,Verification}Flow.
func (k *Kernel) Get(w http.ResponseWriter, r *http.Request, kind string) {
	fk := k.kinds[kind]
	if g, ok := fk.(Getter); ok {
		g.Get(w, r)
		return
	}
	// GETs of flows issue the CSRF cookie when missing (Kratos's nosurf
	// does, whatever the flow's type).
	k.EnsureCSRF(w, r)
	id := r.URL.Query().Get("id")
	f, err := k.Load(r.Context(), id, kind)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			wire.WriteError(w, r, wire.NotFound())
			return
		}
		k.logger.Error("loading flow", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the flow"))
		return
	}
	if derr := fk.Disabled(); derr != nil {
		wire.WriteError(w, r, derr)
		return
	}
	if f.Type == "browser" && !k.HoldsCSRF(r, f) {
		wire.WriteError(w, r, wire.CSRFViolation(CSRFMismatch))
		return
	}
	if k.now().After(f.ExpiresAt) {
		details := map[string]any{}
		if f.Type == "browser" {
			to := k.urls.Public("self-service/" + kind + "/browser")
			if f.ReturnTo != "" {
				to = wire.WithQuery(to, "return_to", f.ReturnTo)
			}
			details["redirect_to"] = to
			if f.ReturnTo != "" {
				details["return_to"] = f.ReturnTo
			}
		} else {
			details["api"] = k.urls.Public("self-service/" + kind + "/api")
		}
		wire.WriteError(w, r, wire.FlowExpired(f.ExpiresAt, details))
		return
	}
	// The flow's own mask (setCSRFNode), the same on every read.
	k.SetCSRFNode(f, f.CSRFToken)
	WriteFlow(w, http.StatusOK, f)
}
