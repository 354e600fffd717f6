package flows

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Kratos's own test vectors (hash/hasher_test.go), all for the password
// "test", and a few computed with Python's hashlib for the other forms.
var admHashVectors = []struct{ name, hash string }{
	{"argon2id", "$argon2id$v=19$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4"},
	{"argon2i", "$argon2i$v=19$m=65536,t=3,p=4$kk51rW/vxIVCYn+EG4kTSg$NyT88uraJ6im6dyha/M5jhXvpqlEdlS/9fEm7ScMb8c"},
	{"pbkdf2-sha256", "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI"},
	{"pbkdf2-sha512", "$pbkdf2-sha512$i=100000,l=32$bdHBpn7OWOivJMVJypy2UqR0UnaD5prQXRZevj/05YU$+wArTfv1a+bNGO1iZrmEdVjhA+lL11wF4/IxpgYfPwc"},
	{"pbkdf2 passlib sha256", "$pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg$1VHiu/31M4J2TMyqJhmQsZf5O7lYFTn1cO8W9a4xKiI"},
	{"pbkdf2 passlib sha1", "$pbkdf2$1000$MDEyMzQ1Njc4OWFiY2RlZg$QvEGxi97vkYNn6fjg3u.Y5XyQc4"},
	{"scrypt kratos", "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE="},
	{"scrypt log2", "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$UGajLNtC6JkJShjLsDFExdaxMrUEAJ3H8BE0v6GK2Rk="},
}

func TestImportedHashesVerify(t *testing.T) {
	b, _ := bcrypt.GenerateFromPassword([]byte("test"), 4)
	vectors := append([]struct{ name, hash string }{{"bcrypt", string(b)}}, admHashVectors...)
	bc, _ := identity.NewHasher("bcrypt", 12)
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			if err := identity.ValidateImportedHash(v.hash); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if ok, err := identity.VerifyHash("test", v.hash); !ok || err != nil {
				t.Fatalf("verify(test) = %v, %v", ok, err)
			}
			if ok, _ := identity.VerifyHash("tesu", v.hash); ok {
				t.Fatal("a wrong password verified")
			}
			if v.name != "bcrypt" && !bc.NeedsRehash(v.hash) {
				t.Fatal("needsRehash is false for an imported hash")
			}
		})
	}
	for _, bad := range []string{
		"{SSHA}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a", "$md5$x$y", "plaintext", "",
		"$scrypt$ln=16385,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
		"$scrypt$ln=1048576,r=16,p=1$c2FsdA==$aGFzaA==", // 2 GiB
		"$scrypt$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=",
		"$pbkdf2-sha256$aaaa$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
		"$pbkdf2-md5$i=1000,l=16$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$pbkdf2-sha256$i=100000,l=31$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI",
		"$argon2id$v=19$m=4194304,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
		"$argon2id$v=16$m=32,t=5,p=4$cm94YnRVOW5jZzFzcVE4bQ$fBxypOL0nP/zdPE71JtAV71i487LbX3fJI5PoTN6Lp4",
		"$2a$04$short",
	} {
		if err := identity.ValidateImportedHash(bad); err == nil {
			t.Errorf("validateImportedHash(%q) accepted a bad hash", bad)
		}
	}
	if err := identity.ValidateImportedHash("$md5$x$y"); !errors.Is(err, identity.ErrUnknownHash) {
		t.Errorf("unknown format: %v", err)
	}
}

// admEngine is testEngine plus a server for the admin API.
func admEngine(t *testing.T, mod func(*Config)) (*Engine, *httptest.Server, *httptest.Server) {
	t.Helper()
	e, pub := testEngine(t, mod)
	adm := httptest.NewServer(e.AdminHandler())
	t.Cleanup(adm.Close)
	return e, pub, adm
}

// admCreate creates an identity through the admin API and returns its id.
func admCreate(t *testing.T, adm *httptest.Server, body map[string]any) string {
	t.Helper()
	r := do(t, nil, "POST", adm.URL+"/admin/identities", body, nil)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string)
}

// admLogin logs in on a native flow; it returns the status and body.
func admLogin(t *testing.T, pub *httptest.Server, identifier, password string) resp {
	t.Helper()
	f := do(t, nil, "GET", pub.URL+"/self-service/login/api", nil, nil)
	return do(t, nil, "POST", f.body["ui"].(map[string]any)["action"].(string),
		map[string]any{"method": "password", "identifier": identifier, "password": password}, nil)
}

