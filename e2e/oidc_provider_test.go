package e2e

// A real OpenID provider for the oidc method's end-to-end tests: Ory Hydra
// v2.3.0 (the program of the e2e/hydra tools module, built once into the
// user's cache), on loopback with a database of its own (hydraDatabase), and a small
// login/consent app of the test's own that signs a given test user in with
// given claims (this is how Kratos's own end-to-end tests do social
// sign-in).
//
// Hydra's first build takes about 2 minutes (cgo sqlite), so the tests that
// need it run when KRATOS_TEST_OIDC=1 or CI=true, and skip otherwise
// (requireHydra). With the binary cached, starting Hydra takes about 2 s.
//
// Use:
//
//	h := sharedHydra(t)                  // one Hydra for the package run
//	cl := h.registerClient(t, []string{redirectURI}, oidcUser{Subject: "ada", Claims: …})
//	// configure caddy-kratos's generic provider with h.Issuer, cl.ID, cl.Secret;
//	// a browser that follows redirects signs in: the login/consent app
//	// accepts for the client's user (or the user registered for the
//	// request's login_hint with h.setUser).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hydraVersion is the Hydra the tools module pins (e2e/hydra/go.mod).
const hydraVersion = "v2.3.0"

// oidcUser is who the login/consent app signs in.
type oidcUser struct {
	Subject string
	// Claims go into the ID token and userinfo (Hydra's session.id_token):
	// email, email_verified, given_name, …
	Claims map[string]any
	// ACR and AMR are the authentication context Hydra puts in the ID token.
	ACR string
	AMR []string
	// Deny makes the login app reject the login (access_denied).
	Deny bool
}

type hydraClient struct {
	ID, Secret string
}

// hydraProvider is one running Hydra with its login/consent app.
type hydraProvider struct {
	Issuer   string // http://127.0.0.1:<port>/ (Hydra's issuer, with the slash)
	AdminURL string // http://127.0.0.1:<port>

	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
	app  *httptest.Server
	// dropDB removes Hydra's database (idempotent).
	dropDB func()

	mu       sync.Mutex
	byClient map[string]oidcUser
	byHint   map[string]oidcUser

	// Logins and Consents count the accepted requests.
	Logins, Consents atomic.Int32
}

// hydraEnabled reports whether the Hydra tests run (KRATOS_TEST_OIDC=1 or
// CI=true).
func hydraEnabled() bool {
	return os.Getenv("KRATOS_TEST_OIDC") == "1" || os.Getenv("CI") == "true"
}

func requireHydra(t *testing.T) {
	t.Helper()
	if !hydraEnabled() {
		t.Skip("needs Ory Hydra (built on first use, about 2 minutes): set KRATOS_TEST_OIDC=1 (CI=true runs it)")
	}
}

var (
	hydraBuildOnce sync.Once
	hydraBin       string
	hydraBuildErr  error
)

// hydraBinary builds Hydra from the e2e/hydra tools module into
// ~/.cache/caddy-kratos/tools/hydra-<version>-<hash of go.mod, go.sum,
// Go version, platform>/hydra, once per machine: later runs (and other
// checkouts with the same pins) reuse it. A file lock keeps two test
// processes from building it at once.
func hydraBinary(t *testing.T) string {
	t.Helper()
	hydraBuildOnce.Do(func() { hydraBin, hydraBuildErr = buildHydra() })
	if hydraBuildErr != nil {
		t.Fatalf("building Ory Hydra %s: %v", hydraVersion, hydraBuildErr)
	}
	return hydraBin
}

func buildHydra() (string, error) {
	modDir, err := filepath.Abs("hydra")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(modDir, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	fmt.Fprintf(h, "%s %s/%s sqlite", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "caddy-kratos", "tools", "hydra-"+hydraVersion+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	bin := filepath.Join(dir, "hydra")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(bin); err == nil { // another process built it meanwhile
		return bin, nil
	}
	start := time.Now()
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-tags", "sqlite", "-trimpath", "-o", tmp, "github.com/ory/hydra/v2")
	cmd.Dir = modDir
	// The test's GOFLAGS (-tags=nobadger,…) belong to caddy-kratos; Hydra's
	// database is sqlite, which needs cgo.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: built Ory Hydra %s in %s into %s\n", hydraVersion, time.Since(start).Round(time.Second), bin)
	return bin, nil
}

var (
	sharedHydraOnce sync.Once
	sharedHydraInst *hydraProvider
	sharedHydraErr  error
)

// sharedHydra is one Hydra for the whole package run (clients are cheap:
// register one per test), stopped after all tests.
func sharedHydra(t *testing.T) *hydraProvider {
	t.Helper()
	requireHydra(t)
	bin := hydraBinary(t)
	sharedHydraOnce.Do(func() {
		sharedHydraInst, sharedHydraErr = newHydra(bin)
		if sharedHydraErr == nil {
			atExit(func(failed bool) {
				if failed {
					fmt.Fprintf(os.Stderr, "\n===== shared Hydra output (tail) =====\n%s\n", sharedHydraInst.logs.tail(8<<10))
				}
				sharedHydraInst.stop()
			})
		}
	})
	if sharedHydraErr != nil {
		t.Fatal(sharedHydraErr)
	}
	return sharedHydraInst
}

// startHydra is a Hydra of the test's own (to stop it mid-test: the
// provider going down), stopped when the test ends.
func startHydra(t *testing.T) *hydraProvider {
	t.Helper()
	requireHydra(t)
	h, err := newHydra(hydraBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Hydra output (tail):\n%s", h.logs.tail(8<<10))
		}
		h.stop()
	})
	return h
}

