package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// sessionsCommand is `kratos sessions …`.
func (o *cliOptions) sessionsCommand() *cobra.Command {
	sess := &cobra.Command{Use: "sessions", Aliases: []string{"session"}, Short: "Lists, revokes and extends sessions",
		Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}

	// sessions list
	var activeOnly bool
	slist := &cobra.Command{Use: "list <identity-id>", Short: "Lists the sessions of an identity", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			q := url.Values{"page_size": {"500"}}
			if activeOnly {
				q.Set("active", "true")
			}
			all, err := cl.list("/kratos/admin/identities/"+url.PathEscape(args[0])+"/sessions?"+q.Encode(), 0)
			if err != nil {
				return inContext("identity", args[0], err)
			}
			if o.json {
				return printJSON(c.OutOrStdout(), all)
			}
			tw := newTable(c.OutOrStdout())
			fmt.Fprintln(tw, "ID\tACTIVE\tAAL\tMETHODS\tISSUED\tEXPIRES")
			for _, raw := range all {
				var s cliSession
				if err := json.Unmarshal(raw, &s); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %v", err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, yesNo(s.Active), s.AAL, dash(s.methods()), fmtTime(s.IssuedAt), fmtTime(s.ExpiresAt))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%d %s\n", len(all), plural(len(all), "session", "sessions"))
			return nil
		})}
	slist.Flags().BoolVar(&activeOnly, "active", false, "Only active sessions")

	revoke := &cobra.Command{Use: "revoke <session-id>", Short: "Revokes a session", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			if _, err := cl.call(http.MethodDelete, "/kratos/admin/sessions/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return inContext("session", args[0], err)
			}
			if !o.json {
				fmt.Fprintf(c.OutOrStdout(), "Revoked session %s.\n", args[0])
			}
			return nil
		})}
	revokeAll := &cobra.Command{Use: "revoke-all <identity-id>", Short: "Revokes every session of an identity", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			if _, err := cl.call(http.MethodDelete, "/kratos/admin/identities/"+url.PathEscape(args[0])+"/sessions", nil, nil); err != nil {
				return inContext("identity", args[0], err)
			}
			if !o.json {
				fmt.Fprintf(c.OutOrStdout(), "Revoked all sessions of identity %s.\n", args[0])
			}
			return nil
		})}
	extend := &cobra.Command{Use: "extend <session-id>", Short: "Extends a session by the session lifespan", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := cl.call(http.MethodPatch, "/kratos/admin/sessions/"+url.PathEscape(args[0])+"/extend", nil, &raw); err != nil {
				return inContext("session", args[0], err)
			}
			if o.json {
				return printJSON(c.OutOrStdout(), raw)
			}
			var s cliSession
			_ = json.Unmarshal(raw, &s)
			fmt.Fprintf(c.OutOrStdout(), "Extended session %s until %s.\n", s.ID, fmtTime(s.ExpiresAt))
			return nil
		})}
	sess.AddCommand(slist, revoke, revokeAll, extend)
	return sess
}

type cliSession struct {
	ID        string    `json:"id"`
	Active    bool      `json:"active"`
	AAL       string    `json:"authenticator_assurance_level"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Methods   []struct {
		Method string `json:"method"`
	} `json:"authentication_methods"`
}

func (s cliSession) methods() string {
	var m []string
	for _, x := range s.Methods {
		if !slices.Contains(m, x.Method) {
			m = append(m, x.Method)
		}
	}
	return strings.Join(m, ",")
}