func admHashOf(t *testing.T, adm *httptest.Server, id string) string {
	t.Helper()
	g := do(t, nil, "GET", adm.URL+"/admin/identities/"+id+"?include_credential=password", nil, nil)
	if g.status != 200 {
		t.Fatalf("get: %d %s", g.status, g.raw)
	}
	creds, _ := g.body["credentials"].(map[string]any)
	pw, _ := creds["password"].(map[string]any)
	cfg, _ := pw["config"].(map[string]any)
	h, _ := cfg["hashed_password"].(string)
	return h
}

func TestAdminIdentityLifecycle(t *testing.T) {
	_, pub, adm := admEngine(t, nil)
	r := do(t, nil, "POST", adm.URL+"/admin/identities", map[string]any{
		"schema_id":            "default",
		"traits":               map[string]any{"email": "Ann@Example.com", "name": map[string]any{"first": "Ann"}},
		"credentials":          map[string]any{"password": map[string]any{"config": map[string]any{"password": "Gx7!qVt2#pLr9$wZk4"}}},
		"metadata_public":      map[string]any{"plan": "pro"},
		"metadata_admin":       map[string]any{"note": "vip"},
		"verifiable_addresses": []any{map[string]any{"value": "ann@example.com", "via": "email", "verified": true, "status": "completed"}},
	}, nil)
	if r.status != 201 || !strings.HasSuffix(r.header.Get("Location"), "/admin/identities/"+r.body["id"].(string)) {
		t.Fatalf("create: %d %v %s", r.status, r.header, r.raw)
	}
	id := r.body["id"].(string)
	if r.body["state"] != "active" || r.body["metadata_admin"].(map[string]any)["note"] != "vip" || r.body["organization_id"] != nil {
		t.Fatalf("create body: %s", r.raw)
	}
	pw := r.body["credentials"].(map[string]any)["password"].(map[string]any)
	if _, has := pw["config"]; has || pw["identifiers"].([]any)[0] != "ann@example.com" {
		t.Fatalf("credentials without include_credential: %v", pw)
	}
	va := r.body["verifiable_addresses"].([]any)[0].(map[string]any)
	if va["verified"] != true || va["status"] != "completed" || va["verified_at"] == nil {
		t.Fatalf("imported verified address: %v", va)
	}
	if ra := r.body["recovery_addresses"].([]any); len(ra) != 1 || ra[0].(map[string]any)["value"] != "ann@example.com" {
		t.Fatalf("recovery addresses: %v", ra)
	}
	// Duplicate identifier: 409.
	if d := do(t, nil, "POST", adm.URL+"/admin/identities", map[string]any{"traits": map[string]any{"email": "ann@example.com"}}, nil); d.status != 409 || !strings.Contains(string(d.raw), "conflicts with another identity") {
		t.Fatalf("duplicate: %d %s", d.status, d.raw)
	}
	// Invalid traits, state, unknown field, unsupported credentials: 400.
	for _, b := range []map[string]any{
		{"traits": map[string]any{"email": "not-an-email"}},
		{"traits": map[string]any{"email": "x@example.com"}, "state": "banned"},
		{"traits": map[string]any{"email": "x@example.com"}, "bogus": 1},
		{"traits": map[string]any{"email": "x@example.com"}, "schema_id": "other"},
		{"traits": map[string]any{"email": "x@example.com"}, "credentials": map[string]any{"oidc": map[string]any{"config": map[string]any{}}}},
		{"traits": map[string]any{"email": "x@example.com"}, "credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": "{SSHA}abc"}}}},
	} {
		if x := do(t, nil, "POST", adm.URL+"/admin/identities", b, nil); x.status != 400 || x.body["error"] == nil {
			t.Fatalf("bad create %v: %d %s", b, x.status, x.raw)
		}
	}
	// Get, with and without the password hash.
	if h := admHashOf(t, adm, id); !strings.HasPrefix(h, "$2a$04$") {
		t.Fatalf("hashed_password %q", h)
	}
	if g := do(t, nil, "GET", adm.URL+"/admin/identities/"+id+"?include_credential=bogus", nil, nil); g.status != 400 {
		t.Fatalf("bad include_credential: %d", g.status)
	}
	if g := do(t, nil, "GET", adm.URL+"/admin/identities/00000000-0000-0000-0000-000000000000", nil, nil); g.status != 404 || g.body["error"] == nil {
		t.Fatalf("unknown: %d %s", g.status, g.raw)
	}
	// The created password logs in.
	if l := admLogin(t, pub, "ann@example.com", "Gx7!qVt2#pLr9$wZk4"); l.status != 200 {
		t.Fatalf("login: %d %s", l.status, l.raw)
	}
	// List: exact identifier filter (normalised), pagination.
	admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "bob@example.com"}})
	admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "cid@example.com"}})
	if l := do(t, nil, "GET", adm.URL+"/admin/identities?credentials_identifier=%20ANN@example.com", nil, nil); l.status != 200 || !strings.Contains(string(l.raw), id) || strings.Count(string(l.raw), `"schema_id"`) != 1 {
		t.Fatalf("filter: %d %s", l.status, l.raw)
	}
	if l := do(t, nil, "GET", adm.URL+"/admin/identities?credentials_identifier=nobody@example.com", nil, nil); l.status != 200 || string(l.raw) != "[]" {
		t.Fatalf("filter miss: %d %s", l.status, l.raw)
	}
	seen := map[string]bool{}
	next := adm.URL + "/admin/identities?page_size=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		p := do(t, nil, "GET", next, nil, nil)
		var list []map[string]any
		if err := json.Unmarshal(p.raw, &list); err != nil || p.status != 200 || len(list) > 2 {
			t.Fatalf("page: %d %s", p.status, p.raw)
		}
		for _, it := range list {
			seen[it["id"].(string)] = true
		}
		next = ""
		for _, l := range strings.Split(p.header.Get("Link"), ",") {
			if strings.Contains(l, `rel="next"`) {
				next = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(strings.Split(l, ";")[0]), "<"), ">")
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("pagination saw %d identities", len(seen))
	}
	// PUT replaces traits and metadata; identifiers and addresses follow.
	u := do(t, nil, "PUT", adm.URL+"/admin/identities/"+id, map[string]any{
		"schema_id": "default", "state": "active", "traits": map[string]any{"email": "ann2@example.com"},
	}, nil)
	if u.status != 200 || u.body["metadata_public"] != nil || u.body["metadata_admin"] != nil {
		t.Fatalf("put: %d %s", u.status, u.raw)
	}
	if ids := u.body["credentials"].(map[string]any)["password"].(map[string]any)["identifiers"].([]any); len(ids) != 1 || ids[0] != "ann2@example.com" {
		t.Fatalf("identifiers after put: %v", ids)
	}
	if va := u.body["verifiable_addresses"].([]any); len(va) != 1 || va[0].(map[string]any)["value"] != "ann2@example.com" || va[0].(map[string]any)["verified"] != false {
		t.Fatalf("addresses after put: %v", va)
	}
	if l := admLogin(t, pub, "ann2@example.com", "Gx7!qVt2#pLr9$wZk4"); l.status != 200 {
		t.Fatalf("login after put: %d %s", l.status, l.raw)
	}
	if l := admLogin(t, pub, "ann@example.com", "Gx7!qVt2#pLr9$wZk4"); l.status != 400 {
		t.Fatalf("old identifier still logs in: %d", l.status)
	}
	// PUT onto another identity's identifier: 409.
	if c := do(t, nil, "PUT", adm.URL+"/admin/identities/"+id, map[string]any{"schema_id": "default", "state": "active", "traits": map[string]any{"email": "bob@example.com"}}, nil); c.status != 409 {
		t.Fatalf("put conflict: %d %s", c.status, c.raw)
	}
	// PUT with new credentials.
	if c := do(t, nil, "PUT", adm.URL+"/admin/identities/"+id, map[string]any{"schema_id": "default", "state": "active", "traits": map[string]any{"email": "ann2@example.com"},
		"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"password": "another-Passw0rd!"}}}}, nil); c.status != 200 {
		t.Fatalf("put credentials: %d %s", c.status, c.raw)
	}
	if l := admLogin(t, pub, "ann2@example.com", "another-Passw0rd!"); l.status != 200 {
		t.Fatalf("login with the new password: %d %s", l.status, l.raw)
	}
	// PATCH.
	p := do(t, nil, "PATCH", adm.URL+"/admin/identities/"+id, []map[string]any{
		{"op": "replace", "path": "/traits/email", "value": "ann3@example.com"},
		{"op": "add", "path": "/traits/name", "value": map[string]any{"last": "Smith"}},
		{"op": "add", "path": "/metadata_public", "value": map[string]any{"tier": 2}},
		{"op": "add", "path": "/metadata_admin", "value": "secret"},
		{"op": "test", "path": "/state", "value": "active"},
	}, nil)
	if p.status != 200 || p.body["traits"].(map[string]any)["email"] != "ann3@example.com" || p.body["metadata_admin"] != "secret" ||
		p.body["metadata_public"].(map[string]any)["tier"].(float64) != 2 {
		t.Fatalf("patch: %d %s", p.status, p.raw)
	}
	if v := p.body["verifiable_addresses"].([]any)[0].(map[string]any); v["value"] != "ann3@example.com" {
		t.Fatalf("address after patch: %v", v)
	}
	// Mark the address verified with a patch.
	p = do(t, nil, "PATCH", adm.URL+"/admin/identities/"+id, []map[string]any{{"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true}}, nil)
	if v := p.body["verifiable_addresses"].([]any)[0].(map[string]any); p.status != 200 || v["verified"] != true || v["status"] != "completed" {
		t.Fatalf("verify by patch: %d %s", p.status, p.raw)
	}
	for _, bad := range []any{
		[]map[string]any{{"op": "replace", "path": "/id", "value": "x"}},
		[]map[string]any{{"op": "remove", "path": "/credentials"}},
		[]map[string]any{{"op": "replace", "path": "/state", "value": "banned"}},
		[]map[string]any{{"op": "replace", "path": "/traits/email", "value": "nope"}},
		[]map[string]any{{"op": "test", "path": "/state", "value": "inactive"}},
		[]map[string]any{{"op": "add", "path": "/extra", "value": 1}},
		map[string]any{"op": "replace"},
	} {
		if x := do(t, nil, "PATCH", adm.URL+"/admin/identities/"+id, bad, nil); x.status != 400 || x.body["error"] == nil {
			t.Fatalf("bad patch %v: %d %s", bad, x.status, x.raw)
		}
	}
	// Delete: 204 then 404.
	if d := do(t, nil, "DELETE", adm.URL+"/admin/identities/"+id, nil, nil); d.status != 204 {
		t.Fatalf("delete: %d %s", d.status, d.raw)
	}
	for _, m := range []string{"GET", "DELETE", "PUT"} {
		if d := do(t, nil, m, adm.URL+"/admin/identities/"+id, map[string]any{"traits": map[string]any{"email": "z@example.com"}}, nil); d.status != 404 {
			t.Fatalf("%s after delete: %d %s", m, d.status, d.raw)
		}
	}
	// Unknown paths and methods in Kratos's shape.
	if x := do(t, nil, "GET", adm.URL+"/admin/nothing", nil, nil); x.status != 404 || x.body["error"] == nil {
		t.Fatalf("unknown path: %d %s", x.status, x.raw)
	}
	if x := do(t, nil, "POST", adm.URL+"/admin/identities/"+id, nil, nil); x.status != 405 || x.header.Get("Allow") == "" {
		t.Fatalf("wrong method: %d %v", x.status, x.header)
	}
}

func TestAdminImportHashesLoginAndUpgrade(t *testing.T) {
	_, pub, adm := admEngine(t, nil)
	b, _ := bcrypt.GenerateFromPassword([]byte("test"), 10)
	vectors := append([]struct{ name, hash string }{{"bcrypt", string(b)}}, admHashVectors...)
	for i, v := range vectors {
		email := strings.NewReplacer(" ", "-").Replace(v.name) + "@import.example"
		id := admCreate(t, adm, map[string]any{"traits": map[string]any{"email": email},
			"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": v.hash}}}})
		if h := admHashOf(t, adm, id); h != v.hash {
			t.Fatalf("%s: stored %q", v.name, h)
		}
		if l := admLogin(t, pub, email, "wrong"); l.status != 400 {
			t.Fatalf("%s: wrong password: %d", v.name, l.status)
		}
		if l := admLogin(t, pub, email, "test"); l.status != 200 {
			t.Fatalf("%s: login: %d %s", v.name, l.status, l.raw)
		}
		h := admHashOf(t, adm, id)
		if i == 0 {
			if h != v.hash { // bcrypt at a higher cost than configured stays
				t.Fatalf("bcrypt cost 10 was rehashed: %q", h)
			}
		} else if !strings.HasPrefix(h, "$2a$04$") {
			t.Fatalf("%s: not upgraded to bcrypt: %q", v.name, h)
		}
		if l := admLogin(t, pub, email, "test"); l.status != 200 {
			t.Fatalf("%s: login after upgrade: %d", v.name, l.status)
		}
	}
}

