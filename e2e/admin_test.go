package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// The Kratos admin API on Caddy's admin endpoint (/kratos/admin/…) and the
// `caddy-kratos kratos …` command line that drives it.

// admCall sends a request to the Kratos admin API of in (path is Kratos's:
// /admin/identities, …) and returns the answer with its body read.
func admCall(t *testing.T, in *instance, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	h := hdr{"Accept": "application/json"}
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		h["Content-Type"] = "application/json"
	}
	return do(t, plainHTTP(), method, in.adminBase+"/kratos"+path, h, b)
}

// admJSON is admCall that fails unless the status is want and decodes the
// body into T.
func admJSON[T any](t *testing.T, in *instance, method, path string, body any, want int) T {
	t.Helper()
	r, b := admCall(t, in, method, path, body)
	wantStatus(t, r, b, want)
	return decodeJSON[T](t, b)
}

type admIdentity struct {
	ID          string         `json:"id"`
	State       string         `json:"state"`
	SchemaID    string         `json:"schema_id"`
	Traits      map[string]any `json:"traits"`
	Credentials map[string]struct {
		Identifiers []string `json:"identifiers"`
		Config      *struct {
			HashedPassword string `json:"hashed_password"`
		} `json:"config"`
	} `json:"credentials"`
	VerifiableAddresses []struct {
		Value    string `json:"value"`
		Verified bool   `json:"verified"`
		Status   string `json:"status"`
	} `json:"verifiable_addresses"`
	MetadataPublic any `json:"metadata_public"`
	MetadataAdmin  any `json:"metadata_admin"`
}

type admSession struct {
	ID        string    `json:"id"`
	Active    bool      `json:"active"`
	ExpiresAt time.Time `json:"expires_at"`
	Identity  *struct {
		ID string `json:"id"`
	} `json:"identity"`
}

// admCreate creates an identity with a password through the admin API.
func admCreate(t *testing.T, in *instance, email, password string) admIdentity {
	t.Helper()
	body := map[string]any{"schema_id": "default", "traits": map[string]any{"email": email}}
	if password != "" {
		body["credentials"] = map[string]any{"password": map[string]any{"config": map[string]any{"password": password}}}
	}
	return admJSON[admIdentity](t, in, "POST", "/admin/identities", body, http.StatusCreated)
}

// admHash returns the stored password hash (include_credential=password).
func admHash(t *testing.T, in *instance, id string) string {
	t.Helper()
	got := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+id+"?include_credential=password", nil, http.StatusOK)
	pw, ok := got.Credentials["password"]
	if !ok || pw.Config == nil {
		t.Fatalf("identity %s has no password config with include_credential=password", id)
	}
	return pw.Config.HashedPassword
}

// admHashes are password hashes of "test" in the formats an import
// accepts (Kratos's own test vectors, and bcrypt at cost 10).
var admHashes = map[string]string{
	"bcrypt":   "$2a$10$w2UgrMunBLF5KRzBbG9czu8QGANn7uPJ.xa/srflDsC88JmwPbprG",
	"argon2id": "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4",
	"pbkdf2":   "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
	"scrypt":   "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
}

// admLoginFails logs in on a native flow and returns the 400 flow.
func admLoginFails(t *testing.T, in *instance, email, password string) *ory.LoginFlow {
	t.Helper()
	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	body := ory.UpdateLoginFlowWithPasswordMethodAsUpdateLoginFlowBody(ory.NewUpdateLoginFlowWithPasswordMethod(email, "password", password))
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).UpdateLoginFlowBody(body).Execute()
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("login of %s: %v %v, want 400", email, resp, err)
	}
	var f ory.LoginFlow
	if e := json.Unmarshal(sdkErrBody(t, err), &f); e != nil {
		t.Fatalf("400 login answer is not a flow: %v", e)
	}
	return &f
}

