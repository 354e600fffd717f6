package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// auditRec is a record of GET /kratos/admin/audit.
type auditRec struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Type       string    `json:"type"`
	Flow       string    `json:"flow"`
	Method     string    `json:"method"`
	AAL        string    `json:"aal"`
	IdentityID string    `json:"identity_id"`
	Identifier string    `json:"identifier_hash"`
	SessionID  string    `json:"session_id"`
	Count      int       `json:"count"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
	Gate       string    `json:"gate"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Changes    map[string]struct {
		Before any `json:"before"`
		After  any `json:"after"`
	} `json:"changes"`
}

// auditPages lists the audit trail with query q, following the Link
// header's next page to the end; it returns the records and the raw
// bodies.
func auditPages(t *testing.T, in *instance, q url.Values) ([]auditRec, []string) {
	t.Helper()
	var recs []auditRec
	var raws []string
	path := "/admin/audit?" + q.Encode()
	for pages := 0; path != ""; pages++ {
		if pages > 500 {
			t.Fatal("the audit listing does not end")
		}
		r, b := admCall(t, in, "GET", path, nil)
		wantStatus(t, r, b, http.StatusOK)
		page := decodeJSON[[]auditRec](t, b)
		var size int
		if _, err := fmt.Sscan(q.Get("page_size"), &size); err == nil && len(page) > size {
			t.Fatalf("page of %d records with page_size %d", len(page), size)
		}
		recs = append(recs, page...)
		raws = append(raws, string(b))
		path = ""
		for _, l := range strings.Split(r.Header.Get("Link"), ",") {
			if target, params, ok := strings.Cut(l, ";"); ok && strings.Contains(params, `rel="next"`) {
				u := mustURL(strings.Trim(strings.TrimSpace(target), "<>"))
				if !strings.HasPrefix(u.Path, "/kratos/admin/audit") || u.Query().Get("page_token") == "" {
					t.Fatalf("next link %s", target)
				}
				path = strings.TrimPrefix(u.RequestURI(), "/kratos")
			}
		}
	}
	return recs, raws
}

