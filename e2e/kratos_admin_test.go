package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ory "github.com/ory/client-go"
)

// The `kratos_admin` directive: Kratos's admin API at Kratos's own paths on
// a site of the operator's choosing, driven through the official SDK's
// IdentityAPI as an admin client of Kratos would. The instance also has
// several identity schemas (schemas_test.go).

const (
	personSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Person",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {
    "email": {"type": "string", "format": "email", "title": "E-Mail",
      "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}, "recovery": {"via": "email"}, "verification": {"via": "email"}}},
    "name": {"type": "object", "properties": {"first": {"type": "string", "title": "First Name"}}}
  }, "required": ["email"], "additionalProperties": false}}
}`
	emailSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Email only",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {
    "email": {"type": "string", "format": "email", "title": "Work e-mail",
      "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}, "recovery": {"via": "email"}}}
  }, "required": ["email"], "additionalProperties": false}}
}`
	usernameSchemaJSON = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Username",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {
    "username": {"type": "string", "title": "Username", "minLength": 3, "pattern": "^[a-z0-9]+$",
      "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
    "nickname": {"type": "string", "title": "Nickname", "maxLength": 20}
  }, "required": ["username"], "additionalProperties": false}}
}`
	staffSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Staff",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {
    "email": {"type": "string", "format": "email",
      "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
    "employee_id": {"type": "string", "pattern": "^E[0-9]+$"}
  }, "required": ["email", "employee_id"], "additionalProperties": false}}
}`
)

// i12Instance has identity schemas default (person), email, username
// (selfservice_selectable) and staff, recovery by code, and the admin API
// on its own loopback site (kratos_admin).
type i12Instance struct {
	*instance
	kratosAdmin string // base URL of the kratos_admin site
}

var (
	i12Once sync.Once
	i12Inst *i12Instance
	i12Err  error
)

func i12(t *testing.T) *i12Instance {
	t.Helper()
	i12Once.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-kratos-i12-schemas-")
		if err != nil {
			i12Err = err
			return
		}
		atExit(func(bool) { os.RemoveAll(dir) })
		files := map[string]string{"person": personSchema, "email": emailSchema, "username": usernameSchemaJSON, "staff": staffSchema}
		for name, s := range files {
			if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(s), 0o600); err != nil {
				i12Err = err
				return
			}
		}
		ports, err := freePorts(1)
		if err != nil {
			i12Err = err
			return
		}
		in, err := newSharedInstance("caddy-kratos-i12-", instanceOptions{
			GlobalKratos: []string{
				"rate_limits off",
				"recovery code",
				"identity_schema " + filepath.Join(dir, "person.json"),
				"identity_schema email file://" + filepath.Join(dir, "email.json"),
				"identity_schema username " + filepath.Join(dir, "username.json") + " selfservice_selectable",
				"identity_schema staff " + filepath.Join(dir, "staff.json"),
			},
			// As the README recommends: any Host, bound to loopback.
			ExtraSites: fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1\n\tkratos_admin\n}\n", ports[0]),
		})
		i12Inst = &i12Instance{instance: in, kratosAdmin: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
		i12Err = err
	})
	if i12Err != nil {
		t.Fatalf("instance with schemas and kratos_admin did not start: %v", i12Err)
	}
	return i12Inst
}

// adminSDK is Ory's SDK with the kratos_admin site as its admin URL.
func (in *i12Instance) adminSDK() *ory.APIClient {
	cfg := ory.NewConfiguration()
	cfg.Servers = ory.ServerConfigurations{{URL: in.kratosAdmin}}
	cfg.HTTPClient = plainHTTP()
	cfg.UserAgent = "caddy-kratos-e2e-admin"
	return ory.NewAPIClient(cfg)
}

