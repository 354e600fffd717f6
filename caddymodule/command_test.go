package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestKratosCLIParseExport(t *testing.T) {
	export := `[
	  {"id":"old-1","schema_id":"default","schema_url":"x","state":"inactive","traits":{"email":"a@example.com"},
	   "credentials":{"password":{"type":"password","identifiers":["a@example.com"],"config":{"hashed_password":"$2a$10$x"}},
	                  "totp":{"type":"totp","config":{"totp_url":"otpauth://..."}}},
	   "verifiable_addresses":[{"id":"v","value":"a@example.com","via":"email","verified":true,"status":"completed","created_at":"2024-01-01T00:00:00Z"}],
	   "recovery_addresses":[{"id":"r","value":"a@example.com","via":"email"}],
	   "metadata_public":null,"metadata_admin":{"k":1},"created_at":"2024-01-01T00:00:00Z"},
	  {"traits":{"email":"b@example.com"},"credentials":{"password":{"type":"password","identifiers":["b@example.com"]}}}
	]`
	items, err := parseExport([]byte(export))
	if err != nil || len(items) != 2 {
		t.Fatalf("parseExport: %v %d", err, len(items))
	}
	a := items[0]
	if a.source != "old-1" || a.identifier != "a@example.com" || len(a.warnings) != 1 || !strings.Contains(a.warnings[0], "totp") {
		t.Errorf("item a: %+v", a)
	}
	b, _ := json.Marshal(a.body)
	for _, want := range []string{`"hashed_password":"$2a$10$x"`, `"state":"inactive"`, `"metadata_admin":{"k":1}`, `"verified":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("body lacks %s: %s", want, b)
		}
	}
	for _, unwanted := range []string{`"id"`, "schema_url", "created_at", "metadata_public", "totp"} {
		if strings.Contains(string(b), unwanted) {
			t.Errorf("body carries %s: %s", unwanted, b)
		}
	}
	if len(items[1].warnings) != 1 || items[1].body["credentials"] != nil {
		t.Errorf("a password credential without a hash: %+v", items[1])
	}
	// A batch body and a single identity are accepted too.
	if items, err := parseExport([]byte(`{"identities":[{"create":{"traits":{"email":"c@example.com"}}}]}`)); err != nil || len(items) != 1 || items[0].identifier != "c@example.com" {
		t.Errorf("batch body: %v %+v", err, items)
	}
	if items, err := parseExport([]byte(`{"traits":{"email":"d@example.com"}}`)); err != nil || len(items) != 1 {
		t.Errorf("single identity: %v %+v", err, items)
	}
	for _, bad := range []string{"", "nope", `[1]`, `{"identities":[2]}`} {
		if _, err := parseExport([]byte(bad)); err == nil {
			t.Errorf("parseExport(%q) accepted it", bad)
		}
	}
}

func TestKratosCLINextLinkAndErrors(t *testing.T) {
	h := `<http://127.0.0.1:2019/kratos/admin/identities?page_size=2>; rel="first",<http://127.0.0.1:2019/kratos/admin/identities?page_size=2&page_token=abc>; rel="next"`
	if got := nextLink(h); got != "/kratos/admin/identities?page_size=2&page_token=abc" {
		t.Errorf("nextLink = %q", got)
	}
	if got := nextLink(`<http://x/a>; rel="first"`); got != "" {
		t.Errorf("nextLink without next = %q", got)
	}
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{409, `{"error":{"code":409,"status":"Conflict","message":"The resource could not be created due to a conflict","reason":"This identity conflicts with another identity that already exists."}}`, "conflict (HTTP 409): This identity conflicts"},
		{404, `{"error":{"code":404,"status":"Not Found","message":"Unable to locate the resource"}}`, "not found (HTTP 404)"},
		{403, `{"error":"host not allowed: evil"}`, "the admin endpoint refused the request (HTTP 403): host not allowed"},
		{404, `404 page not found`, "no Kratos admin API"},
	} {
		if err := decodeAPIError(c.status, []byte(c.body)); !strings.Contains(err.Error(), c.want) {
			t.Errorf("decodeAPIError(%d, %s) = %q, want %q", c.status, c.body, err, c.want)
		}
	}
}

// TestKratosCommandAgainstFakeAdmin runs the command tree against a fake
// admin endpoint.
func TestKratosCommandAgainstFakeAdmin(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "GET" && r.URL.Path == "/kratos/admin/identities" && r.URL.Query().Get("page_token") == "":
			w.Header().Set("Link", `<http://`+r.Host+`/kratos/admin/identities?page_size=1&page_token=p2>; rel="next"`)
			w.Write([]byte(`[{"id":"11111111-1111-4111-8111-111111111111","state":"active","traits":{"email":"a@example.com"},
				"credentials":{"password":{"identifiers":["a@example.com"]}},"verifiable_addresses":[{"value":"a@example.com","verified":true}],
				"created_at":"2026-01-02T03:04:05Z"}]`))
		case r.Method == "GET" && r.URL.Path == "/kratos/admin/identities":
			w.Write([]byte(`[{"id":"22222222-2222-4222-8222-222222222222","state":"inactive","traits":{"email":"b@example.com"},"created_at":"2026-01-02T03:04:05Z"}]`))
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":404,"status":"Not Found","message":"Unable to locate the resource"}}`))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	run := func(args ...string) (string, string, error) {
		cmd := &cobra.Command{Use: "kratos", SilenceUsage: true, SilenceErrors: true}
		setupKratosCommand(cmd)
		var out, errb bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		cmd.SetArgs(append(args, "--address", addr))
		err := cmd.Execute()
		return out.String(), errb.String(), err
	}
	out, _, err := run("identities", "list", "--page-size", "1")
	if err != nil {
		t.Fatal(err)
	}
	want := "ID                                    STATE     IDENTIFIER     VERIFIED  CREATED\n" +
		"11111111-1111-4111-8111-111111111111  active    a@example.com  yes       2026-01-02 03:04:05Z\n" +
		"22222222-2222-4222-8222-222222222222  inactive  b@example.com  -         2026-01-02 03:04:05Z\n" +
		"2 identities\n"
	if out != want {
		t.Errorf("list output:\n%s\nwant:\n%s", out, want)
	}
	if len(got) != 2 || got[1] != "GET /kratos/admin/identities?page_size=1&page_token=p2" {
		t.Errorf("requests: %v", got)
	}
	if _, _, err := run("identities", "delete", "33333333-3333-4333-8333-333333333333"); err == nil ||
		err.Error() != "identity 33333333-3333-4333-8333-333333333333: not found (HTTP 404)" {
		t.Errorf("delete error: %v", err)
	}
}
