package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// Abuse limits under attack (issue 11, items 1, 9, 11, 13, 17): guesses
// whose client half-closes the connection, concurrent bursts, duplicate
// sign-ups, verification mails from sign-ups and profile changes, and
// flow storage. Each test runs on its own instance: every request comes
// from 127.0.0.1, so the per-IP limits of one test would trip another's.
//
// A limit of N means: at most N attempts are evaluated per window,
// sequential or concurrent; the next one starts the block and is refused
// with 429, and so is every later one until the block ends.

// limitsInstance starts an instance with the given rate_limits
// sub-directives (on top of the defaults) and extra kratos lines.
func limitsInstance(t *testing.T, limits []string, extra ...string) *instance {
	t.Helper()
	lines := append([]string{}, extra...)
	if len(limits) > 0 {
		lines = append(lines, "rate_limits {\n\t\t\t"+strings.Join(limits, "\n\t\t\t")+"\n\t\t}")
	}
	return startInstance(t, instanceOptions{GlobalKratos: lines})
}

// halfClosed sends one request on a raw connection, shuts the connection's
// write side (TCP half-close, as `nc -N` does) right after the body, and
// reads the answer, which a half-closed client still receives.
func halfClosed(in *instance, method, path string, h hdr, body []byte) (int, http.Header, []byte, error) {
	host := strings.TrimPrefix(in.apiBase, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return 0, nil, nil, err
	}
	defer conn.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, host, len(body))
	for k, v := range h {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		return 0, nil, nil, err
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, nil, nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, rb, err
}

// halfClosedLogin submits identifier/password to a new native login flow
// with a half-closed connection.
func halfClosedLogin(t *testing.T, in *instance, identifier, password string) (int, http.Header, []byte) {
	t.Helper()
	id, _ := hbFlowID(t, hbClient(), in, "login", "api", nil)
	body, _ := json.Marshal(map[string]any{"method": "password", "identifier": identifier, "password": password})
	status, h, rb, err := halfClosed(in, "POST", "/self-service/login?flow="+id,
		hdr{"Content-Type": "application/json", "Accept": "application/json"}, body)
	if err != nil {
		t.Fatalf("half-closed login: %v", err)
	}
	return status, h, rb
}

// wantWrongPassword fails unless the answer is the flow with 4000006.
func wantWrongPassword(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	var f flowJSON
	if status != http.StatusBadRequest || json.Unmarshal(body, &f) != nil || f.UI == nil || !containsID(f.messageIDs(), 4000006) {
		t.Fatalf("%s: %d %s, want 400 with 4000006", what, status, clip(body))
	}
}

// want429 fails unless the answer is Kratos's 429 error with Retry-After.
func want429(t *testing.T, what string, status int, h http.Header, body []byte) {
	t.Helper()
	if status != http.StatusTooManyRequests {
		t.Fatalf("%s: %d %s, want 429", what, status, clip(body))
	}
	if h.Get("Retry-After") == "" {
		t.Fatalf("%s: 429 without Retry-After", what)
	}
	decodeError(t, http.StatusTooManyRequests, body)
}

// nativeLoginRaw submits a password login on a normal connection.
func nativeLoginRaw(t *testing.T, in *instance, identifier, password string) hcResult {
	t.Helper()
	hc := hbClient()
	id, _ := hbFlowID(t, hc, in, "login", "api", nil)
	return hcPost(hc, in.apiBase+"/self-service/login?flow="+id, nil,
		map[string]any{"method": "password", "identifier": identifier, "password": password})
}

