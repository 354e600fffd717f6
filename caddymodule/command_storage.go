package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
)

// storageFlags are the database flags of `kratos storage …`.
type storageFlags struct {
	dsn, schema string
}

func (f *storageFlags) bind(c *cobra.Command) {
	c.Flags().StringVar(&f.dsn, "to", "", "The PostgreSQL DSN (postgres://…); default: $DATABASE_URL")
	c.Flags().StringVar(&f.dsn, "dsn", "", "Same as --to")
	c.Flags().StringVar(&f.schema, "schema", "", "The schema of the gateway's tables (the Caddyfile's storage { schema }); default: the DSN's search_path")
}

// resolve returns the DSN, from the flags or the environment.
func (f *storageFlags) resolve() (string, error) {
	dsn := strings.TrimSpace(f.dsn)
	if dsn == "" {
		dsn = strings.TrimSpace(os.Getenv("DATABASE_URL"))
	}
	if dsn == "" {
		return "", errors.New("no database: give --to postgres://… (or set DATABASE_URL)")
	}
	if err := checkStorageValue(dsn); err != nil {
		return "", err
	}
	return dsn, nil
}

// storageCommand is `kratos storage …`: it works on the database itself,
// not through a running gateway's admin API.
func (o *cliOptions) storageCommand() *cobra.Command {
	st := &cobra.Command{Use: "storage", Short: "Migrates a PostgreSQL database and copies a Badger store into it",
		Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}

	// storage migrate
	var mf storageFlags
	var dryRun bool
	migrate := &cobra.Command{Use: "migrate", Short: "Applies the pending schema migrations (gateways also do it at start)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dsn, err := mf.resolve()
			if err != nil {
				return err
			}
			ctx, stop := commandContext(c)
			defer stop()
			opts := postgres.Options{Schema: mf.schema}
			out := c.OutOrStdout()
			if dryRun {
				pending, err := postgres.PendingMigrations(ctx, dsn, opts)
				if err != nil {
					return fmt.Errorf("%s: %w", redactDSN(dsn), err)
				}
				if len(pending) == 0 {
					fmt.Fprintln(out, "no pending migrations")
					return nil
				}
				for _, m := range pending {
					fmt.Fprintf(out, "-- would apply %04d_%s\n%s\n", m.Version, m.Name, strings.TrimSpace(m.SQL))
				}
				fmt.Fprintf(out, "%d pending %s (nothing applied: --dry-run)\n", len(pending), plural(len(pending), "migration", "migrations"))
				return nil
			}
			applied, err := postgres.Migrate(ctx, dsn, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", redactDSN(dsn), err)
			}
			for _, m := range applied {
				fmt.Fprintf(out, "applied %04d_%s\n", m.Version, m.Name)
			}
			fmt.Fprintf(out, "%d %s applied; the schema is current\n", len(applied), plural(len(applied), "migration", "migrations"))
			return nil
		}}
	mf.bind(migrate)
	migrate.Flags().BoolVar(&dryRun, "dry-run", false, "Print the migrations that would run, and run none")

	// storage copy
	var cf storageFlags
	var from string
	var replaceSecrets bool
	cp := &cobra.Command{Use: "copy --from <dir> --to <postgres://…>", Short: "Copies a Badger store into PostgreSQL without logging anyone out", Args: cobra.NoArgs,
		Long: `
Copies everything a Badger storage directory holds — identities with their
credentials, sessions (their tokens stay valid), flows, codes, pending mail,
rate-limit buckets and the generated secrets — into a PostgreSQL database,
then checks that every item arrived. Stop the gateway that uses the
directory first (Badger locks it). Safe to run again (the source wins over
rows of the same key) until a gateway has started on the database: then it
refuses, since the old directory would roll back what the cluster did
(logged-out sessions, used codes, sent mail). A database whose secrets
differ (a cluster that has already issued cookies) is refused unless
--replace-secrets is given.
`,
		RunE: func(c *cobra.Command, _ []string) error {
			dsn, err := cf.resolve()
			if err != nil {
				return err
			}
			if from == "" {
				return errors.New("give --from <badger storage directory>")
			}
			if fi, err := os.Stat(from); err != nil || !fi.IsDir() {
				return fmt.Errorf("--from %s: not a storage directory", from)
			}
			ctx, stop := commandContext(c)
			defer stop()
			src, err := sessionstore.Open(from, sessionstore.Options{})
			if err != nil {
				return fmt.Errorf("opening %s (is a gateway still running on it?): %w", from, err)
			}
			defer src.Close()
			dst, err := postgres.Open(ctx, dsn, postgres.Options{Schema: cf.schema, SweepInterval: -1})
			if err != nil {
				return fmt.Errorf("%s: %w", redactDSN(dsn), err)
			}
			defer dst.Close()
			out := c.OutOrStdout()
			rep, err := dst.CopyFrom(ctx, src, postgres.CopyOptions{
				ReplaceSecrets: replaceSecrets,
				Progress:       func(r postgres.CopyReport) { fmt.Fprintf(c.ErrOrStderr(), "copied so far: %s\n", r) },
			})
			if err != nil {
				return fmt.Errorf("copy into %s: %w", redactDSN(dsn), err)
			}
			fmt.Fprintf(out, "copied and verified %s into %s\n", rep, redactDSN(dsn))
			return nil
		}}
	cf.bind(cp)
	cp.Flags().StringVar(&from, "from", "", "The Badger storage directory (the Caddyfile's storage <dir>)")
	cp.Flags().BoolVar(&replaceSecrets, "replace-secrets", false, "Overwrite the database's secrets with the directory's (logs out users of the database's own sessions)")

	st.AddCommand(migrate, cp)
	return st
}

// commandContext is the command's context, cancelled on Ctrl-C.
func commandContext(c *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt)
}
