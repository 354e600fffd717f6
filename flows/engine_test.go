package flows

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// testEngine serves a fresh engine on an on-disk store.
func testEngine(t *testing.T, mod func(*Config)) (*Engine, *httptest.Server) {
	t.Helper()
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var e *Engine
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	cfg := Config{
		SiteOptions:     SiteOptions{PublicURL: srv.URL + "/"},
		BrowserOptions:  BrowserOptions{Dev: true},
		PasswordOptions: PasswordOptions{BcryptCost: 4},
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err = New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, srv
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func do(t testing.TB, c *http.Client, method, u string, body any, hdr map[string]string) resp {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/x-www-form-urlencoded"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Accept", "application/json")
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp{res.StatusCode, res.Header, m, raw}
}

func messageIDs(body map[string]any) []int {
	var out []int
	ui, _ := body["ui"].(map[string]any)
	msgs, _ := ui["messages"].([]any)
	for _, m := range msgs {
		out = append(out, int(m.(map[string]any)["id"].(float64)))
	}
	return out
}

func errorID(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	id, _ := e["id"].(string)
	return id
}

func TestNativeRegistrationLoginWhoamiLogout(t *testing.T) {
	_, srv := testEngine(t, nil)
	// Two-step registration (profile_first, the default).
	f := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	if f.status != 200 || f.body["type"] != "api" {
		t.Fatalf("create: %d %s", f.status, f.raw)
	}
	action := f.body["ui"].(map[string]any)["action"].(string)
	p := do(t, nil, "POST", action, map[string]any{"method": "profile", "traits": map[string]any{"email": "A@Example.com"}}, nil)
	if p.status != 400 || p.body["state"] != "choose_method" || !contains(messageIDs(p.body), 1040009) {
		t.Fatalf("profile step: %d %s", p.status, p.raw)
	}
	weak := do(t, nil, "POST", action, map[string]any{"method": "password", "password": "short"}, nil)
	if weak.status != 400 || !strings.Contains(string(weak.raw), "4000032") {
		t.Fatalf("weak password: %d %s", weak.status, weak.raw)
	}
	reg := do(t, nil, "POST", action, map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "A@Example.com"}}, nil)
	if reg.status != 200 {
		t.Fatalf("register: %d %s", reg.status, reg.raw)
	}
	token := reg.body["session_token"].(string)
	if !strings.HasPrefix(token, "ory_st_") || len(token) != 39 {
		t.Fatalf("token %q", token)
	}
	// Duplicate.
	f2 := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	dup := do(t, nil, "POST", f2.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "a@example.com"}}, nil)
	if dup.status != 400 || !contains(messageIDs(dup.body), 4000007) {
		t.Fatalf("duplicate: %d %s", dup.status, dup.raw)
	}
	// Login: wrong password and unknown user look the same.
	l := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
	la := l.body["ui"].(map[string]any)["action"].(string)
	ident := l.body["ui"].(map[string]any)["nodes"].([]any)[1].(map[string]any)
	if lbl := ident["meta"].(map[string]any)["label"].(map[string]any); lbl["text"] != "E-Mail" || lbl["id"].(float64) != 1070002 {
		t.Fatalf("identifier label: %v", lbl)
	}
	for _, c := range []map[string]any{
		{"method": "password", "identifier": "a@example.com", "password": "wrong-password-1"},
		{"method": "password", "identifier": "nobody@example.com", "password": "wrong-password-1"},
	} {
		r := do(t, nil, "POST", la, c, nil)
		if r.status != 400 || !contains(messageIDs(r.body), 4000006) {
			t.Fatalf("bad login: %d %s", r.status, r.raw)
		}
	}
	ok := do(t, nil, "POST", la, map[string]any{"method": "password", "identifier": "a@example.com", "password": "Gx7!qVt2#pLr9$wZk4"}, nil)
	if ok.status != 200 {
		t.Fatalf("login: %d %s", ok.status, ok.raw)
	}
	tok2 := ok.body["session_token"].(string)
	who := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"Authorization": "Bearer " + tok2})
	if who.status != 200 || who.header.Get("X-Kratos-Authenticated-Identity-Id") == "" {
		t.Fatalf("whoami: %d %s", who.status, who.raw)
	}
	list := do(t, nil, "GET", srv.URL+"/sessions", nil, map[string]string{"X-Session-Token": tok2})
	if list.status != 200 || list.header.Get("X-Total-Count") != "1" {
		t.Fatalf("list: %d %v %s", list.status, list.header, list.raw)
	}
	out := do(t, nil, "DELETE", srv.URL+"/self-service/logout/api", map[string]any{"session_token": tok2}, nil)
	if out.status != 204 {
		t.Fatalf("logout: %d %s", out.status, out.raw)
	}
	if r := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tok2}); r.status != 401 {
		t.Fatalf("whoami after logout: %d", r.status)
	}
	if r := do(t, nil, "DELETE", srv.URL+"/self-service/logout/api", map[string]any{"session_token": "ory_st_unknownunknownunknownunknown12"}, nil); r.status != 403 {
		t.Fatalf("unknown logout: %d", r.status)
	}
}

