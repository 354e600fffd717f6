package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// The bad-input matrix of the "Hardening" issue: every endpoint of the
// public API gets malformed, mistyped, mislabelled, oversized, forged and
// misplaced requests. Each must be answered with a 4xx in Kratos's shape
// (never a 5xx, never a dropped connection), must not change a single
// identity or session (compared through the admin API), and the flows that
// took the abuse must still complete afterwards. Most bad requests are a
// known-good request with exactly one thing wrong, so a server that skipped
// the check in question would let the good part through and change state.

// hbWant is what a bad request must get.
type hbWant struct {
	// status: the exact status (0: any 4xx).
	status int
	// errID: the exact error.id of an errorGeneric answer.
	errID string
	// msgID: a message id the flow answer must carry (ui.messages or a
	// node's messages).
	msgID int64
	// raw: Go's HTTP server may answer (431 for oversized headers): any
	// 4xx, the body need not be Kratos's.
	raw bool
	// alsoOK: the request is odd but harmless and may be served with this
	// status instead of a 4xx.
	alsoOK int
}

// hbCase is one bad request.
type hbCase struct {
	name   string
	method string
	url    string
	h      hdr
	body   []byte
	want   hbWant
}

// hbRunCases sends each case as a subtest of t and checks its answer.
func hbRunCases(t *testing.T, cases []hbCase) {
	t.Helper()
	hc := hbClient()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, body, err := hbSend(hc, c.method, c.url, c.h, c.body)
			hbCheck(t, c, r, body, err)
		})
	}
}

func hbCheck(t *testing.T, c hbCase, r *http.Response, body []byte, err error) {
	t.Helper()
	what := c.method + " " + hbShort(c.url)
	if err != nil {
		t.Errorf("%s: no answer (dropped connection?): %v", what, err)
		return
	}
	if r.StatusCode >= 500 {
		t.Errorf("%s: server error %d: %s", what, r.StatusCode, clip(body))
		return
	}
	wantNoLeak(t, what, r, body)
	if sc := cookieFrom(r, "ory_kratos_session"); sc != nil {
		t.Errorf("%s: a bad request got a Set-Cookie for the session: %s", what, sc.Raw)
	}
	if c.want.alsoOK != 0 && r.StatusCode == c.want.alsoOK {
		return
	}
	if c.want.raw {
		if r.StatusCode < 400 || r.StatusCode > 499 {
			t.Errorf("%s: status %d, want a 4xx; body %s", what, r.StatusCode, clip(body))
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			assertKratosShaped4xx(t, what, r, body)
		}
		return
	}
	assertKratosShaped4xx(t, what, r, body)
	if c.want.status != 0 && r.StatusCode != c.want.status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.StatusCode, c.want.status, clip(body))
	}
	if c.want.errID != "" {
		var e errorJSON
		if json.Unmarshal(body, &e) != nil || e.Error == nil || e.Error.ID != c.want.errID {
			t.Errorf("%s: want error.id %q, got %s", what, c.want.errID, clip(body))
		} else {
			wantErrorHeaders(t, r, c.want.errID)
		}
	}
	if c.want.msgID != 0 {
		var f flowJSON
		if json.Unmarshal(body, &f) != nil || f.UI == nil {
			t.Errorf("%s: want a flow with message %d, got %s", what, c.want.msgID, clip(body))
			return
		}
		ids := f.messageIDs()
		for _, n := range f.UI.Nodes {
			for _, m := range n.Messages {
				ids = append(ids, m.ID)
			}
		}
		if !containsID(ids, c.want.msgID) {
			t.Errorf("%s: messages %v, want %d; body %s", what, ids, c.want.msgID, clip(body))
		}
	}
}

func hbShort(u string) string {
	if len(u) > 160 {
		return u[:160] + "…"
	}
	return u
}

// hbJSON marshals v (maps only) with extra top-level fields.
func hbJSON(v map[string]any, extra map[string]any) []byte {
	m := map[string]any{}
	for k, x := range v {
		m[k] = x
	}
	for k, x := range extra {
		m[k] = x
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// hbForm renders a JSON-like body as a form with dotted names.
func hbForm(v map[string]any) []byte {
	vals := url.Values{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, x := range m {
			switch x := x.(type) {
			case map[string]any:
				walk(prefix+k+".", x)
			default:
				vals.Set(prefix+k, fmt.Sprint(x))
			}
		}
	}
	walk("", v)
	return []byte(vals.Encode())
}

// hbWithout returns v without key k.
func hbWithout(v map[string]any, k string) map[string]any {
	m := map[string]any{}
	for kk, x := range v {
		if kk != k {
			m[kk] = x
		}
	}
	return m
}

// hbUTF16 encodes s as UTF-16LE with a byte order mark.
func hbUTF16(s string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xfe})
	for _, u := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&b, binary.LittleEndian, u)
	}
	return b.Bytes()
}

// hbMaskedToken is a well-formed masked CSRF token for no cookie.
func hbMaskedToken() string { return base64.StdEncoding.EncodeToString([]byte(randHex(32))) }

// hbFlow is one flow that takes the abuse.
type hbFlow struct {
	kind, typ string
	id, csrf  string
	h         hdr            // headers of a correct request (Accept, Cookie or X-Session-Token)
	good      map[string]any // the correct body, csrf_token included for browser flows
	hc        *http.Client   // the client of the final correct submit
}

// hbKindSpec describes one flow kind's bodies.
type hbKindSpec struct {
	// noMethod: the flow message of an unknown method (0: verification,
	// whose message is on the method node: 4000001).
	noMethod int64
	// failing is a body the flow refuses (status 400) for a reason of its
	// own (wrong password, short password, invalid address, …).
	failing map[string]any
	// wrongTypes are correct bodies with one field of the wrong JSON type.
	wrongTypes map[string]map[string]any
	// badAddress is the correct body with invalid UTF-8 or NUL in the
	// identifier or address; okStatus is the status Kratos answers anyway
	// (verification accepts any value: observed.md).
	badAddress func(bad string) map[string]any
	okStatus   int
}

const mb2 = 2 << 20

// overSubmitCap is above the 4 MiB cap of submit bodies (flows'
// maxBodyBytes): 2 MB bodies are read, as Kratos reads a 1 MB password.
const overSubmitCap = 5 << 20