func auditOfType(recs []auditRec, typ string) []auditRec {
	var out []auditRec
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// TestAuditTrail drives one identity through every audited event —
// sign-up, verification, failed and successful sign-ins, profile and
// password changes, backup codes added and removed, sessions revoked by
// the system, the user and an operator, logout, recovery by link, admin
// changes, rate-limit blocks and gate denials — then restarts the gateway
// and reads the trail back through the admin API (every filter, page by
// page with page_token) and the CLI. No record and no audit log line
// holds a password, a session token, a mailed code, a recovery link's
// token, a backup code or an address in clear.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "recovery link", "verification", "methods lookup_secret",
		"revoke_active_sessions recovery password",
		"rate_limits {\n\t\t\tlogin_failures_per_identifier 3\n\t\t}",
		"audit {\n\t\t\tmax_age 720h\n\t\t\tmax_records 100000\n\t\t}")
	c := in.api()
	var secrets []string
	secret := func(s ...string) { secrets = append(secrets, s...) }

	// Sign-up and verification.
	u, regFlow := registerNativeVerify(t, in)
	secret(u.Password, u.Token, u.Email)
	vcode := mails.last(t, u.Email, subjectVerification, 1).code(t)
	secret(vcode)
	vf, resp, err := c.FrontendAPI.UpdateVerificationFlow(ctx).Flow(regFlow).UpdateVerificationFlowBody(verificationCodeBody(vcode, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	wantPassed(t, vf)

	// Failed and successful sign-ins.
	const wrong = "wrong-Passw0rd!audit"
	nobody := randEmail()
	secret(wrong, nobody)
	for _, id := range []string{u.Email, nobody} {
		f, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(
			ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(id, "password", wrong))).Execute()
		wantSDKStatus(t, resp, err, http.StatusBadRequest)
	}
	tok2, sess2 := loginNative(t, in, u.Email, u.Password)
	secret(tok2)

	// Profile and password changes (the password change revokes the
	// registration's session).
	sf, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(tok2).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(sf.Id).XSessionToken(tok2).UpdateSettingsFlowBody(
		ory.UpdateSettingsFlowWithProfileMethodAsUpdateSettingsFlowBody(ory.NewUpdateSettingsFlowWithProfileMethod("profile",
			map[string]any{"email": u.Email, "name": map[string]any{"first": "Audrey"}}))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	newPassword := randPassword()
	secret(newPassword)
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(sf.Id).XSessionToken(tok2).UpdateSettingsFlowBody(
		ory.UpdateSettingsFlowWithPasswordMethodAsUpdateSettingsFlowBody(ory.NewUpdateSettingsFlowWithPasswordMethod("password", newPassword))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	u.Password = newPassword

	// Backup codes added, used for aal2, removed.
	codes := setUpLookup(t, in, tok2)
	secret(codes...)
	aal2 := useLookup(t, in, u, codes[0])
	secret(aal2)
	df, resp, err := c.FrontendAPI.CreateNativeSettingsFlow(ctx).XSessionToken(aal2).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	disable := ory.UpdateSettingsFlowWithLookupMethod{Method: "lookup_secret", LookupSecretDisable: ptr(true)}
	_, resp, err = c.FrontendAPI.UpdateSettingsFlow(ctx).Flow(df.Id).XSessionToken(aal2).UpdateSettingsFlowBody(
		ory.UpdateSettingsFlowWithLookupMethodAsUpdateSettingsFlowBody(&disable)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)

	time.Sleep(20 * time.Millisecond)
	mark := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)

	// Sessions revoked by the user and by an operator; a logout.
	tok3, sess3 := loginNative(t, in, u.Email, u.Password)
	tok4, sess4 := loginNative(t, in, u.Email, u.Password)
	secret(tok3, tok4)
	resp, err = c.FrontendAPI.DisableMySession(ctx, sess3.Id).XSessionToken(aal2).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	r, b := admCall(t, in, "DELETE", "/admin/sessions/"+sess4.Id, nil)
	wantStatus(t, r, b, http.StatusNoContent)
	resp, err = c.FrontendAPI.PerformNativeLogout(ctx).PerformNativeLogoutBody(*ory.NewPerformNativeLogoutBody(tok2)).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)

	// Recovery by link.
	rf, resp, err := c.FrontendAPI.CreateNativeRecoveryFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(rf.Id).UpdateRecoveryFlowBody(
		ory.UpdateRecoveryFlowWithLinkMethodAsUpdateRecoveryFlowBody(ory.NewUpdateRecoveryFlowWithLinkMethod(u.Email, "link"))).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	link := mails.last(t, u.Email, subjectRecovery, 1).link(t)
	linkToken := mustURL(link).Query().Get("token")
	if len(linkToken) < 16 {
		t.Fatalf("recovery link %s has no token", link)
	}
	secret(linkToken)
	br := newBrowser(t, in)
	r, b = do(t, br.hc, "GET", link, hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, b, http.StatusSeeOther)
	if ck := cookieFrom(r, "ory_kratos_session"); ck == nil {
		t.Fatal("recovery link set no session")
	} else {
		secret(ck.Value)
	}

	// Admin changes.
	admPassword, admEmail := randPassword(), randEmail()
	secret(admPassword, admEmail)
	created := admJSON[admIdentity](t, in, "POST", "/admin/identities", map[string]any{"schema_id": "default",
		"traits": map[string]any{"email": admEmail}, "credentials": map[string]any{"password": map[string]any{"config": map[string]any{"password": admPassword}}}},
		http.StatusCreated)
	admJSON[admIdentity](t, in, "PATCH", "/admin/identities/"+created.ID, []map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, http.StatusOK)
	r, b = admCall(t, in, "DELETE", "/admin/identities/"+created.ID, nil)
	wantStatus(t, r, b, http.StatusNoContent)

	// Rate-limit blocks: an identifier guessed at six times (three are
	// allowed).
	victim := randEmail()
	secret(victim)
	blocked := 0
	for range 6 {
		f, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		_, resp, _ = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(
			ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(victim, "password", wrong))).Execute()
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			blocked++
		}
	}
	if blocked == 0 {
		t.Fatal("six wrong passwords for one identifier were never refused")
	}

	// Gate denials: 401s and redirects.
	const denials = 12
	for i := range denials {
		accept := "application/json"
		if i%3 == 0 {
			accept = "text/html"
		}
		r, b := do(t, plainHTTP(), "GET", in.appBase+"/private/"+fmt.Sprint(i), hdr{"Accept": accept}, nil)
		if r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusSeeOther {
			t.Fatalf("gate without a session: %d %s", r.StatusCode, clip(b))
		}
	}

	// Written before the restart: the records the writer stored by now.
	var before []auditRec
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		before, _ = auditPages(t, in, url.Values{"page_size": {"500"}})
		if len(auditOfType(before, "identity.deleted")) == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(auditOfType(before, "identity.deleted")) != 1 {
		t.Fatalf("the trail lags: %d records before the restart", len(before))
	}

	// A graceful restart flushes the aggregated denials; Badger keeps the
	// rest on disk.
	if !in.stop() {
		t.Error("caddy-kratos did not exit within 5s of SIGTERM")
	}
	if err := in.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}

	all, raws := auditPages(t, in, url.Values{"page_size": {"500"}})
	ids := map[string]bool{}
	for _, rec := range all {
		ids[rec.ID] = true
	}
	for _, rec := range before {
		if !ids[rec.ID] {
			t.Errorf("record %s (%s) did not survive the restart", rec.ID, rec.Type)
		}
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.After(all[i-1].Time) {
			t.Fatalf("records not newest first: %s after %s", all[i].Time, all[i-1].Time)
		}
	}

	// Each event, with what it must say.
	one := func(typ string, match func(auditRec) bool) auditRec {
		t.Helper()
		var got []auditRec
		for _, rec := range auditOfType(all, typ) {
			if match(rec) {
				got = append(got, rec)
			}
		}
		if len(got) == 0 {
			t.Fatalf("no %s record matches; the %s records: %+v", typ, typ, auditOfType(all, typ))
		}
		return got[0]
	}
	mine := func(rec auditRec) bool { return rec.IdentityID == u.IdentityID }
	reg := one("registration.succeeded", mine)
	if reg.Method != "password" || reg.IP != "127.0.0.1" || reg.Actor != "self" || reg.UserAgent == "" || reg.SessionID == "" {
		t.Errorf("registration: %+v", reg)
	}
	one("verification.completed", mine)
	failed := auditOfType(all, "login.failed")
	if len(failed) < 2 || failed[0].Identifier == "" || failed[0].Reason == "" || failed[0].IP != "127.0.0.1" {
		t.Errorf("failed logins: %+v", failed)
	}
	one("login.succeeded", func(rec auditRec) bool { return mine(rec) && rec.SessionID == sess2.Id && rec.Method == "password" })
	one("profile.changed", mine)
	one("password.changed", mine)
	one("session.revoked", func(rec auditRec) bool { return mine(rec) && rec.Actor == "system" && rec.Reason == "password_changed" })
	one("session.revoked", func(rec auditRec) bool { return rec.SessionID == sess3.Id && rec.Actor == "self" })
	one("session.revoked", func(rec auditRec) bool { return rec.SessionID == sess4.Id && rec.Actor == "admin" })
	one("credential.added", func(rec auditRec) bool { return mine(rec) && rec.Method == "lookup_secret" })
	one("credential.removed", func(rec auditRec) bool { return mine(rec) && rec.Method == "lookup_secret" })
	one("logout", func(rec auditRec) bool { return mine(rec) && rec.SessionID == sess2.Id })
	one("recovery.used", func(rec auditRec) bool { return mine(rec) && rec.Method == "link_recovery" })
	one("identity.created", func(rec auditRec) bool { return rec.IdentityID == created.ID && rec.Actor == "admin" })
	upd := one("identity.updated", func(rec auditRec) bool { return rec.IdentityID == created.ID })
	if upd.Actor != "admin" || upd.Changes["state"].Before != "active" || upd.Changes["state"].After != "inactive" {
		t.Errorf("admin update: %+v", upd)
	}
	one("identity.deleted", func(rec auditRec) bool { return rec.IdentityID == created.ID && rec.Actor == "admin" })
	rl := auditOfType(all, "ratelimit.blocked")
	rlCount := 0
	for _, rec := range rl {
		rlCount += rec.Count
	}
	if len(rl) == 0 || len(rl) > 4 || rlCount < blocked {
		t.Errorf("rate-limit blocks (%d refused): %+v", blocked, rl)
	}
	gate := auditOfType(all, "gate.denied")
	gateCount := 0
	for _, rec := range gate {
		if rec.Gate != "127.0.0.1" || rec.Reason != "no_session" || rec.IP != "127.0.0.1" || rec.Count < 1 {
			t.Errorf("gate denial: %+v", rec)
		}
		gateCount += rec.Count
	}
	if len(gate) == 0 || len(gate) > 2 || gateCount != denials {
		t.Errorf("gate denials: %d records counting %d, want one (or two across a minute) counting %d: %+v", len(gate), gateCount, denials, gate)
	}

	// Page by page with page_token: the same records in the same order.
	paged, _ := auditPages(t, in, url.Values{"page_size": {"4"}})
	if len(paged) != len(all) {
		t.Fatalf("paging by 4 listed %d records, one page %d", len(paged), len(all))
	}
	for i := range paged {
		if paged[i].ID != all[i].ID {
			t.Fatalf("record %d: paged %s, listed %s", i, paged[i].ID, all[i].ID)
		}
	}

	// Filters.
	byID, _ := auditPages(t, in, url.Values{"identity": {u.IdentityID}, "page_size": {"3"}})
	want := 0
	for _, rec := range all {
		if mine(rec) {
			want++
		}
	}
	if len(byID) != want || want < 12 {
		t.Errorf("identity filter: %d records, %d in the full list", len(byID), want)
	}
	for _, rec := range byID {
		if !mine(rec) {
			t.Errorf("identity filter let through %+v", rec)
		}
	}
	typed, _ := auditPages(t, in, url.Values{"type": {"session.revoked,logout"}, "page_size": {"2"}})
	if len(typed) != len(auditOfType(all, "session.revoked"))+len(auditOfType(all, "logout")) {
		t.Errorf("type filter: %d records", len(typed))
	}
	for _, rec := range typed {
		if rec.Type != "session.revoked" && rec.Type != "logout" {
			t.Errorf("type filter let through %+v", rec)
		}
	}
	since, _ := auditPages(t, in, url.Values{"since": {mark.Format(time.RFC3339Nano)}, "identity": {u.IdentityID}})
	until, _ := auditPages(t, in, url.Values{"until": {mark.Format(time.RFC3339Nano)}, "identity": {u.IdentityID}})
	if len(since)+len(until) != want || len(since) == 0 || len(until) == 0 {
		t.Errorf("since %d + until %d records, want %d", len(since), len(until), want)
	}
	for _, rec := range since {
		if rec.Time.Before(mark) || rec.Type == "registration.succeeded" {
			t.Errorf("since %s let through %+v", mark, rec)
		}
	}
	for _, rec := range until {
		if rec.Time.After(mark) || rec.Type == "logout" {
			t.Errorf("until %s let through %+v", mark, rec)
		}
	}
	if recent, _ := auditPages(t, in, url.Values{"since": {"1h"}, "type": {"identity.deleted"}}); len(recent) != 1 {
		t.Errorf("since=1h: %d identity.deleted records", len(recent))
	}
	for _, bad := range []string{"type=login.maybe", "since=last-week", "page_token=zzz", "page_size=many"} {
		r, b := admCall(t, in, "GET", "/admin/audit?"+bad, nil)
		if e := decodeError(t, r.StatusCode, b); r.StatusCode != http.StatusBadRequest || e.Error.Code != 400 {
			t.Errorf("%s: %d %s", bad, r.StatusCode, clip(b))
		}
	}

	// The command line.
	out, errOut, code := admCLI(t, in, "", "audit", "--identity", u.IdentityID, "--type", "login.succeeded,recovery.used", "--since", "1h")
	if code != 0 || !strings.Contains(out, "TIME") || !strings.Contains(out, "recovery.used") || !strings.Contains(out, "login.succeeded") ||
		strings.Contains(out, "logout") || !strings.Contains(out, u.IdentityID) {
		t.Errorf("kratos audit: %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = admCLI(t, in, "", "audit", "--limit", "5", "--json")
	var cliRecs []auditRec
	if code != 0 || json.Unmarshal([]byte(out), &cliRecs) != nil || len(cliRecs) != 5 || cliRecs[0].ID != all[0].ID {
		t.Errorf("kratos audit --limit 5 --json: %d\n%s%s", code, out, errOut)
	}

	// No secret in any record or audit log line.
	var logLines []string
	sc := bufio.NewScanner(strings.NewReader(in.logs.tail(64 << 20)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Logger string `json:"logger"`
			Msg    string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Logger == "kratos.audit" {
			logLines = append(logLines, sc.Text())
		}
	}
	if !slices.ContainsFunc(logLines, func(l string) bool {
		return strings.Contains(l, `"msg":"recovery.used"`) && strings.Contains(l, u.IdentityID)
	}) || !slices.ContainsFunc(logLines, func(l string) bool { return strings.Contains(l, `"msg":"gate.denied"`) }) {
		t.Errorf("the kratos.audit log lacks records (%d lines):\n%s", len(logLines), strings.Join(logLines, "\n"))
	}
	haystack := strings.Join(raws, "\n") + "\n" + strings.Join(logLines, "\n")
	for _, s := range secrets {
		if s != "" && strings.Contains(haystack, s) {
			t.Errorf("the audit trail holds a secret %q", s)
		}
	}
	if len(secrets) < 20 {
		t.Fatalf("only %d secrets checked", len(secrets))
	}
}
