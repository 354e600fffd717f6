package flows

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// usernameSchema signs in with a username; its only address is optional.
const usernameSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "traits": {
      "type": "object",
      "properties": {
        "username": {
          "type": "string", "title": "Username", "minLength": 3, "pattern": "^[a-z0-9]+$",
          "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}
        },
        "email": {
          "type": "string", "format": "email",
          "ory.sh/kratos": {"recovery": {"via": "email"}}
        }
      },
      "required": ["username"],
      "additionalProperties": false
    }
  }
}`

func TestLoadSchemas(t *testing.T) {
	load := func(cfg Config) (*Engine, error) {
		e := &Engine{cfg: cfg.withDefaults()}
		return e, e.loadSchemas()
	}
	e, err := load(Config{})
	if err != nil || e.schemas.Default().ID != "default" || len(e.schemas.List()) != 1 || !strings.Contains(string(e.schemas.Default().Raw), "Person") {
		t.Fatalf("no schema configured: %v, default %v", err, e.schemas.Default())
	}
	e, err = load(Config{IdentitySchemas: []identity.SchemaConfig{{ID: "username", Raw: []byte(usernameSchema)}}})
	if err != nil || e.schemas.Default().ID != "username" || len(e.schemas.List()) != 1 {
		t.Fatalf("one named schema: %v, default %v", err, e.schemas.Default())
	}
	e, err = load(Config{IdentitySchema: []byte(usernameSchema), IdentitySchemas: []identity.SchemaConfig{
		{ID: "email", Raw: []byte(identity.DefaultSchema), SelfserviceSelectable: true}}})
	if err != nil || e.schemas.Default().ID != "default" || len(e.schemas.List()) != 2 || e.schemas.List()[1].ID != "email" || !e.schemas.Named("email").Selectable {
		t.Fatalf("default plus email: %v", err)
	}
	e, err = load(Config{SchemaOptions: SchemaOptions{DefaultIdentitySchemaID: "email"}, IdentitySchemas: []identity.SchemaConfig{
		{ID: "username", Raw: []byte(usernameSchema)}, {ID: "email", Raw: []byte(identity.DefaultSchema)}}})
	if err != nil || e.schemas.Default().ID != "email" {
		t.Fatalf("default_identity_schema email: %v", err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{IdentitySchemas: []identity.SchemaConfig{{ID: "a", Raw: []byte(usernameSchema)}, {ID: "b", Raw: []byte(usernameSchema)}}},
			"no default identity schema: name one of a, b"},
		{Config{IdentitySchemas: []identity.SchemaConfig{{ID: "a", Raw: []byte(usernameSchema)}, {ID: "a", Raw: []byte(usernameSchema)}}},
			`identity schema "a" is configured twice`},
		{Config{IdentitySchema: []byte(usernameSchema), IdentitySchemas: []identity.SchemaConfig{{ID: "default", Raw: []byte(usernameSchema)}}},
			`identity schema "default" is configured twice`},
		{Config{SchemaOptions: SchemaOptions{DefaultIdentitySchemaID: "nope"}}, `default identity schema "nope" is not configured (configured: default)`},
		{Config{IdentitySchemas: []identity.SchemaConfig{{ID: "a"}}}, `identity schema "a" is empty`},
		{Config{IdentitySchemas: []identity.SchemaConfig{{ID: "a b", Raw: []byte(usernameSchema)}}}, `invalid identity schema id "a b"`},
		{Config{IdentitySchemas: []identity.SchemaConfig{{ID: "a", Raw: []byte(`{"type":"object"}`)}}}, `identity schema "a": identity schema has no properties.traits object`},
	} {
		if _, err := load(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func schemasEngine(t *testing.T) (*Engine, string) {
	t.Helper()
	e, srv := testEngine(t, func(c *Config) {
		c.IdentitySchemas = []identity.SchemaConfig{
			{ID: "username", Raw: []byte(usernameSchema), SelfserviceSelectable: true},
			{ID: "staff", Raw: []byte(identity.DefaultSchema)},
		}
		c.IdentitySchema = []byte(identity.DefaultSchema)
		c.RateLimits.Disabled = true
	})
	return e, srv.URL
}

func TestSchemaEndpointsListEverySchema(t *testing.T) {
	_, base := schemasEngine(t)
	r := do(t, nil, "GET", base+"/schemas", nil, nil)
	var list []struct {
		ID     string          `json:"id"`
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(r.raw, &list); err != nil || r.status != 200 {
		t.Fatalf("GET /schemas: %d %s", r.status, r.raw)
	}
	if len(list) != 3 || list[0].ID != "default" || list[1].ID != "username" || list[2].ID != "staff" {
		t.Fatalf("GET /schemas ids: %+v", list)
	}
	if r.header.Get("X-Total-Count") != "3" {
		t.Errorf("X-Total-Count = %q", r.header.Get("X-Total-Count"))
	}
	r = do(t, nil, "GET", base+"/schemas?per_page=1&page=1", nil, nil)
	if err := json.Unmarshal(r.raw, &list); err != nil || len(list) != 1 || list[0].ID != "username" {
		t.Errorf("page 1 of 1 per page: %s", r.raw)
	}
	if link := r.header.Get("Link"); !strings.Contains(link, `</schemas?page=2&per_page=1>; rel="next"`) || !strings.Contains(link, `rel="prev"`) {
		t.Errorf("Link = %q", link)
	}
	for _, id := range []string{"username", base64.RawURLEncoding.EncodeToString([]byte("username"))} {
		r = do(t, nil, "GET", base+"/schemas/"+id, nil, nil)
		if r.status != 200 || !strings.Contains(string(r.raw), `"Username"`) {
			t.Errorf("GET /schemas/%s: %d %s", id, r.status, r.raw)
		}
	}
	r = do(t, nil, "GET", base+"/schemas/nope", nil, nil)
	if r.status != 404 || !strings.Contains(string(r.raw), "Identity schema `nope` could not be found.") {
		t.Errorf("GET /schemas/nope: %d %s", r.status, r.raw)
	}
}

// A registration flow created for a schema renders, validates and creates
// identities with it; only selectable schemas (and the default) can be
// asked for.
func TestRegistrationWithIdentitySchema(t *testing.T) {
	e, base := schemasEngine(t)
	r := do(t, nil, "GET", base+"/self-service/registration/api?identity_schema=username", nil, nil)
	if r.status != 200 || r.body["identity_schema"] != "username" {
		t.Fatalf("create with identity_schema=username: %d %s", r.status, r.raw)
	}
	if !strings.Contains(string(r.raw), `"traits.username"`) || strings.Contains(string(r.raw), `"traits.name.first"`) {
		t.Errorf("flow nodes are not the username schema's: %s", r.raw)
	}
	flowID := r.body["id"].(string)
	r = do(t, nil, "POST", base+"/self-service/registration?flow="+flowID,
		map[string]any{"method": "password", "password": "Correct-Horse-Battery-9", "traits": map[string]any{"username": "No Spaces"}}, nil)
	if r.status != 400 || !strings.Contains(string(r.raw), `"id":4000004`) {
		t.Errorf("traits against the username schema: %d %s", r.status, r.raw)
	}
	r = do(t, nil, "POST", base+"/self-service/registration?flow="+flowID,
		map[string]any{"method": "password", "password": "Correct-Horse-Battery-9", "traits": map[string]any{"username": "alice42"}}, nil)
	if r.status != 200 {
		t.Fatalf("sign-up with the username schema: %d %s", r.status, r.raw)
	}
	ident := r.body["identity"].(map[string]any)
	if ident["schema_id"] != "username" || ident["schema_url"] != base+"/schemas/"+base64.RawURLEncoding.EncodeToString([]byte("username")) {
		t.Errorf("identity schema: %v %v", ident["schema_id"], ident["schema_url"])
	}
	stored, err := e.store.FindIdentityByCredential(t.Context(), "password", "alice42")
	if err != nil || stored.SchemaID != "username" {
		t.Fatalf("password identifier from the username schema: %v %+v", err, stored)
	}

	for q, want := range map[string]int{"identity_schema=staff": 400, "identity_schema=nope": 400, "identity_schema=default": 200, "": 200} {
		r = do(t, nil, "GET", base+"/self-service/registration/api?"+q, nil, nil)
		if r.status != want {
			t.Errorf("create with %q: %d, want %d: %s", q, r.status, want, r.raw)
		}
		if want == 400 && !strings.Contains(string(r.raw), "does not exist or cannot be selected") {
			t.Errorf("create with %q: %s", q, r.raw)
		}
		if want == 200 && r.body["identity_schema"] != nil && q == "" {
			t.Errorf("create without identity_schema shows one: %s", r.raw)
		}
	}
}

// An identity whose schema is no longer configured falls back to the
// default schema instead of failing.
func TestSchemaOfRemovedSchemaFallsBack(t *testing.T) {
	e, _ := schemasEngine(t)
	if got := e.schemas.Of(&sessionstore.Identity{SchemaID: "gone"}); got != e.schemas.Default() {
		t.Errorf("schemaOf(gone) = %v, want the default", got.ID)
	}
	if got := e.schemas.Of(&sessionstore.Identity{SchemaID: "username"}); got.ID != "username" {
		t.Errorf("schemaOf(username) = %v", got.ID)
	}
}