// TestAdminIdentities covers every identity operation of the admin API.
func TestAdminIdentities(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	email, password := randEmail(), randPassword()

	created := admJSON[admIdentity](t, in, "POST", "/admin/identities", map[string]any{
		"schema_id":            "default",
		"traits":               map[string]any{"email": strings.ToUpper(email[:1]) + email[1:], "name": map[string]any{"first": "Ada"}},
		"state":                "active",
		"metadata_public":      map[string]any{"plan": "pro"},
		"metadata_admin":       map[string]any{"crm": 42},
		"verifiable_addresses": []any{map[string]any{"value": email, "via": "email", "verified": true, "status": "completed"}},
		"credentials":          map[string]any{"password": map[string]any{"config": map[string]any{"password": password}}},
	}, http.StatusCreated)
	if !isUUID(created.ID) || created.State != "active" || created.SchemaID != "default" {
		t.Fatalf("created identity: %+v", created)
	}
	if pw := created.Credentials["password"]; len(pw.Identifiers) != 1 || pw.Identifiers[0] != email || pw.Config != nil {
		t.Errorf("password credential without include_credential: %+v", pw)
	}
	if va := created.VerifiableAddresses; len(va) != 1 || !va[0].Verified || va[0].Status != "completed" {
		t.Errorf("imported verified address: %+v", va)
	}
	if m, _ := created.MetadataAdmin.(map[string]any); m["crm"] != float64(42) {
		t.Errorf("metadata_admin = %v", created.MetadataAdmin)
	}

	t.Run("conflicts and invalid bodies", func(t *testing.T) {
		r, b := admCall(t, in, "POST", "/admin/identities", map[string]any{"schema_id": "default", "traits": map[string]any{"email": email}})
		wantStatus(t, r, b, http.StatusConflict)
		decodeError(t, http.StatusConflict, b)
		for _, body := range []any{
			map[string]any{"schema_id": "default", "traits": map[string]any{"email": "not an email"}},
			map[string]any{"schema_id": "default", "traits": map[string]any{"email": randEmail()}, "state": "suspended"},
			map[string]any{"schema_id": "default", "traits": map[string]any{"email": randEmail()}, "unknown_field": true},
			map[string]any{"schema_id": "default", "traits": map[string]any{"email": randEmail()},
				"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": "$md5$abc$def"}}}},
		} {
			r, b := admCall(t, in, "POST", "/admin/identities", body)
			wantStatus(t, r, b, http.StatusBadRequest)
			decodeError(t, http.StatusBadRequest, b)
			wantErrorHeaders(t, r, "")
		}
	})

	t.Run("get and list", func(t *testing.T) {
		if h := admHash(t, in, created.ID); !strings.HasPrefix(h, "$2a$04$") {
			t.Errorf("hashed_password = %q, want bcrypt cost 4", h)
		}
		r, b := admCall(t, in, "GET", "/admin/identities/"+created.ID+"?include_credential=secret", nil)
		wantStatus(t, r, b, http.StatusBadRequest)
		r, b = admCall(t, in, "GET", "/admin/identities/"+admRandUUID(), nil)
		wantStatus(t, r, b, http.StatusNotFound)
		decodeError(t, http.StatusNotFound, b)

		found := admJSON[[]admIdentity](t, in, "GET", "/admin/identities?credentials_identifier="+strings.ToUpper(email), nil, http.StatusOK)
		if len(found) != 1 || found[0].ID != created.ID {
			t.Errorf("credentials_identifier lookup = %+v", found)
		}
		if none := admJSON[[]admIdentity](t, in, "GET", "/admin/identities?credentials_identifier=nobody@example.com", nil, http.StatusOK); len(none) != 0 {
			t.Errorf("unknown identifier matched %+v", none)
		}
		for range 3 {
			admCreate(t, in, randEmail(), "")
		}
		seen := map[string]bool{}
		next := "/admin/identities?page_size=2"
		for page := 0; next != ""; page++ {
			if page > 4 {
				t.Fatal("pagination does not end")
			}
			r, b := admCall(t, in, "GET", next, nil)
			wantStatus(t, r, b, http.StatusOK)
			for _, id := range decodeJSON[[]admIdentity](t, b) {
				seen[id.ID] = true
			}
			next = ""
			for _, l := range strings.Split(r.Header.Get("Link"), ",") {
				if strings.Contains(l, `rel="next"`) {
					u := mustURL(strings.Trim(strings.TrimSpace(strings.Split(l, ";")[0]), "<>"))
					if !strings.HasPrefix(u.Path, "/kratos/admin/identities") || u.Host != fmt.Sprintf("127.0.0.1:%d", in.adminPort) {
						t.Fatalf("Link next %q is not on the admin endpoint", u)
					}
					next = strings.TrimPrefix(u.RequestURI(), "/kratos")
				}
			}
		}
		if len(seen) != 4 {
			t.Errorf("paging saw %d identities, want 4", len(seen))
		}
	})

	t.Run("update and patch", func(t *testing.T) {
		newEmail := randEmail()
		upd := admJSON[admIdentity](t, in, "PUT", "/admin/identities/"+created.ID, map[string]any{
			"schema_id": "default", "state": "active", "traits": map[string]any{"email": newEmail},
			"metadata_public": map[string]any{"plan": "free"},
		}, http.StatusOK)
		if upd.Traits["email"] != newEmail || upd.Credentials["password"].Identifiers[0] != newEmail || upd.MetadataAdmin != nil {
			t.Errorf("after PUT: %+v", upd)
		}
		// The password survives a PUT without credentials, under the new identifier.
		loginNative(t, in, newEmail, password)

		patched := admJSON[admIdentity](t, in, "PATCH", "/admin/identities/"+created.ID, []map[string]any{
			{"op": "add", "path": "/traits/name", "value": map[string]any{"first": "Grace", "last": "Hopper"}},
			{"op": "replace", "path": "/metadata_admin", "value": map[string]any{"note": "patched"}},
			{"op": "test", "path": "/state", "value": "active"},
		}, http.StatusOK)
		if name, _ := patched.Traits["name"].(map[string]any); name["last"] != "Hopper" {
			t.Errorf("after PATCH traits = %v", patched.Traits)
		}
		for _, bad := range []any{
			[]map[string]any{{"op": "replace", "path": "/id", "value": "00000000-0000-0000-0000-000000000000"}},
			[]map[string]any{{"op": "test", "path": "/state", "value": "inactive"}},
			[]map[string]any{{"op": "replace", "path": "/traits/email", "value": 7}},
			map[string]any{"not": "a patch"},
		} {
			r, b := admCall(t, in, "PATCH", "/admin/identities/"+created.ID, bad)
			wantStatus(t, r, b, http.StatusBadRequest)
			decodeError(t, http.StatusBadRequest, b)
		}
	})

	t.Run("delete", func(t *testing.T) {
		victim := admCreate(t, in, randEmail(), randPassword())
		r, b := admCall(t, in, "DELETE", "/admin/identities/"+victim.ID, nil)
		wantStatus(t, r, b, http.StatusNoContent)
		r, b = admCall(t, in, "GET", "/admin/identities/"+victim.ID, nil)
		wantStatus(t, r, b, http.StatusNotFound)
		r, b = admCall(t, in, "DELETE", "/admin/identities/"+victim.ID, nil)
		wantStatus(t, r, b, http.StatusNotFound)
	})

	t.Run("unknown route", func(t *testing.T) {
		r, b := admCall(t, in, "GET", "/admin/nothing-here", nil)
		wantStatus(t, r, b, http.StatusNotFound)
		decodeError(t, http.StatusNotFound, b)
	})
}