func TestAdminBatchPatchIdentities(t *testing.T) {
	_, pub, adm := admEngine(t, nil)
	admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "taken@example.com"}})
	r := do(t, nil, "PATCH", adm.URL+"/admin/identities", map[string]any{"identities": []any{
		map[string]any{"patch_id": "p1", "create": map[string]any{"traits": map[string]any{"email": "one@example.com"},
			"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": admHashVectors[2].hash}}}}},
		map[string]any{"patch_id": "p2", "create": map[string]any{"traits": map[string]any{"email": "taken@example.com"}}},
		map[string]any{"create": map[string]any{"traits": map[string]any{"email": "bad"}}},
		map[string]any{"create": map[string]any{"traits": map[string]any{"email": "two@example.com"}, "state": "inactive"}},
	}}, nil)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	res := r.body["identities"].([]any)
	get := func(i int) map[string]any { return res[i].(map[string]any) }
	if get(0)["action"] != "create" || get(0)["identity"] == nil || get(0)["patch_id"] != "p1" {
		t.Fatalf("result 0: %v", get(0))
	}
	if get(1)["action"] != "error" || get(1)["error"].(map[string]any)["code"].(float64) != 409 || get(1)["patch_id"] != "p2" {
		t.Fatalf("result 1: %v", get(1))
	}
	if get(2)["action"] != "error" || get(2)["error"].(map[string]any)["code"].(float64) != 400 {
		t.Fatalf("result 2: %v", get(2))
	}
	if get(3)["action"] != "create" {
		t.Fatalf("result 3: %v", get(3))
	}
	if l := admLogin(t, pub, "one@example.com", "test"); l.status != 200 {
		t.Fatalf("imported login: %d %s", l.status, l.raw)
	}
	// Inactive identities cannot log in (4010011).
	id := admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "off@example.com"}, "state": "inactive",
		"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"password": "Gx7!qVt2#pLr9$wZk4"}}}})
	if l := admLogin(t, pub, "off@example.com", "Gx7!qVt2#pLr9$wZk4"); l.status != 400 || !contains(messageIDs(l.body), 4010011) {
		t.Fatalf("inactive login: %d %s", l.status, l.raw)
	}
	_ = id
	// All failing: 409 when all conflict, with the results in details.
	r = do(t, nil, "PATCH", adm.URL+"/admin/identities", map[string]any{"identities": []any{
		map[string]any{"create": map[string]any{"traits": map[string]any{"email": "taken@example.com"}}},
	}}, nil)
	if r.status != 409 || r.body["error"].(map[string]any)["details"].(map[string]any)["identities"] == nil {
		t.Fatalf("all conflicts: %d %s", r.status, r.raw)
	}
	r = do(t, nil, "PATCH", adm.URL+"/admin/identities", map[string]any{"identities": []any{
		map[string]any{"create": map[string]any{"traits": map[string]any{"email": "bad"}}},
	}}, nil)
	if r.status != 400 {
		t.Fatalf("all invalid: %d %s", r.status, r.raw)
	}
}

