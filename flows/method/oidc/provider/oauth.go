package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// apiProvider is plain OAuth 2.0 with a user API (GitHub, Discord): no ID
// token, so no nonce and no provider-asserted AAL; the claims come from the
// API with the access token, over TLS from the provider's own host.
type apiProvider struct {
	*base
	authURL, tokenURL string
	scopeSep          string // how the token response lists granted scopes
	pkceKnown         bool
	authExtra         func(st AuthState, o AuthOptions) []oauth2.AuthCodeOption
	claims            func(ctx context.Context, tok *oauth2.Token, granted []string) (*Claims, error)
}

func (p *apiProvider) oauth2Config() *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Scopes: p.cfg.Scope, RedirectURL: p.redirect,
		Endpoint: oauth2.Endpoint{AuthURL: p.authURL, TokenURL: p.tokenURL},
	}
}

func (p *apiProvider) NewAuthState(context.Context) (AuthState, error) {
	pkce := p.cfg.PKCE == PKCEForce || (p.cfg.PKCE == PKCEAuto && p.pkceKnown)
	st, err := newAuthState(p.cfg.ID, pkce)
	st.Nonce = "" // no ID token to carry it
	return st, err
}

func (p *apiProvider) AuthCodeURL(_ context.Context, st AuthState, o AuthOptions) (string, error) {
	opts := p.authParams(st, o, false)
	if p.authExtra != nil {
		opts = append(opts, p.authExtra(st, o)...)
	}
	return p.oauth2Config().AuthCodeURL(st.State, opts...), nil
}

func (p *apiProvider) Exchange(ctx context.Context, st AuthState, cb Callback) (*Result, error) {
	if err := p.checkCallback(st, cb); err != nil {
		return nil, err
	}
	tok, err := p.exchangeCode(ctx, p.oauth2Config(), st, cb.Code)
	if err != nil {
		return nil, err
	}
	// As Kratos: every configured scope must have been granted (GitHub and
	// Discord let the user narrow them).
	granted := strings.FieldsFunc(fmt.Sprint(tok.Extra("scope")), func(r rune) bool {
		return strings.ContainsRune(p.scopeSep, r)
	})
	for _, s := range p.cfg.Scope {
		if !slices.Contains(granted, s) {
			return nil, fmt.Errorf("%w: %q (granted: %v)", ErrScopeMissing, s, granted)
		}
	}
	c, err := p.claims(ctx, tok, granted)
	if err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &Result{Claims: c, AAL: "aal1", Tokens: tokensOf(tok, "")}, nil
}
