package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// --- bodies ---

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

// importCredentials is identityWithCredentials. Only password can be
// imported; the other kinds are recognised so that they are refused with
// a clear reason rather than as unknown fields.
type importCredentials struct {
	Password     *importPassword `json:"password"`
	OIDC         json.RawMessage `json:"oidc"`
	SAML         json.RawMessage `json:"saml"`
	TOTP         json.RawMessage `json:"totp"`
	LookupSecret json.RawMessage `json:"lookup_secret"`
	WebAuthn     json.RawMessage `json:"webauthn"`
	Passkey      json.RawMessage `json:"passkey"`
}

type importPassword struct {
	Config importPasswordConfig `json:"config"`
}

type importPasswordConfig struct {
	HashedPassword           string `json:"hashed_password"`
	Password                 string `json:"password"`
	UsePasswordMigrationHook bool   `json:"use_password_migration_hook"`
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

// --- errors ---

func errIdentityConflict() *wire.Error {
	return wire.NewError(http.StatusConflict, "", "The resource could not be created due to a conflict",
		"This identity conflicts with another identity that already exists.")
}

func errInvalidState(s string) *wire.Error {
	return wire.BadRequest(fmt.Sprintf("The supplied state ('%s') was not valid. Valid states are ('active', 'inactive').", s))
}

func errInvalidTraits(errs []identity.FieldError) *wire.Error {
	var parts []string
	details := map[string]any{}
	for _, fe := range errs {
		name := fe.Name
		if name == "" {
			name = "traits"
		}
		parts = append(parts, name+": "+fe.Text.Text)
		details[name] = fe.Text.Text
	}
	e := wire.BadRequest("The traits do not match the identity schema: " + strings.Join(parts, "; "))
	e.Details = details
	return e
}

// --- building identities ---

// adminCheckState validates a state value ("" means keep / default).
func adminCheckState(s string) *wire.Error {
	switch s {
	case "", "active", "inactive":
		return nil
	}
	return errInvalidState(s)
}

// decodeTraits parses and validates traits against the identity schema sch.
func (e *Engine) decodeTraits(sch *identity.Schema, raw json.RawMessage) (map[string]any, json.RawMessage, *wire.Error) {
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	v, err := decodeJSONValue(raw)
	if err != nil {
		return nil, nil, wire.BadRequest("traits are not valid JSON")
	}
	traits, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			return nil, nil, wire.BadRequest("traits must be a JSON object")
		}
		traits = map[string]any{}
	}
	if errs := sch.Validate(traits); len(errs) > 0 {
		return nil, nil, errInvalidTraits(errs)
	}
	b, err := json.Marshal(traits)
	if err != nil {
		return nil, nil, wire.BadRequest("traits are not valid JSON")
	}
	return traits, b, nil
}

// adminSchema is the schema a body's schema_id names: nil for an empty id
// (the caller's default: the default schema for a new identity, the
// identity's own schema for an update), 400 for an id not configured.
func (e *Engine) adminSchema(id string) (*identity.Schema, *wire.Error) {
	if id == "" {
		return nil, nil
	}
	if s := e.schemas.Named(id); s != nil {
		return s, nil
	}
	return nil, wire.BadRequest(fmt.Sprintf("unable to find JSON Schema ID: %s", id))
}