func newHydra(bin string) (*hydraProvider, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	h := &hydraProvider{
		Issuer:   fmt.Sprintf("http://127.0.0.1:%d/", ports[0]),
		AdminURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		logs:     &syncBuffer{},
		byClient: map[string]oidcUser{},
		byHint:   map[string]oidcUser{},
		done:     make(chan struct{}),
	}
	dsn, cleanup, err := hydraDatabase(bin)
	if err != nil {
		return nil, err
	}
	h.dropDB = cleanup
	h.app = httptest.NewServer(http.HandlerFunc(h.serveApp))
	h.cmd = exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	h.cmd.Env = append(os.Environ(),
		"DSN="+dsn,
		"URLS_SELF_ISSUER="+h.Issuer,
		"URLS_LOGIN="+h.app.URL+"/login",
		"URLS_CONSENT="+h.app.URL+"/consent",
		"URLS_ERROR="+h.app.URL+"/error",
		"SECRETS_SYSTEM="+randHex(16),
		"SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_PUBLIC_PORT=%d", ports[0]),
		"SERVE_ADMIN_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", ports[1]),
		// Every authorization must carry PKCE: a provider that forgets it fails.
		"OAUTH2_PKCE_ENFORCED=true",
		"SQA_OPT_OUT=true",
		"LOG_LEVEL=warn",
	)
	h.cmd.Stdout, h.cmd.Stderr = h.logs, h.logs
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		h.app.Close()
		h.dropDB()
		return nil, err
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.AdminURL + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-h.done:
			h.app.Close()
			h.dropDB()
			return nil, fmt.Errorf("hydra exited at start:\n%s", h.logs.tail(8<<10))
		default:
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("hydra not ready after 30 s:\n%s", h.logs.tail(8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Hydra makes its signing keys on first use; two parallel first
	// authorizations would both make them, and one is sent back with an
	// error. Reading the key set makes both keys now.
	resp, err := http.Get(h.Issuer + ".well-known/jwks.json")
	if err != nil {
		h.stop()
		return nil, fmt.Errorf("hydra: reading its key set: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.stop()
		return nil, fmt.Errorf("hydra: GET .well-known/jwks.json: %s\n%s", resp.Status, h.logs.tail(8<<10))
	}
	return h, nil
}

// hydraDatabase makes an empty database for one Hydra and migrates it:
// a schema of its own on the PostgreSQL test server (pgtest.DSN) when one
// answers, else a SQLite file. Not Hydra's DSN=memory (SQLite's shared
// in-memory cache, whose table locks fail parallel sign-ins at random
// with "Unable to serialize access due to a concurrent update"), and
// SQLite only as the fallback: under the parallel tests' load two of
// Hydra's requests can lock each other out of a SQLite file until the
// busy timeout (30 s). PostgreSQL is what Hydra runs on in production.
func hydraDatabase(bin string) (dsn string, cleanup func(), err error) {
	if pgDSN, drop, err := newPGSchema(); err == nil {
		// A small pool: the PostgreSQL pass runs many instances beside it.
		dsn, cleanup = pgDSN+"&max_conns=10&max_idle_conns=5", drop
	} else {
		hydraSQLiteOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "e2e: no PostgreSQL test server (%v): Hydra runs on SQLite, where parallel sign-ins may time out\n", err)
		})
		dir, err := os.MkdirTemp("", "caddy-kratos-hydra-")
		if err != nil {
			return "", nil, err
		}
		// WAL, every transaction taking the write lock at its start, a
		// busy timeout: concurrent writers wait for each other.
		dsn = "sqlite://" + filepath.Join(dir, "hydra.sqlite") +
			"?_fk=true&mode=rwc&_journal_mode=WAL&_txlock=immediate&_busy_timeout=30000&max_conns=64&max_idle_conns=16"
		var once sync.Once
		cleanup = func() { once.Do(func() { os.RemoveAll(dir) }) }
	}
	migrate := exec.Command(bin, "migrate", "sql", "up", "--read-from-env", "--yes")
	migrate.Env = append(os.Environ(), "DSN="+dsn)
	if out, err := migrate.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("hydra migrate sql up: %v\n%s", err, out)
	}
	return dsn, cleanup, nil
}

var hydraSQLiteOnce sync.Once