// TestLimitsHalfClosedGuessesAreCounted (item 1): password guesses whose
// client half-closes the connection during the check are counted like any
// other. With the default limits (10 per identifier, 50 per IP), 40 such
// guesses at one account and 80 at unknown identifiers get at most 10 and
// 50 evaluations; then the right password is refused with 429, and no
// answer is a 5xx.
func TestLimitsHalfClosedGuessesAreCounted(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil)
	victim := registerNative(t, in)
	bystander := registerNative(t, in)

	var fivexx int
	evaluated := func(n int, identifier func(i int) string) int {
		got := 0
		for i := 0; i < n; i++ {
			status, h, body := halfClosedLogin(t, in, identifier(i), "wrong-"+randHex(6))
			switch {
			case status == http.StatusTooManyRequests:
				want429(t, fmt.Sprintf("half-closed guess %d", i), status, h, body)
			case status >= 500:
				got++
				if fivexx++; fivexx <= 3 {
					t.Errorf("half-closed guess %d: %d %s", i, status, clip(body))
				}
			default:
				got++
				wantWrongPassword(t, fmt.Sprintf("half-closed guess %d", i), status, body)
			}
		}
		return got
	}
	perID := evaluated(40, func(int) string { return victim.Email })
	t.Logf("40 half-closed guesses at one identifier: %d evaluated (limit 10)", perID)
	if perID > 10 {
		t.Errorf("40 half-closed guesses at one identifier: %d evaluated, want at most 10", perID)
	}
	if r := nativeLoginRaw(t, in, victim.Email, victim.Password); r.status != http.StatusTooManyRequests {
		t.Errorf("the right password after the half-closed guesses: %d %s, want 429", r.status, clip(r.body))
	}

	perIP := evaluated(80, func(int) string { return randEmail() })
	t.Logf("then 80 half-closed guesses at unknown identifiers: %d evaluated; %d in all from one IP (limit 50)", perIP, perID+perIP)
	if fivexx > 0 {
		t.Errorf("%d half-closed guesses answered with a 5xx", fivexx)
	}
	if perID+perIP > 50 {
		t.Errorf("%d half-closed guesses from one IP evaluated, want at most 50", perID+perIP)
	}
	if r := nativeLoginRaw(t, in, bystander.Email, bystander.Password); r.status != http.StatusTooManyRequests {
		t.Errorf("another account's right password from the blocked IP: %d %s, want 429", r.status, clip(r.body))
	}
}

var retrySecs = regexp.MustCompile(`[0-9]+ seconds|"retry_after_seconds":[0-9]+`)

// TestLimitsHalfClosedNoPasswordOracle (item 1): a half-closed client gets
// exactly the answer a normal one gets (wrong: 400 with 4000006; right: a
// complete session), never a 5xx whose text depends on the password; and
// once the identifier is blocked, a right and a wrong password give the
// same 429.
func TestLimitsHalfClosedNoPasswordOracle(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, []string{"login_failures_per_identifier 2"})
	u := registerNative(t, in)

	status, _, body := halfClosedLogin(t, in, u.Email, "wrong-"+randHex(6))
	wantWrongPassword(t, "half-closed wrong password", status, body)
	status, _, body = halfClosedLogin(t, in, u.Email, u.Password)
	if status != http.StatusOK {
		t.Fatalf("half-closed right password: %d %s, want 200 with a session", status, clip(body))
	}
	var ok struct {
		SessionToken string `json:"session_token"`
	}
	if json.Unmarshal(body, &ok) != nil || ok.SessionToken == "" {
		t.Fatalf("half-closed right password: no session_token: %s", clip(body))
	}
	if _, code := whoamiToken(t, in, ok.SessionToken); code != http.StatusOK {
		t.Fatalf("the session of a half-closed login: whoami %d, want 200 (stored completely)", code)
	}

	for i := 0; i < 2; i++ {
		status, _, body := halfClosedLogin(t, in, u.Email, "wrong-"+randHex(6))
		wantWrongPassword(t, fmt.Sprintf("half-closed wrong password %d", i), status, body)
	}
	ws, wh, wb := halfClosedLogin(t, in, u.Email, "wrong-"+randHex(6))
	rs, rh, rb := halfClosedLogin(t, in, u.Email, u.Password)
	want429(t, "blocked, half-closed wrong password", ws, wh, wb)
	want429(t, "blocked, half-closed right password", rs, rh, rb)
	if a, b := retrySecs.ReplaceAll(wb, nil), retrySecs.ReplaceAll(rb, nil); !bytes.Equal(a, b) {
		t.Errorf("blocked: the wrong and the right password are told apart:\nwrong: %s\nright: %s", wb, rb)
	}
}

