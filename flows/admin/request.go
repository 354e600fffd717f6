package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

const (
	maxBody      = 1 << 20
	maxBatchBody = 64 << 20
)

// decode decodes a JSON body into v, rejecting unknown fields and
// trailing data (Kratos decodes admin bodies strictly).
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) *wire.Error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return wire.NewError(http.StatusRequestEntityTooLarge, "", "", fmt.Sprintf("The request body is larger than %d bytes.", limit))
		}
		return wire.BadRequest("Unable to read the request body.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return wire.BadRequest(fmt.Sprintf("Unable to decode the request body as JSON: %v", err))
	}
	if dec.More() {
		return wire.BadRequest("Unexpected data after the JSON body.")
	}
	return nil
}

// loadIdentity loads an identity, or says 404/500.
func (a *API) loadIdentity(r *http.Request, id string) (*sessionstore.Identity, *wire.Error) {
	ident, err := a.store.GetIdentity(r.Context(), id)
	if err == nil {
		return ident, nil
	}
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, wire.NotFound()
	}
	a.logger.Error("admin: loading identity", zap.Error(err))
	return nil, wire.StoreError(err, "unable to load the identity")
}

// storeError maps a store error to Kratos's answer.
func (a *API) storeError(err error, what string) *wire.Error {
	switch {
	case errors.Is(err, sessionstore.ErrDuplicateCredential), errors.Is(err, sessionstore.ErrAlreadyExists):
		return errIdentityConflict()
	case errors.Is(err, sessionstore.ErrNotFound):
		return wire.NotFound()
	}
	a.logger.Error("admin: "+what, zap.Error(err))
	return wire.StoreError(err, "unable to "+what)
}

// selfURL is the absolute URL of the request as the client sent it (with
// any mount prefix), for Link and Location headers.
func selfURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if ru, err := url.ParseRequestURI(r.RequestURI); err == nil && ru.Path != "" {
		u.Path = ru.Path
	}
	return u
}
