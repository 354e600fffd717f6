package flows

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

var flowPages = map[string]bool{"login": true, "registration": true, "settings": true, "recovery": true, "verification": true}

func (e *Engine) uiPage(w http.ResponseWriter, r *http.Request) {
	page := r.PathValue("page")
	switch {
	case page == "error":
		e.uiErrorPage(w, r)
	case page == "sessions":
		e.uiSessionsPage(w, r)
	case page == "welcome":
		e.uiWelcome(w, r)
	case flowPages[page]:
		e.uiFlowPage(w, r, page)
	default:
		wire.WriteError(w, r, wire.NotFound())
	}
}

// restartURL is the browser flow init URL for kind; a known flow keeps the
// query it was created with (return_to, refresh, aal).
func (e *Engine) restartURL(r *http.Request, kind string, f *flow.Flow) string {
	u := e.urls.Public("self-service/" + kind + "/browser")
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

func (e *Engine) uiFlowPage(w http.ResponseWriter, r *http.Request, kind string) {
	f, err := e.kernel.Load(r.Context(), r.URL.Query().Get("flow"), kind)
	if err != nil && !errors.Is(err, flow.ErrNotFound) {
		e.logger.Error("loading flow for page", zap.Error(err))
	}
	if err != nil || f.Type != "browser" {
		wire.Redirect(w, r, http.StatusSeeOther, e.restartURL(r, kind, nil))
		return
	}
	cookie := e.kernel.CSRFFromCookie(r)
	if cookie == nil || !token.Equal(cookie, f.CSRFToken) || e.now().After(f.ExpiresAt) {
		wire.Redirect(w, r, http.StatusSeeOther, e.restartURL(r, kind, f))
		return
	}
	e.kernel.SetCSRFNode(f, f.CSRFToken)
	if kind == "settings" {
		// Backup codes (kept sealed on the flow) are shown only to a
		// session of the flow's identity that may use settings.
		if sess, err := e.sessions.Current(r); err == nil && sess.IdentityID == f.IdentityID {
			if ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
				if !e.sessions.AALSatisfied(sess, ident) {
					// A second factor is due first (getSettingsFlow's
					// 403): to the aal2 login and back to this flow.
					self := wire.WithQuery(e.urls.Public(strings.TrimPrefix(e.cfg.UIPrefix, "/")+"settings"), "flow", f.ID)
					wire.Redirect(w, r, http.StatusSeeOther, e.settings.AAL2LoginURL(r, self))
					return
				}
				e.settings.Reveal(r.Context(), f)
			}
		}
	}
	v := e.flowView(r, f)
	e.pageHeaders(w, r, f)
	e.render(w, http.StatusOK, v)
}

func (e *Engine) flowView(r *http.Request, f *flow.Flow) *uiView {
	v := e.newView(f.Kind)
	v.Title, v.Subtitle = tr(f.Kind+".title"), ""
	switch f.Kind {
	case "login":
		switch {
		case f.RequestedAAL == "aal2":
			v.Title = tr("login.aal2.title")
			if len(f.UI.Messages) == 0 {
				v.Subtitle = tr("login.aal2.subtitle")
			}
		case f.Refresh:
			v.Title, v.Subtitle = tr("login.refresh.title"), tr("login.refresh.subtitle")
		default:
			v.Subtitle = tr("login.subtitle", v.Product)
		}
	case "registration":
		v.Subtitle = tr("registration.subtitle", v.Product)
	case "settings":
		v.Subtitle = tr("settings.subtitle")
		v.Wide = true
	default:
		v.Subtitle = tr(f.Kind + ".subtitle")
	}
	v.Messages = f.UI.Messages
	e.buildForms(v, f)
	e.flowLinks(r, v, f)
	return v
}

// flowLinks adds navigation: the footer links of the unauthenticated flows,
// the account navigation on settings.
func (e *Engine) flowLinks(r *http.Request, v *uiView, f *flow.Flow) {
	withReturn := func(kind string) string {
		u := e.urls.Public("self-service/" + kind + "/browser")
		if f.ReturnTo != "" {
			u = wire.WithQuery(u, "return_to", f.ReturnTo)
		}
		return u
	}
	switch f.Kind {
	case "login":
		if f.RequestedAAL == "aal2" || f.Refresh {
			if sess, err := e.sessions.Current(r); err == nil {
				key := "link.logout"
				if f.RequestedAAL == "aal2" {
					key = "link.logout.aal2"
				}
				v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: e.logoutURL(r, sess), Text: tr(key)}})
			}
			return
		}
		if n := f.UI.Find("identifier"); n != nil && n.Input().Type == "hidden" {
			// A later step (identifier-first, code sent): the way back
			// to typing another identifier.
			v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: withReturn("login"), Text: tr("link.login.other")}})
		}
		if e.cfg.RecoveryEnabled {
			v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: withReturn("recovery"), Text: tr("link.recovery")}})
		}
		if !e.cfg.DisableRegistration {
			v.Footer = append(v.Footer, uiFooter{Prompt: tr("link.signup.prompt"), Link: uiLink{Href: withReturn("registration"), Text: tr("link.signup")}})
		}
	case "registration":
		v.Footer = append(v.Footer, uiFooter{Prompt: tr("link.login.prompt"), Link: uiLink{Href: withReturn("login"), Text: tr("link.login")}})
	case "recovery", "verification":
		if sess, err := e.sessions.Current(r); err == nil {
			e.accountNav(r, v, sess, "")
		} else {
			v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: withReturn("login"), Text: tr("link.back.login")}})
		}
	case "settings":
		if sess, err := e.sessions.Current(r); err == nil {
			e.accountNav(r, v, sess, "settings")
		}
	}
}

// accountNav is the navigation of signed-in pages.
func (e *Engine) accountNav(r *http.Request, v *uiView, sess *sessionstore.Session, current string) {
	v.Nav = []uiLink{
		{Href: e.cfg.UIPrefix, Text: tr("link.home"), Current: current == "welcome"},
		{Href: e.urls.Public("self-service/settings/browser"), Text: tr("nav.settings"), Current: current == "settings"},
		{Href: e.cfg.UIPrefix + "sessions", Text: tr("link.sessions"), Current: current == "sessions"},
		{Href: e.logoutURL(r, sess), Text: tr("link.logout")},
	}
}

func (e *Engine) logoutURL(r *http.Request, sess *sessionstore.Session) string {
	return e.urls.Public("self-service/logout?token=" + e.sessions.LogoutToken(sess.ID))
}