func adminMetadata(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// mergeAddresses derives the addresses from traits as registration does,
// keeping id, verification state and timestamps of addresses that already
// exist (same value and channel). Addresses the traits no longer hold go.
func (e *Engine) mergeAddresses(sch *identity.Schema, traits map[string]any, now time.Time, oldVer []sessionstore.VerifiableAddress,
	oldRec []sessionstore.RecoveryAddress) ([]sessionstore.VerifiableAddress, []sessionstore.RecoveryAddress) {
	ver, rec := sch.Addresses(traits, now)
	for i, a := range ver {
		for _, o := range oldVer {
			if strings.EqualFold(o.Value, a.Value) && o.Via == a.Via {
				o.Value = a.Value
				ver[i] = o
				break
			}
		}
	}
	for i, a := range rec {
		for _, o := range oldRec {
			if strings.EqualFold(o.Value, a.Value) && o.Via == a.Via {
				o.Value = a.Value
				rec[i] = o
				break
			}
		}
	}
	return ver, rec
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

// importCredentialsInto applies the credentials of a create/update body:
// a password (plaintext, hashed with the configured hasher, or an imported
// hash in a supported format) replaces the password credential.
func (e *Engine) importCredentialsInto(ident *sessionstore.Identity, traits map[string]any, c *importCredentials, now time.Time) *wire.Error {
	if c == nil {
		return nil
	}
	for name, raw := range map[string]json.RawMessage{"oidc": c.OIDC, "saml": c.SAML, "totp": c.TOTP,
		"lookup_secret": c.LookupSecret, "webauthn": c.WebAuthn, "passkey": c.Passkey} {
		if len(raw) > 0 && string(raw) != "null" {
			return wire.BadRequest(fmt.Sprintf("Importing %s credentials is not supported; only password credentials can be imported.", name))
		}
	}
	if c.Password == nil {
		return nil
	}
	cfg := c.Password.Config
	if cfg.UsePasswordMigrationHook {
		return wire.BadRequest("use_password_migration_hook is not supported: import the password hash or the password itself.")
	}
	hashed := cfg.HashedPassword
	if cfg.Password != "" {
		if len(cfg.Password) > 72 && e.cfg.PasswordHasher == "bcrypt" {
			return wire.BadRequest("The password is longer than 72 bytes, which bcrypt cannot hash.")
		}
		if len(cfg.Password) > identity.MaxPasswordBytes {
			return wire.BadRequest(fmt.Sprintf("The password is longer than %d bytes.", identity.MaxPasswordBytes))
		}
		// The admin API has no client to go away; the gate still bounds
		// concurrent hashing.
		h, err := e.hasher.Hash(context.Background(), cfg.Password)
		if errors.Is(err, identity.ErrHashBusy) {
			return identity.HashersBusy()
		}
		if err != nil {
			return wire.StoreError(err, "unable to hash the password")
		}
		hashed = h
	}
	if hashed == "" {
		return wire.BadRequest("credentials.password.config needs a password or a hashed_password.")
	}
	if err := identity.ValidateImportedHash(hashed); err != nil {
		if errors.Is(err, identity.ErrUnknownHash) {
			return wire.BadRequest("The imported password does not match any known hash format. For more information see https://www.ory.sh/dr/2")
		}
		return wire.BadRequest("The imported password hash is malformed: " + err.Error())
	}
	identifiers := e.schemas.Of(ident).Identifiers(traits, "password")
	if len(identifiers) == 0 {
		return wire.BadRequest("The identity has no password identifier: no trait marked as a password identifier in the identity schema has a value.")
	}
	cred := sessionstore.Credential{Type: "password", Identifiers: identifiers,
		Config: identity.EncodeConfig(identity.PasswordConfig{HashedPassword: hashed}), CreatedAt: now, UpdatedAt: now}
	if old, ok := ident.Credentials["password"]; ok && !old.CreatedAt.IsZero() {
		cred.CreatedAt = old.CreatedAt
	}
	if ident.Credentials == nil {
		ident.Credentials = map[string]sessionstore.Credential{}
	}
	ident.Credentials["password"] = cred
	return nil
}

// reindexCredentials follows trait changes in credential identifiers: the
// password identifiers always mirror the identifier traits; another
// credential type's identifiers are replaced when they were exactly the
// ones derived from the old traits (under the old schema).
func (e *Engine) reindexCredentials(ident *sessionstore.Identity, oldSch *identity.Schema, oldTraits map[string]any,
	sch *identity.Schema, traits map[string]any, now time.Time) *wire.Error {
	for t, c := range ident.Credentials {
		derived := sch.Identifiers(traits, t)
		switch {
		case t == "password":
			if len(derived) == 0 {
				return wire.BadRequest("The identity has a password but no password identifier: no trait marked as a password identifier in the identity schema has a value.")
			}
		case len(derived) == 0 || !sameIdentifiers(c.Identifiers, oldSch.Identifiers(oldTraits, t)):
			continue
		}
		if !sameIdentifiers(c.Identifiers, derived) {
			c.Identifiers = derived
			c.UpdatedAt = now
			ident.Credentials[t] = c
		}
	}
	return nil
}

func sameIdentifiers(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// identityFromCreateBody builds a new identity (not stored).
func (e *Engine) identityFromCreateBody(b *createIdentityBody) (*sessionstore.Identity, *wire.Error) {
	sch, ferr := e.adminSchema(b.SchemaID)
	if ferr != nil {
		return nil, ferr
	}
	if sch == nil {
		sch = e.schemas.Default()
	}
	if ferr := adminCheckState(b.State); ferr != nil {
		return nil, ferr
	}
	if b.ExternalID != "" {
		return nil, wire.BadRequest("external_id is not supported.")
	}
	if b.OrganizationID != nil && *b.OrganizationID != "" {
		return nil, wire.BadRequest("organization_id is not supported: there are no organizations.")
	}
	traits, traitsJSON, ferr := e.decodeTraits(sch, b.Traits)
	if ferr != nil {
		return nil, ferr
	}
	now := e.now().UTC()
	state := b.State
	if state == "" {
		state = "active"
	}
	ident := &sessionstore.Identity{
		ID: uuid.NewString(), SchemaID: sch.ID, State: state, StateChangedAt: now,
		Traits: traitsJSON, MetadataPublic: adminMetadata(b.MetadataPublic), MetadataAdmin: adminMetadata(b.MetadataAdmin),
		CreatedAt: now, UpdatedAt: now, Credentials: map[string]sessionstore.Credential{},
	}
	impV, impR := importedAddresses(now, b.VerifiableAddresses, b.RecoveryAddresses)
	ident.VerifiableAddresses, ident.RecoveryAddresses = e.mergeAddresses(sch, traits, now, impV, impR)
	if ferr := e.importCredentialsInto(ident, traits, b.Credentials, now); ferr != nil {
		return nil, ferr
	}
	return ident, nil
}

// adminStoreError maps a store write error to Kratos's answer.
func (e *Engine) adminStoreError(err error, what string) *wire.Error {
	switch {
	case errors.Is(err, sessionstore.ErrDuplicateCredential), errors.Is(err, sessionstore.ErrAlreadyExists):
		return errIdentityConflict()
	case errors.Is(err, sessionstore.ErrNotFound):
		return wire.NotFound()
	}
	e.logger.Error("admin: "+what, zap.Error(err))
	return wire.StoreError(err, "unable to "+what)
}

// --- handlers ---

// adminListIdentities serves GET /admin/identities.
func (e *Engine) adminListIdentities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	declassify, ferr := parseIncludeCredential(q)
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	ident, similar := q.Get("credentials_identifier"), q.Get("preview_credentials_identifier_similar")
	if ident != "" && similar != "" {
		wire.WriteError(w, r, wire.BadRequest("Cannot pass both credentials_identifier and preview_credentials_identifier_similar."))
		return
	}
	out := []*adminIdentity{}
	switch {
	case ident != "":
		// Exact lookup: identifiers are stored normalised.
		for _, t := range []string{"password", "code", "webauthn", "passkey"} {
			found, err := e.store.FindIdentityByCredential(r.Context(), t, identity.NormalizeIdentifier(ident))
			if err == nil {
				out = append(out, e.adminIdentityJSON(r, found, declassify))
				break
			}
			if !errors.Is(err, sessionstore.ErrNotFound) {
				wire.WriteError(w, r, e.adminStoreError(err, "list identities"))
				return
			}
		}
		wire.WriteJSON(w, http.StatusOK, out)
		return
	case len(q["ids"]) > 0:
		seen := map[string]bool{}
		for _, id := range q["ids"] {
			if seen[id] {
				continue
			}
			seen[id] = true
			found, err := e.store.GetIdentity(r.Context(), id)
			if err == nil {
				out = append(out, e.adminIdentityJSON(r, found, declassify))
			}
		}
		wire.WriteJSON(w, http.StatusOK, out)
		return
	case q.Get("organization_id") != "":
		wire.WriteJSON(w, http.StatusOK, out) // no organizations
		return
	}
	pp, ferr := parseAdminPage(q)
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	needle := strings.ToLower(similar)
	match := func(id *sessionstore.Identity) bool {
		if needle == "" {
			return true
		}
		for _, c := range id.Credentials {
			for _, v := range c.Identifiers {
				if strings.Contains(strings.ToLower(v), needle) {
					return true
				}
			}
		}
		return false
	}
	// Walk store pages until this page is full (filters and offsets skip
	// identities, so a store page may contribute fewer).
	token, skip, next := pp.token, pp.offset, ""
	for len(out) < pp.size {
		batch, nt, err := e.store.ListIdentities(r.Context(), token, pp.size)
		if err != nil {
			wire.WriteError(w, r, e.adminStoreError(err, "list identities"))
			return
		}
		for i, id := range batch {
			if !match(id) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, e.adminIdentityJSON(r, id, declassify))
			if len(out) == pp.size {
				if i < len(batch)-1 || nt != "" {
					next = id.ID
				}
				break
			}
		}
		if nt == "" || len(out) == pp.size {
			break
		}
		token = nt
	}
	if pp.paged {
		adminPageLinks(w, r, pp, next != "")
	} else {
		adminLinkHeader(w, r, pp.size, next)
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// adminPageLinks is the Link header of the deprecated per_page/page
// pagination.
func adminPageLinks(w http.ResponseWriter, r *http.Request, pp adminPage, hasNext bool) {
	page := pp.offset / pp.size
	mk := func(rel string, p int) wire.Link {
		u := adminSelfURL(r)
		q := r.URL.Query()
		q.Set("per_page", fmt.Sprint(pp.size))
		q.Set("page", fmt.Sprint(p))
		u.RawQuery = q.Encode()
		return wire.Link{Rel: rel, URL: u.String()}
	}
	links := []wire.Link{mk("first", 0)}
	if hasNext {
		links = append(links, mk("next", page+1))
	}
	if page > 0 {
		links = append(links, mk("prev", page-1))
	}
	wire.SetLinks(w, links...)
}

// adminGetIdentity serves GET /admin/identities/{id}.
func (e *Engine) adminGetIdentity(w http.ResponseWriter, r *http.Request) {
	declassify, ferr := parseIncludeCredential(r.URL.Query())
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	ident := e.adminLoadIdentity(w, r, r.PathValue("id"))
	if ident == nil {
		return
	}
	wire.WriteJSON(w, http.StatusOK, e.adminIdentityJSON(r, ident, declassify))
}

// adminCreateIdentity serves POST /admin/identities.
func (e *Engine) adminCreateIdentity(w http.ResponseWriter, r *http.Request) {
	var body createIdentityBody
	if ferr := adminDecode(w, r, maxAdminBody, &body); ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	ident, ferr := e.identityFromCreateBody(&body)
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	if err := e.store.CreateIdentity(r.Context(), ident); err != nil {
		wire.WriteError(w, r, e.adminStoreError(err, "store the identity"))
		return
	}
	loc := adminSelfURL(r)
	loc.Path = strings.TrimSuffix(loc.Path, "/") + "/" + ident.ID
	w.Header().Set("Location", loc.String())
	wire.WriteJSON(w, http.StatusCreated, e.adminIdentityJSON(r, ident, nil))
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

// adminBatchPatchIdentities serves PATCH /admin/identities: every create
// gets its own result, the identity's id or an error. The answer is 200
// when at least one identity was created (or the batch was empty); when
// all fail it is 409 if all failed on conflicts, else 400, with the
// per-identity results in error.details.identities.
func (e *Engine) adminBatchPatchIdentities(w http.ResponseWriter, r *http.Request) {
	var body batchPatchBody
	if ferr := adminDecode(w, r, maxBatchBody, &body); ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	if len(body.Identities) > maxBatchIdentities {
		wire.WriteError(w, r, wire.BadRequest(fmt.Sprintf("The maximum number of identities that can be created or deleted at once is %d.", maxBatchIdentities)))
		return
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
		ident, ferr := e.identityFromCreateBody(p.Create)
		if ferr == nil {
			if err := e.store.CreateIdentity(r.Context(), ident); err != nil {
				ferr = e.adminStoreError(err, "store the identity")
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
		ee.WithDetail("identities", results)
		wire.WriteError(w, r, ee)
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"identities": results})
}

// adminUpdateIdentity serves PUT /admin/identities/{id}: traits, state and
// both metadata are replaced; credentials only when given.
//
// The body replaces those fields of the identity as it is when the write
// happens (a password change or a verification that commits meanwhile is
// kept, as if it had happened just before this PUT): last writer wins for
// what the body carries, nothing else is reverted.
func (e *Engine) adminUpdateIdentity(w http.ResponseWriter, r *http.Request) {
	var body updateIdentityBody
	if ferr := adminDecode(w, r, maxAdminBody, &body); ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	loaded := e.adminLoadIdentity(w, r, r.PathValue("id"))
	if loaded == nil {
		return
	}
	sch := e.schemas.Of(loaded)
	var ferr *wire.Error
	if body.SchemaID != loaded.SchemaID {
		var named *identity.Schema
		if named, ferr = e.adminSchema(body.SchemaID); named != nil {
			sch = named
		}
	}
	if ferr == nil {
		ferr = adminCheckState(body.State)
	}
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	if body.ExternalID != "" {
		wire.WriteError(w, r, wire.BadRequest("external_id is not supported."))
		return
	}
	traits, traitsJSON, ferr := e.decodeTraits(sch, body.Traits)
	if ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	// A given password is hashed once, before the write (which may run
	// more than once).
	now := e.now().UTC()
	imported := &sessionstore.Identity{SchemaID: sch.ID}
	if ferr := e.importCredentialsInto(imported, traits, body.Credentials, now); ferr != nil {
		wire.WriteError(w, r, ferr)
		return
	}
	e.adminWriteIdentity(w, r, r.PathValue("id"), now, func(ident *sessionstore.Identity) (map[string]any, *wire.Error) {
		if e.schemas.Of(ident) != sch && (body.SchemaID == "" || body.SchemaID == loaded.SchemaID) {
			// The traits were checked against the schema the identity had
			// when it was read; another write changed it since.
			return nil, identity.ChangedMeanwhile()
		}
		ident.SchemaID = sch.ID
		if body.State != "" && body.State != ident.State {
			ident.State, ident.StateChangedAt = body.State, now
		}
		ident.Traits = traitsJSON
		ident.MetadataPublic = adminMetadata(body.MetadataPublic)
		ident.MetadataAdmin = adminMetadata(body.MetadataAdmin)
		if pw, ok := imported.Credentials["password"]; ok {
			if old, ok := ident.Credentials["password"]; ok && !old.CreatedAt.IsZero() {
				pw.CreatedAt = old.CreatedAt
			}
			identity.SetCredential(ident, "password", pw)
		}
		return traits, nil
	})
}

// adminPatchIdentity serves PATCH /admin/identities/{id}: a JSON Patch on
// the identity's admin JSON. traits, state, schema_id, metadata_public,
// metadata_admin and the verification state of verifiable_addresses can be
// changed; id, credentials and timestamps cannot (400). Addresses always
// follow the traits afterwards.
//
// The patch is applied to the identity as it is when the write happens
// (re-applied if another write commits first), so its "test" operations
// check the current identity and fields it does not touch keep their
// current values.
func (e *Engine) adminPatchIdentity(w http.ResponseWriter, r *http.Request) {
	patch, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		wire.WriteError(w, r, wire.BadRequest("Unable to read the request body."))
		return
	}
	if e.adminLoadIdentity(w, r, r.PathValue("id")) == nil {
		return
	}
	now := e.now().UTC()
	e.adminWriteIdentity(w, r, r.PathValue("id"), now, func(ident *sessionstore.Identity) (map[string]any, *wire.Error) {
		return e.applyIdentityPatch(r, ident, patch, now)
	})
}

// applyIdentityPatch applies a JSON Patch to ident and returns the patched
// traits.
func (e *Engine) applyIdentityPatch(r *http.Request, ident *sessionstore.Identity, patch []byte, now time.Time) (map[string]any, *wire.Error) {
	current, _ := json.Marshal(e.adminIdentityJSON(r, ident, nil))
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
	sch := e.schemas.Of(ident)
	if patched.SchemaID != ident.SchemaID {
		named, ferr := e.adminSchema(patched.SchemaID)
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
	traits, traitsJSON, ferr := e.decodeTraits(sch, patched.Traits)
	if ferr != nil {
		return nil, ferr
	}
	ident.SchemaID = sch.ID
	if patched.State != ident.State {
		ident.State, ident.StateChangedAt = patched.State, now
	}
	ident.Traits = traitsJSON
	ident.MetadataPublic = adminMetadata(patched.MetadataPublic)
	ident.MetadataAdmin = adminMetadata(patched.MetadataAdmin)
	// Verification state as patched, for addresses the identity keeps.
	for _, pa := range patched.VerifiableAddresses {
		for i, a := range ident.VerifiableAddresses {
			if (pa.ID != "" && pa.ID == a.ID) || (pa.ID == "" && strings.EqualFold(pa.Value, a.Value) && pa.Via == a.Via) {
				origStatus := a.Status
				if pa.Verified != a.Verified {
					a.Verified = pa.Verified
					a.UpdatedAt = now
					if a.Verified {
						t := now
						if pa.VerifiedAt != nil {
							t = pa.VerifiedAt.UTC()
						}
						a.VerifiedAt, a.Status = &t, "completed"
					} else {
						a.VerifiedAt, a.Status = nil, "pending"
					}
				}
				if pa.Status != origStatus && (pa.Status == "pending" || pa.Status == "sent" || pa.Status == "completed") {
					a.Status = pa.Status
				}
				ident.VerifiableAddresses[i] = a
			}
		}
	}
	return traits, nil
}

// adminWriteIdentity finishes update and patch: change sets the fields of
// the identity as it is at write time and returns its new traits;
// addresses and credential identifiers follow the traits, the identity is
// stored (change re-runs if another write commits first) and, when this
// write deactivated it, its sessions are revoked.
func (e *Engine) adminWriteIdentity(w http.ResponseWriter, r *http.Request, id string, now time.Time,
	change func(ident *sessionstore.Identity) (map[string]any, *wire.Error)) {
	var wasActive bool
	ident, err := e.store.ModifyIdentity(r.Context(), id, func(ident *sessionstore.Identity) error {
		oldTraits, oldSch := adminTraitsOf(ident), e.schemas.Of(ident)
		wasActive = adminIdentityActive(ident)
		traits, ferr := change(ident)
		if ferr != nil {
			return ferr
		}
		sch := e.schemas.Of(ident)
		ident.VerifiableAddresses, ident.RecoveryAddresses = e.mergeAddresses(sch, traits, now, ident.VerifiableAddresses, ident.RecoveryAddresses)
		if ferr := e.reindexCredentials(ident, oldSch, oldTraits, sch, traits, now); ferr != nil {
			return ferr
		}
		ident.UpdatedAt = now
		return nil
	})
	var ferr *wire.Error
	switch {
	case errors.As(err, &ferr):
		wire.WriteError(w, r, ferr)
		return
	case errors.Is(err, sessionstore.ErrConflict):
		wire.WriteError(w, r, identity.ChangedMeanwhile())
		return
	case err != nil:
		wire.WriteError(w, r, e.adminStoreError(err, "update the identity"))
		return
	}
	if wasActive && !adminIdentityActive(ident) {
		// Kratos keeps the sessions of a deactivated identity and refuses
		// them whenever it loads the identity (whoami and the gate check
		// the state here too). They are revoked as well: revocation drops
		// them from the session cache at once, so the cut-off does not
		// depend on any identity copy being fresh, and reactivating the
		// identity does not bring old sessions back.
		if _, err := e.store.RevokeSessionsOfIdentity(r.Context(), ident.ID, ""); err != nil {
			e.logger.Error("admin: revoking the sessions of a deactivated identity", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "the identity was deactivated but its sessions could not be revoked"))
			return
		}
	}
	wire.WriteJSON(w, http.StatusOK, e.adminIdentityJSON(r, ident, nil))
}

func adminIdentityActive(id *sessionstore.Identity) bool {
	return id.State == "" || id.State == "active"
}

func adminTraitsOf(id *sessionstore.Identity) map[string]any {
	v, err := decodeJSONValue(id.Traits)
	if err != nil {
		return map[string]any{}
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// adminDeleteIdentity serves DELETE /admin/identities/{id}; its sessions
// go with it.
func (e *Engine) adminDeleteIdentity(w http.ResponseWriter, r *http.Request) {
	if err := e.store.DeleteIdentity(r.Context(), r.PathValue("id")); err != nil {
		if errors.Is(err, sessionstore.ErrNotFound) || r.PathValue("id") == "" {
			wire.WriteError(w, r, wire.NotFound())
			return
		}
		wire.WriteError(w, r, e.adminStoreError(err, "delete the identity"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