// burstCount runs n requests at once and counts answers by status; any
// other status than the allowed ones fails the test.
func burstCount(t *testing.T, what string, n int, send func(i int) hcResult, check func(i int, r hcResult) bool) (evaluated, limited int) {
	t.Helper()
	for i, r := range hcBurst(n, send) {
		switch {
		case r.err != nil:
			t.Errorf("%s %d: no answer: %v", what, i, r.err)
		case r.status == http.StatusTooManyRequests:
			limited++
		case check(i, r):
			evaluated++
		default:
			t.Errorf("%s %d: %d %s", what, i, r.status, clip(r.body))
		}
	}
	return evaluated, limited
}

func flowHas(body []byte, id int64, node string) bool {
	var f flowJSON
	if json.Unmarshal(body, &f) != nil || f.UI == nil {
		return false
	}
	if node == "" {
		return containsID(f.messageIDs(), id)
	}
	return containsID(flowNodeMessages(f, node), id)
}

// TestLimitsConcurrentWrongPasswords (item 9): 60 wrong passwords for one
// identifier at once: at most 10 are evaluated (limit 10), the rest get
// 429; the right password is refused afterwards.
func TestLimitsConcurrentWrongPasswords(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil)
	u := registerNative(t, in)
	hc := hbClient()
	const n = 60
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = hbFlowID(t, hc, in, "login", "api", nil)
	}
	evaluated, limited := burstCount(t, "wrong password", n, func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/login?flow="+ids[i], nil,
			map[string]any{"method": "password", "identifier": u.Email, "password": "wrong-" + randHex(6)})
	}, func(_ int, r hcResult) bool { return r.status == http.StatusBadRequest && flowHas(r.body, 4000006, "") })
	t.Logf("%d concurrent wrong passwords for one identifier: %d evaluated, %d answered 429 (limit 10)", n, evaluated, limited)
	if evaluated > 10 || evaluated+limited != n {
		t.Errorf("%d concurrent wrong passwords: %d evaluated, %d limited; want at most 10 evaluated, the rest 429", n, evaluated, limited)
	}
	if r := nativeLoginRaw(t, in, u.Email, u.Password); r.status != http.StatusTooManyRequests {
		t.Errorf("the right password after the burst: %d, want 429", r.status)
	}
}

// aal2Flows signs u in with the password and opens n aal2 login flows on
// that session.
func aal2Flows(t *testing.T, in *instance, u user, n int) (string, []string) {
	t.Helper()
	tok, _ := loginNative(t, in, u.Email, u.Password)
	hc := hbClient()
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = hbFlowID(t, hc, in, "login", "api?aal=aal2", hdr{"X-Session-Token": tok})
	}
	return tok, ids
}

// TestLimitsConcurrentTOTPCodes (item 9): 100 wrong TOTP codes at once
// for one identity: at most 10 are evaluated (10 per identity), the rest
// get 429.
func TestLimitsConcurrentTOTPCodes(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil, "methods totp")
	u := registerNative(t, in)
	secret := gfEnableTOTP(t, in, u.Token)
	tok, ids := aal2Flows(t, in, u, 100)
	code, _ := totp.GenerateCode(secret, time.Now())
	wrong := wrongCode(code)
	hc := hbClient()
	evaluated, limited := burstCount(t, "wrong TOTP code", len(ids), func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/login?flow="+ids[i], hdr{"X-Session-Token": tok},
			map[string]any{"method": "totp", "totp_code": wrong})
	}, func(_ int, r hcResult) bool {
		return r.status == http.StatusBadRequest && flowHas(r.body, 4000008, "totp_code")
	})
	t.Logf("%d concurrent wrong TOTP codes: %d evaluated, %d answered 429 (limit 10)", len(ids), evaluated, limited)
	if evaluated > 10 || evaluated+limited != len(ids) {
		t.Errorf("%d concurrent wrong TOTP codes: %d evaluated, %d limited; want at most 10 evaluated, the rest 429", len(ids), evaluated, limited)
	}
}

// TestLimitsConcurrentBackupCodes (item 9): the same for backup codes.
func TestLimitsConcurrentBackupCodes(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil, "methods lookup_secret")
	u := registerNative(t, in)
	hcLookupSetup(t, in, u)
	tok, ids := aal2Flows(t, in, u, 60)
	hc := hbClient()
	evaluated, limited := burstCount(t, "wrong backup code", len(ids), func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/login?flow="+ids[i], hdr{"X-Session-Token": tok},
			map[string]any{"method": "lookup_secret", "lookup_secret": "zz" + randHex(3)})
	}, func(_ int, r hcResult) bool { return r.status == http.StatusBadRequest && flowHas(r.body, 4000016, "") })
	t.Logf("%d concurrent wrong backup codes: %d evaluated, %d answered 429 (limit 10)", len(ids), evaluated, limited)
	if evaluated > 10 || evaluated+limited != len(ids) {
		t.Errorf("%d concurrent wrong backup codes: %d evaluated, %d limited; want at most 10 evaluated, the rest 429", len(ids), evaluated, limited)
	}
}

