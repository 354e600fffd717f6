package ui

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// pageSession returns the session for a signed-in page, or answers with a
// redirect to login (or the second factor) and returns nil.
func (p *Pages) pageSession(w http.ResponseWriter, r *http.Request, page string) (*sessionstore.Session, *sessionstore.Identity) {
	self := p.urls.Public(strings.TrimPrefix(p.cfg.Prefix, "/") + page)
	sess, err := p.sessions.Current(r)
	if err != nil {
		wire.Redirect(w, r, http.StatusSeeOther, p.sessions.LoginBrowserURL(r, self))
		return nil, nil
	}
	ident, err := p.identities.GetIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		wire.Redirect(w, r, http.StatusSeeOther, p.sessions.LoginBrowserURL(r, self))
		return nil, nil
	}
	if !p.sessions.AALSatisfied(sess, ident) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(p.urls.Public("self-service/login/browser"), "aal", "aal2", "return_to", self))
		return nil, nil
	}
	return sess, ident
}

// Welcome serves the home page (GET <prefix>): links to settings, sessions
// and sign-out, or to sign-in and sign-up.
func (p *Pages) Welcome(w http.ResponseWriter, r *http.Request) {
	csrf := p.kernel.EnsureCSRF(w, r)
	l := p.localizer(r)
	v := p.newView(l, "welcome")
	wv := &welcomeView{
		Login:     p.urls.Public("self-service/login/browser"),
		Register:  p.urls.Public("self-service/registration/browser"),
		Recovery:  p.urls.Public("self-service/recovery/browser"),
		ShowReg:   p.cfg.RegistrationEnabled,
		ShowRecov: p.cfg.RecoveryEnabled,
	}
	v.Title, v.Subtitle = l.Page("welcome.title"), l.Page("welcome.subtitle")
	if sess, err := p.sessions.Current(r); err == nil {
		if ident, err := p.identities.GetIdentity(r.Context(), sess.IdentityID); err == nil && p.sessions.AALSatisfied(sess, ident) {
			wv.SignedIn = true
			name, addr := identityDisplay(ident)
			if name != "" {
				v.Title = l.Page("welcome.title.signedin", name)
			}
			v.Subtitle = l.Page("welcome.subtitle.signedin", addr)
			wv.Settings = p.urls.Public("self-service/settings/browser")
			wv.Sessions = p.cfg.Prefix + "sessions"
			wv.Logout = p.logoutURL(r, sess)
			if ret := p.urls.DefaultReturn(); !strings.HasPrefix(ret, p.urls.Public(strings.TrimPrefix(p.cfg.Prefix, "/"))) {
				wv.Continue = ret
			}
			p.accountNav(r, v, sess, "welcome")
		}
	}
	v.Welcome = wv
	v.Picker = p.picker(r, v.Lang, csrf)
	p.pageHeaders(w, r, nil)
	p.render(w, http.StatusOK, v)
}

// identityDisplay returns a first name (if the traits have one) and the
// identifier to show for ident.
func identityDisplay(ident *sessionstore.Identity) (name, addr string) {
	var traits map[string]any
	_ = json.Unmarshal(ident.Traits, &traits)
	if n, ok := traits["name"].(map[string]any); ok {
		name, _ = n["first"].(string)
	} else if n, ok := traits["name"].(string); ok {
		name = n
	}
	if c, ok := ident.Credentials["password"]; ok && len(c.Identifiers) > 0 {
		addr = c.Identifiers[0]
	}
	if addr == "" {
		for _, k := range []string{"email", "username", "phone"} {
			if s, ok := traits[k].(string); ok && s != "" {
				addr = s
				break
			}
		}
	}
	if addr == "" {
		addr = ident.ID
	}
	return strings.TrimSpace(name), addr
}

