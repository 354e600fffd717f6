package caddymodule

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

func init() {
	caddy.RegisterModule(new(Gate))
}

// IdentityHeader is the request header through which the gate tells the
// upstream who is logged in. The gate removes any copy the client sent.
const IdentityHeader = "X-Kratos-Authenticated-Identity-Id"

// Gate lets a request through only with a valid Kratos session (the same
// check as GET /sessions/whoami, with a per-route assurance level policy).
// It sets the X-Kratos-Authenticated-Identity-Id request header, the
// configured identity headers and, optionally, a signed assertion, and the
// placeholders {http.auth.user.id}, {kratos.identity.id},
// {kratos.session.id}, {kratos.session.aal}, {kratos.session.methods},
// {kratos.session.expires_at} and {kratos.identity.traits.<path>}.
// Without a session, browser navigations are redirected (303) to the login
// flow with return_to set to the requested URL; other requests get 401 in
// Kratos's JSON error shape.
type Gate struct {
	// LoginURL is where browsers without a session are sent, with
	// return_to=<requested URL> added to its query. An absolute http(s)
	// URL or a path on the same host; placeholders are replaced per
	// request. Default: the login flow of the `kratos` app
	// (<public_url>/self-service/login/browser).
	LoginURL string `json:"login_url,omitempty"`

	// Allow lists request paths that pass without a session, matched like
	// Caddy's path matcher (exact, /prefix/*, *suffix, case-insensitive).
	// A path whose escaped form is not plain (dot segments, ';', encoded
	// separators…: see plainPath) never matches. Default: none.
	Allow []string `json:"allow,omitempty"`

	// Methods lists HTTP methods that pass without a session. OPTIONS
	// passes only as a CORS preflight (Origin and
	// Access-Control-Request-Method set). Default: none.
	Methods []string `json:"methods,omitempty"`

	// RequiredAAL is the assurance level this gate requires: aal1 (any
	// session), highest_available (a second factor when the identity has
	// one) or aal2 (always a second factor: users without one are sent to
	// settings to add it). Default: the kratos app's required_aal.
	RequiredAAL string `json:"required_aal,omitempty"`

	// OnUnauthenticated fixes the answer to requests without a valid
	// session: "redirect" (303 to the login or settings flow) or "401"
	// (Kratos's JSON error: 401, or 403 session_aal2_required). Default:
	// negotiated by Accept, browsers are redirected.
	OnUnauthenticated string `json:"on_unauthenticated,omitempty"`

	// Headers maps request header names to values with placeholders, e.g.
	// "X-User-Email": "{kratos.identity.traits.email}", set for the next
	// handler on every request with a session (an empty value sets
	// nothing). Any copy the client sent is removed first, also on allowed
	// paths and methods, including spellings with '_' for '-'. Default:
	// none.
	Headers map[string]string `json:"headers,omitempty"`

	// Assertion adds a signed, short-lived JWT about the identity to the
	// request (verify it with the JWKS at /.well-known/jwks.json of the
	// Kratos API). Default: off.
	Assertion *GateAssertion `json:"assertion,omitempty"`

	// StripCredentials removes the client's session credentials from every
	// request the gate passes on: X-Session-Token, the session cookie (the
	// app's other cookies stay) and an Authorization header that carries a
	// session token (Bearer ory_st_…; other Authorization values stay). The
	// upstream then cannot replay the session against the Kratos API; an
	// app that calls whoami itself with the forwarded cookie or token
	// needs it off. Default: off.
	StripCredentials bool `json:"strip_credentials,omitempty"`

	// Name tells this gate apart in the audit trail's records of refused
	// requests and labels its metrics (caddy_kratos_gate_*): letters,
	// digits and . _ - / :, at most 64. Default: in the audit trail, the
	// host the request was addressed to; in the metrics, its server's
	// name and its place among the server's unnamed gates, e.g. srv0/0.
	Name string `json:"name,omitempty"`

	auth    authenticator
	denials gateDenials // the audit trail (audit_gate.go)
	allow   caddyhttp.MatchPath
	login   *url.URL // parsed LoginURL when it has no placeholders
	policy  flows.GatePolicy
	methods []string        // upper-case
	headers []headerMapping // sorted by name
	strip   headerSet       // headers never taken from the client
	signer  assertionSigner
	cookie  string // the session cookie's name (StripCredentials)
	log     accessLog
	metrics gateMetrics

	// noPublicURL is the Caddyfile error, at the assertion line, for a
	// config without the kratos app's public_url (parseGate).
	noPublicURL error
}

