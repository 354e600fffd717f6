package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// accessEntry is the part of a Caddy access log entry (format json) the
// tests look at.
type accessEntry struct {
	Logger  string `json:"logger"`
	Msg     string `json:"msg"`
	Request struct {
		Method  string              `json:"method"`
		Host    string              `json:"host"`
		URI     string              `json:"uri"`
		Headers map[string][]string `json:"headers"`
	} `json:"request"`
	UserID   string  `json:"user_id"`
	Status   int     `json:"status"`
	Size     int     `json:"size"`
	Duration float64 `json:"duration"`
}

// readAccessLog waits until path holds at least n entries and returns the
// raw file and its entries.
func readAccessLog(t *testing.T, path string, n int) (string, []accessEntry) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, _ := os.ReadFile(path)
		var out []accessEntry
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e accessEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("access log line %q: %v", sc.Text(), err)
			}
			out = append(out, e)
		}
		if len(out) >= n || time.Now().After(deadline) {
			return string(raw), out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAccessLogRedactsSecrets: with a site `log`, the access log never
// holds a session token (X-Session-Token, any spelling) or the secret of a
// link (token, code) or of the native code exchange, on the API's site, on
// a gated site and on the API paths of a gated site; the entries are
// otherwise Caddy's.
func TestAccessLogRedactsSecrets(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "access.log")
	in, bases := startGateSites(t, instanceOptions{GlobalKratos: []string{"rate_limits off"}}, 2, func(in *instance, bases []string) string {
		return fmt.Sprintf(`%s {
	log {
		output file %s
		format json
	}
	kratos
}

%s {
	log {
		output file %s
		format json
	}
	kratos
	kratos_gate {
		allow /public/*
	}
	reverse_proxy %s
}
`, bases[0], logPath, bases[1], logPath, in.upstream.hostPort())
	})
	api, app := bases[0], bases[1]
	u := registerNative(t, in)
	flow := uuid.NewString()
	secrets := []string{u.Token, "Sx7tokenQ2", "Sx7codeQ3", "Sx7codeQ4", "Sx7initQ5", "Sx7retQ6"}

	type req struct {
		base, method, target string
		h                    hdr
		uri                  string // as logged
		status               int
		user                 string
		logger               string
	}
	reqs := []req{
		{api, "GET", "/sessions/whoami", hdr{"X-Session-Token": u.Token}, "/sessions/whoami", 200, "", "http.log.access.log0"},
		{api, "GET", "/self-service/recovery?flow=" + flow + "&token=" + secrets[1], nil,
			"/self-service/recovery?flow=" + flow + "&token=REDACTED", 0, "", "http.log.access.log0"},
		{api, "GET", "/self-service/verification?code=" + secrets[2] + "&flow=" + flow, nil,
			"/self-service/verification?code=REDACTED&flow=" + flow, 0, "", "http.log.access.log0"},
		{api, "GET", "/self-service/login?flow=" + flow + "&Code=" + secrets[3], hdr{"X_Session_Token": u.Token},
			"/self-service/login?flow=" + flow + "&Code=REDACTED", 0, "", "http.log.access.log0"},
		{api, "GET", "/sessions/token-exchange?init_code=" + secrets[4] + "&return_to_code=" + secrets[5], nil,
			"/sessions/token-exchange?init_code=REDACTED&return_to_code=REDACTED", 0, "", "http.log.access.log0"},
		{app, "GET", "/private/x?y=1", hdr{"X-Session-Token": u.Token}, "/private/x?y=1", 200, u.IdentityID, "http.log.access.log1"},
		{app, "GET", "/public/x", hdr{"x-session-token": u.Token}, "/public/x", 200, "", "http.log.access.log1"},
		{app, "GET", "/sessions/whoami", hdr{"X-Session-Token": u.Token}, "/sessions/whoami", 200, "", "http.log.access.log1"},
		{app, "GET", "/private/y", hdr{"X-Session-Token": "ory_st_" + randHex(16)}, "/private/y", 401, "", "http.log.access.log1"},
		// No secret: Caddy's own entry.
		{api, "GET", "/health/alive?code=", nil, "/health/alive?code=", 200, "", "http.log.access.log0"},
	}
	for i := range reqs {
		q := &reqs[i]
		h := hdr{"Accept": "application/json"}
		for k, v := range q.h {
			h[k] = v
		}
		r, body := do(t, plainHTTP(), q.method, q.base+q.target, h, nil)
		if q.status != 0 && r.StatusCode != q.status {
			t.Errorf("%s %s: status %d, want %d: %s", q.method, q.target, r.StatusCode, q.status, clip(body))
		}
		q.status = r.StatusCode
	}

	raw, entries := readAccessLog(t, logPath, len(reqs))
	for _, s := range secrets {
		if strings.Contains(raw, s) {
			t.Errorf("the access log holds the secret %q", s)
		}
	}
	if len(entries) != len(reqs) {
		t.Errorf("%d access log entries for %d requests", len(entries), len(reqs))
	}
	for _, q := range reqs {
		var found []accessEntry
		for _, e := range entries {
			if e.Request.URI == q.uri && e.Request.Host == strings.TrimPrefix(q.base, "http://") {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s %s: %d entries with uri %q", q.method, q.target, len(found), q.uri)
			continue
		}
		e := found[0]
		if e.Logger != q.logger || e.Msg != "handled request" || e.Request.Method != q.method || e.Status != q.status ||
			e.UserID != q.user || e.Size <= 0 || e.Duration <= 0 {
			t.Errorf("%s %s: entry %+v, want logger %s, status %d, user %q", q.method, q.target, e, q.logger, q.status, q.user)
		}
		for k := range q.h {
			got, ok := e.Request.Headers[http.CanonicalHeaderKey(k)]
			if strings.Contains(k, "_") {
				// Caddy drops header names with '_' before any handler.
				if ok {
					t.Errorf("%s %s: logged %s = %q", q.method, q.target, k, got)
				}
				continue
			}
			if len(got) != 1 || got[0] != "REDACTED" {
				t.Errorf("%s %s: logged %s = %q, want [REDACTED]", q.method, q.target, k, got)
			}
		}
		if got := e.Request.Headers["Accept"]; len(got) != 1 || got[0] != "application/json" {
			t.Errorf("%s %s: logged Accept = %q", q.method, q.target, got)
		}
	}
}
