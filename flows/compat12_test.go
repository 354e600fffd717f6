package flows

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Unit tests of issue 12's flow items: Kratos's session list pagination,
// unclean paths, and one CSRF mask per flow.

func TestSessionsLinkMatchesKratos(t *testing.T) {
	// The Link of spec/samples/25-sessions-list.json (per_page=1&page=0,
	// two other sessions).
	want := `</sessions?page=1&page_size=1&page_token=eyJvZmZzZXQiOiIxIiwidiI6Mn0&per_page=1>; rel="next",` +
		`</sessions?page=1&page_size=1&page_token=eyJvZmZzZXQiOiIxIiwidiI6Mn0&per_page=1>; rel="last"`
	if got := sessionsLink(0, 1, 2); got != want {
		t.Fatalf("Link\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		page, size, total int
		rels              []string
	}{
		{0, 250, 2, []string{"first"}},
		{0, 250, 0, []string{"first"}},
		{0, 1, 3, []string{"next", "last"}},
		{1, 1, 3, []string{"first", "next", "prev", "last"}},
		{2, 1, 3, []string{"first", "prev"}},
		{9, 1, 3, []string{"first", "prev"}},
	} {
		got := sessionsLink(c.page, c.size, c.total)
		var rels []string
		for _, part := range strings.Split(got, ",") {
			_, rel, _ := strings.Cut(part, `rel="`)
			rels = append(rels, strings.TrimSuffix(rel, `"`))
		}
		if strings.Join(rels, ",") != strings.Join(c.rels, ",") {
			t.Errorf("page %d size %d total %d: rels %v, want %v (%s)", c.page, c.size, c.total, rels, c.rels, got)
		}
	}
	// Single page: first carries the size of what it holds, as Kratos's does.
	if got := sessionsLink(0, 250, 2); !strings.Contains(got, "page_size=2&") {
		t.Errorf("single page Link %s, want page_size=2", got)
	}
}

func TestParseSessionsPage(t *testing.T) {
	for _, c := range []struct {
		q          string
		page, size int
		bad        bool
	}{
		{"", 0, 250, false},
		{"page_size=1", 0, 1, false},
		{"page_size=2&page_token=" + encodeSessionsToken(4), 2, 2, false},
		{"page_size=5000", 0, 1000, false},
		{"page_size=0", 0, 1, false},
		{"page_token=" + encodeSessionsToken(500), 2, 250, false},
		{"per_page=1&page=3", 3, 1, false},
		// The SDKs' defaults beside an explicit page form (client-go's
		// PerPage(1).Page(0)) and an explicit page size (PageSize(1)).
		{"per_page=1&page=0&page_size=250", 0, 1, false},
		{"per_page=250&page_size=1", 0, 1, false},
		{"page=1&page_size=1&page_token=" + encodeSessionsToken(1) + "&per_page=1", 1, 1, false},
		{"page_size=abc", 0, 0, true},
		{"page_token=%ff%fe", 0, 0, true},
		{"page_token=bm90IGpzb24", 0, 0, true},
		{"page_token=" + encodeSessionsToken(-1), 0, 0, true},
		{"per_page=0", 0, 0, true},
		{"page=-1", 0, 0, true},
	} {
		q, _ := url.ParseQuery(c.q)
		page, size, err := parseSessionsPage(q)
		if c.bad {
			if err == nil || err.Code != http.StatusBadRequest {
				t.Errorf("%q: want 400, got page %d size %d err %v", c.q, page, size, err)
			}
			continue
		}
		if err != nil || page != c.page || size != c.size {
			t.Errorf("%q: page %d size %d err %v, want %d %d", c.q, page, size, err, c.page, c.size)
		}
	}
}

func TestCleanedPath(t *testing.T) {
	for in, want := range map[string]string{
		"/self-service/login/browser":    "",
		"//self-service/login/flows":     "/self-service/login/flows",
		"/self-service//login/browser":   "/self-service/login/browser",
		"/a/../self-service/login/":      "/self-service/login/",
		"//evil.example/self-service/x":  "/evil.example/self-service/x",
		"/.well-known/ory/webauthn.js":   "",
		"/self-service/./login/browser/": "/self-service/login/browser/",
	} {
		got, changed := cleanedPath(in)
		if want == "" {
			if changed {
				t.Errorf("%q: changed to %q", in, got)
			}
			continue
		}
		if !changed || got != want {
			t.Errorf("%q: %q (%v), want %q", in, got, changed, want)
		}
	}
}

// TestUncleanPathRedirects: a double slash (or dot segments) before one
// of our paths is redirected (307, query kept) to the clean path on this
// host; one before anything else is not ours.
func TestUncleanPathRedirects(t *testing.T) {
	e, srv := testEngine(t, nil)
	for _, c := range []struct {
		path, loc string
	}{
		{"//self-service/login/flows?id=x&a=%2F%2Fevil", "/self-service/login/flows?id=x&a=%2F%2Fevil"},
		{"/self-service//recovery/browser", "/self-service/recovery/browser"},
		{"//sessions/whoami", "/sessions/whoami"},
		{"/x/..//self-service/login/browser", "/self-service/login/browser"},
	} {
		for _, m := range []string{"GET", "POST"} {
			res := rawRequest(t, srv.Listener.Addr().String(), m, c.path)
			if res.StatusCode != http.StatusTemporaryRedirect || res.Header.Get("Location") != c.loc {
				t.Errorf("%s %s: %d Location %q, want 307 %q", m, c.path, res.StatusCode, res.Header.Get("Location"), c.loc)
			}
		}
	}
	for _, p := range []string{"//evil.example", "//evil.example/", "///evil.example/x", "/\\evil.example/self-service/login/browser", "//evil.example/self-service/login/browser"} {
		r, _ := http.NewRequest("GET", "http://h"+p, nil)
		r.URL.Path = p
		if e.Handles(r) {
			t.Errorf("Handles(%q) = true", p)
		}
	}
}

// TestFlowKeepsItsCSRFMask: every read of a browser flow shows the mask it
// was created with, and that mask still passes the double-submit check.
func TestFlowKeepsItsCSRFMask(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) { c.RegistrationStyle = "unified" })
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, kind := range []string{"login", "registration"} {
		f := do(t, c, "GET", srv.URL+"/self-service/"+kind+"/browser", nil, nil)
		created := csrfNodeValue(t, f.body)
		id := f.body["id"].(string)
		for i := 0; i < 2; i++ {
			g := do(t, c, "GET", srv.URL+"/self-service/"+kind+"/flows?id="+id, nil, nil)
			if g.status != 200 || csrfNodeValue(t, g.body) != created {
				t.Fatalf("%s read %d: %d csrf %q, want %q", kind, i, g.status, csrfNodeValue(t, g.body), created)
			}
		}
		body := map[string]any{"method": "password", "csrf_token": created, "identifier": "nobody@example.com", "password": "wrong-password-1"}
		if kind == "registration" {
			body = map[string]any{"method": "password", "csrf_token": created, "password": "a1", "traits": map[string]any{"email": "x@example.com"}}
		}
		if r := do(t, c, "POST", srv.URL+"/self-service/"+kind+"?flow="+id, body, nil); r.status != 400 {
			t.Fatalf("%s submit with the kept mask: %d %s", kind, r.status, r.raw)
		}
		if g := do(t, c, "GET", srv.URL+"/self-service/"+kind+"/flows?id="+id, nil, nil); csrfNodeValue(t, g.body) != created {
			t.Fatalf("%s after a submit: csrf %q, want %q", kind, csrfNodeValue(t, g.body), created)
		}
	}
}

// rawRequest sends method target as written (a client would clean or
// reinterpret "//x" targets) and returns the answer.
func rawRequest(t *testing.T, addr, method, target string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, target, addr)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}