// GateAssertion configures the gate's signed identity assertion, an ES256
// JWT with the claims iss (the kratos app's public_url, required), sub
// (identity id), sid (session id), aal, amr (authentication methods), iat,
// exp and, when chosen, aud and traits.
type GateAssertion struct {
	// Header is the request header that carries the token. Default:
	// X-Kratos-Assertion.
	Header string `json:"header,omitempty"`

	// TTL is the lifetime of a token. Tokens are reused for a quarter of
	// it, so one session costs about one signature per TTL/4. Default: 60s.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// Traits are dotted identity trait paths (email, name.first) copied
	// into the "traits" claim. Default: none.
	Traits []string `json:"traits,omitempty"`

	// KeyFile is a PEM file with an ES256 (P-256) private key, PKCS #8 or
	// SEC 1. Default: a key generated once and kept in the kratos storage.
	KeyFile string `json:"key_file,omitempty"`

	// Audience is the "aud" claim: who the token is for, e.g. the app's
	// URL, so that an upstream refuses tokens minted for another one. A
	// string or an array; the claim is a string for one value, an array
	// for several. Default: none (no aud claim).
	Audience caddyhttp.StringArray `json:"audience,omitempty"`
}

// DefaultAssertionHeader is the default header of the gate's assertion.
const DefaultAssertionHeader = "X-Kratos-Assertion"

// headerMapping is one compiled entry of Gate.Headers.
type headerMapping struct {
	name  string // canonical header name
	value string // template
	key   string // set when value is exactly one placeholder
}

// authenticator is what Gate needs from the engine (*flows.Engine).
type authenticator interface {
	CheckGate(w http.ResponseWriter, r *http.Request, policy flows.GatePolicy, out *flows.GateSession) error
	LoginBrowserURL(r *http.Request, returnTo string) string
	AAL2LoginURL(r *http.Request, returnTo string) string
	SettingsBrowserURL(r *http.Request, returnTo string) string
	Traits(g *flows.GateSession) (map[string]any, error)
}

// assertionSigner is what Gate needs from *flows.AssertionSigner.
type assertionSigner interface {
	Assertion(r *http.Request, g *flows.GateSession) (string, error)
}