func TestBrowserFlowsCSRFAndCookies(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) { c.RegistrationStyle = "unified" })
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	html := do(t, c, "GET", srv.URL+"/self-service/registration/browser", nil, map[string]string{"Accept": "text/html"})
	if html.status != 303 || !strings.Contains(html.header.Get("Location"), "/ui/registration?flow=") {
		t.Fatalf("html create: %d %v", html.status, html.header)
	}
	f := do(t, c, "GET", srv.URL+"/self-service/registration/browser", nil, nil)
	if f.status != 200 {
		t.Fatalf("json create: %d", f.status)
	}
	var csrf string
	for _, n := range f.body["ui"].(map[string]any)["nodes"].([]any) {
		a := n.(map[string]any)["attributes"].(map[string]any)
		if a["name"] == "csrf_token" {
			csrf = a["value"].(string)
		}
	}
	if len(csrf) != 88 {
		t.Fatalf("masked csrf %q", csrf)
	}
	action := f.body["ui"].(map[string]any)["action"].(string)
	// Missing and forged tokens.
	if r := do(t, c, "POST", action, map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "b@example.com"}}, nil); r.status != 403 || errorID(r.body) != "security_csrf_violation" {
		t.Fatalf("no csrf: %d %s", r.status, r.raw)
	}
	forged := token.MaskCSRF(token.RandomBytes(32))
	if r := do(t, c, "POST", action, map[string]any{"method": "password", "csrf_token": forged, "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "b@example.com"}}, nil); r.status != 403 {
		t.Fatalf("forged csrf: %d %s", r.status, r.raw)
	}
	form := url.Values{"method": {"password"}, "csrf_token": {csrf}, "password": {"Gx7!qVt2#pLr9$wZk4"}, "traits.email": {"b@example.com"}}
	r := do(t, c, "POST", action, form.Encode(), map[string]string{"Accept": "text/html"})
	if r.status != 303 {
		t.Fatalf("form register: %d %s", r.status, r.raw)
	}
	var sessionCookie *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "ory_kratos_session" {
			sessionCookie = ck
		}
	}
	if sessionCookie == nil || !sessionCookie.HttpOnly || sessionCookie.Secure || sessionCookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie: %+v", sessionCookie)
	}
	who := do(t, c, "GET", srv.URL+"/sessions/whoami", nil, nil)
	if who.status != 200 {
		t.Fatalf("whoami cookie: %d %s", who.status, who.raw)
	}
	lo := do(t, c, "GET", srv.URL+"/self-service/logout/browser", nil, nil)
	if lo.status != 200 {
		t.Fatalf("logout flow: %d %s", lo.status, lo.raw)
	}
	if r := do(t, c, "GET", srv.URL+"/self-service/logout?token=ory_lo_wrongwrongwrongwrongwrongwrong12", nil, nil); r.status != 403 {
		t.Fatalf("wrong logout token: %d", r.status)
	}
	if r := do(t, c, "GET", lo.body["logout_url"].(string), nil, nil); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.raw)
	}
	if r := do(t, c, "GET", srv.URL+"/sessions/whoami", nil, nil); r.status != 401 {
		t.Fatalf("whoami after logout: %d", r.status)
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