// recoveryFlowSent opens a native recovery flow and submits email; the
// answer must be 200 sent_email.
func recoveryFlowSent(t *testing.T, hc *http.Client, in *instance, email string) string {
	t.Helper()
	id, _ := hbFlowID(t, hc, in, "recovery", "api", nil)
	r := hcPost(hc, in.apiBase+"/self-service/recovery?flow="+id, nil, map[string]any{"method": "code", "email": email})
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("recovery send: %d %v %s", r.status, r.err, clip(r.body))
	}
	return id
}

// TestLimitsConcurrentRecoveryCodes (item 9): 60 wrong recovery codes at
// once, five on each of 12 flows (the per-flow limit): at most 30 are
// evaluated (30 per IP), the rest get 429.
func TestLimitsConcurrentRecoveryCodes(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, []string{"sends_per_address 100"}, "recovery")
	u := registerNative(t, in)
	hc := hbClient()
	const flows, per = 12, 5
	ids := make([]string, flows)
	for i := range ids {
		ids[i] = recoveryFlowSent(t, hc, in, u.Email)
	}
	evaluated, limited := burstCount(t, "wrong recovery code", flows*per, func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/recovery?flow="+ids[i%flows], nil,
			map[string]any{"method": "code", "code": fmt.Sprintf("%06d", i)})
	}, func(_ int, r hcResult) bool { return r.status == http.StatusOK && flowHas(r.body, 4060006, "") })
	t.Logf("%d concurrent wrong recovery codes: %d evaluated, %d answered 429 (limit 30)", flows*per, evaluated, limited)
	if evaluated > 30 || evaluated+limited != flows*per {
		t.Errorf("%d concurrent wrong recovery codes: %d evaluated, %d limited; want at most 30 evaluated, the rest 429", flows*per, evaluated, limited)
	}
}

// TestLimitsConcurrentMails (item 9): 30 recovery mails to one address
// requested at once: at most 10 are sent (10 per address), the rest get
// 429.
func TestLimitsConcurrentMails(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil, "recovery")
	u := registerNative(t, in)
	hc := hbClient()
	const n = 30
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = hbFlowID(t, hc, in, "recovery", "api", nil)
	}
	sent, limited := burstCount(t, "recovery mail", n, func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/recovery?flow="+ids[i], nil, map[string]any{"method": "code", "email": u.Email})
	}, func(_ int, r hcResult) bool { return r.status == http.StatusOK && flowHas(r.body, 1060003, "") })
	t.Logf("%d concurrent recovery mails to one address: %d sent, %d answered 429 (limit 10)", n, sent, limited)
	if sent > 10 || sent+limited != n {
		t.Errorf("%d concurrent recovery mails to one address: %d sent, %d limited; want at most 10 sent, the rest 429", n, sent, limited)
	}
}

// TestLimitsConcurrentSignUps (item 9): 60 sign-ups from one IP at once:
// at most 30 succeed (30 per IP), the rest get 429.
func TestLimitsConcurrentSignUps(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil)
	hc := hbClient()
	const n = 60
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = hbFlowID(t, hc, in, "registration", "api", nil)
	}
	created, limited := burstCount(t, "sign-up", n, func(i int) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/registration?flow="+ids[i], nil, map[string]any{
			"method": "password", "password": randPassword(), "traits": map[string]any{"email": randEmail()}})
	}, func(_ int, r hcResult) bool { return r.status == http.StatusOK })
	t.Logf("%d concurrent sign-ups from one IP: %d created, %d answered 429 (limit 30)", n, created, limited)
	if created > 30 || created+limited != n {
		t.Errorf("%d concurrent sign-ups: %d created, %d limited; want at most 30 created, the rest 429", n, created, limited)
	}
}

