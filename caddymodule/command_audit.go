package caddymodule

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"
)

// auditCommand is `kratos audit`: the audit trail, newest first.
func (o *cliOptions) auditCommand() *cobra.Command {
	var identity, since, until string
	var types []string
	var limit int
	cmd := &cobra.Command{Use: "audit", Short: "Lists the audit trail, newest first", Args: cobra.NoArgs,
		Long: `Lists the audit trail (GET /kratos/admin/audit), newest first: sign-ins and
their failures, sign-ups, logouts, revocations, credential changes,
recoveries, verifications, admin changes, rate-limit blocks and gate
denials (the last two counted per minute).

--since and --until take an RFC 3339 time or a duration back from now
(24h, 7d); --type repeats or takes a comma-separated list.`,
		RunE: o.run(func(cl *adminClient, c *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit must be at least 1")
			}
			q := url.Values{"page_size": {fmt.Sprint(min(limit, 500))}}
			if identity != "" {
				q.Set("identity", identity)
			}
			if len(types) > 0 {
				q.Set("type", strings.Join(types, ","))
			}
			now := time.Now()
			for _, b := range []struct{ flag, value string }{{"since", since}, {"until", until}} {
				if b.value == "" {
					continue
				}
				t, err := cliTime(b.value, now)
				if err != nil {
					return fmt.Errorf("--%s: %v", b.flag, err)
				}
				q.Set(b.flag, t)
			}
			all, err := cl.list("/kratos/admin/audit?"+q.Encode(), limit)
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(c.OutOrStdout(), all)
			}
			tw := newTable(c.OutOrStdout())
			fmt.Fprintln(tw, "TIME\tTYPE\tIDENTITY\tACTOR\tMETHOD\tIP\tDETAILS")
			for _, raw := range all {
				var r cliAuditRecord
				if err := json.Unmarshal(raw, &r); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %v", err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(r.Time), r.Type, dash(r.IdentityID), dash(r.Actor),
					dash(r.Method), dash(r.IP), dash(r.details()))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%d %s\n", len(all), plural(len(all), "record", "records"))
			return nil
		})}
	f := cmd.Flags()
	f.StringVar(&identity, "identity", "", "Only the records of this identity id")
	f.StringSliceVar(&types, "type", nil, "Only records of these types (login.failed, gate.denied, …)")
	f.StringVar(&since, "since", "", "Only records at or after this time (RFC 3339, or a duration back from now: 24h, 7d)")
	f.StringVar(&until, "until", "", "Only records at or before this time (RFC 3339, or a duration back from now)")
	f.IntVar(&limit, "limit", 100, "Print at most this many records")
	return cmd
}

// cliTime turns an RFC 3339 time or a duration back from now (Caddy's
// durations: 90m, 24h, 7d) into the API's RFC 3339.
func cliTime(v string, now time.Time) (string, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	d, err := caddy.ParseDuration(v)
	if err != nil || d < 0 {
		return "", fmt.Errorf("%q is neither an RFC 3339 time (2006-01-02T15:04:05Z) nor a duration (24h, 7d)", v)
	}
	return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
}

// cliAuditRecord is what the table shows of a record.
type cliAuditRecord struct {
	Time       time.Time                  `json:"time"`
	Type       string                     `json:"type"`
	Flow       string                     `json:"flow"`
	Method     string                     `json:"method"`
	AAL        string                     `json:"aal"`
	IdentityID string                     `json:"identity_id"`
	Identifier string                     `json:"identifier_hash"`
	SessionID  string                     `json:"session_id"`
	Count      int                        `json:"count"`
	Actor      string                     `json:"actor"`
	Reason     string                     `json:"reason"`
	Gate       string                     `json:"gate"`
	IP         string                     `json:"ip"`
	Changes    map[string]json.RawMessage `json:"changes"`
}

// details is the table's last column: what else the record says.
func (r cliAuditRecord) details() string {
	var d []string
	add := func(k, v string) {
		if v != "" {
			d = append(d, k+"="+v)
		}
	}
	add("gate", r.Gate)
	add("reason", r.Reason)
	if r.Count > 0 {
		add("count", fmt.Sprint(r.Count))
	}
	add("aal", r.AAL)
	add("session", r.SessionID)
	if r.IdentityID == "" && r.Identifier != "" {
		add("identifier_hash", r.Identifier)
	}
	if len(r.Changes) > 0 {
		add("changed", strings.Join(slices.Sorted(maps.Keys(r.Changes)), ","))
	}
	return strings.Join(d, " ")
}