// admRandUUID is a well-formed UUID that names nothing.
func admRandUUID() string {
	h := randHex(16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:32]
}

// TestAdminSessions lists, reads, extends and revokes sessions; deleting
// the identity deletes them.
func TestAdminSessions(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"session_lifespan 2h"}})
	email, password := randEmail(), randPassword()
	id := admCreate(t, in, email, password)
	tok1, s1 := loginNative(t, in, email, password)
	tok2, s2 := loginNative(t, in, email, password)

	list := admJSON[[]admSession](t, in, "GET", "/admin/identities/"+id.ID+"/sessions", nil, http.StatusOK)
	if len(list) != 2 || list[0].Identity == nil || list[0].Identity.ID != id.ID {
		t.Fatalf("sessions = %+v", list)
	}
	got := admJSON[admSession](t, in, "GET", "/admin/sessions/"+s1.Id+"?expand=identity", nil, http.StatusOK)
	if got.ID != s1.Id || !got.Active || got.Identity == nil {
		t.Errorf("getSession = %+v", got)
	}
	r, b := admCall(t, in, "GET", "/admin/sessions/"+admRandUUID(), nil)
	wantStatus(t, r, b, http.StatusNotFound)

	ext := admJSON[admSession](t, in, "PATCH", "/admin/sessions/"+s1.Id+"/extend", nil, http.StatusOK)
	if d := time.Until(ext.ExpiresAt); d < 119*time.Minute || d > 121*time.Minute {
		t.Errorf("extended session expires in %v, want ~2h", d)
	}

	r, b = admCall(t, in, "DELETE", "/admin/sessions/"+s1.Id, nil)
	wantStatus(t, r, b, http.StatusNoContent)
	if _, st := whoamiToken(t, in, tok1); st != http.StatusUnauthorized {
		t.Errorf("whoami with a disabled session = %d, want 401", st)
	}
	if _, st := whoamiToken(t, in, tok2); st != http.StatusOK {
		t.Errorf("whoami with the other session = %d, want 200", st)
	}
	active := admJSON[[]admSession](t, in, "GET", "/admin/identities/"+id.ID+"/sessions?active=true", nil, http.StatusOK)
	inactive := admJSON[[]admSession](t, in, "GET", "/admin/identities/"+id.ID+"/sessions?active=false", nil, http.StatusOK)
	if len(active) != 1 || active[0].ID != s2.Id || len(inactive) != 1 || inactive[0].ID != s1.Id {
		t.Errorf("active filter: active %+v, inactive %+v", active, inactive)
	}
	r, b = admCall(t, in, "PATCH", "/admin/sessions/"+s1.Id+"/extend", nil)
	wantStatus(t, r, b, http.StatusNotFound)

	r, b = admCall(t, in, "DELETE", "/admin/identities/"+id.ID+"/sessions", nil)
	wantStatus(t, r, b, http.StatusNoContent)
	if _, st := whoamiToken(t, in, tok2); st != http.StatusUnauthorized {
		t.Errorf("whoami after deleteIdentitySessions = %d, want 401", st)
	}

	tok3, _ := loginNative(t, in, email, password)
	r, b = admCall(t, in, "DELETE", "/admin/identities/"+id.ID, nil)
	wantStatus(t, r, b, http.StatusNoContent)
	if _, st := whoamiToken(t, in, tok3); st != http.StatusUnauthorized {
		t.Errorf("whoami after deleting the identity = %d, want 401", st)
	}
	r, b = admCall(t, in, "GET", "/admin/sessions/"+s2.Id, nil)
	wantStatus(t, r, b, http.StatusNotFound)
}

