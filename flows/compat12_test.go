package flows

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"testing"
)

// Unit tests of issue 12's flow items: Kratos's session list pagination,
// unclean paths, and one CSRF mask per flow.

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
