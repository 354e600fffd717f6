package ui

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
)

// The pages speak the language of the request (locale.Catalog.FromRequest:
// the language picked on a page and remembered in a cookie, else
// Accept-Language, else the default) and show dates in the browser's time
// zone (the cookie ui.js sets), UTC otherwise. Page strings, node labels
// and flow messages come from the catalogue; the flow JSON keeps Kratos's
// English texts.

// LanguagePath is the path, under the UI prefix, of the language picker's
// POST.
const LanguagePath = "language"

// pageTemplates are the page templates as parsed; each language executes a
// clone with "t" bound to its page strings (html/template binds functions
// per template set). The set itself is never executed: an executed
// html/template can no longer be cloned.
var pageTemplates = template.Must(template.New("ui").Funcs(template.FuncMap{
	"t":   func(key string, _ ...any) string { return key },
	"cap": capitalize,
}).ParseFS(files, "*.html"))

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// templatesFor returns the page templates of every language of cat.
func templatesFor(cat *locale.Catalog) map[string]*template.Template {
	out := make(map[string]*template.Template)
	for _, lang := range cat.Languages() {
		t, err := pageTemplates.Clone()
		if err != nil {
			panic("ui: cloning the page templates: " + err.Error()) // only after an execution, which never happens
		}
		out[lang.Tag] = t.Funcs(template.FuncMap{"t": cat.Localizer(lang.Tag, nil, time.Time{}).Page})
	}
	return out
}

// localizer is the texts of r's language with dates in r's zone.
func (p *Pages) localizer(r *http.Request) *locale.Localizer {
	return p.cat.Localizer(p.cat.FromRequest(r), locale.ZoneFromRequest(r), p.now())
}

// message is a flow text in the page's language: Kratos's message by id,
// the flow's English text where the language has none.
func message(l *locale.Localizer, t node.Text) string {
	if t.ID == 0 {
		return t.Text
	}
	return l.Message(t.ID, t.Context, t.Text)
}

// messages returns copies of ts with their texts in the page's language
// (the flow itself keeps Kratos's English).
func messages(l *locale.Localizer, ts []node.Text) []node.Text {
	if len(ts) == 0 {
		return ts
	}
	out := make([]node.Text, len(ts))
	for i, t := range ts {
		out[i] = t
		out[i].Text = message(l, t)
	}
	return out
}

// pickerView is the language picker under the card: one button per
// language, posting to <prefix>language with the CSRF token.
type pickerView struct {
	Action string
	CSRF   string
	Return string
	Langs  []langOption
}

type langOption struct {
	Tag, Name string
	Current   bool
}

// picker returns the language picker of a page in lang for r (nil with a
// single language). csrf is the request's raw CSRF token.
func (p *Pages) picker(r *http.Request, lang string, csrf []byte) *pickerView {
	langs := p.cat.Languages()
	if len(langs) < 2 || csrf == nil {
		return nil
	}
	pv := &pickerView{Action: p.cfg.Prefix + LanguagePath, CSRF: token.MaskCSRF(csrf),
		Return: cleanReturn(strings.TrimPrefix(r.URL.Path, p.cfg.Prefix) + "?" + r.URL.RawQuery)}
	for _, l := range langs {
		pv.Langs = append(pv.Langs, langOption{Tag: l.Tag, Name: l.Name, Current: l.Tag == lang})
	}
	return pv
}

// returnPages are the pages the picker sends the browser back to.
var returnPages = map[string]bool{"": true, "welcome": true, "login": true, "registration": true, "settings": true,
	"recovery": true, "verification": true, "error": true, "sessions": true}

// cleanReturn rebuilds a page reference ("login?flow=<uuid>") from the
// pages' own vocabulary: a known page and a flow or error id. Anything
// else (another host, another path, a script) becomes the home page, so
// the picker's return_to can never redirect elsewhere.
func cleanReturn(s string) string {
	page, rawQuery, _ := strings.Cut(s, "?")
	if !returnPages[page] {
		return ""
	}
	var q []string
	for _, kv := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "flow" && k != "id" {
			continue
		}
		if id, err := uuid.Parse(v); err == nil && len(q) == 0 {
			q = append(q, k+"="+id.String())
		}
	}
	if len(q) > 0 {
		return page + "?" + q[0]
	}
	return page
}

// SetLanguage serves POST <prefix>language, the language picker: it
// remembers the chosen language (one the catalogue offers, never the raw
// input) in a cookie and sends the browser back to the page it came from,
// a page of this UI rebuilt from known parts. A form like any other: the
// CSRF token must match the cookie.
func (p *Pages) SetLanguage(w http.ResponseWriter, r *http.Request) {
	body, err := wire.DecodeBody(r)
	if err != nil {
		p.kernel.WriteError(w, r, "browser", wire.BadRequest(err.Error()))
		return
	}
	if cerr := p.kernel.CheckCSRF(r, &flow.Flow{}, wire.BodyString(body, "csrf_token")); cerr != nil {
		p.kernel.WriteError(w, r, "browser", cerr)
		return
	}
	lang, ok := p.cat.Choose(wire.BodyString(body, locale.QueryParam))
	if !ok {
		p.kernel.WriteError(w, r, "browser", wire.BadRequest("The language is missing or not offered."))
		return
	}
	ck := locale.Cookie(lang, p.cfg.SecureCookies) // #nosec G124 -- HttpOnly and SameSite set by locale.Cookie; Secure off only in dev mode over plain http
	ck.Domain = p.cfg.CookieDomain
	http.SetCookie(w, ck)
	back := p.urls.Public(strings.TrimPrefix(p.cfg.Prefix, "/") + cleanReturn(wire.BodyString(body, "return_to")))
	wire.Redirect(w, r, http.StatusSeeOther, back)
}
