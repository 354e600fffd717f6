// Package e2e drives a real caddy-kratos binary through the official Ory Go
// SDK (github.com/ory/client-go) and raw net/http where the SDK cannot express
// the request. The expectations come from the spec in /work/shared/spec
// (observed.md wins) and the captured Kratos exchanges in spec/samples.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	ory "github.com/ory/client-go"

	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
)

// binPath is the caddy-kratos binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	switch e2eStorage {
	case "", "badger", "postgres":
	default:
		fmt.Fprintf(os.Stderr, "e2e: KRATOS_E2E_STORAGE=%q: want badger (the default) or postgres\n", e2eStorage)
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "caddy-kratos-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: tempdir:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "caddy-kratos")
	build := exec.Command("go", "build", "-tags", "nobadger,nomysql,nopgx", "-trimpath", "-o", binPath, "./cmd/caddy-kratos")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building caddy-kratos failed: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if sharedInst != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "\n===== shared caddy-kratos instance output (tail) =====\n%s\n", sharedInst.logs.tail(24<<10))
		}
		sharedInst.stop()
	}
	runExitHooks(code != 0)
	os.RemoveAll(dir)
	os.Exit(code)
}

// exitHooks release what outlives single tests (more shared instances,
// their SMTP servers); TestMain runs them after all tests.
var (
	exitMu    sync.Mutex
	exitHooks []func(failed bool)
)

// atExit registers f to run after all tests; failed reports whether any
// test failed.
func atExit(f func(failed bool)) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitHooks = append(exitHooks, f)
}

func runExitHooks(failed bool) {
	exitMu.Lock()
	hooks := exitHooks
	exitHooks = nil
	exitMu.Unlock()
	// Last registered, first run (like defers): an instance stops before
	// the database schema or the SMTP server it was started on goes away.
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i](failed)
	}
}

// ---------------------------------------------------------------------------
// Instances

// instanceOptions changes the generated Caddyfile.
type instanceOptions struct {
	// GlobalKratos are extra lines inside the global `kratos { … }` block,
	// e.g. "flow_lifespan 2s" or "registration_style unified".
	GlobalKratos []string
	// ExtraSites is appended to the Caddyfile verbatim.
	ExtraSites string
	// Env is added to the process environment (KEY=value), for {env.KEY}
	// placeholders.
	Env []string
	// BcryptCost replaces the default bcrypt_cost 4 (slow hashes widen
	// race windows).
	BcryptCost int
	// Storage picks the engine whatever KRATOS_E2E_STORAGE says: ""
	// follows the variable, "badger" the instance's own directory,
	// "postgres" a schema of the instance's own on the test server, and a
	// postgres:// DSN that database (several instances on one database:
	// pgSchemaDSN gives a schema for them).
	Storage string
	// PublicURL replaces public_url (default http://127.0.0.1:<apiPort>/),
	// e.g. one address in front of several nodes. apiBase stays the
	// node's own port.
	PublicURL string
	// OIDC renders the provider blocks (`provider <id> { … }`) of the
	// oidc option for the instance's public URL, the base of their
	// callback URLs; with it the Caddyfile gets `methods oidc` and the
	// `oidc { … }` block. It is called whenever the Caddyfile is
	// rendered (oidcProviders registers its Hydra clients once).
	OIDC func(publicURL string) string
}

