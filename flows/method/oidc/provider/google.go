package provider

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/oauth2"
)

// newGoogle is OpenID Connect at accounts.google.com, with Kratos's quirks:
// the offline_access scope becomes access_type=offline (Google refuses the
// scope), and, ours, hd restricts sign-in to Workspace domains by the
// verified ID token's hd claim (the hd parameter alone is only a hint).
func newGoogle(b *base) *oidcProvider {
	p := &oidcProvider{base: b, discoveryURL: b.opts.endpoints.google, exactIssuer: true}
	p.scopes = func() []string {
		return slices.DeleteFunc(slices.Clone(p.cfg.Scope), func(s string) bool { return s == "offline_access" })
	}
	p.authExtra = func(AuthState, AuthOptions) []oauth2.AuthCodeOption {
		var opts []oauth2.AuthCodeOption
		if slices.Contains(p.cfg.Scope, "offline_access") {
			opts = append(opts, oauth2.AccessTypeOffline)
		}
		switch len(p.cfg.HostedDomains) {
		case 0:
		case 1:
			opts = append(opts, oauth2.SetAuthURLParam("hd", p.cfg.HostedDomains[0]))
		default:
			opts = append(opts, oauth2.SetAuthURLParam("hd", "*"))
		}
		return opts
	}
	p.after = func(_ context.Context, r *Result, _ *oauth2.Token, _ Callback) error {
		if len(p.cfg.HostedDomains) == 0 {
			return nil
		}
		// The hd claim comes from the verified ID token (Google's
		// claims_source is always id_token).
		if r.Claims.HD == "" || !slices.Contains(p.cfg.HostedDomains, r.Claims.HD) {
			return fmt.Errorf("%w: Google account of domain %q, allowed: %v", ErrNotAllowed, r.Claims.HD, p.cfg.HostedDomains)
		}
		return nil
	}
	return p
}

// newGitLab is OpenID Connect at gitlab.com or a self-managed instance
// (issuer_url). Kratos reads GitLab's userinfo, so claims_source defaults
// to userinfo; the ID token is verified and its nonce checked all the same.
func newGitLab(b *base) *oidcProvider {
	iss := b.cfg.IssuerURL
	if iss == "" {
		iss = b.opts.endpoints.gitlab
	}
	return &oidcProvider{base: b, discoveryURL: iss, exactIssuer: true}
}
