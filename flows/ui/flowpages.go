package ui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// restartURL is the browser flow init URL for kind; a known flow keeps the
// query it was created with (return_to, refresh, aal).
func (p *Pages) restartURL(r *http.Request, kind string, f *flow.Flow) string {
	u := p.urls.Public("self-service/" + kind + "/browser")
	if f != nil {
		if q, _ := flow.RequestQuery(f.RequestURL); q != "" {
			if vals, err := url.ParseQuery(q); err == nil {
				keep := url.Values{}
				for _, k := range []string{"return_to", "refresh", "aal", "login_challenge"} {
					if v := vals.Get(k); v != "" {
						keep.Set(k, v)
					}
				}
				if len(keep) > 0 {
					u += "?" + keep.Encode()
				}
			}
		}
	}
	return u
}

func (p *Pages) flowPage(w http.ResponseWriter, r *http.Request, kind string) {
	f, err := p.kernel.Load(r.Context(), r.URL.Query().Get("flow"), kind)
	if err != nil && !errors.Is(err, flow.ErrNotFound) {
		p.logger.Error("loading flow for page", zap.Error(err))
	}
	if err != nil || f.Type != "browser" {
		wire.Redirect(w, r, http.StatusSeeOther, p.restartURL(r, kind, nil))
		return
	}
	cookie := p.kernel.CSRFFromCookie(r)
	if cookie == nil || !token.Equal(cookie, f.CSRFToken) || p.now().After(f.ExpiresAt) {
		wire.Redirect(w, r, http.StatusSeeOther, p.restartURL(r, kind, f))
		return
	}
	p.kernel.SetCSRFNode(f, f.CSRFToken)
	var ident *sessionstore.Identity
	if kind == "settings" {
		// Backup codes (kept sealed on the flow) are shown only to a
		// session of the flow's identity that may use settings.
		if sess, err := p.sessions.Current(r); err == nil && sess.IdentityID == f.IdentityID {
			if id, err := p.identities.GetIdentity(r.Context(), sess.IdentityID); err == nil {
				if !p.sessions.AALSatisfied(sess, id) {
					// A second factor is due first (the settings
					// flow's 403): to the aal2 login and back to this flow.
					self := wire.WithQuery(p.urls.Public(strings.TrimPrefix(p.cfg.Prefix, "/")+"settings"), "flow", f.ID)
					wire.Redirect(w, r, http.StatusSeeOther, p.settings.AAL2LoginURL(r, self))
					return
				}
				p.settings.Reveal(r.Context(), f)
				ident = id
			}
		}
	}
	v := p.flowView(p.localizer(r), r, f, ident)
	v.Picker = p.picker(r, v.Lang, cookie)
	p.pageHeaders(w, r, f)
	p.render(w, http.StatusOK, v)
}

// flowView is the page of f; ident is the settings flow's identity (nil
// elsewhere).
func (p *Pages) flowView(l *locale.Localizer, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) *view {
	v := p.newView(l, f.Kind)
	v.ident = ident
	v.Title, v.Subtitle = l.Page(f.Kind+".title"), ""
	switch f.Kind {
	case "login":
		switch {
		case f.RequestedAAL == "aal2":
			v.Title = l.Page("login.aal2.title")
			if len(f.UI.Messages) == 0 {
				v.Subtitle = l.Page("login.aal2.subtitle")
			}
		case f.Refresh:
			v.Title, v.Subtitle = l.Page("login.refresh.title"), l.Page("login.refresh.subtitle")
		case accountLinking(f):
			// Kratos's 1010016 says what happened; once it is gone (a
			// wrong password) the subtitle still says what this step is.
			v.Title = l.Page("login.link.title")
			if !hasMessage(f, 1010016) {
				v.Subtitle = l.Page("login.link.subtitle")
			}
		default:
			v.Subtitle = l.Page("login.subtitle", v.Product)
		}
	case "registration":
		v.Subtitle = l.Page("registration.subtitle", v.Product)
	case "settings":
		v.Subtitle = l.Page("settings.subtitle")
		v.Wide = true
	default:
		v.Subtitle = l.Page(f.Kind + ".subtitle")
	}
	v.Messages = messages(l, f.UI.Messages)
	buildForms(v, f)
	p.flowLinks(r, v, f)
	return v
}

