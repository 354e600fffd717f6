package ui

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
)

// cspOrigin returns scheme://host[:port] of an absolute http(s) URL (the host
// may hold a * wildcard), or "".
func cspOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	if strings.ContainsAny(u.Host, " ;,'\"") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// addAppLink adds scheme://host of a native app's deep link (a custom-scheme
// return URL such as exp://example.com/my-app, validated against the
// allow-list before it gets here) to sources: browsers apply form-action to
// the redirect after a form post.
func addAppLink(sources *[]string, s string) {
	u, err := url.Parse(s)
	if err != nil || !flow.CustomScheme(u.Scheme) ||
		u.Host == "" || strings.ContainsAny(u.Host, " ;,'\"*") {
		return
	}
	if o := u.Scheme + "://" + u.Host; !slices.Contains(*sources, o) {
		*sources = append(*sources, o)
	}
}

// pageHeaders sets the security headers of every page. form-action lists the
// origins a form post may end on: Chrome applies it to the redirect after
// the post too, so the origins of return URLs and UI URLs are included.
func (p *Pages) pageHeaders(w http.ResponseWriter, r *http.Request, f *flow.Flow) {
	public := cspOrigin(p.urls.Base())
	formAction := []string{"'self'"}
	add := func(s string) {
		if o := cspOrigin(s); o != "" && !slices.Contains(formAction, o) {
			formAction = append(formAction, o)
		}
	}
	add(p.urls.Base())
	add(p.urls.DefaultReturn())
	for _, u := range p.cfg.AllowedReturnURLs {
		add(u)
		addAppLink(&formAction, u)
	}
	for _, u := range p.cfg.UIURLs {
		add(u)
	}
	social := f != nil && p.social != nil && len(p.social.order) > 0 &&
		(f.Kind == "settings" || slices.ContainsFunc(f.UI.Nodes, func(n *node.Node) bool { return n.Group == socialGroup }))
	if f != nil {
		add(f.ReturnTo)
		addAppLink(&formAction, f.ReturnTo)
		add(f.UI.Action)
	}
	script := "'self'"
	if public != "" {
		script += " " + public
	}
	imgSrc := []string{"'self'", "data:"}
	addImg := func(o string) {
		if o != "" && !slices.Contains(imgSrc, o) {
			imgSrc = append(imgSrc, o)
		}
	}
	addImg(cspOrigin(p.cfg.LogoURL))
	if social {
		// The configured icons only: nothing of the request names an image.
		for _, sp := range p.social.order {
			addImg(sp.iconOrigin)
		}
	}
	img := strings.Join(imgSrc, " ")
	h := w.Header()
	// A provider button's post is answered with a redirect to the
	// provider, and browsers apply form-action to every hop of that
	// redirect chain: the provider's own sign-in pages, its login app on
	// another host (Hydra's login/consent app, Microsoft's login.live.com,
	// an enterprise IdP brokering to another) — origins no configuration
	// of ours can list. Pages with provider buttons therefore have no
	// form-action; every form on them is ours (templates escape all
	// values, and default-src 'none' and base-uri 'none' still hold).
	formDirective := "; form-action " + strings.Join(formAction, " ")
	if social {
		formDirective = ""
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src "+script+"; img-src "+img+
		formDirective+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// render writes the page v with status.
func (p *Pages) render(w http.ResponseWriter, status int, v *view) {
	t := p.tmpls[v.Lang]
	if t == nil {
		t = p.tmpls[p.cat.Default()]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "page", v); err != nil {
		p.logger.Error("rendering page", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