func TestHardeningBadInputMatrix(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"rate_limits off", "recovery", "verification"}})
	hc := plainHTTP()

	// Users A and B, their sessions, and browsers.
	a := registerNative(t, in)
	bu := registerNative(t, in)
	bA := newBrowser(t, in)
	bA.login(t, a.Email, a.Password)
	bB := newBrowser(t, in)
	bB.login(t, bu.Email, bu.Password)
	// A token that is no longer valid.
	deadTok, _ := loginNative(t, in, a.Email, a.Password)
	r, body := do(t, hc, "DELETE", in.apiBase+"/self-service/logout/api", hdr{"Content-Type": "application/json"}, []byte(`{"session_token":"`+deadTok+`"}`))
	wantStatus(t, r, body, http.StatusNoContent)
	// An identity whose password is all digits (JSON number confusion).
	digitsEmail, digitsPassword := randEmail(), fmt.Sprint(100000000000000+time.Now().UnixNano()%899999999999999)
	{
		id, _ := hbFlowID(t, hc, in, "registration", "api", nil)
		r, body := do(t, hc, "POST", in.apiBase+"/self-service/registration?flow="+id, hdr{"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
			[]byte(url.Values{"method": {"password"}, "password": {digitsPassword}, "traits.email": {digitsEmail}}.Encode()))
		wantStatus(t, r, body, http.StatusOK)
	}
	// Another browser's CSRF token (tokens belong to the cookie).
	other := newBrowser(t, in)
	_, otherCSRF := hbFlowID(t, other.hc, in, "login", "browser", nil)
	otherCookies := other.cookieHeader()
	// Logout tokens of A's and B's browser sessions.
	logoutToken := func(b *browser) string {
		lf, resp, err := b.sdk.FrontendAPI.CreateBrowserLogoutFlow(ctx).Execute()
		wantSDKStatus(t, resp, err, http.StatusOK)
		return lf.LogoutToken
	}
	aLogout, bLogout := logoutToken(bA), logoutToken(bB)
	var bSessionID string
	if s, resp, err := bB.sdk.FrontendAPI.ToSession(ctx).Execute(); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami of B's browser: %v", err)
	} else {
		bSessionID = s.Id
	}

	regEmail := map[string]string{"api": randEmail(), "browser": randEmail()}
	regPassword := randPassword()
	newFirst := map[string]string{"api": "Api-" + randHex(3), "browser": "Browser-" + randHex(3)}
	goodBody := func(kind, typ string) map[string]any {
		switch kind {
		case "login":
			return map[string]any{"method": "password", "identifier": a.Email, "password": a.Password}
		case "registration":
			return map[string]any{"method": "password", "password": regPassword, "traits": map[string]any{"email": regEmail[typ]}}
		case "settings":
			return map[string]any{"method": "profile", "traits": map[string]any{"email": a.Email, "name": map[string]any{"first": newFirst[typ]}}}
		default:
			return map[string]any{"method": "code", "email": a.Email}
		}
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := hbWithout(m, k)
		out[k] = v
		return out
	}
	specs := map[string]func(good map[string]any) hbKindSpec{
		"login": func(g map[string]any) hbKindSpec {
			return hbKindSpec{noMethod: 4010002,
				failing: with(g, "password", "wrong-"+randHex(6)),
				wrongTypes: map[string]map[string]any{
					"identifier as array":  with(g, "identifier", []any{a.Email}),
					"identifier as object": with(g, "identifier", map[string]any{"email": a.Email}),
					"password as array":    with(g, "password", []any{a.Password}),
					"password as object":   with(g, "password", map[string]any{"v": a.Password}),
					"password as bool":     with(g, "password", true),
					"method as array":      with(g, "method", []any{"password"}),
					"method as number":     with(g, "method", 5),
					"identifier as null":   with(g, "identifier", nil),
					"password as zero":     with(g, "password", json.Number("0")),
				},
				badAddress: func(bad string) map[string]any { return with(g, "identifier", bad+a.Email) },
			}
		},
		"registration": func(g map[string]any) hbKindSpec {
			return hbKindSpec{noMethod: 4010003,
				failing: with(g, "password", "short"),
				wrongTypes: map[string]map[string]any{
					"traits as string":       with(g, "traits", "x"),
					"traits as array":        with(g, "traits", []any{g["traits"]}),
					"email as array":         with(g, "traits", map[string]any{"email": []any{g["traits"].(map[string]any)["email"]}}),
					"email as number":        with(g, "traits", map[string]any{"email": 5}),
					"name as string":         with(g, "traits", map[string]any{"email": g["traits"].(map[string]any)["email"], "name": "Ada"}),
					"password as array":      with(g, "password", []any{regPassword}),
					"password as object":     with(g, "password", map[string]any{"v": regPassword}),
					"password as number (5)": with(g, "password", 5),
					"method as array":        with(g, "method", []any{"password"}),
					"method as object":       with(g, "method", map[string]any{"password": true}),
					"traits as null":         with(g, "traits", nil),
				},
				badAddress: func(bad string) map[string]any {
					return with(g, "traits", map[string]any{"email": "e2e" + bad + randHex(3) + "@example.com"})
				},
			}
		},
		"settings": func(g map[string]any) hbKindSpec {
			return hbKindSpec{noMethod: 4010004,
				failing: with(g, "traits", map[string]any{"email": "not-an-email"}),
				wrongTypes: map[string]map[string]any{
					"traits as string": with(g, "traits", "x"),
					"email as array":   with(g, "traits", map[string]any{"email": []any{a.Email}, "name": map[string]any{"first": "T"}}),
					"name as number":   with(g, "traits", map[string]any{"email": a.Email, "name": 5}),
					"method as array":  with(g, "method", []any{"profile"}),
					"traits as null":   with(g, "traits", nil),
				},
				badAddress: func(bad string) map[string]any {
					return with(g, "traits", map[string]any{"email": "e2e" + bad + "@example.com"})
				},
			}
		},
		"recovery": func(g map[string]any) hbKindSpec {
			return hbKindSpec{noMethod: 4010005,
				failing: with(g, "email", "not-an-email"),
				wrongTypes: map[string]map[string]any{
					"email as array":  with(g, "email", []any{a.Email}),
					"email as object": with(g, "email", map[string]any{"v": a.Email}),
					"email as bool":   with(g, "email", true),
					"method as array": with(g, "method", []any{"code"}),
					"code as object":  with(hbWithout(g, "email"), "code", map[string]any{"v": "123456"}),
				},
				badAddress: func(bad string) map[string]any { return with(g, "email", "e2e"+bad+"@example.com") },
				// Go's JSON decoder (Kratos's too) turns invalid UTF-8 into
				// U+FFFD, which an address may contain (RFC 6531): the
				// flow then answers sent_email as for any unknown address.
				okStatus: http.StatusOK,
			}
		},
		"verification": func(g map[string]any) hbKindSpec {
			return hbKindSpec{
				failing: with(g, "method", "nope"),
				wrongTypes: map[string]map[string]any{
					"email as array":  with(g, "email", []any{a.Email}),
					"email as object": with(g, "email", map[string]any{"v": a.Email}),
					"method as array": with(g, "method", []any{"code"}),
				},
				badAddress: func(bad string) map[string]any { return with(g, "email", "e2e"+bad+"@example.com") },
				okStatus:   http.StatusOK,
			}
		},
	}
	kinds := []string{"login", "registration", "settings", "recovery", "verification"}

	// The flows: one per kind and type, each with its own browser.
	flows := map[string]*hbFlow{}
	for _, kind := range kinds {
		for _, typ := range []string{"api", "browser"} {
			f := &hbFlow{kind: kind, typ: typ}
			switch {
			case kind == "settings" && typ == "api":
				f.hc = hc
				f.h = hdr{"Accept": "application/json", "X-Session-Token": a.Token}
				f.id, f.csrf = hbFlowID(t, hc, in, kind, typ, hdr{"X-Session-Token": a.Token})
			case kind == "settings":
				f.hc = bA.hc
				f.id, f.csrf = hbFlowID(t, bA.hc, in, kind, typ, nil)
				f.h = hdr{"Accept": "application/json", "Cookie": bA.cookieHeader()}
			case typ == "api":
				f.hc = hc
				f.h = hdr{"Accept": "application/json"}
				f.id, f.csrf = hbFlowID(t, hc, in, kind, typ, nil)
			default:
				b := newBrowser(t, in)
				f.hc = b.hc
				f.id, f.csrf = hbFlowID(t, b.hc, in, kind, typ, nil)
				f.h = hdr{"Accept": "application/json", "Cookie": b.cookieHeader()}
			}
			f.good = goodBody(kind, typ)
			if typ == "browser" {
				f.good["csrf_token"] = f.csrf
			}
			flows[kind+"/"+typ] = f
		}
	}

	before := hbSnapshot(t, in)

	// The flow of another kind each submit is given (a login flow id sent
	// to the registration endpoint, …).
	otherOf := map[string]string{"login": "registration", "registration": "login", "settings": "login", "recovery": "verification", "verification": "recovery"}
	for _, kind := range kinds {
		for _, typ := range []string{"api", "browser"} {
			f := flows[kind+"/"+typ]
			otherKind := flows[otherOf[kind]+"/"+typ]
			t.Run("submit/"+kind+"/"+typ, func(t *testing.T) {
				hbRunCases(t, hbSubmitCases(in, f, otherKind, specs[kind](f.good), hbSubmitExtras{
					otherCSRF: otherCSRF, otherCookies: otherCookies, bToken: bu.Token, bCookies: bB.cookieHeader(),
					digitsEmail: digitsEmail, digitsPassword: digitsPassword,
				}))
			})
		}
	}

	t.Run("create and get", func(t *testing.T) {
		hbRunCases(t, hbCreateGetCases(in, flows, a.Token, bu.Token, bA.cookieHeader(), otherCookies))
	})
	t.Run("logout", func(t *testing.T) {
		hbRunCases(t, hbLogoutCases(in, a.Token, bA.cookieHeader(), aLogout, bLogout))
	})
	t.Run("sessions", func(t *testing.T) {
		hbRunCases(t, hbSessionCases(in, a, deadTok, bSessionID, bA.cookieHeader()))
	})
	t.Run("misc", func(t *testing.T) {
		hbRunCases(t, hbMiscCases(in))
	})

	after := hbSnapshot(t, in)
	wantSameState(t, "the bad requests", before, after)
	// The sessions used above still work, the logout tokens still log out.
	if _, code := whoamiToken(t, in, a.Token); code != http.StatusOK {
		t.Errorf("A's token after the bad requests: whoami %d", code)
	}
	for name, b := range map[string]*browser{"A": bA, "B": bB} {
		if _, resp, _ := b.sdk.FrontendAPI.ToSession(ctx).Execute(); resp == nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s's browser session after the bad requests: %v", name, resp)
		}
	}

	// Every flow still completes with a correct submit, even with forged
	// extra fields (which must have no effect).
	forged := admRandUUID()
	massAssign := map[string]any{
		"id": forged, "identity_id": bu.IdentityID, "state": "inactive", "schema_id": "evil",
		"metadata_public": map[string]any{"role": "admin"}, "metadata_admin": map[string]any{"role": "admin"},
		"verifiable_addresses": []any{map[string]any{"value": "x@example.com", "verified": true, "status": "completed"}},
		"credentials":          map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": admHashes["bcrypt"]}}},
		"aal":                  "aal2", "authenticator_assurance_level": "aal2", "active": false,
	}
	for _, kind := range kinds {
		for _, typ := range []string{"api", "browser"} {
			f := flows[kind+"/"+typ]
			h := hdr{"Content-Type": "application/json"}
			for k, v := range f.h {
				if k != "Cookie" || f.hc == hc { // browsers send their jar
					h[k] = v
				}
			}
			r, body := do(t, f.hc, "POST", in.apiBase+"/self-service/"+kind+"?flow="+f.id, h, hbJSON(f.good, massAssign))
			if r.StatusCode != http.StatusOK {
				t.Errorf("%s/%s: the correct submit after the bad ones: %d %s", kind, typ, r.StatusCode, clip(body))
				continue
			}
			var res struct {
				State    any `json:"state"`
				Identity *struct {
					ID                  string          `json:"id"`
					State               string          `json:"state"`
					SchemaID            string          `json:"schema_id"`
					MetadataPublic      json.RawMessage `json:"metadata_public"`
					VerifiableAddresses []struct {
						Value    string `json:"value"`
						Verified bool   `json:"verified"`
					} `json:"verifiable_addresses"`
				} `json:"identity"`
				Session *struct {
					AAL      string `json:"authenticator_assurance_level"`
					Active   bool   `json:"active"`
					Identity *struct {
						ID string `json:"id"`
					} `json:"identity"`
				} `json:"session"`
			}
			if err := json.Unmarshal(body, &res); err != nil {
				t.Errorf("%s/%s: success answer: %v", kind, typ, err)
				continue
			}
			switch kind {
			case "registration":
				id := res.Identity
				if id == nil || id.ID == forged || id.State != "active" || id.SchemaID != "default" || (len(id.MetadataPublic) > 0 && string(id.MetadataPublic) != "null") ||
					len(id.VerifiableAddresses) != 1 || id.VerifiableAddresses[0].Verified || id.VerifiableAddresses[0].Value != regEmail[typ] {
					t.Errorf("registration/%s: forged fields took effect: %s", typ, clip(body))
				}
				if n := hbIdentitiesWith(t, in, regEmail[typ]); n != 1 {
					t.Errorf("registration/%s: %d identities with the address, want exactly 1", typ, n)
				}
				// The forged credentials were not stored either.
				admLoginFails(t, in, regEmail[typ], "test")
			case "login":
				s := res.Session
				if s == nil || !s.Active || s.AAL != "aal1" || s.Identity == nil || s.Identity.ID != a.IdentityID {
					t.Errorf("login/%s: forged fields took effect: %s", typ, clip(body))
				}
			case "settings":
				if res.State != "success" || res.Identity == nil || res.Identity.ID != a.IdentityID {
					t.Errorf("settings/%s: %s", typ, clip(body))
				}
			default:
				if res.State != "sent_email" {
					t.Errorf("%s/%s: state %v, want sent_email", kind, typ, res.State)
				}
			}
		}
	}
	final := hbSnapshot(t, in)
	if final.Identities != before.Identities+2 || final.Sessions != before.Sessions+4 {
		t.Errorf("after the correct submits: %d identities, %d sessions; want %d and %d (2 registrations, 2 logins)",
			final.Identities, final.Sessions, before.Identities+2, before.Sessions+4)
	}
	got := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+a.IdentityID, nil, http.StatusOK)
	if name, _ := got.Traits["name"].(map[string]any); name["first"] != newFirst["browser"] {
		t.Errorf("A's first name after both settings submits = %v, want %s (browser, last)", got.Traits["name"], newFirst["browser"])
	}
	if m, _ := got.MetadataAdmin.(map[string]any); m != nil {
		t.Errorf("A's metadata_admin = %v after forged submits", got.MetadataAdmin)
	}
}