// TestLimitsDuplicateSignUps (item 11): sign-ups with an address that is
// taken count against registrations_per_ip like any other attempt (with
// a limit of 3: two duplicates after the first sign-up still get
// Kratos's 4000007, then 429), and a duplicate is answered without the
// cost of hashing the password (argon2id here: 128 MiB and a few hundred
// milliseconds a hash).
func TestLimitsDuplicateSignUps(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, []string{"registrations_per_ip 3"}, "password_hasher argon2id")
	hc := hbClient()
	signUp := func(email string) (hcResult, time.Duration) {
		id, _ := hbFlowID(t, hc, in, "registration", "api", nil)
		start := time.Now()
		r := hcPost(hc, in.apiBase+"/self-service/registration?flow="+id, nil, map[string]any{
			"method": "password", "password": randPassword(), "traits": map[string]any{"email": email}})
		return r, time.Since(start)
	}
	email := randEmail()
	first, hashTime := signUp(email)
	if first.status != http.StatusOK {
		t.Fatalf("first sign-up: %d %s", first.status, clip(first.body))
	}
	var fastest time.Duration
	for i := 0; i < 2; i++ {
		r, took := signUp(strings.ToUpper(email))
		if r.status != http.StatusBadRequest || !flowHas(r.body, 4000007, "") {
			t.Fatalf("duplicate %d: %d %s, want 400 with 4000007", i, r.status, clip(r.body))
		}
		if i == 0 || took < fastest {
			fastest = took
		}
	}
	t.Logf("a sign-up that hashes took %s; the fastest duplicate %s", hashTime, fastest)
	if fastest > hashTime/3 {
		t.Errorf("a duplicate sign-up took %s, a sign-up that hashes %s: the duplicate is hashed", fastest, hashTime)
	}
	r, _ := signUp(email)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third duplicate over registrations_per_ip 3: %d %s, want 429", r.status, clip(r.body))
	}
	decodeError(t, http.StatusTooManyRequests, r.body)
}

// mailsSettle waits until at least n mails with subject reached addr, then
// a little longer for more, and returns how many arrived.
func mailsSettle(t *testing.T, m *mailServer, addr, subject string, n int) int {
	t.Helper()
	m.wait(t, addr, subject, n)
	time.Sleep(1500 * time.Millisecond)
	return len(m.to(addr, subject))
}

// TestLimitsVerificationMailsFromProfileChanges (item 13): the
// verification mails a profile change sends go through the mail limits.
// An account alternating its address between A and B ten times (limit 3
// per address) gets at most 3 mails to each; every change still succeeds.
func TestLimitsVerificationMailsFromProfileChanges(t *testing.T) {
	t.Parallel()
	m := startMailServer(t)
	in := limitsInstance(t, []string{"sends_per_address 3"}, append(mailLines(m), "verification")...)
	u := registerNative(t, in)
	a, b := u.Email, randEmail()
	hc := hbClient()
	for i := 0; i < 10; i++ {
		to := b
		if i%2 == 1 {
			to = a
		}
		id, _ := hbFlowID(t, hc, in, "settings", "api", hdr{"X-Session-Token": u.Token})
		r := hcPost(hc, in.apiBase+"/self-service/settings?flow="+id, hdr{"X-Session-Token": u.Token},
			map[string]any{"method": "profile", "traits": map[string]any{"email": to}})
		if r.status != http.StatusOK {
			t.Fatalf("profile change %d to %s: %d %s", i, to, r.status, clip(r.body))
		}
	}
	gotA := mailsSettle(t, m, a, subjectVerification, 3)
	gotB := mailsSettle(t, m, b, subjectVerification, 3)
	t.Logf("sign-up and 10 alternating profile changes: %d verification mails to A, %d to B (limit 3)", gotA, gotB)
	if gotA > 3 || gotB > 3 {
		t.Errorf("verification mails: %d to A, %d to B; want at most 3 each (sends_per_address 3)", gotA, gotB)
	}
}

