package flows

import (
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/ui"
)

// socialPages is what the built-in pages need of the social sign-in
// providers (none when the method is off): each provider's label and icon
// for its buttons, and the origins its authorization endpoint is on, which
// the pages' form-action must allow (Chrome applies it to the redirect
// that answers the button's form post).
func socialPages(enabled bool, cfgs []provider.Config) []ui.SocialProvider {
	if !enabled {
		return nil
	}
	out := make([]ui.SocialProvider, 0, len(cfgs))
	for i := range cfgs {
		c := &cfgs[i]
		out = append(out, ui.SocialProvider{ID: c.ID, Label: c.DisplayName(), Icon: c.Icon, AuthOrigins: authOrigins(c)})
	}
	return out
}

// authOrigins are where provider c's sign-in sends the browser: the
// provider package's fixed hosts of each kind, the issuer (or auth_url)
// of generic and self-managed GitLab. A generic provider whose discovery
// document names an authorization endpoint on another host than its
// issuer needs auth_url set for the pages to allow it.
func authOrigins(c *provider.Config) []string {
	switch c.Provider {
	case provider.KindGoogle:
		return []string{"https://accounts.google.com"}
	case provider.KindGitHub:
		return []string{"https://github.com"}
	case provider.KindMicrosoft:
		// Personal accounts are sent on to login.live.com.
		return []string{"https://login.microsoftonline.com", "https://login.live.com"}
	case provider.KindApple:
		return []string{"https://appleid.apple.com"}
	case provider.KindDiscord:
		return []string{"https://discord.com"}
	case provider.KindGitLab:
		if c.IssuerURL != "" {
			return []string{c.IssuerURL}
		}
		return []string{"https://gitlab.com"}
	}
	if c.AuthURL != "" {
		return []string{c.AuthURL}
	}
	return []string{c.IssuerURL}
}
