package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// updateIdentityBody is Kratos's updateIdentityBody.
type updateIdentityBody struct {
	SchemaID       string             `json:"schema_id"`
	Traits         json.RawMessage    `json:"traits"`
	Credentials    *importCredentials `json:"credentials"`
	MetadataPublic json.RawMessage    `json:"metadata_public"`
	MetadataAdmin  json.RawMessage    `json:"metadata_admin"`
	State          string             `json:"state"`
	ExternalID     string             `json:"external_id"`
	Region         string             `json:"region"`
}

// updateIdentity serves PUT /admin/identities/{id}: traits, state and
// both metadata are replaced; credentials only when given.
//
// The body replaces those fields of the identity as it is when the write
// happens (a password change or a verification that commits meanwhile is
// kept, as if it had happened just before this PUT): last writer wins for
// what the body carries, nothing else is reverted.
func (a *API) updateIdentity(w http.ResponseWriter, r *http.Request) *wire.Error {
	var body updateIdentityBody
	if ferr := decode(w, r, maxBody, &body); ferr != nil {
		return ferr
	}
	loaded, ferr := a.loadIdentity(r, r.PathValue("id"))
	if ferr != nil {
		return ferr
	}
	sch := a.schemas.Of(loaded)
	if body.SchemaID != loaded.SchemaID {
		var named *identity.Schema
		if named, ferr = a.schema(body.SchemaID); named != nil {
			sch = named
		}
	}
	if ferr == nil {
		ferr = checkState(body.State)
	}
	if ferr != nil {
		return ferr
	}
	if body.ExternalID != "" {
		return wire.BadRequest("external_id is not supported.")
	}
	traits, traitsJSON, ferr := decodeTraits(sch, body.Traits)
	if ferr != nil {
		return ferr
	}
	// A given password is hashed once, before the write (which may run
	// more than once).
	now := a.now().UTC()
	imported := &sessionstore.Identity{SchemaID: sch.ID}
	if ferr := a.importCredentialsInto(imported, traits, body.Credentials, now); ferr != nil {
		return ferr
	}
	return a.writeIdentity(w, r, r.PathValue("id"), now, func(ident *sessionstore.Identity) (map[string]any, *wire.Error) {
		if a.schemas.Of(ident) != sch && (body.SchemaID == "" || body.SchemaID == loaded.SchemaID) {
			// The traits were checked against the schema the identity had
			// when it was read; another write changed it since.
			return nil, identity.ChangedMeanwhile()
		}
		ident.SchemaID = sch.ID
		if body.State != "" && body.State != ident.State {
			ident.State, ident.StateChangedAt = body.State, now
		}
		ident.Traits = traitsJSON
		ident.MetadataPublic = metadata(body.MetadataPublic)
		ident.MetadataAdmin = metadata(body.MetadataAdmin)
		if pw, ok := imported.Credentials["password"]; ok {
			if old, ok := ident.Credentials["password"]; ok && !old.CreatedAt.IsZero() {
				pw.CreatedAt = old.CreatedAt
			}
			identity.SetCredential(ident, "password", pw)
		}
		return traits, nil
	})
}

// patchIdentity serves PATCH /admin/identities/{id}: a JSON Patch on the
// identity's admin JSON. traits, state, schema_id, metadata_public,
// metadata_admin and the verification state of verifiable_addresses can be
// changed; id, credentials and timestamps cannot (400). Addresses always
// follow the traits afterwards.
//
// The patch is applied to the identity as it is when the write happens
// (re-applied if another write commits first), so its "test" operations
// check the current identity and fields it does not touch keep their
// current values.
func (a *API) patchIdentity(w http.ResponseWriter, r *http.Request) *wire.Error {
	patch, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return wire.BadRequest("Unable to read the request body.")
	}
	if _, ferr := a.loadIdentity(r, r.PathValue("id")); ferr != nil {
		return ferr
	}
	now := a.now().UTC()
	return a.writeIdentity(w, r, r.PathValue("id"), now, func(ident *sessionstore.Identity) (map[string]any, *wire.Error) {
		return a.applyIdentityPatch(ident, patch, now)
	})
}

