package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// listIdentities serves GET /admin/identities: by exact credential
// identifier, by ids, or paginated (optionally filtered by a part of an
// identifier).
func (a *API) listIdentities(w http.ResponseWriter, r *http.Request) *wire.Error {
	q := r.URL.Query()
	declassify, ferr := parseIncludeCredential(q)
	if ferr != nil {
		return ferr
	}
	ident, similar := q.Get("credentials_identifier"), q.Get("preview_credentials_identifier_similar")
	if ident != "" && similar != "" {
		return wire.BadRequest("Cannot pass both credentials_identifier and preview_credentials_identifier_similar.")
	}
	out := []*identityWire{}
	switch {
	case ident != "":
		// Exact lookup: identifiers are stored normalised.
		for _, t := range []string{"password", "code", "webauthn", "passkey"} {
			found, err := a.store.FindIdentityByCredential(r.Context(), t, identity.NormalizeIdentifier(ident))
			if err == nil {
				out = append(out, a.identityJSON(r.Context(), found, declassify))
				break
			}
			if !errors.Is(err, sessionstore.ErrNotFound) {
				return a.storeError(err, "list identities")
			}
		}
		wire.WriteJSON(w, http.StatusOK, out)
		return nil
	case len(q["ids"]) > 0:
		seen := map[string]bool{}
		for _, id := range q["ids"] {
			if seen[id] {
				continue
			}
			seen[id] = true
			found, err := a.store.GetIdentity(r.Context(), id)
			if err == nil {
				out = append(out, a.identityJSON(r.Context(), found, declassify))
			}
		}
		wire.WriteJSON(w, http.StatusOK, out)
		return nil
	case q.Get("organization_id") != "":
		wire.WriteJSON(w, http.StatusOK, out) // no organizations
		return nil
	}
	pp, ferr := parsePage(q)
	if ferr != nil {
		return ferr
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
		batch, nt, err := a.store.ListIdentities(r.Context(), token, pp.size)
		if err != nil {
			return a.storeError(err, "list identities")
		}
		for i, id := range batch {
			if !match(id) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, a.identityJSON(r.Context(), id, declassify))
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
	pp.setLinks(w, r, next)
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// getIdentity serves GET /admin/identities/{id}.
func (a *API) getIdentity(w http.ResponseWriter, r *http.Request) *wire.Error {
	declassify, ferr := parseIncludeCredential(r.URL.Query())
	if ferr != nil {
		return ferr
	}
	ident, ferr := a.loadIdentity(r, r.PathValue("id"))
	if ferr != nil {
		return ferr
	}
	wire.WriteJSON(w, http.StatusOK, a.identityJSON(r.Context(), ident, declassify))
	return nil
}
