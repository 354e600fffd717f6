package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// recoveryCommand is `kratos recovery-code` or `kratos recovery-link`.
func (o *cliOptions) recoveryCommand(kind string) *cobra.Command {
	var expiresIn string
	rc := &cobra.Command{Use: "recovery-" + kind + " <identity-id>", Short: "Creates a recovery " + kind + " for an identity", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			body := map[string]any{"identity_id": args[0]}
			if expiresIn != "" {
				body["expires_in"] = expiresIn
			}
			var raw json.RawMessage
			if _, err := cl.call(http.MethodPost, "/kratos/admin/recovery/"+kind, body, &raw); err != nil {
				return inContext("identity", args[0], err)
			}
			if o.json {
				return printJSON(c.OutOrStdout(), raw)
			}
			var res struct {
				Code      string    `json:"recovery_code"`
				Link      string    `json:"recovery_link"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			_ = json.Unmarshal(raw, &res)
			tw := newTable(c.OutOrStdout())
			if res.Code != "" {
				fmt.Fprintf(tw, "Recovery code\t%s\n", res.Code)
			}
			fmt.Fprintf(tw, "Recovery link\t%s\n", res.Link)
			fmt.Fprintf(tw, "Expires\t%s\n", fmtTime(res.ExpiresAt))
			return tw.Flush()
		})}
	rc.Flags().StringVar(&expiresIn, "expires-in", "", "How long the "+kind+" is valid, e.g. 30m (default: the configured code lifespan)")
	return rc
}
