package flows

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// jsHarness runs assets/webauthn.js against a fake DOM built from a flow's
// nodes, calls one trigger function the way UIs do (no arguments), and
// prints what the script submitted and the options it passed to
// navigator.credentials.
const jsHarness = `
const fs = require("fs")
const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const els = {}
const submitted = { fields: {}, done: false }
const form = {
  querySelector(sel) { return els[sel.match(/name="([^"]+)"/)[1]] && els[sel.match(/name="([^"]+)"/)[1]].type === "hidden" ? els[sel.match(/name="([^"]+)"/)[1]] : null },
  appendChild(el) { els[el.name] = el },
  submit() { submitted.done = true; for (const k in els) submitted.fields[k] = els[k].value },
}
for (const n of input.nodes) {
  const a = n.attributes
  if (n.type !== "input") continue
  if (a.type === "submit") continue
  els[a.name] = { name: a.name, type: a.type, value: a.value === undefined ? "" : String(a.value), form }
}
global.window = global
global.document = {
  querySelector(sel) {
    if (sel === "form") return form
    const m = sel.match(/name="([^"]+)"/)
    return m ? els[m[1]] || null : null
  },
  createElement() { return { form } },
}
global.alert = (m) => { submitted.alert = String(m) }
global.atob = (s) => Buffer.from(s, "base64").toString("binary")
global.btoa = (s) => Buffer.from(s, "binary").toString("base64")
global.PublicKeyCredential = function () {}
const seen = {}
const b64 = (buf) => Buffer.from(buf).toString("base64url")
const buf = (s) => new Uint8Array(Buffer.from(s)).buffer
global.navigator = { credentials: {
  create(o) {
    seen.kind = "create"
    seen.challenge = b64(o.publicKey.challenge)
    seen.userID = b64(o.publicKey.user.id)
    seen.userName = o.publicKey.user.name
    return Promise.resolve({ id: "cred", rawId: buf("cred"), type: "public-key",
      response: { attestationObject: buf("att"), clientDataJSON: buf("cdj"), getTransports: () => ["usb"] } })
  },
  get(o) {
    seen.kind = "get"
    seen.challenge = b64(o.publicKey.challenge)
    seen.allow = (o.publicKey.allowCredentials || []).map((c) => b64(c.id))
    return Promise.resolve({ id: "cred", rawId: buf("cred"), type: "public-key",
      response: { authenticatorData: buf("ad"), clientDataJSON: buf("cdj"), signature: buf("sig"), userHandle: buf("uh") } })
  },
} }
if (input.set) for (const k in input.set) els[k].value = input.set[k]
require(input.script)
window[input.call]()
setTimeout(() => { console.log(JSON.stringify({ seen, submitted })) }, 50)
`

type jsRun struct {
	Seen struct {
		Kind, Challenge, UserID, UserName string
		Allow                             []string
	}
	Submitted struct {
		Fields map[string]string
		Done   bool
		Alert  string
	}
}

func runWebAuthnJS(t *testing.T, r resp, call string, set map[string]string) jsRun {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "webauthn.js")
	if err := os.WriteFile(script, webauthnJS, 0o644); err != nil {
		t.Fatal(err)
	}
	harness := filepath.Join(dir, "harness.js")
	if err := os.WriteFile(harness, []byte(jsHarness), 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"nodes": flowNodes(r.body), "call": call, "script": script, "set": set})
	inFile := filepath.Join(dir, "in.json")
	if err := os.WriteFile(inFile, in, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, harness, inFile).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var run jsRun
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("harness output %s: %v", out, err)
	}
	return run
}

