package flows

import (
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/ui"
)

// socialPages is what the built-in pages need of the social sign-in
// providers (none when the method is off): each provider's label and icon
// for its buttons.
func socialPages(enabled bool, cfgs []provider.Config) []ui.SocialProvider {
	if !enabled {
		return nil
	}
	out := make([]ui.SocialProvider, 0, len(cfgs))
	for i := range cfgs {
		c := &cfgs[i]
		out = append(out, ui.SocialProvider{ID: c.ID, Label: c.DisplayName(), Icon: c.Icon})
	}
	return out
}