// hbSubmitExtras are the credentials of others the submit cases misuse.
type hbSubmitExtras struct {
	otherCSRF, otherCookies     string
	bToken, bCookies            string
	digitsEmail, digitsPassword string
}

// hbSubmitCases are the bad submits for flow f.
func hbSubmitCases(in *instance, f *hbFlow, otherKind *hbFlow, spec hbKindSpec, x hbSubmitExtras) []hbCase {
	base := in.apiBase + "/self-service/" + f.kind
	u := base + "?flow=" + f.id
	api := f.typ == "api"
	js := func(extra hdr) hdr {
		h := hdr{"Content-Type": "application/json"}
		for k, v := range f.h {
			h[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	good := hbJSON(f.good, nil)
	// exact4000001: the observed answer of a native flow to an undecodable
	// body; browser flows: any Kratos 4xx.
	exact4000001 := hbWant{}
	if api {
		exact4000001 = hbWant{status: 400, msgID: 4000001}
	}
	any4xx := hbWant{}
	var cs []hbCase
	add := func(name string, method, url string, h hdr, body []byte, w hbWant) {
		cs = append(cs, hbCase{name: name, method: method, url: url, h: h, body: body, want: w})
	}
	goodStr := string(good)

	// Undecodable and mislabelled bodies.
	add("malformed JSON", "POST", u, js(nil), good[:len(good)/2], exact4000001)
	add("JSON array", "POST", u, js(nil), []byte(`[`+goodStr+`]`), exact4000001)
	add("JSON string", "POST", u, js(nil), []byte(`"password"`), exact4000001)
	add("JSON null", "POST", u, js(nil), []byte(`null`), any4xx)
	add("JSON number", "POST", u, js(nil), []byte(`42`), any4xx)
	add("good JSON and trailing garbage", "POST", u, js(nil), append(append([]byte{}, good...), []byte(` garbage`)...), any4xx)
	add("two JSON objects", "POST", u, js(nil), append(append([]byte{}, good...), good...), any4xx)
	add("form body labelled JSON", "POST", u, js(nil), hbForm(f.good), exact4000001)
	add("JSON body labelled as a form", "POST", u, js(hdr{"Content-Type": "application/x-www-form-urlencoded"}), good, any4xx)
	add("JSON body labelled text/plain", "POST", u, js(hdr{"Content-Type": "text/plain"}), good, exact4000001)
	add("JSON body labelled application/xml", "POST", u, js(hdr{"Content-Type": "application/xml"}), good, any4xx)
	add("JSON body labelled multipart without boundary", "POST", u, js(hdr{"Content-Type": "multipart/form-data"}), good, any4xx)
	add("form body labelled multipart", "POST", u, js(hdr{"Content-Type": "multipart/form-data; boundary=xyz"}), hbForm(f.good), any4xx)
	add("JSON body without Content-Type", "POST", u, js(hdr{"Content-Type": ""}), good, any4xx)
	add("garbage Content-Type", "POST", u, js(hdr{"Content-Type": "%%%;;;=="}), good, any4xx)
	add("JSON in UTF-16", "POST", u, js(hdr{"Content-Type": "application/json; charset=utf-16"}), hbUTF16(goodStr), any4xx)
	add("empty JSON body", "POST", u, js(nil), []byte{}, any4xx)
	add("empty form body", "POST", u, js(hdr{"Content-Type": "application/x-www-form-urlencoded"}), []byte{}, any4xx)
	add("no body at all", "POST", u, js(nil), nil, any4xx)
	add("deeply nested JSON", "POST", u, js(nil), []byte(strings.Repeat(`{"a":`, 50000)+`1`+strings.Repeat(`}`, 50000)), any4xx)

	// Oversized bodies: the correct body padded past the submit cap must
	// not go through.
	add("correct JSON padded to 5 MB", "POST", u, js(nil), hbJSON(f.good, map[string]any{"padding": strings.Repeat("p", overSubmitCap)}), any4xx)
	add("5 MB of garbage", "POST", u, js(nil), bigBody(overSubmitCap), any4xx)
	add("correct form padded to 5 MB", "POST", u, js(hdr{"Content-Type": "application/x-www-form-urlencoded"}),
		append(hbForm(f.good), []byte("&padding="+strings.Repeat("p", overSubmitCap))...), any4xx)

	// Invalid UTF-8 and control characters.
	add("invalid UTF-8 between tokens", "POST", u, js(nil), []byte("{\xff\xfe"+goodStr[1:]), any4xx)
	okAddr := hbWant{alsoOK: spec.okStatus}
	for name, bad := range map[string]string{"invalid UTF-8": "\xff\xfe", "a NUL byte": "\x00", "an overlong encoding": "\xc0\xaf"} {
		add(name+" in the address (JSON)", "POST", u, js(nil), hbRawJSON(spec.badAddress(bad)), okAddr)
		add(name+" in the address (form)", "POST", u, js(hdr{"Content-Type": "application/x-www-form-urlencoded"}), hbForm(spec.badAddress(bad)), okAddr)
	}

	// Wrong JSON types.
	names := make([]string, 0, len(spec.wrongTypes))
	for n := range spec.wrongTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add("wrong type: "+n, "POST", u, js(nil), hbJSON(spec.wrongTypes[n], nil), any4xx)
	}
	switch f.kind {
	case "registration":
		cs = append(cs, hbCase{name: "wrong type: password as a long number", method: "POST", url: u, h: js(nil),
			body: hbJSON(f.good, map[string]any{"password": json.Number(x.digitsPassword + "1")}), want: any4xx})
	case "settings":
		body := map[string]any{"method": "password", "password": json.Number(x.digitsPassword + "7")}
		if !api {
			body["csrf_token"] = f.csrf
		}
		cs = append(cs, hbCase{name: "wrong type: new password as a number", method: "POST", url: u, h: js(nil),
			body: hbJSON(body, nil), want: any4xx})
	case "login":
		body := map[string]any{"method": "password", "identifier": x.digitsEmail, "password": json.Number(x.digitsPassword)}
		if !api {
			body["csrf_token"] = f.csrf
		}
		cs = append(cs, hbCase{name: "wrong type: password as a number", method: "POST", url: u, h: js(nil),
			body: hbJSON(body, nil), want: any4xx})
	}

	// Methods, unknown fields.
	noMethod := hbWant{status: 400, msgID: spec.noMethod}
	if spec.noMethod == 0 {
		noMethod = hbWant{status: 400, msgID: 4000001}
	}
	add("unknown method", "POST", u, js(nil), hbJSON(f.good, map[string]any{"method": "nope"}), noMethod)
	if api {
		add("missing method", "POST", u, js(nil), hbJSON(hbWithout(f.good, "method"), nil), noMethod)
	} else {
		add("missing method", "POST", u, js(nil), hbJSON(hbWithout(f.good, "method"), nil), any4xx)
	}
	add("unknown fields on a refused body", "POST", u, js(nil), hbJSON(spec.failing, map[string]any{
		"__proto__": map[string]any{"admin": true}, "constructor": map[string]any{"prototype": map[string]any{"admin": true}},
		"identity": map[string]any{"id": admRandUUID()}, "session": map[string]any{"active": true}, "zzz": strings.Repeat("z", 1000),
	}), hbWant{status: 400})

	// Flow ids: the correct body with a wrong flow.
	add("unknown flow id", "POST", base+"?flow="+admRandUUID(), js(nil), good, hbWant{status: 404})
	add("malformed flow id", "POST", base+"?flow=not-a-uuid", js(nil), good, hbWant{status: 400})
	add("flow id with trailing junk", "POST", base+"?flow="+f.id+"x", js(nil), good, hbWant{status: 400})
	add("flow id with invalid UTF-8", "POST", base+"?flow=%ff%fe", js(nil), good, hbWant{status: 400})
	add("missing flow id", "POST", base, js(nil), good, hbWant{status: 400})
	add("flow id repeated", "POST", base+"?flow="+admRandUUID()+"&flow="+f.id, js(nil), good, any4xx)
	add("flow of another kind", "POST", base+"?flow="+otherKind.id, js(nil), good, any4xx)

	// CSRF (browser) and the API-flow rules (native).
	if api {
		add("cookie on an API flow", "POST", u, js(hdr{"Cookie": "ory_kratos_session=" + randHex(20)}), good, hbWant{status: 400})
		add("Origin on an API flow", "POST", u, js(hdr{"Origin": "http://evil.example"}), good, hbWant{status: 400})
	} else {
		csrfErr := hbWant{status: 403, errID: "security_csrf_violation"}
		add("missing CSRF token", "POST", u, js(nil), hbJSON(hbWithout(f.good, "csrf_token"), nil), csrfErr)
		add("forged CSRF token", "POST", u, js(nil), hbJSON(f.good, map[string]any{"csrf_token": hbMaskedToken()}), csrfErr)
		add("CSRF token of another browser", "POST", u, js(nil), hbJSON(f.good, map[string]any{"csrf_token": x.otherCSRF}), csrfErr)
		add("CSRF token in an array", "POST", u, js(nil), hbJSON(f.good, map[string]any{"csrf_token": []any{f.csrf}}), any4xx)
		add("empty CSRF token and header", "POST", u, js(hdr{"X-CSRF-Token": ""}), hbJSON(f.good, map[string]any{"csrf_token": ""}), csrfErr)
		if f.kind == "settings" {
			add("cookies of another browser", "POST", u, js(hdr{"Cookie": x.otherCookies}), good, any4xx)
			add("no cookies", "POST", u, js(hdr{"Cookie": ""}), good, any4xx)
		} else {
			add("cookies of another browser", "POST", u, js(hdr{"Cookie": x.otherCookies}), good, csrfErr)
			add("no cookies", "POST", u, js(hdr{"Cookie": ""}), good, csrfErr)
		}
	}
	if f.kind == "settings" {
		if api {
			add("no session", "POST", u, js(hdr{"X-Session-Token": ""}), good, hbWant{status: 401})
			add("forged session token", "POST", u, js(hdr{"X-Session-Token": "ory_st_" + randHex(16)}), good, hbWant{status: 401})
			add("session of another identity", "POST", u, js(hdr{"X-Session-Token": x.bToken}), good, hbWant{status: 403})
		} else {
			add("forged session cookie", "POST", u, js(hdr{"Cookie": hbReplaceCookie(f.h["Cookie"], "ory_kratos_session", randHex(60))}), good, hbWant{status: 401})
			add("session cookie of another identity", "POST", u, js(hdr{"Cookie": hbReplaceCookie(f.h["Cookie"], "ory_kratos_session", hbCookieValue(x.bCookies, "ory_kratos_session"))}), good, hbWant{status: 403})
		}
	}

	// Methods and headers.
	for _, m := range []string{"PUT", "PATCH", "DELETE"} {
		add("wrong HTTP method "+m, m, u, js(nil), good, any4xx)
	}
	add("64 KB cookie", "POST", u, js(hdr{"Cookie": strings.TrimPrefix(f.h["Cookie"]+"; ", "; ") + "junk=" + strings.Repeat("j", 64<<10)}), good, hbWant{raw: true})
	add("1 MB header", "POST", u, js(hdr{"X-Junk": strings.Repeat("j", 1<<20)}), good, hbWant{raw: true})
	return cs
}

// hbRawJSON marshals v without HTML escaping and keeps invalid UTF-8
// bytes as they are (json.Marshal would replace them).
func hbRawJSON(v map[string]any) []byte {
	var b strings.Builder
	var enc func(x any)
	enc = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			b.WriteString("{")
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, k := range keys {
				if i > 0 {
					b.WriteString(",")
				}
				enc(k)
				b.WriteString(":")
				enc(x[k])
			}
			b.WriteString("}")
		case string:
			b.WriteString(`"`)
			for i := 0; i < len(x); i++ {
				switch c := x[i]; {
				case c == '"' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c < 0x20:
					fmt.Fprintf(&b, `\u%04x`, c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteString(`"`)
		default:
			j, _ := json.Marshal(x)
			b.Write(j)
		}
	}
	enc(v)
	return []byte(b.String())
}

// hbCookieValue returns the value of cookie name in a Cookie header.
func hbCookieValue(header, name string) string {
	for _, p := range strings.Split(header, "; ") {
		if k, v, ok := strings.Cut(p, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// hbReplaceCookie returns a Cookie header with cookie name set to value.
func hbReplaceCookie(header, name, value string) string {
	var out []string
	for _, p := range strings.Split(header, "; ") {
		if k, _, ok := strings.Cut(p, "="); ok && k == name {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(append(out, name+"="+value), "; ")
}

// hbCreateGetCases: the create and get endpoints of every flow kind.
func hbCreateGetCases(in *instance, flows map[string]*hbFlow, aToken, bToken, aCookies, otherCookies string) []hbCase {
	var cs []hbCase
	add := func(name, method, u string, h hdr, body []byte, w hbWant) {
		hh := hdr{"Accept": "application/json"}
		for k, v := range h {
			hh[k] = v
		}
		cs = append(cs, hbCase{name: name, method: method, url: u, h: hh, body: body, want: w})
	}
	forbidden := hbWant{status: 400, errID: "self_service_flow_return_to_forbidden"}
	for _, kind := range []string{"login", "registration", "settings", "recovery", "verification"} {
		for _, typ := range []string{"api", "browser"} {
			name := kind + "/" + typ
			u := in.apiBase + "/self-service/" + kind + "/" + typ
			var auth hdr
			if kind == "settings" {
				if typ == "api" {
					auth = hdr{"X-Session-Token": aToken}
				} else {
					auth = hdr{"Cookie": aCookies}
				}
			}
			with := func(extra hdr) hdr {
				h := hdr{}
				for k, v := range auth {
					h[k] = v
				}
				for k, v := range extra {
					h[k] = v
				}
				return h
			}
			add("create "+name+": return_to to another host", "GET", u+"?return_to="+url.QueryEscape("https://evil.example/"), with(nil), nil, forbidden)
			add("create "+name+": return_to with invalid UTF-8", "GET", u+"?return_to=%ff%fe", with(nil), nil, forbidden)
			add("create "+name+": return_to of 100 KB", "GET", u+"?return_to="+url.QueryEscape(in.appBase+"/"+strings.Repeat("r", 100<<10)), with(nil), nil, hbWant{raw: true})
			add("create "+name+": invalid UTF-8 query", "GET", u+"?%ff=%fe&refresh=%ff", with(nil), nil, hbWant{alsoOK: 200})
			add("create "+name+": 2 MB body on a GET", "GET", u, with(hdr{"Content-Type": "application/json"}), bigBody(mb2), hbWant{alsoOK: 200})
			add("create "+name+": 64 KB cookie", "GET", u, with(hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}), nil, hbWant{raw: true})
			for _, m := range []string{"POST", "PUT", "DELETE"} {
				add("create "+name+": wrong HTTP method "+m, m, u, with(nil), nil, hbWant{})
			}
			if kind == "login" {
				add("create "+name+": invalid aal", "GET", u+"?aal=aal9", with(nil), nil, hbWant{status: 400})
				add("create "+name+": aal with invalid UTF-8", "GET", u+"?aal=%ff", with(nil), nil, hbWant{status: 400})
			}
			if kind == "settings" {
				add("create "+name+": no session", "GET", u, nil, nil, hbWant{status: 401, errID: "session_inactive"})
				add("create "+name+": forged session", "GET", u, hdr{"X-Session-Token": "ory_st_" + randHex(16), "Cookie": "ory_kratos_session=" + randHex(60)}, nil, hbWant{status: 401, errID: "session_inactive"})
				add("create "+name+": 16 KB session token", "GET", u, hdr{"X-Session-Token": strings.Repeat("t", 16<<10)}, nil, hbWant{status: 401})
			}

			// get
			g := in.apiBase + "/self-service/" + kind + "/flows?id="
			f := flows[name]
			other := flows[map[string]string{"login": "registration", "registration": "login", "settings": "login", "recovery": "verification", "verification": "recovery"}[kind]+"/"+typ]
			getAuth := with(nil)
			if typ == "browser" && kind != "settings" {
				getAuth = hdr{"Cookie": f.h["Cookie"]}
			}
			add("get "+name+": unknown id", "GET", g+admRandUUID(), getAuth, nil, hbWant{status: 404})
			add("get "+name+": malformed id", "GET", g+"not-a-uuid", getAuth, nil, hbWant{status: 404})
			add("get "+name+": id with invalid UTF-8", "GET", g+"%ff%fe", getAuth, nil, hbWant{status: 404})
			add("get "+name+": id with trailing junk", "GET", g+f.id+"x", getAuth, nil, hbWant{status: 404})
			add("get "+name+": missing id", "GET", strings.TrimSuffix(g, "?id="), getAuth, nil, hbWant{})
			add("get "+name+": flow of another kind", "GET", g+other.id, getAuth, nil, hbWant{})
			add("get "+name+": wrong HTTP method", "DELETE", g+f.id, getAuth, nil, hbWant{})
			add("get "+name+": 64 KB cookie", "GET", g+f.id, hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})
			if typ == "browser" {
				if kind == "settings" {
					add("get "+name+": cookies of another browser", "GET", g+f.id, hdr{"Cookie": otherCookies}, nil, hbWant{status: 401})
				} else {
					add("get "+name+": no CSRF cookie", "GET", g+f.id, nil, nil, hbWant{status: 403, errID: "security_csrf_violation"})
					add("get "+name+": CSRF cookie of another browser", "GET", g+f.id, hdr{"Cookie": otherCookies}, nil, hbWant{status: 403, errID: "security_csrf_violation"})
				}
			}
			if kind == "settings" {
				add("get "+name+": no session", "GET", g+f.id, nil, nil, hbWant{status: 401})
				add("get "+name+": session of another identity", "GET", g+f.id, hdr{"X-Session-Token": bToken}, nil, hbWant{status: 403})
			}
		}
	}
	return cs
}

// hbLogoutCases: createBrowserLogoutFlow, updateLogoutFlow and
// performNativeLogout. A's sessions must survive all of them.
func hbLogoutCases(in *instance, aToken, aCookies, aLogout, bLogout string) []hbCase {
	var cs []hbCase
	add := func(name, method, u string, h hdr, body []byte, w hbWant) {
		hh := hdr{"Accept": "application/json"}
		for k, v := range h {
			hh[k] = v
		}
		cs = append(cs, hbCase{name: name, method: method, url: u, h: hh, body: body, want: w})
	}
	create := in.apiBase + "/self-service/logout/browser"
	add("create: no session", "GET", create, nil, nil, hbWant{status: 401, errID: "session_inactive"})
	add("create: forged session cookie", "GET", create, hdr{"Cookie": hbReplaceCookie(aCookies, "ory_kratos_session", randHex(60))}, nil, hbWant{status: 401, errID: "session_inactive"})
	add("create: return_to to another host", "GET", create+"?return_to="+url.QueryEscape("https://evil.example/"), hdr{"Cookie": aCookies}, nil,
		hbWant{status: 400, errID: "self_service_flow_return_to_forbidden"})
	add("create: wrong HTTP method", "POST", create, hdr{"Cookie": aCookies}, nil, hbWant{})
	add("create: 64 KB cookie", "GET", create, hdr{"Cookie": aCookies + "; junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})

	upd := in.apiBase + "/self-service/logout"
	add("update: missing token", "GET", upd, hdr{"Cookie": aCookies}, nil, hbWant{status: 400})
	add("update: forged token", "GET", upd+"?token=ory_lo_"+randHex(16), hdr{"Cookie": aCookies}, nil, hbWant{status: 403})
	add("update: token of another browser's session", "GET", upd+"?token="+bLogout, hdr{"Cookie": aCookies}, nil, hbWant{status: 403})
	add("update: token with trailing junk", "GET", upd+"?token="+aLogout+"x", hdr{"Cookie": aCookies}, nil, hbWant{status: 403})
	add("update: token with invalid UTF-8", "GET", upd+"?token=%ff%fe", hdr{"Cookie": aCookies}, nil, hbWant{})
	add("update: token in an array", "GET", upd+"?token[]="+aLogout, hdr{"Cookie": aCookies}, nil, hbWant{})
	add("update: right token, no session", "GET", upd+"?token="+aLogout, nil, nil, hbWant{status: 401})
	add("update: right token, forged cookie", "GET", upd+"?token="+aLogout, hdr{"Cookie": hbReplaceCookie(aCookies, "ory_kratos_session", randHex(60))}, nil, hbWant{status: 401})
	add("update: right token as X-Session-Token", "GET", upd+"?token="+aLogout, hdr{"X-Session-Token": "ory_st_" + randHex(16)}, nil, hbWant{status: 401})
	for _, m := range []string{"POST", "DELETE", "PUT"} {
		add("update: wrong HTTP method "+m, m, upd+"?token="+aLogout, hdr{"Cookie": aCookies}, nil, hbWant{})
	}
	add("update: 64 KB cookie", "GET", upd+"?token="+aLogout, hdr{"Cookie": aCookies + "; junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})

	nat := in.apiBase + "/self-service/logout/api"
	js := hdr{"Content-Type": "application/json"}
	withJS := func(extra hdr) hdr {
		h := hdr{"Content-Type": "application/json"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	add("native: malformed JSON", "DELETE", nat, js, []byte(`{"session_token": "`+aToken), hbWant{status: 400})
	add("native: missing token", "DELETE", nat, js, []byte(`{}`), hbWant{status: 403})
	add("native: forged token", "DELETE", nat, js, []byte(`{"session_token":"ory_st_`+randHex(16)+`"}`), hbWant{status: 403})
	add("native: token with trailing junk", "DELETE", nat, js, []byte(`{"session_token":"`+aToken+`x"}`), hbWant{status: 403})
	add("native: token in an array", "DELETE", nat, js, []byte(`{"session_token":["`+aToken+`"]}`), hbWant{})
	add("native: token in an object", "DELETE", nat, js, []byte(`{"session_token":{"t":"`+aToken+`"}}`), hbWant{})
	add("native: token as a number", "DELETE", nat, js, []byte(`{"session_token":5}`), hbWant{})
	add("native: form body labelled JSON", "DELETE", nat, js, []byte("session_token="+aToken), hbWant{})
	add("native: JSON array", "DELETE", nat, js, []byte(`[{"session_token":"`+aToken+`"}]`), hbWant{})
	add("native: empty body", "DELETE", nat, js, nil, hbWant{})
	add("native: 2 MB body", "DELETE", nat, js, bigBody(mb2), hbWant{})
	add("native: 2 MB token", "DELETE", nat, js, []byte(`{"session_token":"`+strings.Repeat("t", mb2)+`"}`), hbWant{})
	add("native: invalid UTF-8 token", "DELETE", nat, js, []byte("{\"session_token\":\"ory_st_\xff\xfe\"}"), hbWant{})
	add("native: token in X-Session-Token only", "DELETE", nat, withJS(hdr{"X-Session-Token": aToken}), []byte(`{}`), hbWant{status: 403})
	for _, m := range []string{"POST", "GET", "PUT"} {
		add("native: wrong HTTP method "+m, m, nat, js, []byte(`{"session_token":"`+aToken+`"}`), hbWant{})
	}
	add("native: 64 KB cookie", "DELETE", nat, withJS(hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}), []byte(`{"session_token":"`+aToken+`"}`), hbWant{raw: true})
	return cs
}

// hbSessionCases: whoami, the session list, revoking one or the other
// sessions, token exchange.
func hbSessionCases(in *instance, a user, deadTok, bSessionID, aCookies string) []hbCase {
	var cs []hbCase
	add := func(name, method, u string, h hdr, body []byte, w hbWant) {
		hh := hdr{"Accept": "application/json"}
		for k, v := range h {
			hh[k] = v
		}
		cs = append(cs, hbCase{name: name, method: method, url: u, h: hh, body: body, want: w})
	}
	who := in.apiBase + "/sessions/whoami"
	unauth := hbWant{status: 401}
	for name, h := range map[string]hdr{
		"no credentials":           nil,
		"forged token":             {"X-Session-Token": "ory_st_" + randHex(16)},
		"revoked token":            {"X-Session-Token": deadTok},
		"token with junk":          {"X-Session-Token": a.Token + "x"},
		"token prefix":             {"X-Session-Token": a.Token[:20]},
		"token in lower case":      {"X-Session-Token": strings.ToLower(a.Token)},
		"forged bearer":            {"Authorization": "Bearer ory_st_" + randHex(16)},
		"bearer without token":     {"Authorization": "Bearer "},
		"basic auth":               {"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Email+":"+a.Password))},
		"forged session cookie":    {"Cookie": "ory_kratos_session=" + randHex(60)},
		"session cookie with junk": {"Cookie": hbReplaceCookie(aCookies, "ory_kratos_session", hbCookieValue(aCookies, "ory_kratos_session")+"x")},
		"truncated session cookie": {"Cookie": hbReplaceCookie(aCookies, "ory_kratos_session", hbCookieValue(aCookies, "ory_kratos_session")[:20])},
		"16 KB token":              {"X-Session-Token": strings.Repeat("t", 16<<10)},
		"16 KB session cookie":     {"Cookie": "ory_kratos_session=" + strings.Repeat("c", 16<<10)},
		"500 cookies":              {"Cookie": strings.Repeat("ory_kratos_session=x; ", 500)},
		"token with invalid UTF-8": {"X-Session-Token": "ory_st_\xff\xfe"},
	} {
		add("whoami: "+name, "GET", who, h, nil, unauth)
	}
	add("whoami: 64 KB cookie", "GET", who, hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})
	add("whoami: 64 KB token", "GET", who, hdr{"X-Session-Token": strings.Repeat("t", 64<<10)}, nil, hbWant{raw: true})
	add("whoami: wrong HTTP method", "TRACE", who, hdr{"X-Session-Token": a.Token}, nil, hbWant{})
	add("whoami: unknown tokenize_as", "GET", who+"?tokenize_as=%ff", hdr{"X-Session-Token": a.Token}, nil, hbWant{alsoOK: 200})
	add("whoami: 2 MB body", "GET", who, hdr{"X-Session-Token": a.Token}, bigBody(mb2), hbWant{alsoOK: 200})

	list := in.apiBase + "/sessions"
	add("list: no credentials", "GET", list, nil, nil, unauth)
	add("list: forged token", "GET", list, hdr{"X-Session-Token": "ory_st_" + randHex(16)}, nil, unauth)
	add("list: revoked token", "GET", list, hdr{"X-Session-Token": deadTok}, nil, unauth)
	for _, q := range []string{"per_page=abc", "per_page=-5", "per_page=100000000000000000000", "page=%ff", "page_token=%ff%fe", "page_size=0", "page=-1"} {
		add("list: "+q, "GET", list+"?"+q, hdr{"X-Session-Token": a.Token}, nil, hbWant{alsoOK: 200})
	}
	add("list: wrong HTTP method", "PUT", list, hdr{"X-Session-Token": a.Token}, nil, hbWant{})
	add("list: 64 KB cookie", "GET", list, hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})

	// Revoking sessions: nothing of A's or B's may go.
	add("revoke others: no credentials", "DELETE", list, nil, nil, unauth)
	add("revoke others: forged token", "DELETE", list, hdr{"X-Session-Token": "ory_st_" + randHex(16)}, nil, unauth)
	add("revoke others: revoked token", "DELETE", list, hdr{"X-Session-Token": deadTok}, nil, unauth)
	add("revoke others: forged cookie", "DELETE", list, hdr{"Cookie": "ory_kratos_session=" + randHex(60)}, nil, unauth)
	add("revoke others: 64 KB cookie", "DELETE", list, hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})
	one := list + "/"
	add("revoke one: malformed id", "DELETE", one+"not-a-uuid", hdr{"X-Session-Token": a.Token}, nil, hbWant{status: 400})
	add("revoke one: id with invalid UTF-8", "DELETE", one+"%ff%fe", hdr{"X-Session-Token": a.Token}, nil, hbWant{status: 400})
	add("revoke one: the current session", "DELETE", one+a.SessionID, hdr{"X-Session-Token": a.Token}, nil, hbWant{status: 400})
	add("revoke one: another identity's session", "DELETE", one+bSessionID, hdr{"X-Session-Token": a.Token}, nil, hbWant{alsoOK: http.StatusNoContent})
	add("revoke one: no credentials", "DELETE", one+a.SessionID, nil, nil, unauth)
	add("revoke one: forged token", "DELETE", one+a.SessionID, hdr{"X-Session-Token": "ory_st_" + randHex(16)}, nil, unauth)
	add("revoke one: revoked token", "DELETE", one+bSessionID, hdr{"X-Session-Token": deadTok}, nil, unauth)
	add("revoke one: wrong HTTP method", "PUT", one+a.SessionID, hdr{"X-Session-Token": a.Token}, nil, hbWant{})
	add("revoke one: 64 KB cookie", "DELETE", one+bSessionID, hdr{"X-Session-Token": a.Token, "Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})

	tx := in.apiBase + "/sessions/token-exchange"
	add("token exchange: no parameters", "GET", tx, nil, nil, hbWant{status: 400})
	add("token exchange: only init_code", "GET", tx+"?init_code="+randHex(32), nil, nil, hbWant{status: 400})
	add("token exchange: unknown codes", "GET", tx+"?init_code="+randHex(32)+"&return_to_code="+randHex(32), nil, nil, hbWant{status: 404})
	add("token exchange: invalid UTF-8", "GET", tx+"?init_code=%ff&return_to_code=%fe", nil, nil, hbWant{})
	add("token exchange: 100 KB codes", "GET", tx+"?init_code="+strings.Repeat("a", 50<<10)+"&return_to_code="+strings.Repeat("b", 50<<10), nil, nil, hbWant{raw: true})
	add("token exchange: session token as code", "GET", tx+"?init_code="+a.Token+"&return_to_code="+a.Token, nil, nil, hbWant{status: 404})
	add("token exchange: wrong HTTP method", "POST", tx+"?init_code="+randHex(32)+"&return_to_code="+randHex(32), nil, nil, hbWant{})
	add("token exchange: 64 KB cookie", "GET", tx+"?init_code="+randHex(32)+"&return_to_code="+randHex(32), hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})
	return cs
}

// hbMiscCases: errors, schemas, webauthn.js.
func hbMiscCases(in *instance) []hbCase {
	var cs []hbCase
	add := func(name, method, u string, h hdr, body []byte, w hbWant) {
		hh := hdr{"Accept": "application/json"}
		for k, v := range h {
			hh[k] = v
		}
		cs = append(cs, hbCase{name: name, method: method, url: u, h: hh, body: body, want: w})
	}
	e := in.apiBase + "/self-service/errors"
	add("errors: unknown id", "GET", e+"?id="+admRandUUID(), nil, nil, hbWant{status: 404})
	add("errors: malformed id", "GET", e+"?id=not-a-uuid", nil, nil, hbWant{status: 404})
	add("errors: id with invalid UTF-8", "GET", e+"?id=%ff%fe", nil, nil, hbWant{status: 404})
	add("errors: stub:404", "GET", e+"?id=stub:404", nil, nil, hbWant{status: 404})
	add("errors: stub:xyz", "GET", e+"?id=stub:xyz", nil, nil, hbWant{})
	add("errors: stub:999", "GET", e+"?id=stub:999", nil, nil, hbWant{})
	add("errors: missing id", "GET", e, nil, nil, hbWant{})
	add("errors: wrong HTTP method", "POST", e+"?id="+admRandUUID(), nil, nil, hbWant{})
	add("errors: 64 KB cookie", "GET", e+"?id="+admRandUUID(), hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})

	s := in.apiBase + "/schemas"
	add("schemas: unknown id", "GET", s+"/does-not-exist", nil, nil, hbWant{status: 404})
	add("schemas: id with invalid UTF-8", "GET", s+"/%ff%fe", nil, nil, hbWant{status: 404})
	add("schemas: path traversal", "GET", s+"/..%2F..%2F..%2Fetc%2Fpasswd", nil, nil, hbWant{})
	add("schemas: base64 of a path", "GET", s+"/"+base64.RawURLEncoding.EncodeToString([]byte("../../../../etc/passwd")), nil, nil, hbWant{status: 404})
	add("schemas: file URL in base64", "GET", s+"/"+base64.RawURLEncoding.EncodeToString([]byte("file:///etc/passwd")), nil, nil, hbWant{status: 404})
	for _, q := range []string{"page_size=-1", "page_size=abc", "page=%ff", "per_page=100000000000000000000"} {
		add("schemas: "+q, "GET", s+"?"+q, nil, nil, hbWant{alsoOK: 200})
	}
	add("schemas: wrong HTTP method", "POST", s, hdr{"Content-Type": "application/json"}, []byte(`{}`), hbWant{})
	add("schemas: DELETE a schema", "DELETE", s+"/ZGVmYXVsdA", nil, nil, hbWant{})
	add("schemas: 64 KB cookie", "GET", s, hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})

	w := in.apiBase + "/.well-known/ory/webauthn.js"
	add("webauthn.js: wrong HTTP method", "POST", w, hdr{"Content-Type": "application/json"}, []byte(`{}`), hbWant{})
	add("webauthn.js: 2 MB body on a GET", "GET", w, nil, bigBody(mb2), hbWant{alsoOK: 200})
	add("webauthn.js: 64 KB cookie", "GET", w, hdr{"Cookie": "junk=" + strings.Repeat("j", 64<<10)}, nil, hbWant{raw: true})
	add("webauthn.js: query with invalid UTF-8", "GET", w+"?%ff=%fe", nil, nil, hbWant{alsoOK: 200})
	add("unknown path under /self-service/", "GET", in.apiBase+"/self-service/nope", nil, nil, hbWant{status: 404})
	add("unknown path under /sessions/", "GET", in.apiBase+"/sessions/whoami/x", nil, nil, hbWant{})
	return cs
}

// TestHardeningBadInputExpired: expired flows (flow_lifespan 2s) of every
// kind and type refuse the correct body with 410 and a replacement flow,
// change nothing, and the replacement completes.
func TestHardeningBadInputExpired(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"rate_limits off", "recovery", "verification", "flow_lifespan 2s"}})
	hc := plainHTTP()
	a := registerNative(t, in)
	bA := newBrowser(t, in)
	bA.login(t, a.Email, a.Password)
	type ef struct {
		kind, typ string
		id        string
		h         hdr
		body      map[string]any
	}
	regEmail := randEmail()
	var fs []ef
	for _, kind := range []string{"login", "registration", "settings", "recovery", "verification"} {
		for _, typ := range []string{"api", "browser"} {
			f := ef{kind: kind, typ: typ, h: hdr{"Accept": "application/json"}}
			var csrf string
			switch {
			case kind == "settings" && typ == "api":
				f.h["X-Session-Token"] = a.Token
				f.id, csrf = hbFlowID(t, hc, in, kind, typ, hdr{"X-Session-Token": a.Token})
			case kind == "settings":
				f.id, csrf = hbFlowID(t, bA.hc, in, kind, typ, nil)
				f.h["Cookie"] = bA.cookieHeader()
			case typ == "api":
				f.id, csrf = hbFlowID(t, hc, in, kind, typ, nil)
			default:
				b := newBrowser(t, in)
				f.id, csrf = hbFlowID(t, b.hc, in, kind, typ, nil)
				f.h["Cookie"] = b.cookieHeader()
			}
			switch kind {
			case "login":
				f.body = map[string]any{"method": "password", "identifier": a.Email, "password": a.Password}
			case "registration":
				f.body = map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": regEmail}}
			case "settings":
				f.body = map[string]any{"method": "profile", "traits": map[string]any{"email": a.Email, "name": map[string]any{"first": "Expired"}}}
			default:
				f.body = map[string]any{"method": "code", "email": a.Email}
			}
			if typ == "browser" {
				f.body["csrf_token"] = csrf
			}
			fs = append(fs, f)
		}
	}
	time.Sleep(2500 * time.Millisecond)
	before := hbSnapshot(t, in)
	expiredMsg := map[string]int64{"login": 4010001, "registration": 4040001, "settings": 4050001, "recovery": 4060005, "verification": 4070005}
	var regReplacement string
	for _, f := range fs {
		what := f.kind + "/" + f.typ
		r, body, err := hbSend(hc, "GET", in.apiBase+"/self-service/"+f.kind+"/flows?id="+f.id, f.h, nil)
		hbCheck(t, hbCase{name: what + " get", method: "GET", url: r2u(r), want: hbWant{status: 410, errID: "self_service_flow_expired"}}, r, body, err)

		h := hdr{"Content-Type": "application/json"}
		for k, v := range f.h {
			h[k] = v
		}
		r, body, err = hbSend(hc, "POST", in.apiBase+"/self-service/"+f.kind+"?flow="+f.id, h, hbJSON(f.body, nil))
		hbCheck(t, hbCase{name: what + " submit", method: "POST", url: r2u(r), want: hbWant{status: 410, errID: "self_service_flow_expired"}}, r, body, err)
		if err != nil {
			continue
		}
		e := decodeJSON[errorJSON](t, body)
		if !isUUID(e.UseFlowID) || e.UseFlowID == f.id {
			t.Errorf("%s: use_flow_id = %q, want a new flow", what, e.UseFlowID)
			continue
		}
		// The replacement is a flow of the same kind and type with the
		// "expired" message.
		r, body, err = hbSend(hc, "GET", in.apiBase+"/self-service/"+f.kind+"/flows?id="+e.UseFlowID, f.h, nil)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Errorf("%s: replacement flow: %v %s", what, err, clip(body))
			continue
		}
		nf := decodeFlow(t, body)
		if nf.Type != f.typ || !containsID(nf.messageIDs(), expiredMsg[f.kind]) {
			t.Errorf("%s: replacement flow type %q messages %v, want %s with %d", what, nf.Type, nf.messageIDs(), f.typ, expiredMsg[f.kind])
		}
		if f.kind == "registration" && f.typ == "api" {
			regReplacement = e.UseFlowID
			// The replacement lives 2s: complete it at once.
			r, body, err = hbSend(hc, "POST", in.apiBase+"/self-service/registration?flow="+regReplacement, h, hbJSON(f.body, nil))
			if err != nil || r.StatusCode != http.StatusOK {
				t.Errorf("registration on the replacement flow: %v %d %s", err, statusOf(r), clip(body))
			}
		}
	}
	after := hbSnapshot(t, in)
	if regReplacement != "" {
		if after.Identities != before.Identities+1 || hbIdentitiesWith(t, in, regEmail) != 1 {
			t.Errorf("expired submits: %d → %d identities, want exactly the one registered on the replacement flow", before.Identities, after.Identities)
		}
	} else {
		wantSameState(t, "submits to expired flows", before, after)
	}
	if after.Sessions != before.Sessions+boolInt(regReplacement != "") {
		t.Errorf("expired submits: sessions %d → %d", before.Sessions, after.Sessions)
	}
	got := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+a.IdentityID, nil, http.StatusOK)
	if name, _ := got.Traits["name"].(map[string]any); name["first"] == "Expired" {
		t.Error("a settings submit to an expired flow changed the traits")
	}
}

func r2u(r *http.Response) string {
	if r == nil || r.Request == nil {
		return ""
	}
	return r.Request.URL.String()
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
