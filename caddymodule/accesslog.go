package caddymodule

import (
	"errors"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Session tokens and one-time link secrets out of Caddy's access log.
//
// Caddy logs a copy of the request taken before any handler runs and
// redacts only Cookie, Set-Cookie, Authorization and Proxy-Authorization
// (unless the server's log_credentials is on). X-Session-Token, Kratos's
// header for native apps, and the secrets in the query of mailed links
// (token, code) and of the native code exchange (init_code,
// return_to_code) would be written in clear, and a handler cannot change
// that copy. So for a request that carries one of them, the kratos and
// kratos_gate handlers turn Caddy's entry off (the log_skip variable) and
// write the same entry themselves when they are done: same loggers,
// message, level and fields, with the secrets replaced by REDACTED. Other
// requests keep Caddy's own entry.
//
// What Caddy alone knows is missing from these entries: fields added by
// log_append, tracing or {http.request.uuid}, and write_error; size and
// status are read from Caddy's own response recorder when the writer
// chain leads to it.

// redacted replaces a secret in a log entry, as Caddy's own redaction.
const redacted = "REDACTED"

// redactedVar marks a request whose entry a kratos handler took over, so
// that a second one (kratos, then kratos_gate) leaves it alone.
const redactedVar = "kratos_log_redacted"

// sessionTokenHeader is the header of native session tokens.
const sessionTokenHeader = "X-Session-Token"

// secretQueryParams are query parameters of the API's GET endpoints that
// carry a secret: recovery and verification links, the native code
// exchange.
var secretQueryParams = []string{"token", "code", "init_code", "return_to_code"}

// accessLog writes the redacted entries. Its zero value writes nothing.
type accessLog struct {
	// base is Caddy's access logger, "http.log.access" over the http
	// app's log cores.
	base *zap.Logger
}

// provision gets the access logger the http app uses.
func (l *accessLog) provision(ctx caddy.Context) {
	l.base = ctx.Logger(new(caddyhttp.App)).Named("log.access")
}

// takeOver checks whether r's access log entry would show a secret (query
// secrets count only when redactQuery is set: on the API's paths) and, if
// so, turns Caddy's entry off and returns the writer and request to use
// and a function to call with the handler's error when it is done, which
// writes the redacted entry. Otherwise it returns w, r and nil.
func (l *accessLog) takeOver(w http.ResponseWriter, r *http.Request, redactQuery bool) (http.ResponseWriter, *http.Request, func(error)) {
	if l.base == nil {
		return w, r, nil
	}
	ctx := r.Context()
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || srv.Logs == nil || srv.Logs.ShouldLogCredentials {
		return w, r, nil
	}
	if skip, _ := caddyhttp.GetVar(ctx, caddyhttp.LogSkipVar).(bool); skip {
		return w, r, nil // skipped by the config, or taken over already
	}
	uri, method := r.RequestURI, r.Method
	if orig, ok := ctx.Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		uri, method = orig.RequestURI, orig.Method
	}
	hasHeader := false
	for k := range r.Header {
		if sameHeaderName(k, sessionTokenHeader) {
			hasHeader = true
			break
		}
	}
	cleanURI := uri
	if redactQuery {
		cleanURI = redactURI(uri)
	}
	if !hasHeader && cleanURI == uri {
		return w, r, nil
	}
	if !logsHost(srv.Logs, r.Host) {
		return w, r, nil
	}
	caddyhttp.SetVar(ctx, caddyhttp.LogSkipVar, true)
	caddyhttp.SetVar(ctx, redactedVar, true)

	// The request as Caddy would have logged it, secrets replaced.
	logged := r.Clone(ctx)
	logged.RequestURI, logged.Method = cleanURI, method
	for k, v := range logged.Header {
		if sameHeaderName(k, sessionTokenHeader) {
			logged.Header[k] = redactedValues(len(v))
		}
	}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	rec := caddyhttp.NewResponseRecorder(w, nil, nil)
	start, ok := caddyhttp.GetVar(ctx, "start_time").(time.Time)
	if !ok {
		start = time.Now()
	}
	done := func(err error) {
		status, size := outermostRecorder(rec)
		if err != nil {
			// Caddy answers the error after the handlers return.
			status, size = http.StatusInternalServerError, 0
			var he caddyhttp.HandlerError
			if errors.As(err, &he) && he.StatusCode != 0 {
				status = he.StatusCode
			}
		}
		l.write(srv, r, logged, rec.Header(), body, status, size, time.Since(start))
	}
	return rec, r, done
}

