package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// loggedRequest is a request as Caddy's server hands it to handlers when
// access logging is on: server, vars, replacer, original request.
func loggedRequest(t *testing.T, slc *caddyhttp.ServerLogConfig, method, target string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.RequestURI = r.URL.RequestURI() // origin-form, as clients send it
	ctx := context.WithValue(r.Context(), caddyhttp.ServerCtxKey, &caddyhttp.Server{Logs: slc})
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{"start_time": time.Now().Add(-time.Millisecond)})
	ctx = context.WithValue(ctx, caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, *r.Clone(ctx))
	return r.WithContext(ctx)
}

func observedLog() (*accessLog, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return &accessLog{base: zap.New(core).Named("http.log.access")}, logs
}

func TestAccessLogTakesOverOnlyEntriesWithSecrets(t *testing.T) {
	slc := &caddyhttp.ServerLogConfig{LoggerNames: map[string]caddyhttp.StringArray{"auth.example.com": {"log0"}}}
	for _, tc := range []struct {
		name        string
		target      string
		hdr         map[string]string
		redactQuery bool
		slc         *caddyhttp.ServerLogConfig
		skip        bool
		uri         string // logged; "" = Caddy's own entry
	}{
		{name: "session token", target: "http://auth.example.com/sessions/whoami", hdr: map[string]string{"X-Session-Token": "ory_st_x"}, uri: "/sessions/whoami"},
		{name: "link token", target: "http://auth.example.com/self-service/recovery?flow=f&token=t0k", redactQuery: true, uri: "/self-service/recovery?flow=f&token=REDACTED"},
		{name: "link token, app path", target: "http://auth.example.com/cb?code=abc"},
		{name: "nothing secret", target: "http://auth.example.com/self-service/recovery?flow=f", redactQuery: true},
		{name: "empty code", target: "http://auth.example.com/self-service/login?code=", redactQuery: true},
		{name: "no access log", target: "http://auth.example.com/sessions/whoami", hdr: map[string]string{"X-Session-Token": "ory_st_x"}, slc: &caddyhttp.ServerLogConfig{}, skip: true},
		{name: "log_credentials", target: "http://auth.example.com/sessions/whoami", hdr: map[string]string{"X-Session-Token": "ory_st_x"},
			slc: &caddyhttp.ServerLogConfig{ShouldLogCredentials: true}},
		{name: "host not logged", target: "http://other.example.com/sessions/whoami", hdr: map[string]string{"X-Session-Token": "ory_st_x"},
			slc: &caddyhttp.ServerLogConfig{LoggerNames: map[string]caddyhttp.StringArray{"auth.example.com": {"log0"}}, SkipUnmappedHosts: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, logs := observedLog()
			s := slc
			if tc.slc != nil {
				s = tc.slc
			}
			r := loggedRequest(t, s, http.MethodGet, tc.target)
			if tc.skip {
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, &caddyhttp.Server{}))
			}
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			r.Header.Set("Accept", "application/json")
			w, r2, done := l.takeOver(httptest.NewRecorder(), r, tc.redactQuery)
			skipped, _ := caddyhttp.GetVar(r.Context(), caddyhttp.LogSkipVar).(bool)
			if tc.uri == "" {
				if done != nil || skipped {
					t.Fatalf("took over Caddy's entry (skip var %v)", skipped)
				}
				return
			}
			if done == nil || !skipped {
				t.Fatalf("did not take over: done %v, skip var %v", done != nil, skipped)
			}
			// A second handler of the same request leaves it alone.
			if _, _, again := l.takeOver(w, r2, tc.redactQuery); again != nil {
				t.Error("second takeOver of one request")
			}
			if r2.Header.Get("X-Session-Token") != tc.hdr["X-Session-Token"] {
				t.Error("the request the handler sees lost its token")
			}
			w.Header().Set("Set-Cookie", "ory_kratos_session=secret")
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write([]byte("12345"))
			done(nil)
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("%d entries", len(entries))
			}
			e := entries[0]
			m := e.ContextMap()
			req, _ := m["request"].(map[string]any)
			hdrs, _ := req["headers"].(map[string]any)
			resp, _ := m["resp_headers"].(map[string]any)
			if e.LoggerName != "http.log.access.log0" || e.Message != "handled request" || e.Level != zapcore.InfoLevel ||
				req["uri"] != tc.uri || req["method"] != "GET" || m["status"] != int64(http.StatusTeapot) || m["size"] != int64(5) {
				t.Errorf("entry %s %s %v %v", e.LoggerName, e.Message, e.Level, m)
			}
			if tok, ok := hdrs["X-Session-Token"]; tc.hdr["X-Session-Token"] != "" && (!ok || strings.Join(toStrings(tok), ",") != "REDACTED") {
				t.Errorf("logged X-Session-Token %v", tok)
			}
			if strings.Join(toStrings(hdrs["Accept"]), ",") != "application/json" {
				t.Errorf("logged headers %v", hdrs)
			}
			if strings.Join(toStrings(resp["Set-Cookie"]), ",") != "REDACTED" {
				t.Errorf("logged response headers %v", resp)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

func TestAccessLogSkippedRequestStaysSkipped(t *testing.T) {
	l, logs := observedLog()
	r := loggedRequest(t, &caddyhttp.ServerLogConfig{}, http.MethodGet, "http://a.example.com/x")
	r.Header.Set("X-Session-Token", "ory_st_x")
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
	if _, _, done := l.takeOver(httptest.NewRecorder(), r, false); done != nil {
		t.Fatal("log_skip ignored")
	}
	if logs.Len() != 0 {
		t.Errorf("%d entries", logs.Len())
	}
}

func TestAccessLogErrorStatusAndLevel(t *testing.T) {
	l, logs := observedLog()
	r := loggedRequest(t, &caddyhttp.ServerLogConfig{DefaultLoggerName: ""}, http.MethodGet, "http://a.example.com/x")
	r.Header.Set("X-Session-Token", "ory_st_x")
	_, _, done := l.takeOver(httptest.NewRecorder(), r, false)
	if done == nil {
		t.Fatal("no takeover")
	}
	done(caddyhttp.Error(http.StatusBadGateway, context.DeadlineExceeded))
	e := logs.All()[0]
	if e.Level != zapcore.ErrorLevel || e.ContextMap()["status"] != int64(http.StatusBadGateway) || e.LoggerName != "http.log.access" {
		t.Errorf("entry %v %s %v", e.Level, e.LoggerName, e.ContextMap())
	}
}

func TestAccessLogLoggerNames(t *testing.T) {
	slc := &caddyhttp.ServerLogConfig{
		DefaultLoggerName: "def",
		LoggerNames: map[string]caddyhttp.StringArray{
			"a.example.com": {"one", "two"},
			"*.example.org": {"wild"},
		},
		SkipHosts: []string{"skip.example.net"},
	}
	for host, want := range map[string]string{
		"a.example.com:443": "one,two",
		"b.example.org":     "wild",
		"x.y.example.org":   "def",
		"other":             "def",
	} {
		if got := strings.Join(loggerNames(slc, hostOnly(host)), ","); got != want {
			t.Errorf("loggerNames(%s) = %s, want %s", host, got, want)
		}
	}
	for host, want := range map[string]bool{"a.example.com": true, "b.example.org": true, "skip.example.net": false, "c.example.com": true} {
		if got := logsHost(slc, host); got != want {
			t.Errorf("logsHost(%s) = %v", host, got)
		}
	}
	slc.SkipUnmappedHosts = true
	if logsHost(slc, "c.example.com") || !logsHost(slc, "b.example.org:8443") {
		t.Error("SkipUnmappedHosts")
	}
}

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"/self-service/recovery?flow=f&token=abc":               "/self-service/recovery?flow=f&token=REDACTED",
		"/self-service/verification?code=1&flow=f&code=2":       "/self-service/verification?code=REDACTED&flow=f&code=REDACTED",
		"/sessions/token-exchange?init_code=a&return_to_code=b": "/sessions/token-exchange?init_code=REDACTED&return_to_code=REDACTED",
		"/x?TOKEN=a&%74oken=b&tokens=c":                         "/x?TOKEN=REDACTED&%74oken=REDACTED&tokens=c",
		"/x?token=&code":                                        "/x?token=&code",
		"/x?flow=f":                                             "/x?flow=f",
		"/x":                                                    "/x",
		"/x?":                                                   "/x?",
	} {
		if got := redactURI(in); got != want {
			t.Errorf("redactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
