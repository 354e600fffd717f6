package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
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
// and redirects to the recovery UI with the flow (the recovery flow's
// OpenAdmin). From there the flow is an ordinary recovery flow: the code
// is submitted with method=code and CSRF is checked as usual.

type recoveryBody struct {
	IdentityID string `json:"identity_id"`
	ExpiresIn  string `json:"expires_in"`
	FlowType   string `json:"flow_type"`
}

func errEndpointDisabled() *wire.Error {
	return wire.NewError(http.StatusNotFound, "", "", "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.")
}

// recoveryStart decodes the body and checks the parts both endpoints
// share; it returns the flow lifespan.
func (a *API) recoveryStart(w http.ResponseWriter, r *http.Request, body *recoveryBody) (time.Duration, *wire.Error) {
	if ferr := decode(w, r, maxBody, body); ferr != nil {
		return 0, ferr
	}
	if ferr := a.recovery.Disabled(); ferr != nil {
		return 0, ferr
	}
	lifespan := a.cfg.CodeLifespan
	if body.ExpiresIn != "" {
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil {
			return 0, wire.BadRequest(fmt.Sprintf(`Unable to parse "expires_in" whose format should match "[0-9]+(ns|us|ms|s|m|h)" but did not: %s`, body.ExpiresIn))
		}
		if d <= 0 {
			return 0, wire.BadRequest(fmt.Sprintf(`Value from "expires_in" must result to a future time: %s`, body.ExpiresIn))
		}
		lifespan = d
	}
	if _, err := uuid.Parse(body.IdentityID); err != nil {
		return 0, wire.BadRequest("identity_id must be the UUID of an identity.")
	}
	return lifespan, nil
}

// newRecoveryFlow creates a recovery flow of typ that lives for lifespan,
// marked as the administrator's.
func (a *API) newRecoveryFlow(r *http.Request, typ string, lifespan time.Duration) *flow.Flow {
	f := a.kernel.NewFlow(r, "recovery", typ)
	f.ExpiresAt = f.IssuedAt.Add(lifespan)
	f.RequestURL = a.urls.Public("self-service/recovery/" + typ)
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	f.Internal[flow.AdminCreated] = true
	a.recovery.Form(f, "")
	return f
}

// createRecoveryCode serves POST /admin/recovery/code.
func (a *API) createRecoveryCode(w http.ResponseWriter, r *http.Request) *wire.Error {
	var body recoveryBody
	lifespan, ferr := a.recoveryStart(w, r, &body)
	if ferr != nil {
		return ferr
	}
	if a.cfg.RecoveryUse != "code" {
		return errEndpointDisabled()
	}
	typ := body.FlowType
	switch typ {
	case "":
		typ = "browser"
	case "browser", "api":
	default:
		return wire.BadRequest("flow_type must be browser or api.")
	}
	ident, ferr := a.loadIdentity(r, body.IdentityID)
	if ferr != nil {
		return ferr
	}
	f := a.newRecoveryFlow(r, typ, lifespan)
	code := flow.NewCode()
	// The code screen without the "resend" button: there is no address
	// to send to.
	a.recovery.Sent(f, "")
	nodes := f.UI.Nodes[:0]
	for _, n := range f.UI.Nodes {
		if in := n.Input(); in != nil && in.Name == "email" {
			continue
		}
		nodes = append(nodes, n)
	}
	f.UI.Nodes, f.UI.Messages = nodes, []node.Text{}
	f.SetChallenge(&flow.Challenge{MAC: a.kernel.CodeMAC(f.ID, code), IdentityID: ident.ID, ExpiresAt: f.ExpiresAt})
	if err := a.kernel.Save(r.Context(), f); err != nil {
		return wire.StoreError(err, "unable to store the flow")
	}
	a.logger.Info("admin: recovery code created", zap.String("identity_id", ident.ID), zap.String("flow_id", f.ID))
	wire.WriteJSON(w, http.StatusCreated, map[string]any{
		"recovery_link": a.urls.Public("self-service/recovery?flow=" + f.ID),
		"recovery_code": code,
		"expires_at":    f.ExpiresAt.UTC(),
	})
	return nil
}

// createRecoveryLink serves POST /admin/recovery/link: a single-use link
// that signs the identity in and opens the settings flow.
func (a *API) createRecoveryLink(w http.ResponseWriter, r *http.Request) *wire.Error {
	var body recoveryBody
	lifespan, ferr := a.recoveryStart(w, r, &body)
	if ferr != nil {
		return ferr
	}
	if body.FlowType != "" {
		return wire.BadRequest(`Unable to decode the request body as JSON: json: unknown field "flow_type"`)
	}
	returnTo, ferr := a.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if ferr != nil {
		return ferr
	}
	ident, ferr := a.loadIdentity(r, body.IdentityID)
	if ferr != nil {
		return ferr
	}
	f := a.newRecoveryFlow(r, "browser", lifespan)
	f.ReturnTo = returnTo
	f.State = "sent_email"
	tok := token.RandomString(32, token.Alnum)
	lt, _ := json.Marshal(flow.LinkToken{FlowID: f.ID, IdentityID: ident.ID})
	if err := a.kernel.Save(r.Context(), f); err != nil {
		return wire.StoreError(err, "unable to store the flow")
	}
	if err := a.store.PutRecord(r.Context(), "rtok", fmt.Sprintf("%x", token.Hash(tok)), lt, lifespan); err != nil {
		return wire.StoreError(err, "unable to store the recovery link")
	}
	a.logger.Info("admin: recovery link created", zap.String("identity_id", ident.ID), zap.String("flow_id", f.ID))
	wire.WriteJSON(w, http.StatusOK, map[string]any{
		"recovery_link": a.urls.Public("self-service/recovery?flow=" + f.ID + "&token=" + tok),
		"expires_at":    f.ExpiresAt.UTC(),
	})
	return nil
}
