package caddymodule

import (
	"errors"
	"fmt"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "kratos",
		Usage: "<identities|sessions|recovery-code|recovery-link|audit|storage> …",
		Short: "Manages caddy-kratos identities and sessions through the admin API",
		Long: `
Manages the identities and sessions of a running caddy-kratos through
Caddy's admin endpoint (the Ory Kratos admin API under /kratos/admin/).

  kratos identities list [--identifier <id>]
  kratos identities get <identity-id>
  kratos identities create --email <email> [--password <pw> | --password-stdin | --password-hash <hash>]
                           [--traits <json>] [--state inactive] [--verified]
  kratos identities activate|deactivate <identity-id>
  kratos identities delete <identity-id>…
  kratos identities import <file.json|->
  kratos sessions list <identity-id> [--active]
  kratos sessions revoke <session-id>
  kratos sessions revoke-all <identity-id>
  kratos sessions extend <session-id>
  kratos recovery-code <identity-id> [--expires-in 1h]
  kratos recovery-link <identity-id> [--expires-in 1h]
  kratos audit [--identity <id>] [--type <type>…] [--since 24h|<RFC 3339>] [--until …] [--limit 100]
  kratos storage migrate --to <postgres://…> [--schema <name>] [--dry-run]
  kratos storage copy --from <dir> --to <postgres://…> [--schema <name>]

import reads a Kratos JSON export: an array of identities (as the admin
API returns them with ?include_credential=password), each optionally with
credentials.password.config.hashed_password (bcrypt, argon2id, argon2i,
pbkdf2 or scrypt). The imported users sign in with their old passwords;
their hashes are upgraded to the configured hasher at the first login.

Output is a table; --json prints the API's JSON instead. The exit status
is 0 on success and 1 on any error.

storage works on the database directly (no running gateway needed): migrate
applies (or, with --dry-run, prints) the PostgreSQL schema migrations; copy
moves a Badger storage directory into PostgreSQL without logging anyone out.

--address is the admin endpoint (default: the CADDY_ADMIN environment
variable, else localhost:2019, as for Caddy's own commands); --config and
--adapter read it from a config file instead.
`,
		CobraFunc: setupKratosCommand,
	})
}

// cliOptions are the persistent flags of `kratos`.
type cliOptions struct {
	address, config, adapter string
	json                     bool
}

// setupKratosCommand builds the `kratos` command tree on cmd.
func setupKratosCommand(cmd *cobra.Command) {
	o := &cliOptions{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.address, "address", "", "The address of Caddy's admin endpoint (default: $CADDY_ADMIN or localhost:2019)")
	pf.StringVarP(&o.config, "config", "c", "", "Read the admin address from this config file")
	pf.StringVarP(&o.adapter, "adapter", "a", "", "The adapter of --config")
	pf.BoolVar(&o.json, "json", false, "Print the API's JSON instead of a table")
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }

	cmd.AddCommand(o.identitiesCommand(), o.sessionsCommand(), o.recoveryCommand("code"), o.recoveryCommand("link"), o.storageCommand(),
		o.auditCommand())
}

// run adapts a command body: it resolves the admin address and turns
// errors into cobra's "Error: …" line and exit status 1.
func (o *cliOptions) run(f func(cl *adminClient, c *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		addr, err := caddycmd.DetermineAdminAPIAddress(o.address, nil, o.config, o.adapter)
		if err != nil {
			return fmt.Errorf("could not determine the admin API address: %v", err)
		}
		cl, err := newAdminClient(addr)
		if err != nil {
			return err
		}
		return f(cl, c, args)
	}
}

// inContext names the resource of an API error ("identity <id>: not
// found"); connection errors stay as they are.
func inContext(kind, id string, err error) error {
	var apiErr *adminAPIError
	if err == nil || !errors.As(err, &apiErr) {
		return err
	}
	return fmt.Errorf("%s %s: %w", kind, id, err)
}
