package flows

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/recovery"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// Recovery codes and links created by an administrator
// (createRecoveryCodeForIdentity, createRecoveryLinkForIdentity).
//
// A code flow is a browser recovery flow in state sent_email whose
// challenge is the returned code. Kratos marks such flows
// DangerousSkipCSRFCheck because the administrator's request, not the
// user's browser, created them. Here the flow is bound to the browser
// instead: recovery_link is the public GET /self-service/recovery?flow=<id>
// (no token), which gives the browser a CSRF cookie, binds the flow to it
// and redirects to the recovery UI with the flow (openAdminRecovery). From
// there the flow is an ordinary recovery flow: the code is submitted with
// method=code and CSRF is checked as usual.

type adminRecoveryBody struct {
	IdentityID string `json:"identity_id"`
	ExpiresIn  string `json:"expires_in"`
	FlowType   string `json:"flow_type"`
}

func errEndpointDisabled() *wire.Error {
	return wire.NewError(http.StatusNotFound, "", "", "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.")
}

// adminRecoveryStart checks the common parts of both endpoints and
// returns the flow lifespan.
func (e *Engine) adminRecoveryStart(w http.ResponseWriter, r *http.Request, body *adminRecoveryBody) (time.Duration, bool) {
	if ferr := adminDecode(w, r, maxAdminBody, body); ferr != nil {
		wire.WriteError(w, r, ferr)
		return 0, false
	}
	if !e.cfg.RecoveryEnabled {
		wire.WriteError(w, r, recovery.ErrDisabled())
		return 0, false
	}
	lifespan := e.cfg.CodeLifespan
	if body.ExpiresIn != "" {
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil {
			wire.WriteError(w, r, wire.BadRequest(fmt.Sprintf(`Unable to parse "expires_in" whose format should match "[0-9]+(ns|us|ms|s|m|h)" but did not: %s`, body.ExpiresIn)))
			return 0, false
		}
		if d <= 0 {
			wire.WriteError(w, r, wire.BadRequest(fmt.Sprintf(`Value from "expires_in" must result to a future time: %s`, body.ExpiresIn)))
			return 0, false
		}
		lifespan = d
	}
	if _, err := uuid.Parse(body.IdentityID); err != nil {
		wire.WriteError(w, r, wire.BadRequest("identity_id must be the UUID of an identity."))
		return 0, false
	}
	return lifespan, true
}

// newAdminRecoveryFlow creates a recovery flow of typ that lives for
// lifespan, in state sent_email.
func (e *Engine) newAdminRecoveryFlow(r *http.Request, typ string, lifespan time.Duration) *flow.Flow {
	f := e.kernel.NewFlow(r, "recovery", typ)
	f.ExpiresAt = f.IssuedAt.Add(lifespan)
	f.RequestURL = e.urls.Public("self-service/recovery/" + typ)
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	f.Internal[flow.AdminCreated] = true
	e.recovery.Form(f, "")
	return f
}

// adminCreateRecoveryCode serves POST /admin/recovery/code.
func (e *Engine) adminCreateRecoveryCode(w http.ResponseWriter, r *http.Request) {
	var body adminRecoveryBody
	lifespan, ok := e.adminRecoveryStart(w, r, &body)
	if !ok {
		return
	}
	if e.cfg.RecoveryUse != "code" {
		wire.WriteError(w, r, errEndpointDisabled())
		return
	}
	typ := body.FlowType
	switch typ {
	case "":
		typ = "browser"
	case "browser", "api":
	default:
		wire.WriteError(w, r, wire.BadRequest("flow_type must be browser or api."))
		return
	}
	ident := e.adminLoadIdentity(w, r, body.IdentityID)
	if ident == nil {
		return
	}
	f := e.newAdminRecoveryFlow(r, typ, lifespan)
	code := flow.NewCode()
	// The code screen without the "resend" button: there is no address
	// to send to.
	e.recovery.Sent(f, "")
	nodes := f.UI.Nodes[:0]
	for _, n := range f.UI.Nodes {
		if a := n.Input(); a != nil && a.Name == "email" {
			continue
		}
		nodes = append(nodes, n)
	}
	f.UI.Nodes, f.UI.Messages = nodes, []node.Text{}
	f.SetChallenge(&flow.Challenge{MAC: e.kernel.CodeMAC(f.ID, code), IdentityID: ident.ID, ExpiresAt: f.ExpiresAt})
	if err := e.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	e.logger.Info("admin: recovery code created", zap.String("identity_id", ident.ID), zap.String("flow_id", f.ID))
	wire.WriteJSON(w, http.StatusCreated, map[string]any{
		"recovery_link": e.urls.Public("self-service/recovery?flow=" + f.ID),
		"recovery_code": code,
		"expires_at":    f.ExpiresAt.UTC(),
	})
}

// adminCreateRecoveryLink serves POST /admin/recovery/link: a single-use
// link that signs the identity in and opens the settings flow.
func (e *Engine) adminCreateRecoveryLink(w http.ResponseWriter, r *http.Request) {
	var body adminRecoveryBody
	lifespan, ok := e.adminRecoveryStart(w, r, &body)
	if !ok {
		return
	}
	if body.FlowType != "" {
		wire.WriteError(w, r, wire.BadRequest(`Unable to decode the request body as JSON: json: unknown field "flow_type"`))
		return
	}
	returnTo, rerr := e.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		wire.WriteError(w, r, rerr)
		return
	}
	ident := e.adminLoadIdentity(w, r, body.IdentityID)
	if ident == nil {
		return
	}
	f := e.newAdminRecoveryFlow(r, "browser", lifespan)
	f.ReturnTo = returnTo
	f.State = "sent_email"
	tok := token.RandomString(32, token.Alnum)
	lt, _ := json.Marshal(flow.LinkToken{FlowID: f.ID, IdentityID: ident.ID})
	if err := e.kernel.Save(r.Context(), f); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if err := e.store.PutRecord(r.Context(), "rtok", fmt.Sprintf("%x", token.Hash(tok)), lt, lifespan); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the recovery link"))
		return
	}
	e.logger.Info("admin: recovery link created", zap.String("identity_id", ident.ID), zap.String("flow_id", f.ID))
	wire.WriteJSON(w, http.StatusOK, map[string]any{
		"recovery_link": e.urls.Public("self-service/recovery?flow=" + f.ID + "&token=" + tok),
		"expires_at":    f.ExpiresAt.UTC(),
	})
}