// stop ends Hydra (SIGTERM, then SIGKILL) and the login/consent app, and
// removes its database.
func (h *hydraProvider) stop() {
	if h.cmd.Process != nil {
		select {
		case <-h.done:
		default:
			_ = h.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-h.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
				<-h.done
			}
		}
	}
	h.app.Close()
	h.dropDB()
}

// registerClient creates an OAuth 2.0 client (authorization code with
// client_secret_basic) whose sign-ins the login app accepts for user.
func (h *hydraProvider) registerClient(t *testing.T, redirectURIs []string, user oidcUser) hydraClient {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"client_secret":              randHex(24),
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid offline_access email profile",
		"redirect_uris":              redirectURIs,
		"token_endpoint_auth_method": "client_secret_basic",
	})
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := h.admin(context.Background(), http.MethodPost, "/admin/clients", body, &out); err != nil {
		t.Fatalf("hydra: register client: %v", err)
	}
	h.mu.Lock()
	h.byClient[out.ClientID] = user
	h.mu.Unlock()
	return hydraClient{ID: out.ClientID, Secret: out.ClientSecret}
}

// setUser makes the login app sign in user for requests with this
// login_hint (Kratos's upstream_parameters.login_hint), whatever the client.
func (h *hydraProvider) setUser(loginHint string, user oidcUser) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byHint[loginHint] = user
}

func (h *hydraProvider) admin(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, h.AdminURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// serveApp is the login/consent app: it accepts at once for the request's
// user (by login_hint, else by client).
func (h *hydraProvider) serveApp(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fail := func(err error) { http.Error(w, err.Error(), http.StatusInternalServerError) }
	redirect := func(path string, body any) {
		b, _ := json.Marshal(body)
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		if err := h.admin(ctx, http.MethodPut, path, b, &out); err != nil {
			fail(err)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	}
	switch r.URL.Path {
	case "/login":
		ch := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		var req struct {
			Client struct {
				ClientID string `json:"client_id"`
			} `json:"client"`
			OIDCContext struct {
				LoginHint string `json:"login_hint"`
			} `json:"oidc_context"`
		}
		if err := h.admin(ctx, http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+ch, nil, &req); err != nil {
			fail(err)
			return
		}
		u, ok := h.user(req.OIDCContext.LoginHint, req.Client.ClientID)
		if !ok {
			fail(fmt.Errorf("no test user for client %q / login_hint %q", req.Client.ClientID, req.OIDCContext.LoginHint))
			return
		}
		if u.Deny {
			redirect("/admin/oauth2/auth/requests/login/reject?login_challenge="+ch,
				map[string]any{"error": "access_denied", "error_description": "The test user denied the request."})
			return
		}
		h.Logins.Add(1)
		accept := map[string]any{"subject": u.Subject, "remember": false}
		if u.ACR != "" {
			accept["acr"] = u.ACR
		}
		if len(u.AMR) > 0 {
			accept["amr"] = u.AMR
		}
		redirect("/admin/oauth2/auth/requests/login/accept?login_challenge="+ch, accept)
	case "/consent":
		ch := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		var req struct {
			Subject  string   `json:"subject"`
			Scope    []string `json:"requested_scope"`
			Audience []string `json:"requested_access_token_audience"`
			Client   struct {
				ClientID string `json:"client_id"`
			} `json:"client"`
			OIDCContext struct {
				LoginHint string `json:"login_hint"`
			} `json:"oidc_context"`
		}
		if err := h.admin(ctx, http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req); err != nil {
			fail(err)
			return
		}
		u, ok := h.user(req.OIDCContext.LoginHint, req.Client.ClientID)
		if !ok || u.Subject != req.Subject {
			fail(fmt.Errorf("consent for an unknown subject %q", req.Subject))
			return
		}
		h.Consents.Add(1)
		redirect("/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch, map[string]any{
			"grant_scope": req.Scope, "grant_access_token_audience": req.Audience, "remember": false,
			"session": map[string]any{"id_token": u.Claims},
		})
	case "/error":
		http.Error(w, "hydra error: "+r.URL.Query().Get("error")+": "+r.URL.Query().Get("error_description"), http.StatusBadRequest)
	default:
		http.NotFound(w, r)
	}
}

func (h *hydraProvider) user(hint, client string) (oidcUser, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u, ok := h.byHint[hint]; ok && hint != "" {
		return u, true
	}
	u, ok := h.byClient[client]
	return u, ok
}

// browseToCallback plays a browser from the authorization URL through
// Hydra and the login/consent app until the redirect to a URL under
// callbackPrefix, which it returns without following.
func browseToCallback(t *testing.T, authURL, callbackPrefix string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var stopped *url.URL
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callbackPrefix) {
			stopped = req.URL
			return http.ErrUseLastResponse
		}
		if len(via) > 15 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	resp, err := hc.Get(authURL)
	if err != nil {
		t.Fatalf("browsing %s: %v", authURL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if stopped == nil {
		t.Fatalf("the provider did not redirect to %s: %s %s", callbackPrefix, resp.Status, body)
	}
	return stopped
}