// applyIdentityPatch applies a JSON Patch to ident and returns the patched
// traits.
func (a *API) applyIdentityPatch(ident *sessionstore.Identity, patch []byte, now time.Time) (map[string]any, *wire.Error) {
	// Nothing is declassified here, so no I/O needs the request context.
	current, _ := json.Marshal(a.identityJSON(context.Background(), ident, nil))
	before, err := decodeJSONValue(current)
	if err != nil {
		return nil, wire.StoreError(err, "unable to encode the identity")
	}
	orig := deepCopyJSON(before)
	after, err := applyJSONPatch(before, patch)
	if err != nil {
		return nil, wire.BadRequest("An error occurred when applying the JSON patch: " + err.Error())
	}
	doc, ok := after.(map[string]any)
	if !ok {
		return nil, wire.BadRequest("The patched identity is not a JSON object.")
	}
	origDoc := orig.(map[string]any)
	for _, f := range []string{"id", "credentials", "schema_url", "created_at", "updated_at", "state_changed_at", "organization_id"} {
		if !patchValuesEqual(origDoc[f], doc[f]) {
			return nil, wire.BadRequest(fmt.Sprintf("The field %q cannot be changed with a JSON patch.", f))
		}
	}
	for f := range doc {
		if _, known := origDoc[f]; !known {
			return nil, wire.BadRequest(fmt.Sprintf("The identity has no field %q.", f))
		}
	}
	var patched struct {
		SchemaID            string                    `json:"schema_id"`
		State               string                    `json:"state"`
		Traits              json.RawMessage           `json:"traits"`
		MetadataPublic      json.RawMessage           `json:"metadata_public"`
		MetadataAdmin       json.RawMessage           `json:"metadata_admin"`
		VerifiableAddresses []importVerifiableAddress `json:"verifiable_addresses"`
	}
	patchedJSON, _ := json.Marshal(doc)
	if err := json.Unmarshal(patchedJSON, &patched); err != nil {
		return nil, wire.BadRequest("The patched identity does not have the identity's shape: " + err.Error())
	}
	sch := a.schemas.Of(ident)
	if patched.SchemaID != ident.SchemaID {
		named, ferr := a.schema(patched.SchemaID)
		if ferr != nil {
			return nil, ferr
		}
		if named != nil {
			sch = named
		}
	}
	if patched.State != "active" && patched.State != "inactive" {
		return nil, errInvalidState(patched.State)
	}
	traits, traitsJSON, ferr := decodeTraits(sch, patched.Traits)
	if ferr != nil {
		return nil, ferr
	}
	ident.SchemaID = sch.ID
	if patched.State != ident.State {
		ident.State, ident.StateChangedAt = patched.State, now
	}
	ident.Traits = traitsJSON
	ident.MetadataPublic = metadata(patched.MetadataPublic)
	ident.MetadataAdmin = metadata(patched.MetadataAdmin)
	// Verification state as patched, for addresses the identity keeps.
	for _, pa := range patched.VerifiableAddresses {
		for i, va := range ident.VerifiableAddresses {
			if (pa.ID != "" && pa.ID == va.ID) || (pa.ID == "" && strings.EqualFold(pa.Value, va.Value) && pa.Via == va.Via) {
				origStatus := va.Status
				if pa.Verified != va.Verified {
					va.Verified = pa.Verified
					va.UpdatedAt = now
					if va.Verified {
						t := now
						if pa.VerifiedAt != nil {
							t = pa.VerifiedAt.UTC()
						}
						va.VerifiedAt, va.Status = &t, "completed"
					} else {
						va.VerifiedAt, va.Status = nil, "pending"
					}
				}
				if pa.Status != origStatus && (pa.Status == "pending" || pa.Status == "sent" || pa.Status == "completed") {
					va.Status = pa.Status
				}
				ident.VerifiableAddresses[i] = va
			}
		}
	}
	return traits, nil
}

// writeIdentity finishes update and patch: change sets the fields of the
// identity as it is at write time and returns its new traits; addresses
// and credential identifiers follow the traits, the identity is stored
// (change re-runs if another write commits first) and, when this write
// deactivated it, its sessions are revoked.
func (a *API) writeIdentity(w http.ResponseWriter, r *http.Request, id string, now time.Time,
	change func(ident *sessionstore.Identity) (map[string]any, *wire.Error)) *wire.Error {
	var wasActive bool
	var before snapshot
	ident, err := a.store.ModifyIdentity(r.Context(), id, func(ident *sessionstore.Identity) error {
		before = snapshotOf(ident)
		oldTraits, oldSch := traitsOf(ident), a.schemas.Of(ident)
		wasActive = identityActive(ident)
		traits, ferr := change(ident)
		if ferr != nil {
			return ferr
		}
		sch := a.schemas.Of(ident)
		ident.VerifiableAddresses, ident.RecoveryAddresses = mergeAddresses(sch, traits, now, ident.VerifiableAddresses, ident.RecoveryAddresses)
		if ferr := reindexCredentials(ident, oldSch, oldTraits, sch, traits, now); ferr != nil {
			return ferr
		}
		ident.UpdatedAt = now
		return nil
	})
	var ferr *wire.Error
	switch {
	case errors.As(err, &ferr):
		return ferr
	case errors.Is(err, sessionstore.ErrConflict):
		return identity.ChangedMeanwhile()
	case err != nil:
		return a.storeError(err, "update the identity")
	}
	if ch := changes(before, snapshotOf(ident)); len(ch) > 0 {
		a.emit(r, event.Event{Type: event.IdentityUpdated, IdentityID: ident.ID, Changes: ch})
	}
	if wasActive && !identityActive(ident) {
		// Kratos keeps the sessions of a deactivated identity and refuses
		// them whenever it loads the identity (whoami and the gate check
		// the state here too). They are revoked as well: revocation drops
		// them from the session cache at once, so the cut-off does not
		// depend on any identity copy being fresh, and reactivating the
		// identity does not bring old sessions back.
		n, err := a.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, "")
		if err != nil {
			a.logger.Error("admin: revoking the sessions of a deactivated identity", zap.Error(err))
			return wire.StoreError(err, "the identity was deactivated but its sessions could not be revoked")
		}
		if n > 0 {
			a.emit(r, event.Event{Type: event.SessionRevoked, IdentityID: ident.ID, Count: n, Reason: "identity_deactivated"})
		}
	}
	wire.WriteJSON(w, http.StatusOK, a.identityJSON(r.Context(), ident, nil))
	return nil
}

// deleteIdentity serves DELETE /admin/identities/{id}; its sessions go
// with it.
func (a *API) deleteIdentity(w http.ResponseWriter, r *http.Request) *wire.Error {
	if err := a.store.DeleteIdentity(r.Context(), r.PathValue("id")); err != nil {
		if errors.Is(err, sessionstore.ErrNotFound) || r.PathValue("id") == "" {
			return wire.NotFound()
		}
		return a.storeError(err, "delete the identity")
	}
	a.emit(r, event.Event{Type: event.IdentityDeleted, IdentityID: r.PathValue("id")})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