// TestAdminDeactivation: deactivating an identity cuts its live sessions
// off at once, at the gate and at whoami, and it can no longer log in.
func TestAdminDeactivation(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	email, password := randEmail(), randPassword()
	id := admCreate(t, in, email, password)
	token, _ := loginNative(t, in, email, password)
	b := newBrowser(t, in)
	b.login(t, email, password)

	_, _, echo := gateGet(t, in, b.hc, "/private/before", hdr{"Accept": "application/json"})
	if echo == nil {
		t.Fatal("the gate refused a valid browser session")
	}
	_, _, echo = gateGet(t, in, plainHTTP(), "/private/before", hdr{"Accept": "application/json", "X-Session-Token": token})
	if echo == nil {
		t.Fatal("the gate refused a valid session token")
	}

	off := admJSON[admIdentity](t, in, "PATCH", "/admin/identities/"+id.ID, []map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, http.StatusOK)
	if off.State != "inactive" {
		t.Fatalf("state after patch = %q", off.State)
	}
	r, body, echo := gateGet(t, in, b.hc, "/private/after", hdr{"Accept": "application/json"})
	if echo != nil {
		t.Fatal("the gate let a deactivated identity's browser session through")
	}
	wantStatus(t, r, body, http.StatusUnauthorized)
	if _, _, echo = gateGet(t, in, plainHTTP(), "/private/after", hdr{"Accept": "application/json", "X-Session-Token": token}); echo != nil {
		t.Fatal("the gate let a deactivated identity's session token through")
	}
	if _, st := whoamiToken(t, in, token); st != http.StatusUnauthorized {
		t.Errorf("whoami of a deactivated identity = %d, want 401", st)
	}
	_, resp, _ := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("whoami by cookie of a deactivated identity = %v, want 401", resp)
	}
	if f := admLoginFails(t, in, email, password); !containsID(sdkMessageIDs(f.Ui.Messages), 4010011) {
		t.Errorf("login of a deactivated identity: messages %v, want 4010011", sdkMessageIDs(f.Ui.Messages))
	}
	if act := admJSON[[]admSession](t, in, "GET", "/admin/identities/"+id.ID+"/sessions?active=true", nil, http.StatusOK); len(act) != 0 {
		t.Errorf("%d sessions still active after deactivation", len(act))
	}

	// Reactivated (PUT), the identity logs in again; old sessions stay revoked.
	admJSON[admIdentity](t, in, "PUT", "/admin/identities/"+id.ID, map[string]any{"schema_id": "default", "state": "active", "traits": map[string]any{"email": email}}, http.StatusOK)
	loginNative(t, in, email, password)
	if _, st := whoamiToken(t, in, token); st != http.StatusUnauthorized {
		t.Errorf("an old session came back after reactivation: %d", st)
	}
}

// TestAdminImportHashUpgrade imports users with bcrypt, argon2id, pbkdf2
// and scrypt hashes (batchPatchIdentities); they log in with the SDK and
// their hashes are upgraded to the configured hasher (bcrypt here, a
// bcrypt hash at a higher cost than configured stays).
func TestAdminImportHashUpgrade(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	kinds := []string{"bcrypt", "argon2id", "pbkdf2", "scrypt"}
	emails := map[string]string{}
	var patches []any
	for _, k := range kinds {
		emails[k] = k + "-" + randEmail()
		patches = append(patches, map[string]any{"patch_id": admRandUUID(), "create": map[string]any{
			"schema_id": "default", "traits": map[string]any{"email": emails[k]},
			"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": admHashes[k]}}},
		}})
	}
	patches = append(patches, map[string]any{"create": map[string]any{"schema_id": "default", "traits": map[string]any{"email": emails["bcrypt"]}}})
	type result struct {
		Action   string        `json:"action"`
		Identity string        `json:"identity"`
		PatchID  string        `json:"patch_id"`
		Error    *genericError `json:"error"`
	}
	res := admJSON[struct {
		Identities []result `json:"identities"`
	}](t, in, "PATCH", "/admin/identities", map[string]any{"identities": patches}, http.StatusOK)
	if len(res.Identities) != 5 {
		t.Fatalf("batch results = %+v", res.Identities)
	}
	ids := map[string]string{}
	for i, k := range kinds {
		r := res.Identities[i]
		if r.Action != "create" || !isUUID(r.Identity) || r.PatchID == "" {
			t.Fatalf("%s: result %+v", k, r)
		}
		ids[k] = r.Identity
	}
	if r := res.Identities[4]; r.Action != "error" || r.Error == nil || r.Error.Code != http.StatusConflict {
		t.Errorf("duplicate in the batch: %+v", r)
	}
	for _, k := range kinds {
		if h := admHash(t, in, ids[k]); h != admHashes[k] {
			t.Errorf("%s: stored hash %q, want the imported one", k, h)
		}
		loginNative(t, in, emails[k], "test")
		h := admHash(t, in, ids[k])
		switch k {
		case "bcrypt":
			if h != admHashes[k] {
				t.Errorf("bcrypt at cost 10 was rehashed to %q", h)
			}
		default:
			if !strings.HasPrefix(h, "$2a$04$") {
				t.Errorf("%s: hash after login %q, want bcrypt cost 4", k, h)
			}
		}
		loginNative(t, in, emails[k], "test") // the upgraded hash works
	}
}

