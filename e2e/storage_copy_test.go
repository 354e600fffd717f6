package e2e

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// TestStorageCopyKeepsEveryoneLoggedIn (issue 14, moving over): a gateway
// on Badger with users logged in (native session tokens, a browser
// cookie), a mail still queued and an identifier blocked by the login
// limit is stopped; `caddy-kratos kratos storage copy --from <dir> --to
// <dsn>` moves its store into PostgreSQL, twice (a repeated run, e.g.
// after an interrupted one, is harmless); the same gateway (same
// Caddyfile but for the storage line, no secrets configured: they come
// across) started on PostgreSQL still knows every session, delivers the
// queued mail once and keeps the block.
func TestStorageCopyKeepsEveryoneLoggedIn(t *testing.T) {
	t.Parallel()
	m := newMove(t)
	out := m.copy(t, "first copy")
	t.Logf("first copy: %s", lastLine(out))
	out = m.copy(t, "second copy")
	t.Logf("second copy: %s", lastLine(out))
	m.startOnPostgres(t)
	m.stillLoggedIn(t, "on PostgreSQL")

	// The queued mail goes out once, and its code works.
	msg := m.mails.last(t, m.users[2].Email, subjectRecovery, 1)
	wantRecovered(t, m.in, m.recoveryFlow, msg.code(t))
	time.Sleep(time.Second)
	if n := len(m.mails.to(m.users[2].Email, subjectRecovery)); n != 1 {
		t.Errorf("%d recovery mails after the move, want exactly 1", n)
	}
	// The block came across.
	if r := nativeLoginRaw(t, m.in, m.users[3].Email, m.users[3].Password); r.status != http.StatusTooManyRequests {
		t.Errorf("the login block did not come across: %d %s, want 429", r.status, clip(r.body))
	}
	// New sign-ups and logins work, and the moved identifiers stay taken.
	fresh := registerNative(t, m.in)
	if s, st := whoamiToken(t, m.in, fresh.Token); st != http.StatusOK || s.Identity.Id != fresh.IdentityID {
		t.Errorf("a sign-up on PostgreSQL: whoami %d", st)
	}
	loginNative(t, m.in, m.users[0].Email, m.users[0].Password)
	if r := regAgain(t, m.in, m.users[1].Email); !strings.Contains(string(r), "4000007") {
		t.Errorf("re-registering a moved address: %s, want 4000007", clip(r))
	}
}

// TestStorageCopyAgainAfterTheMove: `storage copy` run once more after the
// gateway has served from PostgreSQL (an operator catching up, or a
// mistake) is refused, and undoes nothing that happened since: a
// recovery code used on PostgreSQL stays used, a session logged out
// there stays out, a delivered mail is not sent again, and sessions made
// there stay. (Before the refusal, such a run brought all three back.)
func TestStorageCopyAgainAfterTheMove(t *testing.T) {
	t.Parallel()
	m := newMove(t)
	m.copy(t, "first copy")
	m.startOnPostgres(t)
	msg := m.mails.last(t, m.users[2].Email, subjectRecovery, 1)
	wantRecovered(t, m.in, m.recoveryFlow, msg.code(t))
	resp, err := m.in.api().FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(*ory.NewPerformNativeLogoutBody(m.users[3].Token)).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	fresh := registerNative(t, m.in)

	out, err := m.run()
	if err == nil {
		t.Errorf("a copy into the database the gateway serves from succeeded:\n%s", out)
	} else if !strings.Contains(out, "gateways have served from this database") {
		t.Errorf("the refused copy does not say why (%v):\n%s", err, out)
	} else {
		t.Logf("copy after the move: %v: %s", err, lastLine(out))
	}
	if _, st := whoamiToken(t, m.in, m.users[3].Token); st != http.StatusUnauthorized {
		t.Errorf("a session logged out on PostgreSQL passes whoami again after the copy: %d, want 401", st)
	}
	if s, st := whoamiToken(t, m.in, fresh.Token); st != http.StatusOK || s.Identity.Id != fresh.IdentityID {
		t.Errorf("a session made on PostgreSQL: whoami %d after the copy", st)
	}
	for i, u := range m.users[:2] { // user 2's recovery signed out its other sessions
		if _, st := whoamiToken(t, m.in, u.Token); st != http.StatusOK {
			t.Errorf("user %d: whoami %d after the copy", i, st)
		}
	}
	_, resp, err = m.in.api().FrontendAPI.UpdateRecoveryFlow(ctx).Flow(m.recoveryFlow).UpdateRecoveryFlowBody(recoveryCodeBody(msg.code(t), "")).Execute()
	if resp != nil && resp.StatusCode == http.StatusUnprocessableEntity {
		t.Errorf("the recovery code used on PostgreSQL works again after the copy (a single-use code brought back): %s", clip(sdkErrBodyOrNil(err)))
	}
	time.Sleep(6 * time.Second) // the courier's poll interval (5 s) and a retry
	if n := len(m.mails.to(m.users[2].Email, subjectRecovery)); n != 1 {
		t.Errorf("%d recovery mails after the copy, want exactly 1 (the delivered mail came back into the queue)", n)
	}
}