func TestAdminSessionsAndDeactivation(t *testing.T) {
	e, pub, adm := admEngine(t, func(c *Config) { c.SessionLifespan = time.Hour })
	id := admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "sam@example.com"},
		"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"password": "Gx7!qVt2#pLr9$wZk4"}}}})
	var tokens, sids []string
	for range 3 {
		l := admLogin(t, pub, "sam@example.com", "Gx7!qVt2#pLr9$wZk4")
		if l.status != 200 {
			t.Fatalf("login: %d %s", l.status, l.raw)
		}
		tokens = append(tokens, l.body["session_token"].(string))
		sids = append(sids, l.body["session"].(map[string]any)["id"].(string))
	}
	list := func(q string) []any {
		r := do(t, nil, "GET", adm.URL+"/admin/identities/"+id+"/sessions"+q, nil, nil)
		if r.status != 200 {
			t.Fatalf("list sessions: %d %s", r.status, r.raw)
		}
		var out []any
		_ = json.Unmarshal(r.raw, &out)
		return out
	}
	if l := list(""); len(l) != 3 || l[0].(map[string]any)["identity"].(map[string]any)["id"] != id {
		t.Fatalf("sessions: %v", l)
	}
	// Disable one: inactive in the list, 401 at whoami.
	if r := do(t, nil, "DELETE", adm.URL+"/admin/sessions/"+sids[0], nil, nil); r.status != 204 {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "GET", pub.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tokens[0]}); r.status != 401 {
		t.Fatalf("whoami of a disabled session: %d", r.status)
	}
	if a, i := list("?active=true"), list("?active=false"); len(a) != 2 || len(i) != 1 || i[0].(map[string]any)["id"] != sids[0] {
		t.Fatalf("active filter: %d active, %v inactive", len(a), i)
	}
	if r := do(t, nil, "GET", adm.URL+"/admin/identities/"+id+"/sessions?active=maybe", nil, nil); r.status != 400 {
		t.Fatalf("bad active: %d", r.status)
	}
	if l := list("?page_size=1"); len(l) != 1 {
		t.Fatalf("page_size: %d", len(l))
	}
	// Get with and without expansion.
	g := do(t, nil, "GET", adm.URL+"/admin/sessions/"+sids[1], nil, nil)
	if g.status != 200 || g.body["identity"] != nil || g.body["devices"] != nil || g.body["active"] != true {
		t.Fatalf("get session: %d %s", g.status, g.raw)
	}
	g = do(t, nil, "GET", adm.URL+"/admin/sessions/"+sids[1]+"?expand=identity&expand=devices", nil, nil)
	if g.status != 200 || g.body["identity"].(map[string]any)["id"] != id || g.body["devices"] == nil {
		t.Fatalf("get expanded: %d %s", g.status, g.raw)
	}
	if r := do(t, nil, "GET", adm.URL+"/admin/sessions/nope", nil, nil); r.status != 404 {
		t.Fatalf("unknown session: %d", r.status)
	}
	// Extend moves expires_at to now + lifespan.
	e.now = func() time.Time { return time.Now().Add(30 * time.Minute) }
	x := do(t, nil, "PATCH", adm.URL+"/admin/sessions/"+sids[1]+"/extend", nil, nil)
	if x.status != 200 {
		t.Fatalf("extend: %d %s", x.status, x.raw)
	}
	exp, _ := time.Parse(time.RFC3339Nano, x.body["expires_at"].(string))
	if d := time.Until(exp); d < 89*time.Minute || d > 91*time.Minute {
		t.Fatalf("extended expiry in %v, want ~90m", d)
	}
	e.now = time.Now
	if r := do(t, nil, "PATCH", adm.URL+"/admin/sessions/"+sids[0]+"/extend", nil, nil); r.status != 404 {
		t.Fatalf("extend an inactive session: %d", r.status)
	}
	// Deactivation cuts the live sessions off at once: whoami and the gate.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Session-Token", tokens[1])
	if _, err := e.Authenticate(req); err != nil {
		t.Fatalf("gate before deactivation: %v", err)
	}
	p := do(t, nil, "PATCH", adm.URL+"/admin/identities/"+id, []map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, nil)
	if p.status != 200 || p.body["state"] != "inactive" {
		t.Fatalf("deactivate: %d %s", p.status, p.raw)
	}
	if _, err := e.Authenticate(req); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("gate after deactivation: %v", err)
	}
	for _, tok := range tokens[1:] {
		if r := do(t, nil, "GET", pub.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tok}); r.status != 401 {
			t.Fatalf("whoami after deactivation: %d", r.status)
		}
	}
	if a := list("?active=true"); len(a) != 0 {
		t.Fatalf("active sessions after deactivation: %d", len(a))
	}
	// Reactivate with PUT; delete all sessions of the identity.
	if r := do(t, nil, "PUT", adm.URL+"/admin/identities/"+id, map[string]any{"schema_id": "default", "state": "active", "traits": map[string]any{"email": "sam@example.com"}}, nil); r.status != 200 || r.body["state"] != "active" {
		t.Fatalf("reactivate: %d %s", r.status, r.raw)
	}
	l := admLogin(t, pub, "sam@example.com", "Gx7!qVt2#pLr9$wZk4")
	if l.status != 200 {
		t.Fatalf("login after reactivation: %d %s", l.status, l.raw)
	}
	if r := do(t, nil, "DELETE", adm.URL+"/admin/identities/"+id+"/sessions", nil, nil); r.status != 204 {
		t.Fatalf("delete sessions: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "GET", pub.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": l.body["session_token"].(string)}); r.status != 401 {
		t.Fatalf("whoami after deleting sessions: %d", r.status)
	}
	if r := do(t, nil, "DELETE", adm.URL+"/admin/identities/00000000-0000-0000-0000-000000000000/sessions", nil, nil); r.status != 404 {
		t.Fatalf("sessions of an unknown identity: %d", r.status)
	}
	// Deleting the identity deletes its sessions.
	do(t, nil, "DELETE", adm.URL+"/admin/identities/"+id, nil, nil)
	if _, err := e.store.GetSession(t.Context(), sids[1]); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("session after identity deletion: %v", err)
	}
}