// TestAdminImportHashUpgradeArgon2id: with password_hasher argon2id, an
// imported bcrypt (and pbkdf2) hash becomes argon2id at the first login.
func TestAdminImportHashUpgradeArgon2id(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"password_hasher argon2id"}})
	for _, k := range []string{"bcrypt", "pbkdf2"} {
		email := k + "-" + randEmail()
		id := admJSON[admIdentity](t, in, "POST", "/admin/identities", map[string]any{
			"schema_id": "default", "traits": map[string]any{"email": email},
			"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": admHashes[k]}}},
		}, http.StatusCreated)
		loginNative(t, in, email, "test")
		if h := admHash(t, in, id.ID); !strings.HasPrefix(h, "$argon2id$v=19$") {
			t.Errorf("%s: hash after login %q, want argon2id", k, h)
		}
		loginNative(t, in, email, "test")
	}
}

// TestAdminNotOnPublicSites: the admin API exists only on Caddy's admin
// endpoint, which keeps its host and origin checks.
func TestAdminNotOnPublicSites(t *testing.T) {
	t.Parallel()
	in := shared(t)
	email := randEmail()
	id := admCreate(t, in, email, "")
	u := registerNative(t, in)
	for _, base := range []string{in.apiBase, in.appBase} {
		for _, p := range []string{"/kratos/admin/identities", "/admin/identities", "/kratos/admin/identities/" + id.ID, "/admin/identities/" + id.ID} {
			for _, h := range []hdr{{"Accept": "application/json"}, {"Accept": "application/json", "X-Session-Token": u.Token}} {
				r, body := do(t, plainHTTP(), "GET", base+p, h, nil)
				// (The gated app's echo upstream reflects the path, so the
				// id itself may appear; identity data may not.)
				if strings.Contains(string(body), email) || strings.Contains(string(body), `"traits"`) || strings.Contains(string(body), `"credentials"`) {
					t.Errorf("GET %s%s answered %d with identity data: %s", base, p, r.StatusCode, clip(body))
				}
			}
		}
	}
	// The admin endpoint refuses foreign hosts and origins (DNS rebinding,
	// cross-site requests), for the Kratos admin API too.
	r, body := do(t, plainHTTP(), "GET", in.adminBase+"/kratos/admin/identities", hdr{"Host": "evil.example"}, nil)
	if r.StatusCode != http.StatusForbidden || strings.Contains(string(body), id.ID) {
		t.Errorf("foreign Host: %d %s", r.StatusCode, clip(body))
	}
	r, body = do(t, plainHTTP(), "GET", in.adminBase+"/kratos/admin/identities", hdr{"Origin": "http://evil.example"}, nil)
	if r.StatusCode != http.StatusForbidden || strings.Contains(string(body), id.ID) {
		t.Errorf("foreign Origin: %d %s", r.StatusCode, clip(body))
	}
}

// TestAdminAfterReload: after a config reload the admin API is served by
// the new config's engine (its session lifespan applies) over the same
// store.
func TestAdminAfterReload(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"session_lifespan 1h"}})
	email, password := randEmail(), randPassword()
	id := admCreate(t, in, email, password)
	_, s := loginNative(t, in, email, password)
	in.loadConfig(t, instanceOptions{GlobalKratos: []string{"session_lifespan 5h"}})
	var ext admSession
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The admin endpoint is replaced on a reload; retry briefly.
		r, b := admCall(t, in, "PATCH", "/admin/sessions/"+s.Id+"/extend", nil)
		if r.StatusCode == http.StatusOK {
			ext = decodeJSON[admSession](t, b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("extend after reload: %d %s", r.StatusCode, clip(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Until(ext.ExpiresAt); d < 299*time.Minute || d > 301*time.Minute {
		t.Errorf("session extended by %v after the reload, want the new 5h lifespan", d)
	}
	if got := admJSON[admIdentity](t, in, "GET", "/admin/identities/"+id.ID, nil, http.StatusOK); got.ID != id.ID {
		t.Errorf("identity after reload: %+v", got)
	}
}

// TestRegistrationDisabledByConfig: `registration disabled` closes self-service
// sign-up (400 self_service_flow_disabled), while the admin API still
// creates identities that log in.
func TestRegistrationDisabledByConfig(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"registration disabled"}})
	_, resp, err := in.api().FrontendAPI.CreateNativeRegistrationFlow(ctx).Execute()
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("createNativeRegistrationFlow: %v %v, want 400", resp, err)
	}
	if e := decodeError(t, http.StatusBadRequest, sdkErrBody(t, err)); e.Error.ID != "self_service_flow_disabled" {
		t.Errorf("error.id = %q, want self_service_flow_disabled", e.Error.ID)
	}
	email, password := randEmail(), randPassword()
	admCreate(t, in, email, password)
	loginNative(t, in, email, password)
}

// --- the command line ---

// admCLI runs `caddy-kratos kratos args…` against in's admin endpoint and
// returns stdout, stderr and the exit status.
func admCLI(t *testing.T, in *instance, stdin string, args ...string) (string, string, int) {
	t.Helper()
	if in != nil {
		args = append(args, "--address", fmt.Sprintf("127.0.0.1:%d", in.adminPort))
	}
	return admRun(t, nil, stdin, args...)
}

