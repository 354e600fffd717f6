package e2e

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// mitigate_account_enumeration (Kratos's
// security.account_enumeration.mitigate): a known and an unknown
// identifier get the same answers, byte for byte once what differs by
// nature (flow ids, times, CSRF masks, challenges, the identifier typed)
// is replaced.

// normalizeFlow returns body (a flow) as canonical JSON with its flow id,
// times, request URL, the identifier typed, CSRF masks, WebAuthn
// challenges and credential ids and script nonces replaced by
// placeholders.
func normalizeFlow(t *testing.T, body []byte, identifier string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not a flow: %v\n%s", err, clip(body))
	}
	flowID, _ := v["id"].(string)
	var walk func(x any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case map[string]any:
			for k, c := range x {
				switch k {
				case "id", "expires_at", "issued_at", "created_at", "updated_at", "request_url", "nonce":
					if _, ok := c.(string); ok {
						x[k] = "<" + k + ">"
						continue
					}
				}
				x[k] = walk(c)
			}
			if name, _ := x["name"].(string); name == "csrf_token" || name == "passkey_challenge" {
				x["value"] = "<" + name + ">"
			}
			if name, _ := x["name"].(string); name == "webauthn_login_trigger" {
				opts, _ := x["value"].(string)
				x["value"] = normalizeAssertionOptions(t, opts)
				x["onclick"] = "<onclick>"
			}
			return x
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
			return x
		case string:
			if flowID != "" {
				x = strings.ReplaceAll(x, flowID, "<flow>")
			}
			if identifier != "" {
				x = strings.ReplaceAll(x, identifier, "<identifier>")
			}
			return x
		}
		return x
	}
	b, err := json.Marshal(walk(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// normalizeAssertionOptions replaces the challenge, the credential ids and
// their transports of WebAuthn assertion options; the rest (rpId, timeout,
// user verification, how many keys, which fields) stays.
func normalizeAssertionOptions(t *testing.T, opts string) any {
	t.Helper()
	var o map[string]any
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		t.Fatalf("options are not JSON: %v\n%s", err, opts)
	}
	pk, _ := o["publicKey"].(map[string]any)
	if pk == nil {
		t.Fatalf("options without publicKey: %s", opts)
	}
	pk["challenge"] = "<challenge>"
	creds, _ := pk["allowCredentials"].([]any)
	for _, c := range creds {
		c := c.(map[string]any)
		c["id"] = "<credential id>"
		if _, ok := c["transports"]; ok {
			c["transports"] = "<transports>"
		}
	}
	return o
}

// wantSameAnswer fails unless the two answers are the same after
// normalizing.
func wantSameAnswer(t *testing.T, what string, knownStatus, unknownStatus int, known, unknown []byte, knownID, unknownID string) {
	t.Helper()
	if knownStatus != unknownStatus {
		t.Fatalf("%s: known %d, unknown %d\nknown:   %s\nunknown: %s", what, knownStatus, unknownStatus, clip(known), clip(unknown))
	}
	k, u := normalizeFlow(t, known, knownID), normalizeFlow(t, unknown, unknownID)
	if k != u {
		t.Fatalf("%s: the answers tell the accounts apart\nknown:   %s\nunknown: %s", what, k, u)
	}
}

// TestEnumerationIdentifierFirst: with mitigation the second screen is the
// same for an account and for an identifier that names none, native and
// browser (every enabled method, passkey and security key included).
func TestEnumerationIdentifierFirst(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"login_style identifier_first", "mitigate_account_enumeration",
		"methods code passkey webauthn", codePasswordless,
		"webauthn {\n\t\t\trp_id " + mfaRPID + "\n\t\t\trp_origins " + mfaOrigin + "\n\t\t\tpasswordless\n\t\t}", "rate_limits off"}})
	u := registerNative(t, in)
	unknown := randEmail()

	step := func(hc *http.Client, typ, identifier string) (int, []byte) {
		t.Helper()
		r, body := do(t, hc, "GET", in.apiBase+"/self-service/login/"+typ, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		f := decodeFlow(t, body)
		csrf, _ := f.node("csrf_token").Attributes["value"].(string)
		payload, _ := json.Marshal(map[string]string{"method": "identifier_first", "identifier": identifier, "csrf_token": csrf})
		r, body = do(t, hc, "POST", f.UI.Action, hdr{"Accept": "application/json", "Content-Type": "application/json"}, payload)
		return r.StatusCode, body
	}

	ks, kb := step(plainHTTP(), "api", u.Email)
	us, ub := step(plainHTTP(), "api", unknown)
	wantSameAnswer(t, "native second screen", ks, us, kb, ub, u.Email, unknown)
	wantNodeSigs(t, "native second screen", decodeFlow(t, ub), "default/csrf_token/hidden", "default/identifier/hidden",
		"password/password/password", "password/method/submit=password", "code/method/submit=code")
	if ks != http.StatusBadRequest {
		t.Fatalf("second screen status %d, want 400", ks)
	}

	ks, kb = step(newBrowser(t, in).hc, "browser", u.Email)
	us, ub = step(newBrowser(t, in).hc, "browser", unknown)
	wantSameAnswer(t, "browser second screen", ks, us, kb, ub, u.Email, unknown)
	wantNodeSigs(t, "browser second screen", decodeFlow(t, ub), "default/csrf_token/hidden", "default/identifier/hidden",
		"password/password/password", "password/method/submit=password", "code/method/submit=code",
		"passkey/passkey_challenge/hidden", "webauthn/script:webauthn_script", "passkey/passkey_login/hidden",
		"passkey/passkey_login_trigger/button", "webauthn/method/submit=webauthn")

	// The password of the second screen: wrong for an account and for no
	// account alike (4000006).
	login := func(identifier string) (int, []byte) {
		t.Helper()
		f, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		step := ory.NewUpdateLoginFlowWithIdentifierFirstMethod(identifier, "identifier_first")
		_, _, _ = in.api().FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithIdentifierFirstMethodAsUpdateLoginFlowBody(step)).Execute()
		pw := ory.NewUpdateLoginFlowWithPasswordMethod(identifier, "password", "Wrong-"+randPassword())
		_, resp, err = in.api().FrontendAPI.UpdateLoginFlow(ctx).Flow(f.Id).UpdateLoginFlowBody(ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(pw)).Execute()
		if resp == nil {
			t.Fatalf("password: %v", err)
		}
		return resp.StatusCode, sdkErrBody(t, err)
	}
	ks, kb = login(u.Email)
	us, ub = login(unknown)
	wantSameAnswer(t, "wrong password on the second screen", ks, us, kb, ub, u.Email, unknown)
	if f := decodeFlow(t, ub); ks != http.StatusBadRequest || !slices.Equal(f.messageIDs(), []int64{4000006}) {
		t.Fatalf("wrong password: %d %v", ks, f.messageIDs())
	}
}

