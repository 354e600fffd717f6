package flows

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// Helpers shared by the totp, lookup_secret, webauthn and passkey tests.

const mfaPassword = "Gx7!qVt2#pLr9$wZk4"

// flowNodes returns the flow body's nodes.
func flowNodes(body map[string]any) []map[string]any {
	ui, _ := body["ui"].(map[string]any)
	list, _ := ui["nodes"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, n := range list {
		out = append(out, n.(map[string]any))
	}
	return out
}

func attrsOf(n map[string]any) map[string]any {
	a, _ := n["attributes"].(map[string]any)
	return a
}

// nodeKey is an input's name or another node's id.
func nodeKey(n map[string]any) string {
	a := attrsOf(n)
	if s, ok := a["name"].(string); ok {
		return s
	}
	s, _ := a["id"].(string)
	return s
}

// findUINode returns the first node named (or with id) key, optionally
// with that value; nil if none.
func findUINode(body map[string]any, key string, value ...string) map[string]any {
	for _, n := range flowNodes(body) {
		if nodeKey(n) != key {
			continue
		}
		if len(value) > 0 && attrsOf(n)["value"] != value[0] {
			continue
		}
		return n
	}
	return nil
}

func mustNode(t *testing.T, r resp, key string, value ...string) map[string]any {
	t.Helper()
	n := findUINode(r.body, key, value...)
	if n == nil {
		t.Fatalf("no node %s %v in %d %s", key, value, r.status, r.raw)
	}
	return n
}

// mfaGroupOrder lists the node groups in order, each once.
func mfaGroupOrder(body map[string]any) []string {
	var out []string
	for _, n := range flowNodes(body) {
		g := n["group"].(string)
		if len(out) == 0 || out[len(out)-1] != g {
			out = append(out, g)
		}
	}
	return out
}

func labelIDOf(n map[string]any) int {
	meta, _ := n["meta"].(map[string]any)
	l, _ := meta["label"].(map[string]any)
	id, _ := l["id"].(float64)
	return int(id)
}

func nodeMessageIDs(n map[string]any) []int {
	var out []int
	msgs, _ := n["messages"].([]any)
	for _, m := range msgs {
		out = append(out, int(m.(map[string]any)["id"].(float64)))
	}
	return out
}

func tokenHeader(token string) map[string]string { return map[string]string{"X-Session-Token": token} }

// nativeSettings creates a native settings flow for token.
func nativeSettings(t *testing.T, base, token string) resp {
	t.Helper()
	r := do(t, nil, "GET", base+"/self-service/settings/api", nil, tokenHeader(token))
	if r.status != 200 {
		t.Fatalf("settings flow: %d %s", r.status, r.raw)
	}
	return r
}

// nativeLogin signs in with the password on a new native flow.
func nativeLogin(t *testing.T, base, email string) resp {
	t.Helper()
	f := do(t, nil, "GET", base+"/self-service/login/api", nil, nil)
	r := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "identifier": email, "password": mfaPassword}, nil)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	return r
}

func whoamiStatus(t *testing.T, base, token string) resp {
	t.Helper()
	return do(t, nil, "GET", base+"/sessions/whoami", nil, tokenHeader(token))
}

func sessionMethods(s map[string]any) []string {
	var out []string
	list, _ := s["authentication_methods"].([]any)
	for _, m := range list {
		out = append(out, m.(map[string]any)["method"].(string))
	}
	return out
}

// browser is a cookie-keeping client that does not follow redirects.
func newBrowserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func csrfValue(t *testing.T, r resp) string {
	t.Helper()
	n := findUINode(r.body, "csrf_token")
	if n == nil {
		t.Fatalf("no csrf_token node in %s", r.raw)
	}
	s, _ := attrsOf(n)["value"].(string)
	return s
}

// browserRegister signs a browser up with a password (one-step submit,
// JSON) and returns the answer; the session cookie is in c's jar.
func browserRegister(t *testing.T, c *http.Client, base, email string) resp {
	t.Helper()
	f := do(t, c, "GET", base+"/self-service/registration/browser", nil, nil)
	r := do(t, c, "POST", actionOf(t, f), map[string]any{"method": "password", "csrf_token": csrfValue(t, f),
		"password": mfaPassword, "traits": map[string]any{"email": email}}, nil)
	if r.status != 200 {
		t.Fatalf("browser register: %d %s", r.status, r.raw)
	}
	return r
}

// browserSubmit posts body (plus the flow's CSRF token) to flow f as JSON.
func browserSubmit(t *testing.T, c *http.Client, f resp, body map[string]any) resp {
	t.Helper()
	body["csrf_token"] = csrfValue(t, f)
	return do(t, c, "POST", actionOf(t, f), body, nil)
}

func joinKeys(body map[string]any) string {
	var ks []string
	for _, n := range flowNodes(body) {
		ks = append(ks, n["group"].(string)+":"+nodeKey(n))
	}
	return strings.Join(ks, " ")
}