func admRun(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"kratos"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+cmd.Dir, "XDG_CONFIG_HOME="+cmd.Dir, "XDG_DATA_HOME="+cmd.Dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// wantCLI fails unless the command exited with want.
func wantCLI(t *testing.T, stdout, stderr string, code, want int, what string) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, want, stdout, stderr)
	}
}

var admUUID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestAdminCLI drives every `kratos` subcommand of the binary.
func TestAdminCLI(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	email, password := randEmail(), randPassword()

	// create: the password from stdin.
	out, errOut, code := admCLI(t, in, password+"\n", "identities", "create", "--email", email, "--password-stdin",
		"--traits", `{"name":{"first":"Cli"}}`, "--metadata-admin", `{"source":"cli"}`)
	wantCLI(t, out, errOut, code, 0, "identities create")
	id := admUUID.FindString(out)
	for _, want := range []string{"ID", id, "State", "active", email, "password (" + email + ")", `{"source":"cli"}`} {
		if id == "" || !strings.Contains(out, want) {
			t.Fatalf("identities create output lacks %q:\n%s", want, out)
		}
	}
	loginNative(t, in, email, password)

	out, errOut, code = admCLI(t, in, "", "identities", "create", "--email", email)
	wantCLI(t, out, errOut, code, 1, "duplicate identities create")
	if !strings.Contains(errOut, "Error:") || !strings.Contains(errOut, "conflicts with another identity") {
		t.Errorf("duplicate create stderr: %s", errOut)
	}
	_, errOut, code = admCLI(t, in, "", "identities", "create", "--email", randEmail(), "--password", "x", "--password-hash", admHashes["bcrypt"])
	if code == 0 || !strings.Contains(errOut, "not both") {
		t.Errorf("password and hash together: %d %s", code, errOut)
	}

	// list, table and JSON.
	out, errOut, code = admCLI(t, in, "", "identities", "list")
	wantCLI(t, out, errOut, code, 0, "identities list")
	if !regexp.MustCompile(`(?m)^ID\s+STATE\s+IDENTIFIER\s+VERIFIED\s+CREATED$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+id+`\s+active\s+`+regexp.QuoteMeta(email)+`\s+no\s+\d{4}-`).MatchString(out) {
		t.Errorf("identities list table:\n%s", out)
	}
	out, errOut, code = admCLI(t, in, "", "identities", "list", "--json")
	wantCLI(t, out, errOut, code, 0, "identities list --json")
	if list := decodeJSON[[]admIdentity](t, []byte(out)); len(list) != 1 || list[0].ID != id {
		t.Errorf("identities list --json: %s", out)
	}
	out, errOut, code = admCLI(t, in, "", "identities", "list", "--identifier", strings.ToUpper(email))
	wantCLI(t, out, errOut, code, 0, "identities list --identifier")
	if !strings.Contains(out, id) || !strings.Contains(out, "1 identity") {
		t.Errorf("identities list --identifier:\n%s", out)
	}

	// get.
	out, errOut, code = admCLI(t, in, "", "identities", "get", id)
	wantCLI(t, out, errOut, code, 0, "identities get")
	if !strings.Contains(out, email) || !strings.Contains(out, `"first":"Cli"`) {
		t.Errorf("identities get:\n%s", out)
	}
	out, errOut, code = admCLI(t, in, "", "identities", "get", admRandUUID())
	wantCLI(t, out, errOut, code, 1, "identities get of an unknown id")
	if !strings.Contains(errOut, "not found") {
		t.Errorf("unknown identity stderr: %s", errOut)
	}
	_, errOut, code = admCLI(t, in, "", "identities", "get")
	if code == 0 || !strings.Contains(errOut, "accepts 1 arg") {
		t.Errorf("get without an id: %d %s", code, errOut)
	}

	// sessions.
	_, s := loginNative(t, in, email, password)
	out, errOut, code = admCLI(t, in, "", "sessions", "list", id)
	wantCLI(t, out, errOut, code, 0, "sessions list")
	if !regexp.MustCompile(`(?m)^ID\s+ACTIVE\s+AAL\s+METHODS\s+ISSUED\s+EXPIRES$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^`+s.Id+`\s+yes\s+aal1\s+password\s`).MatchString(out) || !strings.Contains(out, "2 sessions") {
		t.Errorf("sessions list:\n%s", out)
	}
	out, errOut, code = admCLI(t, in, "", "sessions", "revoke", s.Id)
	wantCLI(t, out, errOut, code, 0, "sessions revoke")
	if strings.TrimSpace(out) != "Revoked session "+s.Id+"." {
		t.Errorf("sessions revoke output: %q", out)
	}
	out, errOut, code = admCLI(t, in, "", "sessions", "list", id, "--active")
	wantCLI(t, out, errOut, code, 0, "sessions list --active")
	if strings.Contains(out, s.Id) || !strings.Contains(out, "1 session\n") {
		t.Errorf("sessions list --active after revoke:\n%s", out)
	}
	tok, _ := loginNative(t, in, email, password)
	out, errOut, code = admCLI(t, in, "", "sessions", "revoke-all", id)
	wantCLI(t, out, errOut, code, 0, "sessions revoke-all")
	if _, st := whoamiToken(t, in, tok); st != http.StatusUnauthorized {
		t.Errorf("whoami after revoke-all = %d", st)
	}
	_, errOut, code = admCLI(t, in, "", "sessions", "revoke", admRandUUID())
	if code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("revoke of an unknown session: %d %s", code, errOut)
	}

	// deactivate / activate.
	tok, _ = loginNative(t, in, email, password)
	out, errOut, code = admCLI(t, in, "", "identities", "deactivate", id)
	wantCLI(t, out, errOut, code, 0, "identities deactivate")
	if !regexp.MustCompile(`State\s+inactive`).MatchString(out) {
		t.Errorf("deactivate output:\n%s", out)
	}
	if _, st := whoamiToken(t, in, tok); st != http.StatusUnauthorized {
		t.Errorf("whoami after deactivate = %d", st)
	}
	out, errOut, code = admCLI(t, in, "", "identities", "activate", id)
	wantCLI(t, out, errOut, code, 0, "identities activate")
	loginNative(t, in, email, password)

	// recovery-code: recovery is off in this configuration.
	_, errOut, code = admCLI(t, in, "", "recovery-code", id)
	if code != 1 || !strings.Contains(errOut, "Recovery is not allowed because it was disabled") {
		t.Errorf("recovery-code with recovery off: %d %s", code, errOut)
	}

	// import: a Kratos export with four hash formats and a duplicate.
	type exp map[string]any
	var export []exp
	emails := map[string]string{}
	for _, k := range []string{"bcrypt", "argon2id", "pbkdf2", "scrypt"} {
		emails[k] = "imp-" + k + "-" + randEmail()
		export = append(export, exp{
			"id": admRandUUID(), "schema_id": "default", "schema_url": "http://old.example/schemas/ZGVmYXVsdA",
			"state": "active", "traits": exp{"email": emails[k]},
			"credentials": exp{"password": exp{"type": "password", "identifiers": []string{emails[k]},
				"config": exp{"hashed_password": admHashes[k]}, "version": 1,
				"created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}},
			"verifiable_addresses": []exp{{"id": admRandUUID(), "value": emails[k], "verified": k == "bcrypt", "via": "email",
				"status": "completed", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}},
			"recovery_addresses": []exp{{"id": admRandUUID(), "value": emails[k], "via": "email"}},
			"metadata_public":    nil, "metadata_admin": exp{"legacy_id": k},
			"created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
		})
	}
	export = append(export, exp{"id": admRandUUID(), "schema_id": "default", "traits": exp{"email": email}})
	file := filepath.Join(t.TempDir(), "export.json")
	data, _ := json.MarshalIndent(export, "", "  ")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = admCLI(t, in, "", "identities", "import", file)
	wantCLI(t, out, errOut, code, 1, "identities import with a duplicate")
	if n := len(regexp.MustCompile(`created [0-9a-f-]{36}`).FindAllString(out, -1)); n != 4 || !strings.Contains(out, "Imported 4 of 5 identities.") ||
		!strings.Contains(out, "error: ") || !strings.Contains(errOut, "1 of 5 identities could not be imported") {
		t.Errorf("identities import:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	for k, e := range emails {
		found := admJSON[[]admIdentity](t, in, "GET", "/admin/identities?credentials_identifier="+e, nil, http.StatusOK)
		if len(found) != 1 {
			t.Fatalf("%s: imported identity not found", k)
		}
		if m, _ := found[0].MetadataAdmin.(map[string]any); m["legacy_id"] != k {
			t.Errorf("%s: metadata_admin = %v", k, found[0].MetadataAdmin)
		}
		if v := found[0].VerifiableAddresses; len(v) != 1 || v[0].Verified != (k == "bcrypt") {
			t.Errorf("%s: verifiable addresses %+v", k, v)
		}
		loginNative(t, in, e, "test")
		if h := admHash(t, in, found[0].ID); k != "bcrypt" && !strings.HasPrefix(h, "$2a$04$") {
			t.Errorf("%s: hash after login %q", k, h)
		}
	}
	// import from stdin, JSON output.
	one := fmt.Sprintf(`[{"schema_id":"default","traits":{"email":%q},"credentials":{"password":{"config":{"hashed_password":%q}}}}]`, "stdin-"+randEmail(), admHashes["scrypt"])
	out, errOut, code = admCLI(t, in, one, "identities", "import", "-", "--json")
	wantCLI(t, out, errOut, code, 0, "identities import - --json")
	if res := decodeJSON[[]map[string]any](t, []byte(out)); len(res) != 1 || res[0]["action"] != "create" || !isUUID(fmt.Sprint(res[0]["identity"])) {
		t.Errorf("import --json: %s", out)
	}

	// delete.
	out, errOut, code = admCLI(t, in, "", "identities", "delete", id)
	wantCLI(t, out, errOut, code, 0, "identities delete")
	if strings.TrimSpace(out) != "Deleted identity "+id+"." {
		t.Errorf("delete output %q", out)
	}
	_, errOut, code = admCLI(t, in, "", "identities", "delete", id)
	if code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("second delete: %d %s", code, errOut)
	}

	// The admin address from CADDY_ADMIN, as for Caddy's own commands.
	out, errOut, code = admRun(t, []string{fmt.Sprintf("CADDY_ADMIN=127.0.0.1:%d", in.adminPort)}, "", "identities", "list")
	wantCLI(t, out, errOut, code, 0, "identities list with CADDY_ADMIN")
	if !strings.Contains(out, emails["scrypt"]) {
		t.Errorf("list via CADDY_ADMIN:\n%s", out)
	}
	// Nothing listening there.
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = admRun(t, nil, "", "identities", "list", "--address", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if code == 0 || !strings.Contains(errOut, "is the server running?") || !strings.Contains(errOut, "could not reach the admin API") {
		t.Errorf("unreachable admin API: %d %s", code, errOut)
	}
}

// TestAdminRecoveryCodeCLI: `kratos recovery-code` gives a code and a link;
// the link opens the recovery UI with the flow and the code signs the
// user in (browser, through the SDK).
func TestAdminRecoveryCodeCLI(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"recovery"}})
	email := randEmail()
	id := admCreate(t, in, email, "")
	out, errOut, code := admCLI(t, in, "", "recovery-code", id.ID, "--expires-in", "15m")
	wantCLI(t, out, errOut, code, 0, "recovery-code")
	m := regexp.MustCompile(`(?m)^Recovery code\s+(\d{6})\nRecovery link\s+(\S+)\nExpires\s+\d{4}-`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("recovery-code output:\n%s", out)
	}
	rcode, link := m[1], m[2]
	if !strings.HasPrefix(link, in.publicURL+"self-service/recovery?flow=") {
		t.Fatalf("recovery link %q", link)
	}
	b := newBrowser(t, in)
	r, body := do(t, b.hc, "GET", link, hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	flowID := mustURL(link).Query().Get("flow")
	if loc := r.Header.Get("Location"); loc != in.publicURL+"ui/recovery?flow="+flowID {
		t.Fatalf("the link goes to %q, want the recovery UI with the flow", loc)
	}
	flow, resp, err := b.sdk.FrontendAPI.GetRecoveryFlow(ctx).Id(flowID).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.State != "sent_email" || sdkNode(flow.Ui.Nodes, "code") == nil {
		t.Fatalf("admin recovery flow: state %q nodes %v", flow.State, flow.Ui.Nodes)
	}
	body2 := ory.NewUpdateRecoveryFlowWithCodeMethod("code")
	body2.SetCode(rcode)
	body2.SetCsrfToken(sdkCSRF(t, flow.Ui.Nodes))
	_, resp, err = b.sdk.FrontendAPI.UpdateRecoveryFlow(ctx).Flow(flowID).
		UpdateRecoveryFlowBody(ory.UpdateRecoveryFlowWithCodeMethodAsUpdateRecoveryFlowBody(body2)).Execute()
	if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("submitting the recovery code: %v %v, want 422", resp, err)
	}
	if e := decodeError(t, 422, sdkErrBody(t, err)); e.Error.ID != "browser_location_change_required" || !strings.HasPrefix(e.RedirectBrowserTo, in.publicURL+"ui/settings?flow=") {
		t.Errorf("recovery answer: %+v", e)
	}
	s, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if s.Identity == nil || s.Identity.Id != id.ID {
		t.Errorf("recovered session is for %v, want %s", s.Identity, id.ID)
	}

	// recovery-link: one use.
	out, errOut, code = admCLI(t, in, "", "recovery-link", id.ID, "--json")
	wantCLI(t, out, errOut, code, 0, "recovery-link --json")
	lres := decodeJSON[struct {
		Link string `json:"recovery_link"`
	}](t, []byte(out))
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: noRedirect, Timeout: 30 * time.Second}
	r, body = do(t, hc, "GET", lres.Link, hdr{"Accept": "text/html"}, nil)
	wantStatus(t, r, body, http.StatusSeeOther)
	if !strings.HasPrefix(r.Header.Get("Location"), in.publicURL+"ui/settings?flow=") {
		t.Errorf("recovery link goes to %q, want the settings UI", r.Header.Get("Location"))
	}
}

// TestAdminAPIWithoutKratosApp runs the binary with a config that has no
// kratos app: the admin module is loaded anyway and answers 503 in
// Kratos's error shape; the CLI says so.
func TestAdminAPIWithoutKratosApp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n}\n\nhttp://127.0.0.1:%d {\n\trespond \"plain site\"\n}\n", ports[0], ports[1])
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(binPath, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- output ---\n%s", logs.tail(16<<10))
		}
	})
	admin := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	var r *http.Response
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := plainHTTP().Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[1])); err == nil {
			resp.Body.Close()
			r, body = do(t, plainHTTP(), "GET", admin+"/kratos/admin/identities", nil, nil)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("caddy did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantStatus(t, r, body, http.StatusServiceUnavailable)
	if e := decodeError(t, http.StatusServiceUnavailable, body); !strings.Contains(e.Error.Reason, "no kratos app") {
		t.Errorf("503 reason = %q", e.Error.Reason)
	}
	out, errOut, code := admRun(t, nil, "", "identities", "list", "--address", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if code != 1 || !strings.Contains(errOut, "no kratos app is running") {
		t.Errorf("CLI without a kratos app: %d\n%s\n%s", code, out, errOut)
	}
}