// instance is one running caddy-kratos process with its ports, storage
// directory and upstream echo server.
type instance struct {
	dir        string // per-instance temp dir (config, xdg dirs)
	storage    string // Badger directory (unused on PostgreSQL)
	dsn        string // PostgreSQL DSN; empty on Badger
	dropSchema func() // drops the instance's own schema (idempotent); nil if none
	configPath string
	adminPort  int
	apiPort    int
	appPort    int
	opts       instanceOptions

	publicURL string // http://127.0.0.1:<apiPort>/ (exactly as configured)
	apiBase   string // public URL without trailing slash
	appBase   string // gated app, without trailing slash
	adminBase string

	upstream *echoUpstream
	logs     *syncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var (
	sharedOnce sync.Once
	sharedInst *instance
	sharedErr  error
)

// shared returns the instance shared by all parallel tests that do not need
// their own configuration. Tests on it must use unique identities.
func shared(t *testing.T) *instance {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-kratos-shared-")
		if err != nil {
			sharedErr = err
			return
		}
		// Every parallel test signs up from 127.0.0.1: the per-IP abuse
		// limits (tested on their own instance in ratelimit_test.go) would
		// trip on a shared instance.
		in, err := newInstance(dir, instanceOptions{GlobalKratos: []string{"rate_limits off"}})
		if err != nil {
			sharedErr = err
			return
		}
		sharedInst = in
		sharedErr = in.start()
	})
	if sharedErr != nil {
		t.Fatalf("shared caddy-kratos instance did not start: %v\n--- output ---\n%s", sharedErr, sharedLogs())
	}
	return sharedInst
}

// newSharedInstance starts an instance in a new temporary directory that
// outlives single tests: it is stopped and its directory removed after
// all tests (atExit). Its output is printed when a test failed.
func newSharedInstance(prefix string, opts instanceOptions) (*instance, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	in, err := newInstance(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	atExit(func(failed bool) {
		if failed {
			fmt.Fprintf(os.Stderr, "\n===== shared instance %s output (tail) =====\n%s\n", dir, in.logs.tail(24<<10))
		}
		in.stop()
		os.RemoveAll(dir)
	})
	return in, in.start()
}

func sharedLogs() string {
	if sharedInst == nil {
		return ""
	}
	return sharedInst.logs.tail(16 << 10)
}

// startInstance starts a dedicated instance that is stopped when t ends. Its
// output is shown when t fails.
func startInstance(t *testing.T, opts instanceOptions) *instance {
	t.Helper()
	in, err := newInstance(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.stop()
		if in.dropSchema != nil {
			in.dropSchema()
		}
		if t.Failed() {
			t.Logf("--- caddy-kratos output (tail) ---\n%s", in.logs.tail(24<<10))
		}
	})
	if err := in.start(); err != nil {
		t.Fatalf("caddy-kratos did not start: %v\n--- output ---\n%s", err, in.logs.tail(24<<10))
	}
	return in
}

func newInstance(dir string, opts instanceOptions) (*instance, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	in := &instance{
		dir:       dir,
		storage:   filepath.Join(dir, "data"),
		adminPort: ports[0],
		apiPort:   ports[1],
		appPort:   ports[2],
		opts:      opts,
		upstream:  newEchoUpstream(),
		logs:      &syncBuffer{},
	}
	in.configPath = filepath.Join(dir, "Caddyfile")
	in.publicURL = fmt.Sprintf("http://127.0.0.1:%d/", in.apiPort)
	in.apiBase = fmt.Sprintf("http://127.0.0.1:%d", in.apiPort)
	in.appBase = fmt.Sprintf("http://127.0.0.1:%d", in.appPort)
	in.adminBase = fmt.Sprintf("http://127.0.0.1:%d", in.adminPort)
	if opts.PublicURL != "" {
		in.publicURL = opts.PublicURL
	}
	for _, d := range []string{in.storage, filepath.Join(dir, "xdg-data"), filepath.Join(dir, "xdg-config")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	switch engine := opts.Storage; {
	case engine == "" && e2eStorage == "postgres", engine == "postgres":
		dsn, drop, err := newPGSchema()
		if err != nil {
			return nil, err
		}
		in.dsn, in.dropSchema = dsn, drop
		// Dropped with the instance (startInstance) or, at the latest,
		// when the test binary exits.
		atExit(func(bool) { drop() })
	case strings.HasPrefix(engine, "postgres://"), strings.HasPrefix(engine, "postgresql://"):
		in.dsn = engine
	case engine == "", engine == "badger":
	default:
		return nil, fmt.Errorf("instanceOptions.Storage %q: want badger, postgres or a postgres:// DSN", engine)
	}
	return in, nil
}

// storageRef is the value of the Caddyfile's storage line: the DSN on
// PostgreSQL, else the Badger directory.
func (in *instance) storageRef() string {
	if in.dsn != "" {
		return in.dsn
	}
	return in.storage
}

// onPostgres reports whether the instance keeps its data in PostgreSQL.
func (in *instance) onPostgres() bool { return in.dsn != "" }

// caddyfile renders the configuration for opts.
func (in *instance) caddyfile(opts instanceOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin 127.0.0.1:%d
	auto_https off
	kratos {
		storage %s
		public_url %s
		dev
		default_return_url %s
		bcrypt_cost %d
		ui_url login http://127.0.0.1:4455/login
		ui_url registration http://127.0.0.1:4455/registration
		ui_url error http://127.0.0.1:4455/error
		allowed_return_urls %s/
`, in.adminPort, in.storageRef(), in.publicURL, in.publicURL, max(opts.BcryptCost, 4), in.appBase)
	for _, l := range opts.GlobalKratos {
		fmt.Fprintf(&b, "\t\t%s\n", l)
	}
	if opts.OIDC != nil {
		fmt.Fprintf(&b, "\t\tmethods oidc\n\t\toidc {\n%s\t\t}\n", opts.OIDC(in.publicURL))
	}
	fmt.Fprintf(&b, `	}
}

http://127.0.0.1:%d {
	kratos
}

