package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// createIdentityBody is Kratos's createIdentityBody.
type createIdentityBody struct {
	SchemaID            string                    `json:"schema_id"`
	Traits              json.RawMessage           `json:"traits"`
	Credentials         *importCredentials        `json:"credentials"`
	VerifiableAddresses []importVerifiableAddress `json:"verifiable_addresses"`
	RecoveryAddresses   []importRecoveryAddress   `json:"recovery_addresses"`
	MetadataPublic      json.RawMessage           `json:"metadata_public"`
	MetadataAdmin       json.RawMessage           `json:"metadata_admin"`
	State               string                    `json:"state"`
	ExternalID          string                    `json:"external_id"`
	OrganizationID      *string                   `json:"organization_id"`
	Region              string                    `json:"region"`
}

type importVerifiableAddress struct {
	ID         string     `json:"id"`
	Value      string     `json:"value"`
	Verified   bool       `json:"verified"`
	Via        string     `json:"via"`
	Status     string     `json:"status"`
	VerifiedAt *time.Time `json:"verified_at"`
	CreatedAt  *time.Time `json:"created_at"`
	UpdatedAt  *time.Time `json:"updated_at"`
}

type importRecoveryAddress struct {
	ID                       string     `json:"id"`
	Value                    string     `json:"value"`
	Via                      string     `json:"via"`
	CreatedAt                *time.Time `json:"created_at"`
	UpdatedAt                *time.Time `json:"updated_at"`
	BreakGlassForOrganizaton *string    `json:"break_glass_for_organization"`
}

// importedAddresses turns the addresses of a create body into stored ones
// (they only count where the traits hold them; see mergeAddresses).
func importedAddresses(now time.Time, ver []importVerifiableAddress, rec []importRecoveryAddress) ([]sessionstore.VerifiableAddress, []sessionstore.RecoveryAddress) {
	var outV []sessionstore.VerifiableAddress
	for _, a := range ver {
		v := sessionstore.VerifiableAddress{ID: uuid.NewString(), Value: strings.ToLower(strings.TrimSpace(a.Value)),
			Verified: a.Verified, Via: a.Via, Status: a.Status, CreatedAt: now, UpdatedAt: now}
		if v.Via == "" {
			v.Via = "email"
		}
		if v.Verified {
			t := now
			if a.VerifiedAt != nil {
				t = a.VerifiedAt.UTC()
			}
			v.VerifiedAt = &t
			if v.Status == "" || v.Status == "pending" || v.Status == "sent" {
				v.Status = "completed"
			}
		} else if v.Status == "" || v.Status == "completed" {
			v.Status = "pending"
		}
		outV = append(outV, v)
	}
	var outR []sessionstore.RecoveryAddress
	for _, a := range rec {
		r := sessionstore.RecoveryAddress{ID: uuid.NewString(), Value: strings.ToLower(strings.TrimSpace(a.Value)),
			Via: a.Via, CreatedAt: now, UpdatedAt: now}
		if r.Via == "" {
			r.Via = "email"
		}
		outR = append(outR, r)
	}
	return outV, outR
}

// identityFromCreateBody builds a new identity (not stored).
func (a *API) identityFromCreateBody(b *createIdentityBody) (*sessionstore.Identity, *wire.Error) {
	sch, ferr := a.schema(b.SchemaID)
	if ferr != nil {
		return nil, ferr
	}
	if sch == nil {
		sch = a.schemas.Default()
	}
	if ferr := checkState(b.State); ferr != nil {
		return nil, ferr
	}
	if b.ExternalID != "" {
		return nil, wire.BadRequest("external_id is not supported.")
	}
	if b.OrganizationID != nil && *b.OrganizationID != "" {
		return nil, wire.BadRequest("organization_id is not supported: there are no organizations.")
	}
	traits, traitsJSON, ferr := decodeTraits(sch, b.Traits)
	if ferr != nil {
		return nil, ferr
	}
	now := a.now().UTC()
	state := b.State
	if state == "" {
		state = "active"
	}
	ident := &sessionstore.Identity{
		ID: uuid.NewString(), SchemaID: sch.ID, State: state, StateChangedAt: now,
		Traits: traitsJSON, MetadataPublic: metadata(b.MetadataPublic), MetadataAdmin: metadata(b.MetadataAdmin),
		CreatedAt: now, UpdatedAt: now, Credentials: map[string]sessionstore.Credential{},
	}
	impV, impR := importedAddresses(now, b.VerifiableAddresses, b.RecoveryAddresses)
	ident.VerifiableAddresses, ident.RecoveryAddresses = mergeAddresses(sch, traits, now, impV, impR)
	if ferr := a.importCredentialsInto(ident, traits, b.Credentials, now); ferr != nil {
		return nil, ferr
	}
	return ident, nil
}