// CaddyModule returns the Caddy module information.
func (*Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.kratos_gate",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Provision gets the engine from the `kratos` app (created with defaults
// if the config has none), prepares the matchers and loads the assertion
// key.
func (g *Gate) Provision(ctx caddy.Context) error {
	if err := g.provision(); err != nil {
		return err
	}
	app, err := kratosApp(ctx)
	if err != nil {
		return err
	}
	engine := app.Engine()
	g.auth = engine
	g.cookie = engine.CookieName()
	g.log.provision(ctx)
	g.useAuditTrail(app)
	g.metrics = newGateMetrics(kratosMetrics, app.gateLabel(ctx, g.Name))
	if a := g.Assertion; a != nil {
		cfg := flows.AssertionConfig{TTL: time.Duration(a.TTL), Traits: a.Traits, Audience: a.Audience}
		if a.KeyFile != "" {
			path := caddy.NewReplacer().ReplaceKnown(a.KeyFile, "")
			pemData, err := os.ReadFile(path) // #nosec G304 -- key_file is a path from the operator's Caddyfile
			if err != nil {
				return fmt.Errorf("assertion: key_file: %w", err)
			}
			cfg.KeyPEM = pemData
		}
		signer, err := engine.NewAssertionSigner(cfg)
		if err != nil {
			return err
		}
		g.signer = signer
	}
	return nil
}

// provision is the part of Provision that needs no Caddy context: it
// checks and compiles the options.
func (g *Gate) provision() error {
	if g.Name != "" {
		if err := checkGateName(g.Name); err != nil {
			return fmt.Errorf("name: %w", err)
		}
	}
	for _, p := range g.Allow {
		if p == "" {
			return fmt.Errorf("allow: empty path pattern")
		}
	}
	g.allow = nil
	if len(g.Allow) > 0 {
		g.allow = append(caddyhttp.MatchPath(nil), g.Allow...)
		if err := g.allow.Provision(caddy.Context{}); err != nil {
			return fmt.Errorf("allow: %w", err)
		}
	}
	g.login = nil
	if g.LoginURL != "" && !hasPlaceholder(g.LoginURL) {
		if err := checkURLOrPath(g.LoginURL); err != nil {
			return fmt.Errorf("login_url: %w", err)
		}
		u, err := url.Parse(g.LoginURL)
		if err != nil {
			return fmt.Errorf("login_url: %w", err)
		}
		g.login = u
	}
	g.methods = nil
	for _, m := range g.Methods {
		if err := checkHTTPMethod(m); err != nil {
			return fmt.Errorf("methods: %w", err)
		}
		g.methods = append(g.methods, strings.ToUpper(m))
	}
	if g.RequiredAAL != "" {
		if err := checkOneOf("required_aal", g.RequiredAAL, gateAALs); err != nil {
			return err
		}
	}
	g.policy = flows.GatePolicy{RequiredAAL: g.RequiredAAL}
	if g.OnUnauthenticated != "" {
		if err := checkOneOf("on_unauthenticated", g.OnUnauthenticated, unauthenticatedModes); err != nil {
			return err
		}
	}

	strip := []string{IdentityHeader}
	if a := g.Assertion; a != nil {
		if a.Header == "" {
			a.Header = DefaultAssertionHeader
		}
		if err := checkGateHeaderName(a.Header, strip); err != nil {
			return fmt.Errorf("assertion: header: %w", err)
		}
		if a.TTL < 0 {
			return fmt.Errorf("assertion: ttl: must be positive")
		}
		for _, t := range a.Traits {
			if err := checkTraitPath(t); err != nil {
				return fmt.Errorf("assertion: traits: %w", err)
			}
		}
		for _, aud := range a.Audience {
			if aud == "" {
				return fmt.Errorf("assertion: audience: empty value")
			}
		}
		strip = append(strip, a.Header)
	}
	g.headers = nil
	for _, name := range slices.Sorted(maps.Keys(g.Headers)) {
		if err := checkGateHeaderName(name, strip); err != nil {
			return fmt.Errorf("headers: %w", err)
		}
		strip = append(strip, name)
		m := headerMapping{name: textproto.CanonicalMIMEHeaderKey(name), value: g.Headers[name]}
		if k, ok := singlePlaceholder(m.value); ok {
			m.key = k
		}
		g.headers = append(g.headers, m)
	}
	g.strip = newHeaderSet(strip...)
	return nil
}

// gateAALs are the values of the gate's required_aal.
var gateAALs = []string{"aal1", "aal2", "highest_available"}

// unauthenticatedModes are the values of on_unauthenticated.
var unauthenticatedModes = []string{"redirect", "401"}

// ServeHTTP checks the session and calls next, or answers 303/401/403. A
// request that carries X-Session-Token gets an access log entry without
// it (accesslog.go).
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w, r, done := g.log.takeOver(w, r, false)
	if done != nil {
		err := g.serve(w, r, next)
		done(err)
		return err
	}
	return g.serve(w, r, next)
}