// TestEnumerationPasswordAndRegistration: wrong password and unknown
// identifier answer alike, in the same time; sign-up still reports a
// taken address (4000007), as Kratos does with mitigation on.
func TestEnumerationPasswordAndRegistration(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"mitigate_account_enumeration", "rate_limits off"}})
	u := registerNative(t, in)
	hc := hbClient()
	try := func(identifier string) (int, []byte, time.Duration) {
		t.Helper()
		id, _ := hbFlowID(t, hc, in, "login", "api", nil)
		start := time.Now()
		r := hcPost(hc, in.apiBase+"/self-service/login?flow="+id, nil,
			map[string]any{"method": "password", "identifier": identifier, "password": "Wrong-" + randHex(8)})
		took := time.Since(start)
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.status, r.body, took
	}
	unknown := randEmail()
	ks, kb, _ := try(u.Email)
	us, ub, _ := try(unknown)
	wantSameAnswer(t, "wrong password", ks, us, kb, ub, u.Email, unknown)
	if f := decodeFlow(t, ub); us != http.StatusBadRequest || !slices.Equal(f.messageIDs(), []int64{4000006}) {
		t.Fatalf("unknown identifier: %d %v", us, f.messageIDs())
	}

	const pairs, warmup = 80, 5
	var diff []time.Duration
	for i := 0; i < pairs+warmup; i++ {
		var k, un time.Duration
		if i%2 == 0 {
			_, _, k = try(u.Email)
			_, _, un = try(randEmail())
		} else {
			_, _, un = try(randEmail())
			_, _, k = try(u.Email)
		}
		if i >= warmup {
			diff = append(diff, k-un)
		}
	}
	wantNoTimingDifference(t, "wrong password vs unknown identifier", diff)

	// Sign-up with a taken address still says so (Kratos's behaviour).
	f, resp, err := in.api().FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	reg := ory.NewUpdateRegistrationFlowWithPasswordMethod("password", randPassword(), map[string]any{"email": u.Email})
	_, resp, err = in.api().FrontendAPI.UpdateRegistrationFlow(ctx).Flow(f.Id).
		UpdateRegistrationFlowBody(ory.UpdateRegistrationFlowWithPasswordMethodAsUpdateRegistrationFlowBody(reg)).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)
	if ids := decodeFlow(t, sdkErrBody(t, err)).messageIDs(); !containsID(ids, 4000007) {
		t.Fatalf("duplicate sign-up: messages %v, want 4000007", ids)
	}
}