// TestLimitsVerificationMailsFromSignUps (item 13): the verification
// mails of sign-ups count against sends_per_ip: of six sign-ups from one
// IP at a limit of 3, three send a mail (and offer show_verification_ui);
// the others still succeed, without the mail.
func TestLimitsVerificationMailsFromSignUps(t *testing.T) {
	t.Parallel()
	m := startMailServer(t)
	in := limitsInstance(t, []string{"sends_per_ip 3"}, append(mailLines(m), "verification")...)
	hc := hbClient()
	var emails []string
	offered := 0
	for i := 0; i < 6; i++ {
		email := randEmail()
		emails = append(emails, email)
		id, _ := hbFlowID(t, hc, in, "registration", "api", nil)
		r := hcPost(hc, in.apiBase+"/self-service/registration?flow="+id, nil, map[string]any{
			"method": "password", "password": randPassword(), "traits": map[string]any{"email": email}})
		if r.status != http.StatusOK {
			t.Fatalf("sign-up %d: %d %s", i, r.status, clip(r.body))
		}
		if strings.Contains(string(r.body), `"show_verification_ui"`) {
			offered++
		}
	}
	m.wait(t, emails[0], subjectVerification, 1)
	time.Sleep(1500 * time.Millisecond)
	total := 0
	for _, e := range emails {
		total += len(m.to(e, subjectVerification))
	}
	t.Logf("6 sign-ups from one IP: %d verification mails, %d offered show_verification_ui (limit 3)", total, offered)
	if total != 3 || offered != 3 {
		t.Errorf("6 sign-ups at sends_per_ip 3: %d verification mails, %d show_verification_ui; want 3 and 3", total, offered)
	}
}