// move is a Badger gateway's store, ready to be copied: users with
// sessions, a queued mail, a blocked identifier; the gateway stopped.
type move struct {
	in           *instance
	dsn          string
	mails        *mailServer
	users        []user // 0: two sessions; 1: a browser too; 2: a queued recovery mail; 3: blocked
	second       string // users[0]'s second session token
	browser      *browser
	recoveryFlow string
}

func newMove(t *testing.T) *move {
	t.Helper()
	m := &move{dsn: pgSchemaDSN(t), mails: startMailServer(t)}
	in := startInstance(t, instanceOptions{Storage: "badger", GlobalKratos: append(mailLines(m.mails), "recovery",
		"rate_limits {\n\t\t\tlogin_failures_per_identifier 3\n\t\t}")})
	m.in = in
	m.users = make([]user, 4)
	for i := range m.users {
		m.users[i] = registerNative(t, in)
	}
	m.second, _ = loginNative(t, in, m.users[0].Email, m.users[0].Password)
	m.browser = newBrowser(t, in)
	m.browser.login(t, m.users[1].Email, m.users[1].Password)
	// A mail queued while the SMTP server is down.
	m.mails.stop()
	m.recoveryFlow = startRecovery(t, in, m.users[2].Email)
	// users[3] is blocked by the login limit.
	for i := 0; i < 3; i++ {
		r := nativeLoginRaw(t, in, m.users[3].Email, "wrong-"+randHex(4))
		wantWrongPassword(t, "wrong password before the move", r.status, r.body)
	}
	if r := nativeLoginRaw(t, in, m.users[3].Email, m.users[3].Password); r.status != http.StatusTooManyRequests {
		t.Fatalf("the right password after 3 failures at limit 3: %d %s, want 429", r.status, clip(r.body))
	}
	if !in.stop() {
		t.Error("the Badger gateway did not exit within 5s of SIGTERM")
	}
	return m
}

// run runs the built binary's `kratos storage copy --from <dir> --to
// <dsn>` and returns its output.
func (m *move) run() (string, error) {
	cmd := exec.Command(binPath, "kratos", "storage", "copy", "--from", m.in.storage, "--to", m.dsn)
	cmd.Env = append(cmd.Environ(), "HOME="+m.in.dir, "XDG_DATA_HOME="+filepath.Join(m.in.dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(m.in.dir, "xdg-config"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// copy is run, which must succeed and report a verified copy.
func (m *move) copy(t *testing.T, what string) string {
	t.Helper()
	out, err := m.run()
	if err != nil {
		t.Fatalf("%s: kratos storage copy: %v\n%s", what, err, out)
	}
	if !strings.Contains(string(out), "copied and verified") {
		t.Fatalf("%s: kratos storage copy did not report a verified copy:\n%s", what, out)
	}
	return out
}

// startOnPostgres starts the same gateway (ports, public URL, options)
// with `storage <dsn>`, the SMTP server up again.
func (m *move) startOnPostgres(t *testing.T) {
	t.Helper()
	m.in.dsn = m.dsn
	m.mails.start(t)
	if err := m.in.start(); err != nil {
		t.Fatalf("the gateway does not start on the copied database: %v\n%s", err, m.in.logs.tail(8<<10))
	}
	if cfg := m.in.caddyfile(m.in.opts); !strings.Contains(cfg, "storage "+m.dsn) {
		t.Fatalf("the gateway was not started on PostgreSQL:\n%s", cfg)
	}
}

// stillLoggedIn checks every session made on Badger: tokens (whoami and
// the gate) and the browser cookie, with the same session and identity
// ids.
func (m *move) stillLoggedIn(t *testing.T, what string) {
	t.Helper()
	in := m.in
	for i, u := range m.users {
		if s, st := whoamiToken(t, in, u.Token); st != http.StatusOK || s.Identity.Id != u.IdentityID || s.Id != u.SessionID {
			t.Errorf("%s: user %d's session token: whoami %d", what, i, st)
		}
	}
	if s, st := whoamiToken(t, in, m.second); st != http.StatusOK || s.Identity.Id != m.users[0].IdentityID {
		t.Errorf("%s: the second session of user 0: whoami %d", what, st)
	}
	s, resp, err := m.browser.sdk.FrontendAPI.ToSession(ctx).Execute()
	if resp == nil || resp.StatusCode != http.StatusOK || s.Identity.Id != m.users[1].IdentityID {
		t.Errorf("%s: the browser cookie: whoami %v %v", what, resp, err)
	}
	r, body, echo := gateGet(t, in, plainHTTP(), "/private/moved", hdr{"Accept": "application/json", "X-Session-Token": m.users[2].Token})
	if echo == nil || len(seenIdentity(echo)) != 1 || seenIdentity(echo)[0] != m.users[2].IdentityID {
		t.Errorf("%s: the gate refused a moved session: %d %s", what, r.StatusCode, clip(body))
	}
}

// regAgain registers email with a new password and returns the answer's
// body.
func regAgain(t *testing.T, in *instance, email string) []byte {
	t.Helper()
	hc := hbClient()
	id, _ := hbFlowID(t, hc, in, "registration", "api", nil)
	return hcPost(hc, in.apiBase+"/self-service/registration?flow="+id, nil,
		map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": email}}).body
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