func TestAdminRecoveryCodeAndLink(t *testing.T) {
	_, pub, adm := admEngine(t, func(c *Config) { c.RecoveryEnabled = true })
	id := admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "rita@example.com"}})
	// Validation.
	for _, b := range []map[string]any{
		{"identity_id": "not-a-uuid"},
		{"identity_id": id, "expires_in": "soon"},
		{"identity_id": id, "expires_in": "-1h"},
		{"identity_id": id, "flow_type": "carrier-pigeon"},
	} {
		if r := do(t, nil, "POST", adm.URL+"/admin/recovery/code", b, nil); r.status != 400 {
			t.Fatalf("bad body %v: %d %s", b, r.status, r.raw)
		}
	}
	if r := do(t, nil, "POST", adm.URL+"/admin/recovery/code", map[string]any{"identity_id": "00000000-0000-0000-0000-000000000000"}, nil); r.status != 404 {
		t.Fatalf("unknown identity: %d %s", r.status, r.raw)
	}
	r := do(t, nil, "POST", adm.URL+"/admin/recovery/code", map[string]any{"identity_id": id, "expires_in": "10m"}, nil)
	if r.status != 201 {
		t.Fatalf("code: %d %s", r.status, r.raw)
	}
	code, link := r.body["recovery_code"].(string), r.body["recovery_link"].(string)
	exp, _ := time.Parse(time.RFC3339Nano, r.body["expires_at"].(string))
	if len(code) != 6 || !strings.HasPrefix(link, pub.URL+"/self-service/recovery?flow=") || time.Until(exp) > 11*time.Minute || time.Until(exp) < 9*time.Minute {
		t.Fatalf("code answer: %s", r.raw)
	}
	// The link opens the UI with the flow, bound to this browser.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	o := do(t, c, "GET", link, nil, map[string]string{"Accept": "text/html"})
	flowID := strings.TrimPrefix(link, pub.URL+"/self-service/recovery?flow=")
	if o.status != 303 || o.header.Get("Location") != pub.URL+"/ui/recovery?flow="+flowID {
		t.Fatalf("open link: %d %v", o.status, o.header)
	}
	ui := do(t, c, "GET", o.header.Get("Location"), nil, map[string]string{"Accept": "text/html"})
	if ui.status != 200 || !strings.Contains(string(ui.raw), `name="code"`) {
		t.Fatalf("recovery UI: %d %s", ui.status, ui.raw)
	}
	f := do(t, c, "GET", pub.URL+"/self-service/recovery/flows?id="+flowID, nil, nil)
	if f.status != 200 || f.body["state"] != "sent_email" || f.body["type"] != "browser" {
		t.Fatalf("flow: %d %s", f.status, f.raw)
	}
	var csrf string
	for _, n := range f.body["ui"].(map[string]any)["nodes"].([]any) {
		a := n.(map[string]any)["attributes"].(map[string]any)
		if a["name"] == "csrf_token" {
			csrf, _ = a["value"].(string)
		}
		if a["name"] == "email" {
			t.Fatalf("the admin flow has an email node: %v", a)
		}
	}
	action := f.body["ui"].(map[string]any)["action"].(string)
	wrong := do(t, c, "POST", action, map[string]any{"method": "code", "code": "000000", "csrf_token": csrf}, nil)
	if code == "000000" || wrong.status != 200 || !contains(messageIDs(wrong.body), 4060006) {
		t.Fatalf("wrong code: %d %s", wrong.status, wrong.raw)
	}
	ok := do(t, c, "POST", action, map[string]any{"method": "code", "code": code, "csrf_token": csrf}, nil)
	if ok.status != 422 || errorID(ok.body) != "browser_location_change_required" {
		t.Fatalf("right code: %d %s", ok.status, ok.raw)
	}
	who := do(t, c, "GET", pub.URL+"/sessions/whoami", nil, nil)
	if who.status != 200 || who.body["identity"].(map[string]any)["id"] != id {
		t.Fatalf("whoami after recovery: %d %s", who.status, who.raw)
	}
	// The settings flow that follows is usable by this browser.
	settingsURL := ok.body["redirect_browser_to"].(string)
	sid := settingsURL[strings.Index(settingsURL, "flow=")+5:]
	if s := do(t, c, "GET", pub.URL+"/self-service/settings/flows?id="+sid, nil, nil); s.status != 200 {
		t.Fatalf("settings flow after recovery: %d %s", s.status, s.raw)
	}
	// Another browser opening the link of a used flow gets no flow.
	if o := do(t, nil, "GET", link, nil, nil); o.status == 303 {
		t.Fatalf("used link still redirects")
	}

	// Recovery link: one use, signs in.
	l := do(t, nil, "POST", adm.URL+"/admin/recovery/link", map[string]any{"identity_id": id}, nil)
	if l.status != 200 || !strings.Contains(l.body["recovery_link"].(string), "&token=") {
		t.Fatalf("link: %d %s", l.status, l.raw)
	}
	jar2, _ := cookiejar.New(nil)
	c2 := &http.Client{Jar: jar2, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if o := do(t, c2, "GET", l.body["recovery_link"].(string), nil, map[string]string{"Accept": "text/html"}); o.status != 303 || !strings.Contains(o.header.Get("Location"), "/ui/settings?flow=") {
		t.Fatalf("open recovery link: %d %v %s", o.status, o.header, o.raw)
	}
	if w := do(t, c2, "GET", pub.URL+"/sessions/whoami", nil, nil); w.status != 200 {
		t.Fatalf("whoami after link: %d", w.status)
	}
	if o := do(t, nil, "GET", l.body["recovery_link"].(string), nil, nil); o.status != 200 || !contains(messageIDs(o.body), 4060004) {
		t.Fatalf("second use of the link: %d %s", o.status, o.raw)
	}
	if b := do(t, nil, "POST", adm.URL+"/admin/recovery/link", map[string]any{"identity_id": id, "flow_type": "browser"}, nil); b.status != 400 {
		t.Fatalf("flow_type on link: %d", b.status)
	}
}

func TestAdminRecoveryDisabled(t *testing.T) {
	_, _, adm := admEngine(t, nil)
	id := admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "x@example.com"}})
	for _, p := range []string{"/admin/recovery/code", "/admin/recovery/link"} {
		if r := do(t, nil, "POST", adm.URL+p, map[string]any{"identity_id": id}, nil); r.status != 400 || errorID(r.body) != "self_service_flow_disabled" {
			t.Fatalf("%s disabled: %d %s", p, r.status, r.raw)
		}
	}
	_, _, adm = admEngine(t, func(c *Config) { c.RecoveryEnabled, c.RecoveryUse = true, "link" })
	id = admCreate(t, adm, map[string]any{"traits": map[string]any{"email": "x@example.com"}})
	if r := do(t, nil, "POST", adm.URL+"/admin/recovery/code", map[string]any{"identity_id": id}, nil); r.status != 404 {
		t.Fatalf("code with recovery by link: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "POST", adm.URL+"/admin/recovery/link", map[string]any{"identity_id": id}, nil); r.status != 200 {
		t.Fatalf("link with recovery by link: %d %s", r.status, r.raw)
	}
	_ = url.Values{}
}