// wantNoTimingDifference fails when the median of the paired differences
// is beyond 0.5 ms, or three standard errors on a machine so noisy that
// 0.5 ms is within its noise (as TestLimitsRecoveryTimingDoesNotTellAccountsApart).
func wantNoTimingDifference(t *testing.T, what string, diff []time.Duration) {
	t.Helper()
	md := median(diff)
	dev := make([]time.Duration, len(diff))
	for i, d := range diff {
		dev[i] = max(d-md, md-d)
	}
	se := time.Duration(1.2533 * 1.4826 * float64(median(dev)) / math.Sqrt(float64(len(diff))))
	tol := max(500*time.Microsecond, 3*se)
	t.Logf("%s: paired median difference %s (standard error %s, tolerance %s)", what, md, se, tol)
	if md > tol || md < -tol {
		t.Errorf("%s: the known account takes %s more: the answer time tells accounts apart", what, md)
	}
}

// TestEnumerationCodeSend: a sign-in code asked for an unknown address is
// answered as sent (same flow state, message and nodes, same time), and
// nothing is mailed; a wrong code then fails alike.
func TestEnumerationCodeSend(t *testing.T) {
	t.Parallel()
	in, mails := startMailInstance(t, "mitigate_account_enumeration", "methods code", codePasswordless, "rate_limits off")
	u := registerNative(t, in)
	hc := hbClient()
	send := func(identifier string) (string, int, []byte, time.Duration) {
		t.Helper()
		id, _ := hbFlowID(t, hc, in, "login", "api", nil)
		start := time.Now()
		r := hcPost(hc, in.apiBase+"/self-service/login?flow="+id, nil, map[string]any{"method": "code", "identifier": identifier})
		took := time.Since(start)
		if r.err != nil {
			t.Fatal(r.err)
		}
		return id, r.status, r.body, took
	}
	unknown := randEmail()
	kid, ks, kb, _ := send(u.Email)
	uid, us, ub, _ := send(unknown)
	wantSameAnswer(t, "code sent", ks, us, kb, ub, u.Email, unknown)
	if f := decodeFlow(t, ub); us != http.StatusOK || f.State != "sent_email" || !slices.Equal(f.messageIDs(), []int64{1010014}) {
		t.Fatalf("unknown address: %d state %v messages %v", us, f.State, f.messageIDs())
	}
	code := mails.last(t, u.Email, subjectLoginCode, 1).code(t)
	mails.none(t, unknown, subjectLoginCode)

	wrong := func(flowID, identifier string) (int, []byte) {
		t.Helper()
		r := hcPost(hc, in.apiBase+"/self-service/login?flow="+flowID, nil,
			map[string]any{"method": "code", "identifier": identifier, "code": wrongCode(code)})
		return r.status, r.body
	}
	ks, kb = wrong(kid, u.Email)
	us, ub = wrong(uid, unknown)
	wantSameAnswer(t, "wrong code", ks, us, kb, ub, u.Email, unknown)
	if f := decodeFlow(t, ub); !slices.Equal(f.messageIDs(), []int64{4010008}) {
		t.Fatalf("wrong code for the unknown address: %v", f.messageIDs())
	}
	// Resending is answered alike too.
	resend := func(flowID, identifier string) (int, []byte) {
		t.Helper()
		r := hcPost(hc, in.apiBase+"/self-service/login?flow="+flowID, nil,
			map[string]any{"method": "code", "identifier": identifier, "resend": "code"})
		return r.status, r.body
	}
	ks, kb = resend(kid, u.Email)
	us, ub = resend(uid, unknown)
	wantSameAnswer(t, "resend", ks, us, kb, ub, u.Email, unknown)
	mails.none(t, unknown, subjectLoginCode)

	const pairs, warmup = 40, 3
	var diff []time.Duration
	for i := 0; i < pairs+warmup; i++ {
		var k, un time.Duration
		if i%2 == 0 {
			_, _, _, k = send(u.Email)
			_, _, _, un = send(randEmail())
		} else {
			_, _, _, un = send(randEmail())
			_, _, _, k = send(u.Email)
		}
		if i >= warmup {
			diff = append(diff, k-un)
		}
	}
	wantNoTimingDifference(t, "code sent to a known vs an unknown address", diff)
}