func (g *Gate) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Never trust the client's copies, not even on allowed paths, and do
	// not let the client name them as hop-by-hop headers, which the proxy
	// would then drop after the gate set them.
	stripHeaders(r.Header, &g.strip)
	stripConnectionTokens(r.Header, &g.strip)

	if g.passesMethod(r) {
		g.metrics.done(gateAllowed, untimed)
		return g.forward(w, r, next)
	}
	if ok, err := g.allowed(r); err != nil {
		g.metrics.done(gateError, untimed)
		return caddyhttp.Error(http.StatusInternalServerError, err)
	} else if ok {
		g.metrics.done(gateAllowed, untimed)
		return g.forward(w, r, next)
	}

	start := g.metrics.start()
	// The request's one allocation of its own, with the placeholder
	// provider below: they outlive the gate (the access log and later
	// handlers read them), so neither can be pooled.
	gr := &gateRequest{g: g}
	err := g.auth.CheckGate(w, r, g.policy, &gr.s)
	if err == nil {
		// One backing array for every header value the gate sets, in gr
		// for the common few; each value slice is capped at 1 so that an
		// append elsewhere copies. Never shared between requests: header
		// rules (request_header's replace) rewrite values in place.
		var vals []string
		if n := 1 + len(g.headers); n <= len(gr.vals) {
			vals = gr.vals[:n]
		} else {
			vals = make([]string, n)
		}
		vals[0] = gr.s.IdentityID
		r.Header[IdentityHeader] = vals[0:1:1]
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl != nil {
			repl.Map(gr.placeholder)
		}
		for i, m := range g.headers {
			if v := gr.resolve(repl, m); v != "" {
				vals[i+1] = v
				r.Header[m.name] = vals[i+1 : i+2 : i+2]
			}
		}
		if g.signer != nil {
			tok, err := g.signer.Assertion(r, &gr.s)
			if err != nil {
				g.metrics.done(gateError, start)
				return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("kratos_gate: %w", err))
			}
			r.Header.Set(g.Assertion.Header, tok)
		}
		g.metrics.done(gatePassed, start)
		return g.forward(w, r, next)
	}
	return g.refuse(w, r, err, start)
}

// refuse answers a request the session check refused: err says why.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, err error, start time.Duration) error {

	g.recordDenial(r, err)
	var to string
	switch {
	case errors.Is(err, flows.ErrAAL2Required):
		// Signed in, but a second factor is due: browsers go to the aal2
		// login flow and come back; API clients get Kratos's 403.
		to = g.auth.AAL2LoginURL(r, originalURL(r))
	case errors.Is(err, flows.ErrAAL2SetupRequired):
		// aal2 required, but there is no second factor yet: add one.
		to = g.auth.SettingsBrowserURL(r, originalURL(r))
	case errors.Is(err, flows.ErrNoSession):
		if g.redirects(r) {
			w.Header().Set("Location", g.loginLocation(r, originalURL(r)))
			w.WriteHeader(http.StatusSeeOther)
			g.metrics.done(gateRedirected, start)
			return nil
		}
		flows.WriteUnauthorized(w, r)
		g.metrics.done(gateUnauthorized, start)
		return nil
	case flows.IsUnavailable(err):
		// The database is down: refuse (never pass) with a 503 the client
		// may retry; the gate recovers when the storage does.
		flows.WriteUnavailable(w, r)
		g.metrics.done(gateUnavailable, start)
		return nil
	default:
		g.metrics.done(gateError, start)
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("kratos_gate: %w", err))
	}
	if g.redirects(r) {
		w.Header().Set("Location", to)
		w.WriteHeader(http.StatusSeeOther)
		g.metrics.done(gateRedirected, start)
		return nil
	}
	flows.WriteAAL2Required(w, r, to)
	g.metrics.done(gateAALRequired, start)
	return nil
}

// forward passes r to next, without the client's session credentials
// when StripCredentials is on. The session check has read them already.
func (g *Gate) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if g.StripCredentials {
		stripCredentials(r.Header, g.cookie)
	}
	return next.ServeHTTP(w, r)
}