// dirBlocks is the disk space the files under dir take (allocated blocks:
// Badger's files are sparse until written).
func dirBlocks(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// nested returns an object nested depth levels deep.
func nested(depth int) map[string]any {
	m := map[string]any{"leaf": "x"}
	for i := 1; i < depth; i++ {
		m = map[string]any{"n": m}
	}
	return m
}

// TestLimitsTransientPayloadBounded (item 17): transient_payload is
// stored with the flow, so it is bounded: more than 16 KiB of JSON or more
// than 8 levels of nesting is refused with 400 and the reason on the flow
// (message 4000001), and nothing of it is stored; 100 submits with a
// 180 KiB payload no longer grow the store by megabytes.
func TestLimitsTransientPayloadBounded(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, nil)
	hc := hbClient()
	submit := func(id string, tp any) hcResult {
		return hcPost(hc, in.apiBase+"/self-service/login?flow="+id, nil, map[string]any{
			"method": "password", "identifier": randEmail(), "password": "wrong-password", "transient_payload": tp})
	}
	wantRefused := func(what string, r hcResult, want string) {
		t.Helper()
		var f flowJSON
		if r.status != http.StatusBadRequest || json.Unmarshal(r.body, &f) != nil || f.UI == nil || !containsID(f.messageIDs(), 4000001) ||
			!strings.Contains(string(r.body), want) {
			t.Fatalf("%s: %d %s, want 400 with 4000001 %q", what, r.status, clip(r.body), want)
		}
	}
	id, _ := hbFlowID(t, hc, in, "login", "api", nil)
	wantRefused("a 20 KiB payload", submit(id, map[string]any{"blob": strings.Repeat("a", 20<<10)}), "transient_payload is too large")
	wantRefused("a payload nested 9 levels", submit(id, nested(9)), "transient_payload is nested too deeply")
	r, body := do(t, hc, "GET", in.apiBase+"/self-service/login/flows?id="+id, hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	if strings.Contains(string(body), "aaaaaaaa") || strings.Contains(string(body), `"leaf"`) {
		t.Fatalf("a refused payload was stored with the flow: %s", clip(body))
	}
	// At the bounds the payload is taken (the login answers as usual).
	ok := submit(id, map[string]any{"blob": strings.Repeat("a", 15<<10), "deep": nested(7)})
	if ok.status != http.StatusBadRequest || !flowHas(ok.body, 4000006, "") {
		t.Fatalf("a payload within the bounds: %d %s, want the wrong-password answer", ok.status, clip(ok.body))
	}

	before := storeBytes(t, in)
	big := map[string]any{"blob": randHex(90 << 10)} // 180 KiB, incompressible
	for i := 0; i < 100; i++ {
		id, _ := hbFlowID(t, hc, in, "login", "api", nil)
		if r := submit(id, big); r.status != http.StatusBadRequest {
			t.Fatalf("180 KiB payload %d: %d %s", i, r.status, clip(r.body))
		}
	}
	grown := storeBytes(t, in) - before
	t.Logf("100 submits with a 180 KiB transient_payload grew the store by %.1f MB", float64(grown)/1e6)
	if grown > 4<<20 {
		t.Errorf("100 submits with a 180 KiB transient_payload grew the store by %.1f MB, want under 4 MiB", float64(grown)/1e6)
	}
}

// TestLimitsFlowCreationPerIP (item 17): flows_per_ip bounds the flows one
// client creates (limit 5: the fifth still gets its flow, the sixth a 429
// in Kratos's shape with Retry-After), for every kind.
func TestLimitsFlowCreationPerIP(t *testing.T) {
	t.Parallel()
	in := limitsInstance(t, []string{"flows_per_ip 5"}, "recovery", "verification")
	hc := hbClient()
	kinds := []string{"login", "registration", "recovery", "verification", "login"}
	for _, k := range kinds {
		r, body := do(t, hc, "GET", in.apiBase+"/self-service/"+k+"/api", hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		decodeFlow(t, body)
	}
	for _, k := range []string{"login", "recovery"} {
		r, body := do(t, hc, "GET", in.apiBase+"/self-service/"+k+"/api", hdr{"Accept": "application/json"}, nil)
		want429(t, "flow "+k+" over flows_per_ip", r.StatusCode, r.Header, body)
	}
	r, body := do(t, hc, "GET", in.apiBase+"/self-service/login/browser", hdr{"Accept": "application/json"}, nil)
	want429(t, "browser flow over flows_per_ip", r.StatusCode, r.Header, body)
}

// TestLimitsRecoveryTimingDoesNotTellAccountsApart (item 18): submitting
// a known and an unknown address to recovery takes the same time. Pairs
// of submits (known, unknown; the order alternates) are timed and the
// median of their differences must stay within 0.5 ms (or three standard
// errors on a machine noisier than that): robust against noise, where
// single samples are not. (Reported: 8.1 ms vs
// 4.7 ms medians; here 1 to 2.3 ms apart before the fix.)
func TestLimitsRecoveryTimingDoesNotTellAccountsApart(t *testing.T) {
	t.Parallel()
	// Without limits: their store writes are the same on both paths and
	// only add noise.
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"recovery", "rate_limits off"}})
	u := registerNative(t, in)
	hc := hbClient()
	const pairs, warmup = 120, 5
	time1 := func(email string) time.Duration {
		id, _ := hbFlowID(t, hc, in, "recovery", "api", nil)
		start := time.Now()
		r := hcPost(hc, in.apiBase+"/self-service/recovery?flow="+id, nil, map[string]any{"method": "code", "email": email})
		took := time.Since(start)
		if r.err != nil || r.status != http.StatusOK || !flowHas(r.body, 1060003, "") {
			t.Fatalf("recovery submit for %s: %d %v %s", email, r.status, r.err, clip(r.body))
		}
		return took
	}
	var known, unknown, diff []time.Duration
	for i := 0; i < pairs+warmup; i++ {
		var k, un time.Duration
		if i%2 == 0 {
			k, un = time1(u.Email), time1(randEmail())
		} else {
			un, k = time1(randEmail()), time1(u.Email)
		}
		if i >= warmup {
			known, unknown, diff = append(known, k), append(unknown, un), append(diff, k-un)
		}
	}
	mk, mu, md := median(known), median(unknown), median(diff)
	// The tolerance is 0.5 ms, or three standard errors of the median
	// difference on a machine so noisy that 0.5 ms is within its noise
	// (σ estimated robustly as 1.4826 × the median absolute deviation).
	dev := make([]time.Duration, len(diff))
	for i, d := range diff {
		dev[i] = max(d-md, md-d)
	}
	se := time.Duration(1.2533 * 1.4826 * float64(median(dev)) / math.Sqrt(float64(len(diff))))
	tol := max(500*time.Microsecond, 3*se)
	t.Logf("recovery submit medians: known %s, unknown %s, paired difference %s (standard error %s, tolerance %s)", mk, mu, md, se, tol)
	if md > tol || md < -tol {
		t.Errorf("a known address takes %s more than an unknown one (medians %s vs %s): the answer time tells accounts apart", md, mk, mu)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