// accountLinking reports whether f is the sign-in that links a provider
// account to the account its address belongs to: the oidc method made it
// (active oidc) for one account, whose identifier it carries hidden.
func accountLinking(f *flow.Flow) bool {
	if f.Kind != "login" || f.Active != socialGroup || f.Refresh || f.RequestedAAL == "aal2" {
		return false
	}
	n := f.UI.Find("identifier")
	if n == nil || n.Group != "default" {
		return false
	}
	a := n.Input()
	return a != nil && a.Type == "hidden" && valueString(a.Value) != ""
}

func hasMessage(f *flow.Flow, id int) bool {
	for _, m := range f.UI.Messages {
		if m.ID == id {
			return true
		}
	}
	return false
}

// flowLinks adds navigation: the footer links of the unauthenticated flows,
// the account navigation on settings.
func (p *Pages) flowLinks(r *http.Request, v *view, f *flow.Flow) {
	withReturn := func(kind string) string {
		u := p.urls.Public("self-service/" + kind + "/browser")
		if f.ReturnTo != "" {
			u = wire.WithQuery(u, "return_to", f.ReturnTo)
		}
		return u
	}
	switch f.Kind {
	case "login":
		if f.RequestedAAL == "aal2" || f.Refresh {
			if sess, err := p.sessions.Current(r); err == nil {
				key := "link.logout"
				if f.RequestedAAL == "aal2" {
					key = "link.logout.aal2"
				}
				v.Footer = append(v.Footer, footerLine{Link: navLink{Href: p.logoutURL(r, sess), Text: v.l.Page(key)}})
			}
			return
		}
		if n := f.UI.Find("identifier"); n != nil && n.Input().Type == "hidden" {
			// A later step (identifier-first, code sent): the way back
			// to typing another identifier.
			v.Footer = append(v.Footer, footerLine{Link: navLink{Href: withReturn("login"), Text: v.l.Page("link.login.other")}})
		}
		if p.cfg.RecoveryEnabled {
			v.Footer = append(v.Footer, footerLine{Link: navLink{Href: withReturn("recovery"), Text: v.l.Page("link.recovery")}})
		}
		if p.cfg.RegistrationEnabled {
			v.Footer = append(v.Footer, footerLine{Prompt: v.l.Page("link.signup.prompt"), Link: navLink{Href: withReturn("registration"), Text: v.l.Page("link.signup")}})
		}
	case "registration":
		v.Footer = append(v.Footer, footerLine{Prompt: v.l.Page("link.login.prompt"), Link: navLink{Href: withReturn("login"), Text: v.l.Page("link.login")}})
	case "recovery", "verification":
		if sess, err := p.sessions.Current(r); err == nil {
			p.accountNav(r, v, sess, "")
		} else {
			v.Footer = append(v.Footer, footerLine{Link: navLink{Href: withReturn("login"), Text: v.l.Page("link.back.login")}})
		}
	case "settings":
		if sess, err := p.sessions.Current(r); err == nil {
			p.accountNav(r, v, sess, "settings")
		}
	}
}

// accountNav is the navigation of signed-in pages.
func (p *Pages) accountNav(r *http.Request, v *view, sess *sessionstore.Session, current string) {
	v.Nav = []navLink{
		{Href: p.cfg.Prefix, Text: v.l.Page("link.home"), Current: current == "welcome"},
		{Href: p.urls.Public("self-service/settings/browser"), Text: v.l.Page("nav.settings"), Current: current == "settings"},
		{Href: p.cfg.Prefix + "sessions", Text: v.l.Page("link.sessions"), Current: current == "sessions"},
		{Href: p.logoutURL(r, sess), Text: v.l.Page("link.logout")},
	}
}

func (p *Pages) logoutURL(r *http.Request, sess *sessionstore.Session) string {
	return p.urls.Public("self-service/logout?token=" + p.sessions.LogoutToken(sess.ID))
}