// stripCredentials removes a request's Kratos session credentials:
// X-Session-Token (any spelling), the cookies named cookie (other cookies
// are kept) and Authorization values that carry a session token.
func stripCredentials(h http.Header, cookie string) {
	stripHeaders(h, &sessionTokenHeaders)
	if vals, ok := h["Cookie"]; ok {
		var kept []string
		for _, v := range vals {
			var parts []string
			for part := range strings.SplitSeq(v, ";") {
				part = textproto.TrimString(part)
				name, _, _ := strings.Cut(part, "=")
				if part != "" && textproto.TrimString(name) != cookie {
					parts = append(parts, part)
				}
			}
			if len(parts) > 0 {
				kept = append(kept, strings.Join(parts, "; "))
			}
		}
		if len(kept) == 0 {
			delete(h, "Cookie")
		} else {
			h["Cookie"] = kept
		}
	}
	if vals, ok := h["Authorization"]; ok {
		kept := slices.DeleteFunc(slices.Clone(vals), isSessionBearer)
		if len(kept) == 0 {
			delete(h, "Authorization")
		} else {
			h["Authorization"] = kept
		}
	}
}

// sessionTokenHeaders is X-Session-Token, as stripCredentials removes it.
var sessionTokenHeaders = newHeaderSet(sessionTokenHeader)

// isSessionBearer reports whether an Authorization value is a Kratos
// session token as a bearer token (Kratos ≥ 1.0 tokens start with ory_st_).
func isSessionBearer(v string) bool {
	v = textproto.TrimString(v)
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return false
	}
	return strings.HasPrefix(textproto.TrimString(v[7:]), "ory_st_")
}

// passesMethod reports whether r passes without a session by its method.
// OPTIONS passes only as a CORS preflight (Origin and
// Access-Control-Request-Method set, no body): a plain OPTIONS is an
// ordinary request to the app. A request that asks the app to take it as
// another method (X-HTTP-Method-Override and the like, _method) never
// passes by its method.
func (g *Gate) passesMethod(r *http.Request) bool {
	if g.methods == nil || !slices.Contains(g.methods, r.Method) {
		return false
	}
	for k := range r.Header {
		if methodOverrideHeaders.has(k) {
			return false
		}
	}
	if strings.Contains(r.URL.RawQuery, "method") && r.URL.Query().Has("_method") {
		return false
	}
	if r.Method == http.MethodOptions {
		return r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" && r.ContentLength == 0
	}
	return true
}

// methodOverrideHeaders are the headers frameworks read as the real method.
var methodOverrideHeaders = newHeaderSet("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")

// allowed reports whether r passes without a session by an allow pattern.
// The pattern must match the path the next handler forwards (Caddy's path
// matcher cleans and unescapes it first), so a path that an upstream may
// read differently from its cleaned form never matches: see plainPath.
func (g *Gate) allowed(r *http.Request) (bool, error) {
	// r.URL.Path is the escaped path decoded: invalid UTF-8 there is, for
	// one, an overlong encoding of '/' or '.' (%c0%af).
	if g.allow == nil || !plainPath(r.URL.EscapedPath()) || !utf8.ValidString(r.URL.Path) {
		return false, nil
	}
	return g.allow.MatchWithError(r)
}

