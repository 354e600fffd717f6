package caddymodule

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestKratosAuditCommand: `kratos audit` sends its filters, follows the
// next links up to --limit and prints a table (or the JSON).
func TestKratosAuditCommand(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("page_token") == "" {
			w.Header().Set("Link", `<http://`+r.Host+`/kratos/admin/audit?page_size=2&page_token=p2>; rel="next"`)
			w.Write([]byte(`[{"id":"a","time":"2026-01-02T03:04:05Z","type":"login.failed","method":"password","identifier_hash":"ab12","ip":"192.0.2.1","reason":"4000006"},
				{"id":"b","time":"2026-01-02T03:04:00Z","type":"identity.updated","identity_id":"11111111-1111-4111-8111-111111111111","actor":"admin","changes":{"state":{"before":"active","after":"inactive"},"traits":{"before":{},"after":{}}}}]`))
			return
		}
		w.Write([]byte(`[{"id":"c","time":"2026-01-02T03:00:00Z","type":"gate.denied","gate":"app","reason":"no_session","count":42,"ip":"198.51.100.7"}]`))
	}))
	defer srv.Close()
	run := func(args ...string) (string, error) {
		cmd := &cobra.Command{Use: "kratos", SilenceUsage: true, SilenceErrors: true}
		setupKratosCommand(cmd)
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--address", strings.TrimPrefix(srv.URL, "http://")))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("audit", "--type", "login.failed,identity.updated", "--type", "gate.denied", "--since", "2h", "--identity", "x", "--limit", "3")
	if err != nil {
		t.Fatal(err)
	}
	want := "TIME                  TYPE              IDENTITY                              ACTOR  METHOD    IP            DETAILS\n" +
		"2026-01-02 03:04:05Z  login.failed      -                                     -      password  192.0.2.1     reason=4000006 identifier_hash=ab12\n" +
		"2026-01-02 03:04:00Z  identity.updated  11111111-1111-4111-8111-111111111111  admin  -         -             changed=state,traits\n" +
		"2026-01-02 03:00:00Z  gate.denied       -                                     -      -         198.51.100.7  gate=app reason=no_session count=42\n" +
		"3 records\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if len(got) != 2 || !strings.Contains(got[0], "type=login.failed%2Cidentity.updated%2Cgate.denied") ||
		!strings.Contains(got[0], "identity=x") || !strings.Contains(got[0], "page_size=3") || !strings.Contains(got[0], "since=") {
		t.Errorf("requests: %v", got)
	}
	got = nil
	out, err = run("audit", "--limit", "1", "--json")
	if err != nil || len(got) != 1 || !strings.Contains(out, `"type": "login.failed"`) || strings.Contains(out, "identity.updated") {
		t.Errorf("--limit 1 --json: %v %v\n%s", err, got, out)
	}
	if _, err := run("audit", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad --since: %v", err)
	}
	if s, err := cliTime("7d", time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)); err != nil || s != "2026-01-01T00:00:00Z" {
		t.Errorf("cliTime(7d) = %q %v", s, err)
	}
}