// write writes one access log entry as Caddy's Server.logRequest does.
func (l *accessLog) write(srv *caddyhttp.Server, r, logged *http.Request, respHeader http.Header, body *countingBody, status, size int, d time.Duration) {
	ctx := r.Context()
	msg := "handled request"
	if nop, _ := caddyhttp.GetVar(ctx, "unhandled").(bool); nop {
		msg = "NOP"
	}
	level := zapcore.InfoLevel
	if status >= 500 {
		level = zapcore.ErrorLevel
	}
	if name, ok := caddyhttp.GetVar(ctx, caddyhttp.LogLevelVar).(string); ok {
		if lv, err := zapcore.ParseLevel(name); err == nil && lv >= zapcore.DebugLevel && lv <= zapcore.ErrorLevel {
			level = lv
		}
	}
	var fields []zap.Field
	for _, logger := range l.loggers(srv.Logs, r) {
		c := logger.Check(level, msg)
		if c == nil {
			continue
		}
		if fields == nil {
			userID := ""
			if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				userID, _ = repl.GetString("http.auth.user.id")
			}
			read := 0
			if body != nil {
				read = body.n
			}
			fields = []zap.Field{
				zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: logged}),
				zap.Int("bytes_read", read),
				zap.String("user_id", userID),
				zap.Duration("duration", d),
				zap.Int("size", size),
				zap.Int("status", status),
				zap.Object("resp_headers", caddyhttp.LoggableHTTPHeader{Header: respHeader}),
			}
		}
		c.Write(fields...)
	}
}

// loggers are the access loggers of r, as ServerLogConfig.wrapLogger
// picks them: the log_name variable, else the names mapped to r's host,
// else the default.
func (l *accessLog) loggers(slc *caddyhttp.ServerLogConfig, r *http.Request) []*zap.Logger {
	var names []string
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.AccessLoggerNameVarKey).([]any); ok {
		for _, n := range v {
			s, _ := n.(string)
			names = append(names, s)
		}
	} else {
		names = loggerNames(slc, hostOnly(r.Host))
	}
	out := make([]*zap.Logger, 0, len(names))
	for _, n := range names {
		if n == "" {
			out = append(out, l.base)
			continue
		}
		out = append(out, l.base.Named(n))
	}
	return out
}

// loggerNames is ServerLogConfig.getLoggerHosts: the logger names of a
// host, exact first, then with its labels replaced by * from the left.
func loggerNames(slc *caddyhttp.ServerLogConfig, host string) []string {
	host = strings.ToLower(host)
	if names, ok := slc.LoggerNames[host]; ok {
		return names
	}
	for w := range leftWildcards(host) {
		if names, ok := slc.LoggerNames[w]; ok {
			return names
		}
	}
	return []string{slc.DefaultLoggerName}
}

// logsHost is Server.shouldLogRequest for a server with logs configured.
func logsHost(slc *caddyhttp.ServerLogConfig, hostport string) bool {
	host := hostOnly(hostport)
	for name := range slc.LoggerNames {
		if matchWildcard(host, name) {
			return true
		}
	}
	for _, h := range slc.SkipHosts {
		if matchWildcard(host, h) {
			return false
		}
	}
	return !slc.SkipUnmappedHosts
}

// matchWildcard is certmagic.MatchWildcard: subject equals wildcard, or
// does with some of its labels, from the left, replaced by *.
func matchWildcard(subject, wildcard string) bool {
	subject, wildcard = strings.ToLower(subject), strings.ToLower(wildcard)
	if subject == wildcard {
		return true
	}
	if !strings.Contains(wildcard, "*") {
		return false
	}
	for w := range leftWildcards(subject) {
		if w == wildcard {
			return true
		}
	}
	return false
}

// leftWildcards yields host with one more of its labels replaced by *
// each time, from the left (a.b.c: *.b.c, *.*.c, *.*.*), the names Caddy
// and certmagic match a host against after the host itself.
func leftWildcards(host string) iter.Seq[string] {
	return func(yield func(string) bool) {
		labels := strings.Split(host, ".")
		for i := range labels {
			if labels[i] == "" {
				continue
			}
			labels[i] = "*"
			if !yield(strings.Join(labels, ".")) {
				return
			}
		}
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// redactURI replaces the values of secretQueryParams in a request URI's
// query with REDACTED, keeping everything else as sent. It returns uri
// itself when there is nothing to redact.
func redactURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok || query == "" {
		return uri
	}
	parts := strings.Split(query, "&")
	changed := false
	for i, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		if v == "" {
			continue
		}
		if name, err := url.QueryUnescape(k); err == nil {
			k = name
		}
		for _, s := range secretQueryParams {
			if strings.EqualFold(k, s) {
				parts[i] = p[:len(p)-len(v)] + redacted
				changed = true
				break
			}
		}
	}
	if !changed {
		return uri
	}
	return path + "?" + strings.Join(parts, "&")
}

func redactedValues(n int) []string {
	v := make([]string, max(n, 1))
	for i := range v {
		v[i] = redacted
	}
	return v
}

// outermostRecorder reads status and size from the response recorder
// nearest to the connection in w's wrapper chain: Caddy's own, which
// counts what outer handlers (encode) wrote.
func outermostRecorder(w http.ResponseWriter) (status, size int) {
	for {
		if rr, ok := w.(caddyhttp.ResponseRecorder); ok {
			status, size = rr.Status(), rr.Size()
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return status, size
		}
		w = u.Unwrap()
	}
}

// countingBody counts the bytes read from a request body (bytes_read).
type countingBody struct {
	io.ReadCloser
	n int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += n
	return n, err
}