// plainPath reports whether p, an escaped request path, reads the same to
// every server: it starts with '/', has no dot segment ("." or "..", also
// percent-encoded) and no segment ending in '.' or a space (Windows drops
// them), no ';' (path parameters: Tomcat and others cut the segment
// there), no backslash, and no percent-encoded '/', '\', '.', ';', '?',
// '#', '%' (a second decoding), NUL or other control byte. Other escapes
// (spaces, UTF-8) are plain. Doubled slashes are plain: the path matcher
// merges them as most servers do.
func plainPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	var last byte // last decoded byte of the current segment
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			if last == '.' || last == ' ' {
				return false
			}
			last = 0
			continue
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch c {
			case '/', '\\', '.', ';', '?', '#', '%':
				return false
			}
		case c == ';' || c == '\\':
			return false
		}
		if c < 0x20 || c == 0x7f {
			return false
		}
		last = c
	}
	return last != '.' && last != ' '
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// stripConnectionTokens removes names (compared like stripHeaders does)
// from the tokens of every Connection header, keeping the other tokens:
// a proxy drops the headers a request names in Connection, which would
// remove the headers the gate sets.
func stripConnectionTokens(h http.Header, names *headerSet) {
	vals := h["Connection"]
	if !slices.ContainsFunc(vals, names.listedIn) {
		return // the common case ("keep-alive"), without allocating
	}
	var kept []string
	for _, v := range vals {
		var toks []string
		for tok := range strings.SplitSeq(v, ",") {
			if tok = textproto.TrimString(tok); tok != "" && !names.has(tok) {
				toks = append(toks, tok)
			}
		}
		if len(toks) > 0 {
			kept = append(kept, strings.Join(toks, ", "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = kept
}

// headerSet is a few header names compared like stripHeaders does, with
// a bitmap of their lengths: on the hot path (every header of every
// request) most names differ in length and are told apart by one test.
type headerSet struct {
	names []string
	lens  [4]uint64 // bit n: a name n bytes long (n < 256)
	long  bool      // a name of 256 bytes or more
}

func newHeaderSet(names ...string) headerSet {
	s := headerSet{names: names}
	for _, n := range names {
		if l := len(n); l < 256 {
			s.lens[l>>6] |= 1 << (l & 63)
		} else {
			s.long = true
		}
	}
	return s
}

// has reports whether name is one of the set's, compared like
// stripHeaders.
func (s *headerSet) has(name string) bool {
	if l := len(name); l < 256 {
		if s.lens[l>>6]&(1<<(l&63)) == 0 {
			return false
		}
	} else if !s.long {
		return false
	}
	for _, n := range s.names {
		if sameHeaderName(name, n) {
			return true
		}
	}
	return false
}

// listedIn reports whether a Connection header value names one of the
// set's headers among its comma-separated tokens.
func (s *headerSet) listedIn(v string) bool {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if s.has(textproto.TrimString(tok)) {
			return true
		}
	}
	return false
}

// redirects decides between a redirect and Kratos's JSON error.
func (g *Gate) redirects(r *http.Request) bool {
	switch g.OnUnauthenticated {
	case "redirect":
		return true
	case "401":
		return false
	}
	return flows.PrefersHTML(r)
}

// gateRequest is a request that passed the gate: its session, and the
// placeholders derived from it.
type gateRequest struct {
	g *Gate
	s flows.GateSession
	// vals backs the values of the headers the gate sets when they are
	// few (the identity header and up to two mapped ones).
	vals [3]string
}

// The placeholders the gate provides.
const (
	phUserID       = "http.auth.user.id"
	phIdentityID   = "kratos.identity.id"
	phSessionID    = "kratos.session.id"
	phAAL          = "kratos.session.aal"
	phMethods      = "kratos.session.methods"
	phExpiresAt    = "kratos.session.expires_at"
	phTraitsPrefix = "kratos.identity.traits."
)

// placeholder is the replacer's provider of the gate's placeholders.
func (gr *gateRequest) placeholder(key string) (any, bool) {
	if v, ok := gr.value(key); ok {
		return v, true
	}
	return nil, false
}

// value resolves one of the gate's placeholders. Traits are loaded only
// when one is asked for (from the engine's cache).
func (gr *gateRequest) value(key string) (string, bool) {
	switch key {
	case phUserID, phIdentityID:
		return gr.s.IdentityID, true
	case phSessionID:
		return gr.s.SessionID, true
	case phAAL:
		return gr.s.AAL, true
	case phMethods:
		return string(gr.s.AppendMethods(nil, ",")), true
	case phExpiresAt:
		return gr.s.ExpiresAt.UTC().Format(time.RFC3339), true
	}
	if path, ok := strings.CutPrefix(key, phTraitsPrefix); ok {
		traits, err := gr.g.auth.Traits(&gr.s)
		if err != nil {
			return "", true
		}
		v, _ := flows.TraitValue(traits, path)
		return flows.TraitString(v), true
	}
	return "", false
}

// resolve is the value of one header mapping.
func (gr *gateRequest) resolve(repl *caddy.Replacer, m headerMapping) string {
	if m.key != "" {
		if v, ok := gr.value(m.key); ok {
			return v
		}
		if repl != nil {
			v, _ := repl.GetString(m.key)
			return v
		}
		return ""
	}
	if repl == nil {
		return m.value
	}
	return repl.ReplaceKnown(m.value, "")
}

// singlePlaceholder reports whether v is exactly one placeholder, "{key}".
func singlePlaceholder(v string) (string, bool) {
	if len(v) < 3 || v[0] != '{' || v[len(v)-1] != '}' {
		return "", false
	}
	k := v[1 : len(v)-1]
	if strings.ContainsAny(k, "{}\\") {
		return "", false
	}
	return k, true
}

// loginLocation is the login URL with return_to set to returnTo.
func (g *Gate) loginLocation(r *http.Request, returnTo string) string {
	if g.LoginURL == "" {
		return g.auth.LoginBrowserURL(r, returnTo)
	}
	var u url.URL
	if g.login != nil {
		u = *g.login
	} else {
		raw := g.LoginURL
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			raw = repl.ReplaceKnown(raw, "")
		}
		p, err := url.Parse(raw)
		if err != nil {
			return g.auth.LoginBrowserURL(r, returnTo)
		}
		u = *p
	}
	q := u.Query()
	q.Set("return_to", returnTo)
	u.RawQuery = q.Encode()
	return u.String()
}

// originalURL is the absolute URL the client asked for, before any
// rewrite by earlier handlers.
func originalURL(r *http.Request) string {
	uri := r.URL.RequestURI()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		uri = orig.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + uri
}

// stripHeaders deletes every request header that an upstream could read
// as one of names: any case, and with '_' for '-' (CGI/FastCGI and some
// frameworks map both X-Kratos-Authenticated-Identity-Id and
// X_Kratos_Authenticated_Identity_Id to HTTP_X_KRATOS_AUTHENTICATED_IDENTITY_ID).
func stripHeaders(h http.Header, names *headerSet) {
	for k := range h {
		if names.has(k) {
			delete(h, k)
		}
	}
}

// checkGateHeaderName accepts an HTTP header name that is none of taken
// (compared like stripHeaders does).
func checkGateHeaderName(name string, taken []string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("invalid header name %q", name)
	}
	for _, t := range taken {
		if sameHeaderName(name, t) {
			return fmt.Errorf("header %q is already set by the gate", name)
		}
	}
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Host", "Cookie", "Authorization", "X-Session-Token", "Content-Length", "Transfer-Encoding", "Connection":
		return fmt.Errorf("header %q cannot be set by the gate", name)
	}
	return nil
}

// checkGateName accepts a metrics label for a gate: 1 to 64 letters,
// digits and . _ - / :.
func checkGateName(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("%q is longer than 64 characters", name)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-/:", c) >= 0) {
			return fmt.Errorf("%q: only letters, digits and . _ - / : are allowed", name)
		}
	}
	return nil
}

// checkHTTPMethod accepts an HTTP method token such as OPTIONS.
func checkHTTPMethod(m string) error {
	if m == "" || !httpguts.ValidHeaderFieldName(m) {
		return fmt.Errorf("invalid HTTP method %q", m)
	}
	return nil
}

// checkTraitPath accepts a dotted trait path such as name.first.
func checkTraitPath(p string) error {
	if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
		return fmt.Errorf("invalid trait path %q", p)
	}
	return nil
}

// sameHeaderName compares header names case-insensitively, treating '_'
// and '-' as equal.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := fold(a[i]), fold(b[i])
		if ca != cb {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gate)(nil)
)