// TestEnumerationWebAuthnOptions: passwordless security keys. The
// assertion options for an identifier with no account (or no key) look
// like an account's: one key, with an id and transports made up from a
// server secret and the identifier, the same on every request; answering
// them fails as a wrong assertion does.
func TestEnumerationWebAuthnOptions(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"mitigate_account_enumeration", "methods webauthn",
		"webauthn {\n\t\t\trp_id " + mfaRPID + "\n\t\t\trp_origins " + mfaOrigin + "\n\t\t\tpasswordless\n\t\t}", "rate_limits off"}})

	// An account with a passwordless key (its transports reported, as
	// browsers do).
	b := newBrowser(t, in)
	email, _ := mfaBrowserRegister(t, b)
	s, resp, err := b.sdk.FrontendAPI.CreateBrowserSettingsFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	key := newMFAKey(t)
	var att map[string]any
	if err := json.Unmarshal([]byte(key.attest(t, mfaInputValue(t, s.Ui.Nodes, "webauthn_register_trigger"))), &att); err != nil {
		t.Fatal(err)
	}
	att["response"].(map[string]any)["transports"] = []string{"usb"}
	attJSON, _ := json.Marshal(att)
	reg := ory.UpdateSettingsFlowWithWebAuthnMethod{Method: "webauthn", CsrfToken: ptr(sdkCSRF(t, s.Ui.Nodes)),
		WebauthnRegister: ptr(string(attJSON)), WebauthnRegisterDisplayname: ptr("e2e key")}
	_, resp, err = b.sdk.FrontendAPI.UpdateSettingsFlow(ctx).Flow(s.Id).
		UpdateSettingsFlowBody(ory.UpdateSettingsFlowWithWebAuthnMethodAsUpdateSettingsFlowBody(&reg)).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	passwordOnly := registerNative(t, in)

	// options asks a new browser's flow for the key challenge of identifier.
	type asked struct {
		br     *browser
		flowID string
		status int
		body   []byte
		opts   string
		took   time.Duration
	}
	options := func(identifier string) asked {
		t.Helper()
		br := newBrowser(t, in)
		id, csrf := hbFlowID(t, br.hc, in, "login", "browser", nil)
		payload, _ := json.Marshal(map[string]string{"method": "webauthn", "identifier": identifier, "csrf_token": csrf})
		start := time.Now()
		r, body := do(t, br.hc, "POST", in.apiBase+"/self-service/login?flow="+id, hdr{"Accept": "application/json", "Content-Type": "application/json"}, payload)
		a := asked{br: br, flowID: id, status: r.StatusCode, body: body, took: time.Since(start)}
		if n := decodeFlow(t, body).node("webauthn_login_trigger"); n != nil {
			a.opts, _ = n.Attributes["value"].(string)
		}
		return a
	}
	allow := func(a asked) string {
		t.Helper()
		var o struct {
			PublicKey struct {
				AllowCredentials json.RawMessage `json:"allowCredentials"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal([]byte(a.opts), &o); err != nil || len(o.PublicKey.AllowCredentials) == 0 {
			t.Fatalf("no allowCredentials in %q (%v): %s", a.opts, err, clip(a.body))
		}
		return string(o.PublicKey.AllowCredentials)
	}

	unknown := randEmail()
	known, stranger := options(email), options(unknown)
	wantSameAnswer(t, "security key options", known.status, stranger.status, known.body, stranger.body, email, unknown)
	if f := decodeFlow(t, stranger.body); !slices.Equal(f.messageIDs(), []int64{1010012}) {
		t.Fatalf("unknown identifier: messages %v, want [1010012]", f.messageIDs())
	}
	var creds []struct {
		ID         string   `json:"id"`
		Transports []string `json:"transports"`
	}
	if err := json.Unmarshal([]byte(allow(stranger)), &creds); err != nil || len(creds) != 1 || len(creds[0].ID) < 16 || len(creds[0].Transports) == 0 {
		t.Fatalf("made-up key %s: %v", allow(stranger), err)
	}
	if again := options(unknown); allow(again) != allow(stranger) {
		t.Fatalf("two requests for %s got different keys: %s vs %s", unknown, allow(again), allow(stranger))
	}
	if other := options(randEmail()); allow(other) == allow(stranger) {
		t.Fatal("two unknown identifiers got the same key")
	}
	if noKey := options(passwordOnly.Email); noKey.status != known.status || normalizeFlow(t, noKey.body, passwordOnly.Email) != normalizeFlow(t, known.body, email) {
		t.Fatalf("an account without a key is told apart:\n%s\n%s", clip(noKey.body), clip(known.body))
	}

	var diff []time.Duration
	for i := 0; i < 43; i++ {
		var k, un time.Duration
		if i%2 == 0 {
			k, un = options(email).took, options(randEmail()).took
		} else {
			un, k = options(randEmail()).took, options(email).took
		}
		if i >= 3 {
			diff = append(diff, k-un)
		}
	}
	wantNoTimingDifference(t, "security key options for an account vs none", diff)

	// Answering the options: a wrong assertion for the account, any
	// assertion for the made-up key: the same 4000043 with new options.
	answer := func(a asked, assertion string) (int, []byte) {
		t.Helper()
		_, body := do(t, a.br.hc, "GET", in.apiBase+"/self-service/login/flows?id="+a.flowID, hdr{"Accept": "application/json"}, nil)
		csrf, _ := decodeFlow(t, body).node("csrf_token").Attributes["value"].(string)
		identifier, _ := decodeFlow(t, body).node("identifier").Attributes["value"].(string)
		payload, _ := json.Marshal(map[string]string{"method": "webauthn", "identifier": identifier, "csrf_token": csrf, "webauthn_login": assertion})
		r, rb := do(t, a.br.hc, "POST", in.apiBase+"/self-service/login?flow="+a.flowID, hdr{"Accept": "application/json", "Content-Type": "application/json"}, payload)
		return r.StatusCode, rb
	}
	ks, kb := answer(known, key.assert(t, known.opts, "https://evil.example"))
	us, ub := answer(stranger, key.assert(t, stranger.opts, mfaOrigin))
	wantSameAnswer(t, "answered options", ks, us, kb, ub, email, unknown)
	if f := decodeFlow(t, ub); us != http.StatusBadRequest || !slices.Equal(f.messageIDs(), []int64{4000043}) {
		t.Fatalf("assertion for a made-up key: %d %v", us, f.messageIDs())
	}
	// The account's key still signs in (the decoy path took nothing away).
	again := options(email)
	key.cred.Counter = 5
	if st, body := answer(again, key.assert(t, again.opts, mfaOrigin)); st != http.StatusOK {
		t.Fatalf("the real key: %d %s", st, clip(body))
	}
}