// optionChallenge reads publicKey.challenge from an options JSON (with or
// without the credentialOptions wrapper).
func optionChallenge(t *testing.T, raw string) (challenge, userID string) {
	t.Helper()
	var o struct {
		CredentialOptions *struct {
			PublicKey struct {
				Challenge string
				User      struct{ ID string }
			} `json:"publicKey"`
		} `json:"credentialOptions"`
		PublicKey struct {
			Challenge string
			User      struct{ ID string }
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		t.Fatalf("options %s: %v", raw, err)
	}
	if o.CredentialOptions != nil {
		return o.CredentialOptions.PublicKey.Challenge, o.CredentialOptions.PublicKey.User.ID
	}
	return o.PublicKey.Challenge, o.PublicKey.User.ID
}

func checkSubmitted(t *testing.T, run jsRun, field, method, kind, challenge string) {
	t.Helper()
	if !run.Submitted.Done || run.Submitted.Alert != "" {
		t.Fatalf("not submitted: %+v", run)
	}
	if run.Seen.Kind != kind || run.Seen.Challenge != challenge {
		t.Fatalf("credentials.%s got challenge %q, flow has %q", run.Seen.Kind, run.Seen.Challenge, challenge)
	}
	if run.Submitted.Fields["method"] != method {
		t.Fatalf("method %q", run.Submitted.Fields["method"])
	}
	var v struct {
		ID, RawID, Type string
		Response        map[string]any
	}
	if err := json.Unmarshal([]byte(run.Submitted.Fields[field]), &v); err != nil || v.RawID != base64.RawURLEncoding.EncodeToString([]byte("cred")) || v.Type != "public-key" || len(v.Response) == 0 {
		t.Fatalf("%s = %q: %v", field, run.Submitted.Fields[field], err)
	}
}

// The script must find its options where the nodes put them and answer in
// the fields the server reads.
func TestWebAuthnScriptMatchesNodes(t *testing.T) {
	_, srv := testEngine(t, webauthnTestConfig("webauthn", "passkey"))
	base := srv.URL
	c := newBrowserClient(t)
	browserRegister(t, c, base, "js@example.com")
	s := do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)

	ch, _ := optionChallenge(t, nodeValue(t, s, "webauthn_register_trigger"))
	run := runWebAuthnJS(t, s, "oryWebAuthnRegistration", nil)
	checkSubmitted(t, run, "webauthn_register", "webauthn", "create", ch)

	ch, uid := optionChallenge(t, nodeValue(t, s, "passkey_create_data"))
	run = runWebAuthnJS(t, s, "oryPasskeySettingsRegistration", nil)
	checkSubmitted(t, run, "passkey_settings_register", "passkey", "create", ch)
	if run.Seen.UserID != uid {
		t.Fatalf("user id %q, options %q", run.Seen.UserID, uid)
	}

	// Sign-up: the account name comes from the field the data names.
	rc := newBrowserClient(t)
	rf := do(t, rc, "GET", base+"/self-service/registration/browser", nil, nil)
	sel := browserSubmit(t, rc, rf, map[string]any{"method": "profile", "traits": map[string]any{"email": "js2@example.com"}})
	ch, _ = optionChallenge(t, nodeValue(t, sel, "passkey_create_data"))
	run = runWebAuthnJS(t, sel, "oryPasskeyRegistration", map[string]string{"traits.email": "typed@example.com"})
	checkSubmitted(t, run, "passkey_register", "passkey", "create", ch)
	if run.Seen.UserName != "typed@example.com" {
		t.Fatalf("user name %q", run.Seen.UserName)
	}

	// Sign-in with a passkey.
	lc := newBrowserClient(t)
	lf := do(t, lc, "GET", base+"/self-service/login/browser", nil, nil)
	ch, _ = optionChallenge(t, nodeValue(t, lf, "passkey_challenge"))
	run = runWebAuthnJS(t, lf, "oryPasskeyLogin", nil)
	checkSubmitted(t, run, "passkey_login", "passkey", "get", ch)

	// Second factor with a security key.
	key := newVKey()
	s = do(t, c, "GET", base+"/self-service/settings/browser", nil, nil)
	if r := browserSubmit(t, c, s, map[string]any{"method": "webauthn", "webauthn_register": key.attest(t, nodeValue(t, s, "webauthn_register_trigger"))}); r.status != 200 {
		t.Fatalf("register key: %d %s", r.status, r.raw)
	}
	mc, _ := browserPasswordLogin(t, base, "js@example.com")
	mf := do(t, mc, "GET", base+"/self-service/login/browser?aal=aal2", nil, nil)
	ch, _ = optionChallenge(t, nodeValue(t, mf, "webauthn_login_trigger"))
	run = runWebAuthnJS(t, mf, "oryWebAuthnLogin", nil)
	checkSubmitted(t, run, "webauthn_login", "webauthn", "get", ch)
	if len(run.Seen.Allow) != 1 || run.Seen.Allow[0] != base64.RawURLEncoding.EncodeToString(key.cred.ID) {
		t.Fatalf("allowCredentials %v", run.Seen.Allow)
	}
	if !strings.Contains(string(webauthnJS), "oryPasskeyLoginAutocompleteInit") {
		t.Fatal("autocomplete init missing")
	}
}
