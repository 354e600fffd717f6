package ui

import (
	"html/template"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// socialGroup is the node group of social sign-in (the oidc method). Its
// provider buttons get a form of their own at the top of sign-in and
// sign-up (as Ory Elements draws them: the providers, "or", the other
// ways), with the provider's icon; on settings each provider is a row
// with its Link or Unlink button.
const socialGroup = "oidc"

// socialProvider is a configured provider, checked once.
type socialProvider struct {
	id         string
	label      string
	icon       template.URL // "" when none or not acceptable
	iconOrigin string       // scheme://host of an https icon, for img-src
}

// socialSet is the configured providers by id, in configuration order. A
// nil set has none.
type socialSet struct {
	order []*socialProvider
	byID  map[string]*socialProvider
}

func newSocialSet(ps []SocialProvider) *socialSet {
	s := &socialSet{byID: map[string]*socialProvider{}}
	for _, p := range ps {
		if p.ID == "" || s.byID[p.ID] != nil {
			continue
		}
		sp := &socialProvider{id: p.ID, label: strings.TrimSpace(p.Label)}
		sp.icon, sp.iconOrigin = iconURL(p.Icon)
		s.order = append(s.order, sp)
		s.byID[p.ID] = sp
	}
	return s
}

func (s *socialSet) get(id string) *socialProvider {
	if s == nil {
		return nil
	}
	return s.byID[id]
}

// iconURL accepts what the provider configuration accepts as an icon: an
// absolute path on the site, or an https URL with a host and no user
// info (returned with its origin for img-src). Anything else: no icon.
func iconURL(s string) (template.URL, string) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'<>\\") {
		return "", ""
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		if _, err := url.Parse(s); err != nil {
			return "", ""
		}
		return template.URL(s), "" // #nosec G203 -- a same-origin path from the configuration; the attribute is still escaped
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", ""
	}
	o := cspOrigin(u.String())
	if o == "" {
		return "", ""
	}
	return template.URL(u.String()), o // #nosec G203 -- an https URL from the configuration; the attribute is still escaped
}

// socialName is what the pages call provider id: the configured label,
// else the label the node's text carries (login and registration buttons
// have the display name in their context), else the id.
func (s *socialSet) socialName(id string, n *node.Node) string {
	if p := s.get(id); p != nil && p.label != "" {
		return p.label
	}
	if n != nil && n.Meta.Label != nil {
		if name, ok := n.Meta.Label.Context["provider"].(string); ok && name != "" {
			return name
		}
	}
	return id
}

// monogram is the letter shown when a provider has no icon.
func monogram(name string) string {
	r, _ := utf8.DecodeRuneInString(strings.TrimSpace(name))
	if r == utf8.RuneError || !unicode.IsPrint(r) {
		return "?"
	}
	return string(unicode.ToUpper(r))
}

// socialItem dresses the rendered submit it of a social node n: the
// provider's name, icon and style. On settings the item is a row (the
// provider, linked or not, and its button) labelled with the provider's
// name rather than its id.
func socialItem(l *locale.Localizer, s *socialSet, it *item, n *node.Node, settings bool) {
	if it.Kind != "submit" || (it.Name != "provider" && it.Name != "link" && it.Name != "unlink") {
		return
	}
	it.Provider = s.socialName(it.Value, n)
	it.Mono = monogram(it.Provider)
	if p := s.get(it.Value); p != nil {
		it.Src = p.icon
	}
	if !settings {
		it.Kind, it.Style = "social", "social"
		return
	}
	it.Kind, it.Style = "provider", "secondary"
	it.Linked = it.Name == "unlink"
	if it.Linked {
		it.Style = "danger"
	}
	if n.Meta.Label != nil && n.Meta.Label.ID != 0 && it.Provider != it.Value {
		ctx := make(map[string]any, len(n.Meta.Label.Context)+1)
		for k, v := range n.Meta.Label.Context {
			ctx[k] = v
		}
		ctx["provider"] = it.Provider
		// No English fallback: the English template is rendered with the
		// name too (the flow's text says the id).
		if t := l.Message(n.Meta.Label.ID, ctx, ""); t != "" {
			it.Label = t
		}
	}
}

// linkedProviders are the providers ident signs in with: its oidc
// credential's identifiers are <provider>:<subject>.
func linkedProviders(ident *sessionstore.Identity) map[string]bool {
	out := map[string]bool{}
	if ident == nil {
		return out
	}
	c, ok := ident.Credentials["oidc"]
	if !ok {
		return out
	}
	for _, id := range c.Identifiers {
		if p, _, ok := strings.Cut(id, ":"); ok && p != "" {
			out[p] = true
		}
	}
	return out
}

// lastProviderRows are the rows of the configured providers ident is
// linked to that have no button: the method offers no Unlink on the last
// way to sign in, and the account would otherwise not show the link at
// all.
func lastProviderRows(l *locale.Localizer, s *socialSet, ident *sessionstore.Identity, shown map[string]bool, nextID func(string) string) []*item {
	if s == nil || ident == nil {
		return nil
	}
	linked := linkedProviders(ident)
	var out []*item
	for _, p := range s.order {
		if !linked[p.id] || shown[p.id] {
			continue
		}
		name := p.label
		if name == "" {
			name = p.id
		}
		out = append(out, &item{Kind: "provider", ID: nextID("provider-" + p.id), Value: p.id, Group: socialGroup,
			Provider: name, Mono: monogram(name), Src: p.icon, Linked: true, Note: l.Page("social.last")})
	}
	return out
}
