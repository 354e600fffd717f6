package flows

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// browserClient has a cookie jar and does not follow redirects.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var htmlAccept = map[string]string{"Accept": "text/html"}

// startPage runs a browser flow init and returns the page URL and its HTML.
func startPage(t *testing.T, c *http.Client, srvURL, kind string) (string, resp) {
	t.Helper()
	r := do(t, c, "GET", srvURL+"/self-service/"+kind+"/browser", nil, htmlAccept)
	if r.status != http.StatusSeeOther {
		t.Fatalf("init %s: status %d: %s", kind, r.status, r.raw)
	}
	loc := r.header.Get("Location")
	if !strings.Contains(loc, "/ui/"+kind+"?flow=") {
		t.Fatalf("init %s: Location %q", kind, loc)
	}
	p := do(t, c, "GET", loc, nil, htmlAccept)
	if p.status != http.StatusOK {
		t.Fatalf("page %s: status %d: %s", kind, p.status, p.raw)
	}
	return loc, p
}

func TestUIPageHeadersAndAssets(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) {
		c.UIProductName, c.UIPrimaryColor = "Example <Cloud>", "#7c3aed"
	})
	c := browserClient(t)
	_, p := startPage(t, c, srv.URL, "login")
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'self'", "script-src 'self'", "img-src 'self' data:",
		"form-action 'self' " + srv.URL, "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline: %q", csp)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Content-Type": "text/html; charset=utf-8"} {
		if got := p.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	html := string(p.raw)
	if strings.Contains(html, "<style") || strings.Contains(html, " style=") || regexp.MustCompile(`<script>`).MatchString(html) || strings.Contains(html, " onclick=") {
		t.Errorf("page has inline style or script:\n%s", html)
	}
	if !strings.Contains(html, "Example &lt;Cloud&gt;") {
		t.Errorf("product name not shown (escaped)")
	}
	// Every referenced asset is served from the UI prefix.
	for _, m := range regexp.MustCompile(`(?:href|src)="(/ui/assets/[^"]+)"`).FindAllStringSubmatch(html, -1) {
		u := strings.ReplaceAll(m[1], "&amp;", "&")
		a := do(t, c, "GET", srv.URL+u, nil, nil)
		if a.status != http.StatusOK || len(a.raw) == 0 {
			t.Errorf("asset %s: %d", u, a.status)
		}
		if strings.Contains(u, "theme.css") && !strings.Contains(string(a.raw), "--brand:#7c3aed") {
			t.Errorf("theme.css = %s", a.raw)
		}
	}
	if r := do(t, c, "GET", srv.URL+"/ui/assets/nope.css", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("unknown asset: %d", r.status)
	}
}

func TestUIPageRendersNodesGenerically(t *testing.T) {
	_, srv := testEngine(t, nil)
	c := browserClient(t)
	_, p := startPage(t, c, srv.URL, "login")
	html := string(p.raw)
	for _, want := range []string{
		`name="csrf_token"`, `name="identifier"`, `autocomplete="current-password"`, `type="password"`,
		`name="method" value="password"`, `Sign in with password`, `<label for="`, `action="` + srv.URL + `/self-service/login?flow=`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	// Labels are bound to inputs.
	for _, m := range regexp.MustCompile(`<label for="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if !strings.Contains(html, `id="`+m[1]+`"`) {
			t.Errorf("label for %q has no input", m[1])
		}
	}
}

func TestUIPageFieldErrorsAreTiedToInputs(t *testing.T) {
	_, srv := testEngine(t, nil)
	c := browserClient(t)
	loc, p := startPage(t, c, srv.URL, "registration")
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(string(p.raw))
	if csrf == nil {
		t.Fatal("no csrf token on the page")
	}
	flowID := loc[strings.Index(loc, "flow=")+5:]
	form := url.Values{"csrf_token": {html.UnescapeString(csrf[1])}, "method": {"profile"}, "traits.email": {"not-an-email"}}
	r := do(t, c, "POST", srv.URL+"/self-service/registration?flow="+flowID, form.Encode(), htmlAccept)
	if r.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", r.status, r.raw)
	}
	p = do(t, c, "GET", r.header.Get("Location"), nil, htmlAccept)
	page := string(p.raw)
	m := regexp.MustCompile(`<input id="([^"]+)" name="traits.email"[^>]*aria-describedby="([^"]+)"[^>]*aria-invalid="true"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("email input is not described by its message:\n%s", page)
	}
	if !regexp.MustCompile(`id="` + regexp.QuoteMeta(m[2]) + `"><p class="field-msg msg-error" data-message-id="4000040"`).MatchString(page) {
		t.Errorf("message 4000040 not in %s", m[2])
	}
	if !strings.Contains(page, `value="not-an-email"`) {
		t.Error("submitted value not kept")
	}
}

func TestUIPageRestartsMissingOrForeignFlows(t *testing.T) {
	_, srv := testEngine(t, nil)
	c := browserClient(t)
	for _, q := range []string{"", "?flow=nope", "?flow=0b7e4f61-0d6b-4b7e-9c35-1f3c7f6a8f00"} {
		r := do(t, c, "GET", srv.URL+"/ui/login"+q, nil, htmlAccept)
		if r.status != http.StatusSeeOther || r.header.Get("Location") != srv.URL+"/self-service/login/browser" {
			t.Errorf("%q: %d %q", q, r.status, r.header.Get("Location"))
		}
	}
	// Another browser's flow (other CSRF cookie) restarts too, keeping
	// return_to.
	loc := do(t, c, "GET", srv.URL+"/self-service/login/browser?return_to="+url.QueryEscape(srv.URL+"/x"), nil, htmlAccept).header.Get("Location")
	other := browserClient(t)
	r := do(t, other, "GET", loc, nil, htmlAccept)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), srv.URL+"/self-service/login/browser?return_to=") {
		t.Errorf("foreign flow: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestUIErrorPage(t *testing.T) {
	e, srv := testEngine(t, nil)
	id, err := e.kernel.StoreError(t.Context(), wire.CSRFViolation(flow.CSRFMismatch))
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, nil, "GET", srv.URL+"/ui/error?id="+id, nil, htmlAccept)
	if r.status != http.StatusOK || !strings.Contains(string(r.raw), "Cross-Site-Request-Forgery") || !strings.Contains(string(r.raw), id) {
		t.Errorf("error page: %d\n%s", r.status, r.raw)
	}
	r = do(t, nil, "GET", srv.URL+"/ui/error?id=nope", nil, htmlAccept)
	if r.status != http.StatusNotFound {
		t.Errorf("missing error: %d", r.status)
	}
}

func TestUISessionsPageRequiresSessionAndCSRF(t *testing.T) {
	_, srv := testEngine(t, nil)
	c := browserClient(t)
	r := do(t, c, "GET", srv.URL+"/ui/sessions", nil, htmlAccept)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/self-service/login/browser?return_to=") {
		t.Fatalf("no session: %d %q", r.status, r.header.Get("Location"))
	}
	r = do(t, c, "POST", srv.URL+"/ui/sessions/revoke-others", "csrf_token=x", htmlAccept)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/ui/error?id=") {
		t.Errorf("POST without CSRF: %d %q", r.status, r.header.Get("Location"))
	}
	r = do(t, c, "GET", srv.URL+"/ui/", nil, htmlAccept)
	if r.status != http.StatusOK || !strings.Contains(string(r.raw), "/self-service/login/browser") {
		t.Errorf("welcome signed out: %d", r.status)
	}
}
