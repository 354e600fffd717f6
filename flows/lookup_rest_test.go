package flows

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/method/lookupsecret"
)

// wantNotStored fails if any code appears in the stored record of flow id.
func wantNotStored(t *testing.T, e *Engine, id string, codes []string) {
	t.Helper()
	raw, err := e.store.GetRecord(t.Context(), flow.FlowNS, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if strings.Contains(string(raw), c) {
			t.Fatalf("backup code %s stored in clear in flow %s", c, id)
		}
	}
	if !strings.Contains(string(raw), lookupsecret.ShownKey) {
		t.Fatalf("flow %s keeps no sealed codes", id)
	}
}

// TestLookupCodesNotAtRest (item 16): regenerated and revealed backup
// codes are in the answer and in later renderings of the flow for its
// identity, never in the stored flow.
func TestLookupCodesNotAtRest(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.Methods = map[string]bool{"lookup_secret": true} })
	base := srv.URL
	token := registerNative(t, base, "rest@example.com")
	s := nativeSettings(t, base, token)
	id, action := s.body["id"].(string), actionOf(t, s)
	get := func() resp {
		return do(t, nil, "GET", base+"/self-service/settings/flows?id="+id, nil, tokenHeader(token))
	}

	gen := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_regenerate": true}, tokenHeader(token))
	if gen.status != 200 {
		t.Fatalf("regenerate: %d %s", gen.status, gen.raw)
	}
	codes, _ := lookupCodesOf(t, gen)
	if len(codes) != 12 {
		t.Fatalf("codes %v", codes)
	}
	wantNotStored(t, e, id, codes)
	if again, _ := lookupCodesOf(t, get()); strings.Join(again, ",") != strings.Join(codes, ",") {
		t.Fatalf("getSettingsFlow shows %v, the answer showed %v", again, codes)
	}
	if conf := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_confirm": true}, tokenHeader(token)); conf.status != 200 {
		t.Fatalf("confirm: %d %s", conf.status, conf.raw)
	}
	if raw, _ := e.store.GetRecord(t.Context(), flow.FlowNS, id); strings.Contains(string(raw), lookupsecret.ShownKey) {
		t.Fatal("the sealed codes outlive the codes node")
	}
	rev := do(t, nil, "POST", action, map[string]any{"method": "lookup_secret", "lookup_secret_reveal": true}, tokenHeader(token))
	if got, _ := lookupCodesOf(t, rev); rev.status != 200 || strings.Join(got, ",") != strings.Join(codes, ",") {
		t.Fatalf("reveal: %d %v", rev.status, got)
	}
	wantNotStored(t, e, id, codes)
	if again, _ := lookupCodesOf(t, get()); strings.Join(again, ",") != strings.Join(codes, ",") {
		t.Fatalf("getSettingsFlow after reveal shows %v", again)
	}
	// Another identity's session sees neither the flow nor the codes.
	other := registerNative(t, base, "other@example.com")
	if r := do(t, nil, "GET", base+"/self-service/settings/flows?id="+id, nil, tokenHeader(other)); r.status != 403 || strings.Contains(string(r.raw), codes[0]) {
		t.Fatalf("other identity: %d %s", r.status, r.raw)
	}
}

// TestLookupCodesNotAtRestBrowserForm: a form post redirects to the
// built-in page, which shows the codes; the stored flow does not hold
// them.
func TestLookupCodesNotAtRestBrowserForm(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.Methods = map[string]bool{"lookup_secret": true} })
	base := srv.URL
	c := newBrowserClient(t)
	browserRegister(t, c, base, "form@example.com")
	s := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if s.status != 200 {
		t.Fatalf("settings: %d %s", s.status, s.raw)
	}
	id := s.body["id"].(string)
	form := url.Values{"method": {"lookup_secret"}, "lookup_secret_regenerate": {"true"}, "csrf_token": {csrfValue(t, s)}}
	r := do(t, c, "POST", actionOf(t, s), form.Encode(), map[string]string{"Accept": "text/html"})
	if r.status != 303 || !strings.Contains(r.header.Get("Location"), "/ui/settings?flow="+id) {
		t.Fatalf("form post: %d %v", r.status, r.header)
	}
	page := do(t, c, "GET", r.header.Get("Location"), nil, map[string]string{"Accept": "text/html"})
	if page.status != 200 {
		t.Fatalf("page: %d", page.status)
	}
	g := do(t, c, "GET", base+"/self-service/settings/flows?id="+id, nil, nil)
	codes, _ := lookupCodesOf(t, g)
	if len(codes) != 12 {
		t.Fatalf("codes %v", codes)
	}
	for _, code := range codes {
		if !strings.Contains(string(page.raw), code) {
			t.Fatalf("the page does not show code %s", code)
		}
	}
	wantNotStored(t, e, id, codes)
	// Without the flow's session the page shows no codes.
	anon := newBrowserClient(t)
	u, _ := url.Parse(base)
	anon.Jar.SetCookies(u, c.Jar.Cookies(u))
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == e.cfg.CookieName {
			ck.MaxAge = -1
			anon.Jar.SetCookies(u, []*http.Cookie{ck})
		}
	}
	if p := do(t, anon, "GET", r.header.Get("Location"), nil, map[string]string{"Accept": "text/html"}); p.status != 200 || strings.Contains(string(p.raw), codes[0]) {
		t.Fatalf("the page without the flow's session: %d, shows codes: %v", p.status, strings.Contains(string(p.raw), codes[0]))
	}
}