http://127.0.0.1:%d {
	kratos
	kratos_gate {
		allow /public/*
	}
	reverse_proxy %s
}
`, in.apiPort, in.appPort, in.upstream.hostPort())
	if opts.ExtraSites != "" {
		b.WriteString("\n")
		b.WriteString(opts.ExtraSites)
		b.WriteString("\n")
	}
	return b.String()
}

// start writes the Caddyfile and runs the binary until /health/ready is 200.
func (in *instance) start() error {
	if err := os.WriteFile(in.configPath, []byte(in.caddyfile(in.opts)), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(binPath, "run", "--config", in.configPath, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(),
		"HOME="+in.dir,
		"XDG_DATA_HOME="+filepath.Join(in.dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(in.dir, "xdg-config"),
	)
	cmd.Env = append(cmd.Env, in.opts.Env...)
	cmd.Stdout = in.logs
	cmd.Stderr = in.logs
	fmt.Fprintf(in.logs, "\n=== starting %s (config %s) ===\n", binPath, in.configPath)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(in.logs, "\n=== process exited: %v ===\n", err)
		close(done)
	}()
	in.mu.Lock()
	in.cmd, in.done = cmd, done
	in.mu.Unlock()

	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return errors.New("caddy-kratos exited before becoming ready")
		default:
		}
		// The sites serve as soon as the HTTP app starts; the admin API
		// answers 503 until Caddy has made the new config the running one
		// a moment later. Tests use both at once.
		ready := 0
		for _, u := range []string{in.apiBase + "/health/ready", in.adminBase + "/kratos/admin/health/ready"} {
			resp, err := hc.Get(u)
			if err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				break
			}
			ready++
		}
		if ready == 2 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.stop()
	return errors.New("GET /health/ready and the admin API's did not both answer 200 within 20s")
}

// stop sends SIGTERM and kills the process after 5 s. It reports whether the
// process exited by itself (graceful shutdown).
func (in *instance) stop() (graceful bool) {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		graceful = true
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return graceful
}

// running reports whether the process is still alive.
func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done == nil {
		return false
	}
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// handedOut remembers every port freePorts returned in this test process,
// so two parallel tests (or an instance and a later reload's new site)
// never share one.
var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// freePorts picks ports below Linux's ephemeral range (32768–60999): a
// port probed with :0 and closed again can be handed by the kernel to the
// next :0 listener (the in-process SMTP and echo servers) before
// caddy-kratos binds it; ports outside that range never are.
func freePorts(n int) ([]int, error) {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			return nil, errors.New("no free port below the ephemeral range")
		}
		p := 20000 + mrand.IntN(12000)
		if handedOut[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		handedOut[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// csrfCookieName is csrf_token_<sha256 hex of the public URL string>.
func (in *instance) csrfCookieName() string {
	sum := sha256.Sum256([]byte(in.publicURL))
	return "csrf_token_" + hex.EncodeToString(sum[:])
}

// ---------------------------------------------------------------------------
// PostgreSQL

// e2eStorage is KRATOS_E2E_STORAGE: "postgres" starts every instance on
// PostgreSQL (a schema of its own on pgtest.DSN(): KRATOS_TEST_POSTGRES
// or the local test server); "" or "badger" on Badger.
var e2eStorage = os.Getenv("KRATOS_E2E_STORAGE")

// newPGSchema creates a schema ck_e2e_<random> on the test server and
// returns a DSN whose search_path names it, and a function (idempotent)
// that drops it.
func newPGSchema() (dsn string, drop func(), err error) {
	base := pgtest.DSN()
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		return "", nil, fmt.Errorf("e2e needs the PostgreSQL test server as a postgres:// URL, got %q", base)
	}
	schema := "ck_e2e_" + randHex(6)
	if err := pgExec(base, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL test server (KRATOS_TEST_POSTGRES or %s; scripts/postgres-test-deps.sh starts one): %w", pgtest.DefaultDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	var once sync.Once
	return u.String(), func() {
		once.Do(func() {
			if err := pgExec(base, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: dropping schema %s: %v\n", schema, err)
			}
		})
	}, nil
}

// pgSchemaDSN gives t a schema of its own (dropped when t ends, after the
// instances started later in t have stopped) and returns its DSN, for
// several instances on one database. Skips t where no server answers
// (fails under CI or with KRATOS_TEST_POSTGRES set).
func pgSchemaDSN(t *testing.T) string {
	t.Helper()
	pgtest.Available(t)
	dsn, drop, err := newPGSchema()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return dsn
}

// pgExec runs one statement on a new connection to dsn.
func pgExec(dsn, sql string, args ...any) error {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(c, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(c)
	_, err = conn.Exec(c, sql, args...)
	return err
}

// ---------------------------------------------------------------------------
// Upstream behind the gate

// echoUpstream answers every request with the request's path and headers as
// JSON and counts the requests it saw.
type echoUpstream struct {
	srv  *httptest.Server
	hits atomic.Int64
	// probes holds the X-E2e-Probe values of the requests it saw, so a
	// test can tell whether its own request got through while parallel
	// tests use the same upstream (hits alone cannot).
	probes sync.Map
}

// probeHeader tags one request so the upstream's sighting can be checked.
const probeHeader = "X-E2e-Probe"

// saw reports whether a request tagged with probe reached the upstream.
func (u *echoUpstream) saw(probe string) bool {
	_, ok := u.probes.Load(probe)
	return ok
}

type echoResponse struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	URI     string              `json:"uri"` // the request target as received, escapes and dot segments kept
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
}

func newEchoUpstream() *echoUpstream {
	u := &echoUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		if p := r.Header.Get(probeHeader); p != "" {
			u.probes.Store(p, true)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Upstream", "1")
		_ = json.NewEncoder(w).Encode(echoResponse{Method: r.Method, Path: r.URL.Path, URI: r.RequestURI, Query: r.URL.RawQuery, Headers: r.Header})
	}))
	return u
}

func (u *echoUpstream) hostPort() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// ---------------------------------------------------------------------------
// Clients

// noRedirect makes 3xx answers visible to the test instead of following them.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newSDK returns an Ory client for the instance's public API using hc.
func (in *instance) newSDK(hc *http.Client) *ory.APIClient {
	cfg := ory.NewConfiguration()
	cfg.Servers = ory.ServerConfigurations{{URL: in.apiBase}}
	cfg.HTTPClient = hc
	cfg.UserAgent = "caddy-kratos-e2e"
	return ory.NewAPIClient(cfg)
}

// api returns an SDK client for native (API) flows: no cookie jar, no
// redirects followed.
func (in *instance) api() *ory.APIClient {
	return in.newSDK(&http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect})
}

// plainHTTP is a cookie-less client that does not follow redirects.
func plainHTTP() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect}
}

// browser is one user agent: a cookie jar shared by raw requests and the SDK.
type browser struct {
	in  *instance
	jar *cookiejar.Jar
	hc  *http.Client
	sdk *ory.APIClient
}

func newBrowser(t *testing.T, in *instance) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Jar: jar, CheckRedirect: noRedirect}
	return &browser{in: in, jar: jar, hc: hc, sdk: in.newSDK(hc)}
}

// cookie returns the browser's cookie named name for the API host, or nil.
func (b *browser) cookie(name string) *http.Cookie {
	u := mustURL(b.in.publicURL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// cookieHeader renders the jar's cookies for the API host as a Cookie header.
func (b *browser) cookieHeader() string {
	var parts []string
	for _, c := range b.jar.Cookies(mustURL(b.in.publicURL)) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

var ctx = context.Background()

// ---------------------------------------------------------------------------
// Raw HTTP

type hdr map[string]string

// do sends a raw request and returns the response with its body read.
func do(t *testing.T, hc *http.Client, method, url string, h hdr, body []byte) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// ---------------------------------------------------------------------------
// Wire shapes used for assertions on raw bodies

type uiText struct {
	ID      int64          `json:"id"`
	Text    string         `json:"text"`
	Type    string         `json:"type"`
	Context map[string]any `json:"context"`
}

type uiNode struct {
	Type       string         `json:"type"`
	Group      string         `json:"group"`
	Attributes map[string]any `json:"attributes"`
	Messages   []uiText       `json:"messages"`
	Meta       struct {
		Label *uiText `json:"label"`
	} `json:"meta"`
}

func (n uiNode) name() string {
	s, _ := n.Attributes["name"].(string)
	return s
}

type flowJSON struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	State        any    `json:"state"`
	RequestURL   string `json:"request_url"`
	ReturnTo     string `json:"return_to"`
	ExpiresAt    string `json:"expires_at"`
	IssuedAt     string `json:"issued_at"`
	RequestedAAL string `json:"requested_aal"`
	UI           *struct {
		Action   string   `json:"action"`
		Method   string   `json:"method"`
		Nodes    []uiNode `json:"nodes"`
		Messages []uiText `json:"messages"`
	} `json:"ui"`
}

type genericError struct {
	ID      string         `json:"id"`
	Code    int            `json:"code"`
	Status  string         `json:"status"`
	Reason  string         `json:"reason"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

type errorJSON struct {
	Error             *genericError `json:"error"`
	UseFlowID         string        `json:"use_flow_id"`
	ExpiredAt         string        `json:"expired_at"`
	Since             any           `json:"since"`
	RedirectBrowserTo string        `json:"redirect_browser_to"`
}

func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not the expected JSON (%T): %v\nbody: %s", v, err, clip(body))
	}
	return v
}

// decodeError decodes an errorGeneric body and fails if it has no error
// object or the code does not match status.
func decodeError(t *testing.T, status int, body []byte) errorJSON {
	t.Helper()
	e := decodeJSON[errorJSON](t, body)
	if e.Error == nil {
		t.Fatalf("expected an errorGeneric body {\"error\":{…}}, got: %s", clip(body))
	}
	if e.Error.Code != status {
		t.Errorf("error.code = %d, want %d (body %s)", e.Error.Code, status, clip(body))
	}
	if e.Error.Message == "" {
		t.Errorf("error.message is empty (body %s)", clip(body))
	}
	if want := http.StatusText(status); e.Error.Status != want {
		t.Errorf("error.status = %q, want %q", e.Error.Status, want)
	}
	return e
}

// decodeFlow decodes a flow body and fails if it has no ui container.
func decodeFlow(t *testing.T, body []byte) flowJSON {
	t.Helper()
	f := decodeJSON[flowJSON](t, body)
	if f.ID == "" || f.UI == nil {
		t.Fatalf("expected a flow body with id and ui, got: %s", clip(body))
	}
	return f
}

func (f flowJSON) node(name string) *uiNode {
	for i := range f.UI.Nodes {
		if f.UI.Nodes[i].name() == name {
			return &f.UI.Nodes[i]
		}
	}
	return nil
}

func (f flowJSON) messageIDs() []int64 {
	var ids []int64
	for _, m := range f.UI.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

// sdkErrBody returns the response body carried by an SDK error.
func sdkErrBody(t *testing.T, err error) []byte {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error from the SDK call, got nil")
	}
	var ge *ory.GenericOpenAPIError
	if errors.As(err, &ge) {
		return ge.Body()
	}
	t.Fatalf("SDK error is not a GenericOpenAPIError: %T %v", err, err)
	return nil
}

// wantSDKStatus fails unless resp has status want; on mismatch it prints
// the error and body.
func wantSDKStatus(t *testing.T, resp *http.Response, err error, want int) {
	t.Helper()
	if resp == nil {
		t.Fatalf("no HTTP response (want %d): %v", want, err)
	}
	if resp.StatusCode != want {
		var body []byte
		var ge *ory.GenericOpenAPIError
		if errors.As(err, &ge) {
			body = ge.Body()
		}
		t.Fatalf("status = %d, want %d; err = %v; body: %s", resp.StatusCode, want, err, clip(body))
	}
	if want < 300 && err != nil {
		t.Fatalf("status %d but SDK failed to decode the answer: %v", want, err)
	}
}

// wantStatus fails unless resp has status want.
func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status = %d, want %d; body: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, clip(body))
	}
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func sdkMessageIDs(msgs []ory.UiText) []int64 {
	var ids []int64
	for _, m := range msgs {
		ids = append(ids, m.Id)
	}
	return ids
}

// sdkNode finds an input node by name.
func sdkNode(nodes []ory.UiNode, name string) *ory.UiNode {
	for i := range nodes {
		if a := nodes[i].Attributes.UiNodeInputAttributes; a != nil && a.Name == name {
			return &nodes[i]
		}
	}
	return nil
}

// sdkCSRF returns the csrf_token node value.
func sdkCSRF(t *testing.T, nodes []ory.UiNode) string {
	t.Helper()
	n := sdkNode(nodes, "csrf_token")
	if n == nil {
		t.Fatal("flow has no csrf_token node")
	}
	s, ok := n.Attributes.UiNodeInputAttributes.Value.(string)
	if !ok {
		t.Fatalf("csrf_token value is %T, want string", n.Attributes.UiNodeInputAttributes.Value)
	}
	return s
}

// cookieFrom returns the Set-Cookie named name of resp, or nil.
func cookieFrom(resp *http.Response, name string) *http.Cookie {
	var last *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			last = c
		}
	}
	return last
}

// assertCookieAttrs checks HttpOnly, SameSite=Lax, not Secure (dev over
// http) and Path=/.
func assertCookieAttrs(t *testing.T, c *http.Cookie) {
	t.Helper()
	if !c.HttpOnly {
		t.Errorf("cookie %s: HttpOnly missing (%s)", c.Name, c.Raw)
	}
	if c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %s: SameSite = %v, want Lax (%s)", c.Name, c.SameSite, c.Raw)
	}
	if c.Secure {
		t.Errorf("cookie %s: Secure set in dev mode over http (%s)", c.Name, c.Raw)
	}
	if c.Path != "/" {
		t.Errorf("cookie %s: Path = %q, want / (%s)", c.Name, c.Path, c.Raw)
	}
	if c.Domain != "" {
		t.Errorf("cookie %s: Domain = %q, want host-only (%s)", c.Name, c.Domain, c.Raw)
	}
}

// ---------------------------------------------------------------------------
// Identities

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func randEmail() string { return "e2e-" + randHex(6) + "@example.com" }

// randPassword is long, random and unlike any e-mail address we use.
func randPassword() string { return "Qx7!vT2#" + randHex(10) }

type user struct {
	Email      string
	Password   string
	IdentityID string
	Token      string // session token from registration
	SessionID  string
}

// registerNative registers a new identity with a one-step password submit
// on a native flow and returns it with its first session.
func registerNative(t *testing.T, in *instance) user {
	t.Helper()
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	u := user{Email: randEmail(), Password: randPassword()}
	body := ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(
		ory.NewUpdateRegistrationFlowWithPasswordMethod("password", u.Password, map[string]any{"email": u.Email}))
	reg, resp, err := c.FrontendAPI.UpdateRegistrationFlow(ctx).Flow(flow.Id).UpdateRegistrationFlowBody(body).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if reg.Identity == nil || reg.Session == nil || reg.SessionToken == nil {
		t.Fatalf("registration answer lacks identity/session/session_token: %+v", reg)
	}
	u.IdentityID = reg.Identity.Id
	u.Token = *reg.SessionToken
	u.SessionID = reg.Session.Id
	return u
}

// loginNative logs u in on a fresh native flow and returns the new token and
// session.
func loginNative(t *testing.T, in *instance, email, password string) (string, *ory.Session) {
	t.Helper()
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	body := ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(
		ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", password))
	res, resp, err := c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).UpdateLoginFlowBody(body).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if res.SessionToken == nil || *res.SessionToken == "" {
		t.Fatalf("native login returned no session_token")
	}
	return *res.SessionToken, &res.Session
}

// loginBrowser logs the browser in through a browser flow submitted as JSON
// (the SPA path) and returns the answer; the session cookie lands in the jar.
func (b *browser) login(t *testing.T, email, password string) *ory.SuccessfulNativeLogin {
	t.Helper()
	flow, resp, err := b.sdk.FrontendAPI.CreateBrowserLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	pw := ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", password)
	pw.SetCsrfToken(sdkCSRF(t, flow.Ui.Nodes))
	res, resp, err := b.sdk.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).
		UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if b.cookie("ory_kratos_session") == nil {
		t.Fatal("browser login did not set the ory_kratos_session cookie")
	}
	return res
}

// whoamiToken calls toSession with X-Session-Token and returns the status.
func whoamiToken(t *testing.T, in *instance, token string) (*ory.Session, int) {
	t.Helper()
	s, resp, err := in.api().FrontendAPI.ToSession(ctx).XSessionToken(token).Execute()
	if resp == nil {
		t.Fatalf("toSession: %v", err)
	}
	if resp.StatusCode == http.StatusOK && err != nil {
		t.Fatalf("toSession 200 but undecodable: %v", err)
	}
	return s, resp.StatusCode
}

// ---------------------------------------------------------------------------
// Misc

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
	}
	return true
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// assertSessionToken checks the ory_st_ + 32 alnum format.
func assertSessionToken(t *testing.T, tok string) {
	t.Helper()
	if !strings.HasPrefix(tok, "ory_st_") || len(tok) != 39 || !isAlnum(tok[7:]) {
		t.Errorf("session token %q is not ory_st_ + 32 alphanumerics", tok)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// wantErrorHeaders checks the headers Kratos puts on error answers: a JSON
// Content-Type and Ory-Error-Id (present, empty when the error has no id).
func wantErrorHeaders(t *testing.T, resp *http.Response, id string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	v, ok := resp.Header["Ory-Error-Id"]
	if !ok {
		t.Errorf("error answer without an Ory-Error-Id header (want %q)", id)
	} else if len(v) != 1 || v[0] != id {
		t.Errorf("Ory-Error-Id = %q, want %q", v, id)
	}
}