func (p *Pages) sessionsPage(w http.ResponseWriter, r *http.Request) {
	csrf := p.kernel.EnsureCSRF(w, r)
	sess, _ := p.pageSession(w, r, "sessions")
	if sess == nil {
		return
	}
	others, err := p.sessions.OthersActive(r.Context(), sess)
	if err != nil {
		p.logger.Error("listing sessions for page", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to list sessions"))
		return
	}
	l := p.localizer(r)
	v := p.newView(l, "sessions")
	v.Wide = true
	v.Title, v.Subtitle = l.Page("sessions.title"), l.Page("sessions.subtitle")
	sv := &sessionsView{CSRF: token.MaskCSRF(csrf), Revoke: p.cfg.Prefix + "sessions/revoke", RevokeOthers: p.cfg.Prefix + "sessions/revoke-others"}
	sv.Current = sessionItem(l, sess)
	slices.SortFunc(others, func(a, b *sessionstore.Session) int { return b.AuthenticatedAt.Compare(a.AuthenticatedAt) })
	for _, s := range others {
		sv.Others = append(sv.Others, sessionItem(l, s))
	}
	v.Sessions = sv
	switch r.URL.Query().Get("done") {
	case "revoked":
		v.Messages = []node.Text{{Text: l.Page("sessions.revoked"), Type: "success"}}
	case "revoked-others":
		n, _ := strconv.Atoi(r.URL.Query().Get("count"))
		msg := l.Page("sessions.revoked.others", n)
		switch n {
		case 0:
			msg = l.Page("sessions.revoked.others.none")
		case 1:
			msg = l.Page("sessions.revoked.others.one")
		}
		v.Messages = []node.Text{{Text: msg, Type: "success"}}
	}
	p.accountNav(r, v, sess, "sessions")
	v.Picker = p.picker(r, v.Lang, csrf)
	p.pageHeaders(w, r, nil)
	p.render(w, http.StatusOK, v)
}

// sessionItem is one row of the sessions page: dates in the user's zone
// and language, the machine-readable ones in UTC.
func sessionItem(l *locale.Localizer, s *sessionstore.Session) *sessionRow {
	it := &sessionRow{ID: s.ID, Device: l.Page("sessions.unknown.device")}
	if len(s.Devices) > 0 {
		d := s.Devices[len(s.Devices)-1]
		if d.UserAgent != nil && *d.UserAgent != "" {
			it.UserAgent = *d.UserAgent
			it.Device = describeUserAgent(l, *d.UserAgent)
		}
		if d.IPAddress != nil {
			it.IP = hostOnly(*d.IPAddress)
		}
		if d.Location != "" {
			it.IP += " · " + d.Location
		}
	}
	it.SignedIn, it.SignedInISO = l.Ago(s.AuthenticatedAt), s.AuthenticatedAt.UTC().Format(time.RFC3339)
	it.Expires, it.ExpiresISO = l.DateTime(s.ExpiresAt), s.ExpiresAt.UTC().Format(time.RFC3339)
	var methods []string
	for _, m := range s.AuthenticationMethods {
		name := m.Method
		if t, ok := l.PageOK("method." + m.Method); ok {
			name = t
		}
		if !slices.Contains(methods, name) {
			methods = append(methods, name)
		}
	}
	it.Methods = strings.Join(methods, " + ")
	it.RevokeLabel = l.Page("sessions.revoke.label", it.Device)
	return it
}

func hostOnly(addr string) string {
	if i := strings.LastIndex(addr, ":"); i > 0 && !strings.HasSuffix(addr, "]") && strings.Count(addr, ":") == 1 {
		return addr[:i]
	}
	if strings.HasPrefix(addr, "[") {
		if i := strings.Index(addr, "]"); i > 0 {
			return addr[1:i]
		}
	}
	return addr
}

// describeUserAgent names the browser and system of a User-Agent header
// ("Chrome on Linux"); unknown agents are shown by their first product.
func describeUserAgent(l *locale.Localizer, ua string) string {
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"}, {"Firefox/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"}, {"CriOS/", "Chrome"},
		{"FxiOS/", "Firefox"}, {"Version/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
		{"okhttp/", "OkHttp"}, {"python-requests/", "Python requests"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, s := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return l.Page("sessions.device", browser, system)
	case browser != "":
		return browser
	case system != "":
		return system
	}
	first, _, _ := strings.Cut(ua, " ")
	first, _, _ = strings.Cut(first, "/")
	if first == "" {
		return l.Page("sessions.unknown.device")
	}
	return first
}

// sessionPost checks a POST from the sessions page: the CSRF token of
// the form against the CSRF cookie, and a session.
func (p *Pages) sessionPost(w http.ResponseWriter, r *http.Request) (*sessionstore.Session, map[string]any) {
	body, err := wire.DecodeBody(r)
	if err != nil {
		p.kernel.WriteError(w, r, "browser", wire.BadRequest(err.Error()))
		return nil, nil
	}
	if cerr := p.kernel.CheckCSRF(r, &flow.Flow{}, wire.BodyString(body, "csrf_token")); cerr != nil {
		p.kernel.WriteError(w, r, "browser", cerr)
		return nil, nil
	}
	sess, _ := p.pageSession(w, r, "sessions")
	if sess == nil {
		return nil, nil
	}
	return sess, body
}

// RevokeSession serves the sessions page's POST <prefix>sessions/revoke:
// signs out one other session of the caller.
func (p *Pages) RevokeSession(w http.ResponseWriter, r *http.Request) {
	sess, body := p.sessionPost(w, r)
	if sess == nil {
		return
	}
	id := wire.BodyString(body, "session_id")
	if _, err := uuid.Parse(id); err != nil || id == sess.ID {
		p.kernel.WriteError(w, r, "browser", wire.BadRequest("The session id is missing or invalid."))
		return
	}
	// Only the caller's own sessions can be revoked.
	if err := p.sessions.RevokeOwn(r, sess.IdentityID, id); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
		return
	}
	wire.Redirect(w, r, http.StatusSeeOther, p.cfg.Prefix+"sessions?done=revoked")
}

// RevokeOtherSessions serves POST <prefix>sessions/revoke-others: signs
// out every session of the caller but this one.
func (p *Pages) RevokeOtherSessions(w http.ResponseWriter, r *http.Request) {
	sess, _ := p.sessionPost(w, r)
	if sess == nil {
		return
	}
	n, err := p.sessions.RevokeOthers(r, sess.IdentityID, sess.ID)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke sessions"))
		return
	}
	wire.Redirect(w, r, http.StatusSeeOther, p.cfg.Prefix+"sessions?done=revoked-others&count="+strconv.Itoa(n))
}