// createIdentity serves POST /admin/identities.
func (a *API) createIdentity(w http.ResponseWriter, r *http.Request) *wire.Error {
	var body createIdentityBody
	if ferr := decode(w, r, maxBody, &body); ferr != nil {
		return ferr
	}
	ident, ferr := a.identityFromCreateBody(&body)
	if ferr != nil {
		return ferr
	}
	if err := a.store.CreateIdentity(r.Context(), ident); err != nil {
		return a.storeError(err, "store the identity")
	}
	a.emit(r, event.Event{Type: event.IdentityCreated, IdentityID: ident.ID})
	loc := selfURL(r)
	loc.Path = strings.TrimSuffix(loc.Path, "/") + "/" + ident.ID
	w.Header().Set("Location", loc.String())
	wire.WriteJSON(w, http.StatusCreated, a.identityJSON(r.Context(), ident, nil))
	return nil
}

// batchPatchBody is patchIdentitiesBody.
type batchPatchBody struct {
	Identities []struct {
		Create  *createIdentityBody `json:"create"`
		PatchID *string             `json:"patch_id"`
	} `json:"identities"`
}

// batchPatchResult is identityPatchResponse.
type batchPatchResult struct {
	Action   string      `json:"action"`
	Identity *string     `json:"identity,omitempty"`
	PatchID  *string     `json:"patch_id,omitempty"`
	Error    *wire.Error `json:"error,omitempty"`
}

// maxBatchIdentities bounds one batchPatchIdentities request (Kratos:
// 1000 with hashed passwords, 200 with plaintext ones).
const maxBatchIdentities = 1000

// batchPatchIdentities serves PATCH /admin/identities: every create gets
// its own result, the identity's id or an error. The answer is 200 when
// at least one identity was created (or the batch was empty); when all
// fail it is 409 if all failed on conflicts, else 400, with the
// per-identity results in error.details.identities.
func (a *API) batchPatchIdentities(w http.ResponseWriter, r *http.Request) *wire.Error {
	var body batchPatchBody
	if ferr := decode(w, r, maxBatchBody, &body); ferr != nil {
		return ferr
	}
	if len(body.Identities) > maxBatchIdentities {
		return wire.BadRequest(fmt.Sprintf("The maximum number of identities that can be created or deleted at once is %d.", maxBatchIdentities))
	}
	results := make([]batchPatchResult, len(body.Identities))
	created, conflicts := 0, 0
	for i, p := range body.Identities {
		res := &results[i]
		res.PatchID = p.PatchID
		res.Action = "create"
		if p.Create == nil {
			res.Action, res.Error = "error", wire.BadRequest("The patch has no create operation.")
			continue
		}
		ident, ferr := a.identityFromCreateBody(p.Create)
		if ferr == nil {
			if err := a.store.CreateIdentity(r.Context(), ident); err != nil {
				ferr = a.storeError(err, "store the identity")
			}
		}
		if ferr != nil {
			res.Action, res.Error = "error", ferr
			if ferr.Code == http.StatusConflict {
				conflicts++
			}
			continue
		}
		id := ident.ID
		res.Identity = &id
		created++
		a.emit(r, event.Event{Type: event.IdentityCreated, IdentityID: id})
	}
	if created == 0 && len(results) > 0 {
		code := http.StatusBadRequest
		reason := "None of the identities could be created."
		if conflicts == len(results) {
			code = http.StatusConflict
			reason = "None of the identities could be created: all conflict with existing identities."
		}
		ee := wire.NewError(code, "", "", reason)
		if code == http.StatusConflict {
			ee.Message = errIdentityConflict().Message
		}
		return ee.WithDetail("identities", results)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"identities": results})
	return nil
}