func TestKratosAdminDirectiveIdentityAPI(t *testing.T) {
	t.Parallel()
	in := i12(t)
	adm := in.adminSDK().IdentityAPI
	email, password := randEmail(), randPassword()

	// createIdentity with a password, as an admin import would.
	body := ory.NewCreateIdentityBody("default", map[string]any{"email": email, "name": map[string]any{"first": "Ada"}})
	body.SetCredentials(ory.IdentityWithCredentials{Password: &ory.IdentityWithCredentialsPassword{
		Config: &ory.IdentityWithCredentialsPasswordConfig{Password: ory.PtrString(password)}}})
	created, resp, err := adm.CreateIdentity(ctx).CreateIdentityBody(*body).Execute()
	wantSDKStatus(t, resp, err, http.StatusCreated)
	if created.SchemaId != "default" || created.Traits.(map[string]any)["email"] != email || created.GetState() != "active" {
		t.Fatalf("created identity: %+v", created)
	}
	if want := in.publicURL + "schemas/ZGVmYXVsdA"; created.SchemaUrl != want {
		t.Errorf("schema_url = %q, want %q", created.SchemaUrl, want)
	}

	got, resp, err := adm.GetIdentity(ctx, created.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if got.Id != created.Id || got.Traits.(map[string]any)["email"] != email {
		t.Errorf("getIdentity: %+v", got)
	}
	list, resp, err := adm.ListIdentities(ctx).CredentialsIdentifier(email).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(list) != 1 || list[0].Id != created.Id {
		t.Errorf("listIdentities(credentials_identifier=%s) = %d identities", email, len(list))
	}

	// The identity signs in on the public API and its session shows up.
	token, sess := loginNative(t, in.instance, email, password)
	sessions, resp, err := adm.ListIdentitySessions(ctx, created.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(sessions) != 1 || sessions[0].Id != sess.Id {
		t.Fatalf("listIdentitySessions = %+v, want the session %s", sessions, sess.Id)
	}

	code, resp, err := adm.CreateRecoveryCodeForIdentity(ctx).
		CreateRecoveryCodeForIdentityBody(*ory.NewCreateRecoveryCodeForIdentityBody(created.Id)).Execute()
	wantSDKStatus(t, resp, err, http.StatusCreated)
	if len(code.RecoveryCode) != 6 || !strings.HasPrefix(code.RecoveryLink, in.publicURL+"self-service/recovery?flow=") {
		t.Errorf("recovery code %q link %q", code.RecoveryCode, code.RecoveryLink)
	}

	// Deactivating through a JSON Patch revokes the session at once.
	patched, resp, err := adm.PatchIdentity(ctx, created.Id).JsonPatch([]ory.JsonPatch{
		{Op: "replace", Path: "/state", Value: "inactive"}}).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if patched.GetState() != "inactive" {
		t.Errorf("patched state = %q", patched.GetState())
	}
	if _, status := whoamiToken(t, in.instance, token); status != http.StatusUnauthorized {
		t.Errorf("whoami after deactivation = %d, want 401", status)
	}

	resp, err = adm.DeleteIdentity(ctx, created.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusNoContent)
	_, resp, err = adm.GetIdentity(ctx, created.Id).Execute()
	wantSDKStatus(t, resp, err, http.StatusNotFound)
	if e := decodeError(t, 404, sdkErrBody(t, err)); e.Error.Code != 404 {
		t.Errorf("getIdentity after delete: %+v", e.Error)
	}
}

// The same engine answers on Caddy's admin endpoint and on kratos_admin.
func TestKratosAdminDirectiveSameAPIAsAdminEndpoint(t *testing.T) {
	t.Parallel()
	in := i12(t)
	u := registerNative(t, in.instance)
	for _, base := range []string{in.kratosAdmin, in.adminBase + "/kratos"} {
		r, body := do(t, plainHTTP(), "GET", base+"/admin/identities/"+u.IdentityID, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		if id := decodeJSON[admIdentity](t, body); id.ID != u.IdentityID || id.SchemaID != "default" {
			t.Errorf("%s: identity %+v", base, id)
		}
	}
	for _, p := range []string{"/admin/health/alive", "/admin/health/ready", "/health/alive", "/health/ready"} {
		r, body := do(t, plainHTTP(), "GET", in.kratosAdmin+p, nil, nil)
		wantStatus(t, r, body, http.StatusOK)
		if string(body) != `{"status":"ok"}`+"\n" && string(body) != `{"status":"ok"}` {
			t.Errorf("GET %s: %s", p, body)
		}
	}
	// Only the admin API: public paths and unknown ones are 404 in
	// Kratos's shape, never the next handler's empty 200.
	for _, p := range []string{"/self-service/login/api", "/sessions/whoami", "/", "/admin/nope", "/ui/login"} {
		r, body := do(t, plainHTTP(), "GET", in.kratosAdmin+p, nil, nil)
		wantStatus(t, r, body, http.StatusNotFound)
		if e := decodeError(t, 404, body); e.Error.Code != 404 {
			t.Errorf("GET %s: %s", p, body)
		}
	}
	r, body := do(t, plainHTTP(), "POST", in.kratosAdmin+"/admin/identities/"+u.IdentityID, hdr{"Content-Type": "application/json"}, []byte("{}"))
	wantStatus(t, r, body, http.StatusMethodNotAllowed)
	// The public site does not serve the admin API (the kratos handler
	// passes /admin/… on to the next handler).
	r, body = do(t, plainHTTP(), "GET", in.apiBase+"/admin/identities/"+u.IdentityID, nil, nil)
	if strings.Contains(string(body), u.IdentityID) {
		t.Errorf("public site answered /admin/identities: %d %s", r.StatusCode, clip(body))
	}
}

// A web page must not drive the admin API of the machine its visitor is
// on: browsers' requests (cross-site, or same-site after DNS rebinding)
// carry Origin or Sec-Fetch-Site and are refused before anything happens.
func TestKratosAdminDirectiveRefusesBrowsers(t *testing.T) {
	t.Parallel()
	in := i12(t)
	email := randEmail()
	create, _ := json.Marshal(map[string]any{"schema_id": "default", "traits": map[string]any{"email": email},
		"credentials": map[string]any{"password": map[string]any{"config": map[string]any{"password": "Attacker-Chosen-9"}}}})
	for _, h := range []hdr{
		{"Origin": "https://evil.example", "Content-Type": "text/plain"},
		{"Origin": "null", "Content-Type": "application/json"},
		{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Content-Type": "text/plain"},
		{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Content-Type": "application/json", "Host": "rebound.evil.example"},
	} {
		r, body := do(t, plainHTTP(), "POST", in.kratosAdmin+"/admin/identities", h, create)
		wantStatus(t, r, body, http.StatusForbidden)
		if e := decodeError(t, 403, body); e.Error.Reason != "The Kratos admin API does not answer requests from web browsers." {
			t.Errorf("%v: reason %q", h, e.Error.Reason)
		}
	}
	r, body := do(t, plainHTTP(), "GET", in.kratosAdmin+"/admin/identities", hdr{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, nil)
	wantStatus(t, r, body, http.StatusForbidden)
	list, resp, err := in.adminSDK().IdentityAPI.ListIdentities(ctx).CredentialsIdentifier(email).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if len(list) != 0 {
		t.Errorf("a refused request created an identity: %+v", list)
	}
}

// kratos_admin on the same HTTP server as the public API or a gate (one
// site, or two sites on one port told apart by Host, which any client
// sets) stops Caddy at start.
func TestKratosAdminDirectiveRefusesSharedServer(t *testing.T) {
	t.Parallel()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	p := ports[0]
	for name, sites := range map[string]string{
		"one site":            fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\tkratos\n\tkratos_admin\n}\n", p),
		"one port, two hosts": fmt.Sprintf("http://auth.localhost:%d {\n\tbind 127.0.0.1\n\tkratos\n}\n\nhttp://admin.localhost:%d {\n\tbind 127.0.0.1\n\tkratos_admin\n}\n", p, p),
		"gate and admin":      fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\thandle /admin/* {\n\t\tkratos_admin\n\t}\n\tkratos_gate\n\trespond ok\n}\n", p),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cf := filepath.Join(dir, "Caddyfile")
			config := fmt.Sprintf("{\n\tadmin off\n\tkratos {\n\t\tstorage %s\n\t\tpublic_url http://127.0.0.1:%d/\n\t}\n}\n\n%s", filepath.Join(dir, "data"), p, sites)
			if err := os.WriteFile(cf, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binPath, "run", "--config", cf, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
			done := make(chan []byte, 1)
			go func() { out, _ := cmd.CombinedOutput(); done <- out }()
			select {
			case out := <-done:
				if !strings.Contains(string(out), "kratos_admin shares the HTTP server") || cmd.ProcessState.ExitCode() == 0 {
					t.Errorf("exit %d, output lacks the refusal:\n%s", cmd.ProcessState.ExitCode(), clip(out))
				}
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("caddy-kratos started with kratos_admin beside kratos on one server")
			}
		})
	}
}
