package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "kratos",
		Usage: "<identities|sessions|recovery-code|recovery-link> …",
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

import reads a Kratos JSON export: an array of identities (as the admin
API returns them with ?include_credential=password), each optionally with
credentials.password.config.hashed_password (bcrypt, argon2id, argon2i,
pbkdf2 or scrypt). The imported users sign in with their old passwords;
their hashes are upgraded to the configured hasher at the first login.

Output is a table; --json prints the API's JSON instead. The exit status
is 0 on success and 1 on any error.

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

	ids := &cobra.Command{Use: "identities", Aliases: []string{"identity"}, Short: "Lists, shows, creates, (de)activates, deletes and imports identities",
		Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	sess := &cobra.Command{Use: "sessions", Aliases: []string{"session"}, Short: "Lists, revokes and extends sessions",
		Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	cmd.AddCommand(ids, sess)

	// identities list
	var identifier string
	var pageSize int
	list := &cobra.Command{Use: "list", Short: "Lists identities", Args: cobra.NoArgs,
		RunE: o.run(func(cl *adminClient, c *cobra.Command, _ []string) error {
			q := url.Values{"page_size": {fmt.Sprint(pageSize)}}
			if identifier != "" {
				q = url.Values{"credentials_identifier": {identifier}}
			}
			var all []json.RawMessage
			path := "/kratos/admin/identities?" + q.Encode()
			for path != "" {
				var page []json.RawMessage
				res, err := cl.call(http.MethodGet, path, nil, &page)
				if err != nil {
					return err
				}
				all = append(all, page...)
				path = nextLink(res.Header.Get("Link"))
			}
			if o.json {
				return printJSON(c.OutOrStdout(), all)
			}
			var idents []cliIdentity
			for _, raw := range all {
				var id cliIdentity
				if err := json.Unmarshal(raw, &id); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %v", err)
				}
				idents = append(idents, id)
			}
			tw := newTable(c.OutOrStdout())
			fmt.Fprintln(tw, "ID\tSTATE\tIDENTIFIER\tVERIFIED\tCREATED")
			for _, id := range idents {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id.ID, id.State, dash(id.identifiers()), id.verified(), fmtTime(id.CreatedAt))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%d %s\n", len(idents), plural(len(idents), "identity", "identities"))
			return nil
		})}
	list.Flags().StringVar(&identifier, "identifier", "", "Only the identity with this login identifier (e.g. an email address)")
	list.Flags().IntVar(&pageSize, "page-size", 250, "Identities fetched per request")

	// identities get
	get := &cobra.Command{Use: "get <identity-id>", Short: "Shows an identity", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			return inContext("identity", args[0], o.showIdentity(cl, c.OutOrStdout(), http.MethodGet, "/kratos/admin/identities/"+url.PathEscape(args[0]), nil))
		})}

	// identities create
	var email, password, passwordHash, traits, state, schemaID, metaPublic, metaAdmin string
	var passwordStdin, verified bool
	create := &cobra.Command{Use: "create", Short: "Creates an identity", Args: cobra.NoArgs,
		RunE: o.run(func(cl *adminClient, c *cobra.Command, _ []string) error {
			body := map[string]any{}
			t := map[string]any{}
			if traits != "" {
				if err := json.Unmarshal([]byte(traits), &t); err != nil {
					return fmt.Errorf("--traits must be a JSON object: %v", err)
				}
			}
			if email != "" {
				t["email"] = email
			}
			if len(t) == 0 {
				return errors.New("give the identity's --email or its --traits")
			}
			body["traits"] = t
			if schemaID != "" {
				body["schema_id"] = schemaID
			}
			if state != "" {
				body["state"] = state
			}
			for flag, v := range map[string]string{"metadata_public": metaPublic, "metadata_admin": metaAdmin} {
				if v != "" {
					if !json.Valid([]byte(v)) {
						return fmt.Errorf("--%s must be JSON", strings.ReplaceAll(flag, "_", "-"))
					}
					body[flag] = json.RawMessage(v)
				}
			}
			if passwordStdin {
				b, err := io.ReadAll(io.LimitReader(c.InOrStdin(), 4096))
				if err != nil {
					return fmt.Errorf("reading the password from stdin: %v", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
				if password == "" {
					return errors.New("--password-stdin: stdin is empty")
				}
			}
			n := 0
			for _, set := range []bool{password != "", passwordHash != ""} {
				if set {
					n++
				}
			}
			if n > 1 {
				return errors.New("give either a password or a password hash, not both")
			}
			switch {
			case password != "":
				body["credentials"] = map[string]any{"password": map[string]any{"config": map[string]any{"password": password}}}
			case passwordHash != "":
				body["credentials"] = map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": passwordHash}}}
			}
			if verified {
				if email == "" {
					return errors.New("--verified needs --email")
				}
				body["verifiable_addresses"] = []any{map[string]any{"value": email, "via": "email", "verified": true, "status": "completed"}}
			}
			return o.showIdentity(cl, c.OutOrStdout(), http.MethodPost, "/kratos/admin/identities", body)
		})}
	cf := create.Flags()
	cf.StringVar(&email, "email", "", "The email trait (traits.email)")
	cf.StringVar(&password, "password", "", "The password (visible to other users of this machine: prefer --password-stdin)")
	cf.BoolVar(&passwordStdin, "password-stdin", false, "Read the password from stdin")
	cf.StringVar(&passwordHash, "password-hash", "", "An existing password hash (bcrypt, argon2id, argon2i, pbkdf2, scrypt)")
	cf.StringVar(&traits, "traits", "", "All traits as a JSON object (--email is merged in)")
	cf.StringVar(&state, "state", "", "active (default) or inactive")
	cf.StringVar(&schemaID, "schema-id", "", "The identity schema id (default: the configured schema)")
	cf.StringVar(&metaPublic, "metadata-public", "", "metadata_public as JSON")
	cf.StringVar(&metaAdmin, "metadata-admin", "", "metadata_admin as JSON")
	cf.BoolVar(&verified, "verified", false, "Mark the email address as verified")

	// identities activate / deactivate
	setState := func(name, st string) *cobra.Command {
		return &cobra.Command{Use: name + " <identity-id>", Short: strings.ToUpper(name[:1]) + name[1:] + "s an identity", Args: cobra.ExactArgs(1),
			RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
				patch := []map[string]any{{"op": "replace", "path": "/state", "value": st}}
				return inContext("identity", args[0], o.showIdentity(cl, c.OutOrStdout(), http.MethodPatch, "/kratos/admin/identities/"+url.PathEscape(args[0]), patch))
			})}
	}

	// identities delete
	del := &cobra.Command{Use: "delete <identity-id>…", Short: "Deletes identities and their sessions", Args: cobra.MinimumNArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			for _, id := range args {
				if _, err := cl.call(http.MethodDelete, "/kratos/admin/identities/"+url.PathEscape(id), nil, nil); err != nil {
					return inContext("identity", id, err)
				}
				if !o.json {
					fmt.Fprintf(c.OutOrStdout(), "Deleted identity %s.\n", id)
				}
			}
			return nil
		})}

	// identities import
	imp := &cobra.Command{Use: "import <file.json|->", Short: "Imports identities from a Kratos JSON export", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			return o.importIdentities(cl, c, args[0])
		})}
	ids.AddCommand(list, get, create, setState("activate", "active"), setState("deactivate", "inactive"), del, imp)

	// sessions list
	var activeOnly bool
	slist := &cobra.Command{Use: "list <identity-id>", Short: "Lists the sessions of an identity", Args: cobra.ExactArgs(1),
		RunE: o.run(func(cl *adminClient, c *cobra.Command, args []string) error {
			q := url.Values{"page_size": {"500"}}
			if activeOnly {
				q.Set("active", "true")
			}
			var all []json.RawMessage
			path := "/kratos/admin/identities/" + url.PathEscape(args[0]) + "/sessions?" + q.Encode()
			for path != "" {
				var page []json.RawMessage
				res, err := cl.call(http.MethodGet, path, nil, &page)
				if err != nil {
					return inContext("identity", args[0], err)
				}
				all = append(all, page...)
				path = nextLink(res.Header.Get("Link"))
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

	// recovery-code / recovery-link
	recovery := func(kind string) *cobra.Command {
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
	cmd.AddCommand(recovery("code"), recovery("link"))
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

// showIdentity sends a request whose answer is an identity and prints it.
func (o *cliOptions) showIdentity(cl *adminClient, w io.Writer, method, path string, body any) error {
	var raw json.RawMessage
	if _, err := cl.call(method, path, body, &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(w, raw)
	}
	var id cliIdentity
	if err := json.Unmarshal(raw, &id); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %v", err)
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "ID\t%s\n", id.ID)
	st := id.State
	if id.StateChangedAt != nil {
		st += " (since " + fmtTime(*id.StateChangedAt) + ")"
	}
	fmt.Fprintf(tw, "State\t%s\n", st)
	fmt.Fprintf(tw, "Schema\t%s\n", id.SchemaID)
	fmt.Fprintf(tw, "Traits\t%s\n", compactJSON(id.Traits))
	var creds []string
	for _, t := range slices.Sorted(maps.Keys(id.Credentials)) {
		c := id.Credentials[t]
		if len(c.Identifiers) > 0 {
			creds = append(creds, t+" ("+strings.Join(c.Identifiers, ", ")+")")
		} else {
			creds = append(creds, t)
		}
	}
	fmt.Fprintf(tw, "Credentials\t%s\n", dash(strings.Join(creds, "; ")))
	var addrs []string
	for _, a := range id.VerifiableAddresses {
		v := "not verified"
		if a.Verified {
			v = "verified"
		}
		addrs = append(addrs, fmt.Sprintf("%s (%s, %s)", a.Value, a.Via, v))
	}
	fmt.Fprintf(tw, "Addresses\t%s\n", dash(strings.Join(addrs, "; ")))
	fmt.Fprintf(tw, "Metadata (public)\t%s\n", compactJSON(id.MetadataPublic))
	fmt.Fprintf(tw, "Metadata (admin)\t%s\n", compactJSON(id.MetadataAdmin))
	fmt.Fprintf(tw, "Created\t%s\n", fmtTime(id.CreatedAt))
	fmt.Fprintf(tw, "Updated\t%s\n", fmtTime(id.UpdatedAt))
	return tw.Flush()
}

// --- import ---

// importBatch is the largest batchPatchIdentities request the CLI sends.
const importBatch = 500

// importIdentities reads a Kratos export and creates the identities with
// batchPatchIdentities, printing one line per identity.
func (o *cliOptions) importIdentities(cl *adminClient, c *cobra.Command, file string) error {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(c.InOrStdin())
	} else {
		data, err = os.ReadFile(file) // #nosec G304 -- the import file is named by the operator on the command line
	}
	if err != nil {
		return fmt.Errorf("reading %s: %v", file, err)
	}
	items, err := parseExport(data)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	for _, it := range items {
		for _, w := range it.warnings {
			fmt.Fprintf(c.ErrOrStderr(), "Warning: identity %s: %s\n", dash(it.source), w)
		}
	}
	type outcome struct {
		Source     string          `json:"source_id,omitempty"`
		Identifier string          `json:"identifier,omitempty"`
		Action     string          `json:"action"`
		Identity   string          `json:"identity,omitempty"`
		Error      json.RawMessage `json:"error,omitempty"`
	}
	var results []outcome
	for start := 0; start < len(items); start += importBatch {
		chunk := items[start:min(start+importBatch, len(items))]
		patches := make([]map[string]any, len(chunk))
		for i, it := range chunk {
			patches[i] = map[string]any{"create": it.body}
		}
		var res struct {
			Identities []struct {
				Action   string          `json:"action"`
				Identity string          `json:"identity"`
				Error    json.RawMessage `json:"error"`
			} `json:"identities"`
		}
		_, err := cl.call(http.MethodPatch, "/kratos/admin/identities", map[string]any{"identities": patches}, &res)
		var apiErr *adminAPIError
		if errors.As(err, &apiErr) && len(apiErr.details.Identities) == len(chunk) {
			// Every identity of the batch failed: the results are in the
			// error's details.
			res.Identities = apiErr.details.Identities
		} else if err != nil {
			return err
		}
		if len(res.Identities) != len(chunk) {
			return fmt.Errorf("the admin API answered %d results for %d identities", len(res.Identities), len(chunk))
		}
		for i, r := range res.Identities {
			results = append(results, outcome{Source: chunk[i].source, Identifier: chunk[i].identifier, Action: r.Action, Identity: r.Identity, Error: r.Error})
		}
	}
	failed := 0
	for _, r := range results {
		if r.Action != "create" {
			failed++
		}
	}
	if o.json {
		if err := printJSON(c.OutOrStdout(), results); err != nil {
			return err
		}
	} else {
		tw := newTable(c.OutOrStdout())
		fmt.Fprintln(tw, "SOURCE ID\tIDENTIFIER\tRESULT")
		for _, r := range results {
			result := "created " + r.Identity
			if r.Action != "create" {
				result = "error: " + describeError(r.Error)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", dash(r.Source), dash(r.Identifier), result)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "Imported %d of %d %s.\n", len(results)-failed, len(results), plural(len(results), "identity", "identities"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d %s could not be imported", failed, len(results), plural(len(results), "identity", "identities"))
	}
	return nil
}

type exportItem struct {
	source, identifier string
	body               map[string]any
	warnings           []string
}

// parseExport reads a Kratos export: an array of identities, one identity
// object, or {"identities": [...]} (identities or batch patches with
// "create"). Each identity becomes a createIdentityBody.
func parseExport(data []byte) ([]exportItem, error) {
	data = bytes.TrimSpace(data)
	var raws []json.RawMessage
	switch {
	case len(data) == 0:
		return nil, errors.New("the file is empty")
	case data[0] == '[':
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, fmt.Errorf("not a JSON array of identities: %v", err)
		}
	case data[0] == '{':
		var wrapper struct {
			Identities []json.RawMessage `json:"identities"`
		}
		if err := json.Unmarshal(data, &wrapper); err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		if wrapper.Identities != nil {
			raws = wrapper.Identities
		} else {
			raws = []json.RawMessage{data}
		}
	default:
		return nil, errors.New("not JSON: expected an array of identities")
	}
	items := make([]exportItem, 0, len(raws))
	for i, raw := range raws {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return nil, fmt.Errorf("entry %d is not a JSON object", i+1)
		}
		if create, ok := m["create"].(map[string]any); ok {
			m = create // already a batch patch
		}
		items = append(items, exportToCreate(m))
	}
	return items, nil
}

// exportToCreate maps an exported identity to a createIdentityBody.
func exportToCreate(m map[string]any) exportItem {
	it := exportItem{body: map[string]any{}}
	it.source, _ = m["id"].(string)
	for _, k := range []string{"schema_id", "traits", "state", "metadata_public", "metadata_admin"} {
		if v, ok := m[k]; ok && v != nil {
			it.body[k] = v
		}
	}
	if va, ok := m["verifiable_addresses"].([]any); ok {
		var out []any
		for _, a := range va {
			am, _ := a.(map[string]any)
			if am == nil {
				continue
			}
			n := map[string]any{}
			for _, k := range []string{"value", "via", "verified", "status", "verified_at"} {
				if v, ok := am[k]; ok && v != nil {
					n[k] = v
				}
			}
			out = append(out, n)
		}
		it.body["verifiable_addresses"] = out
	}
	if ra, ok := m["recovery_addresses"].([]any); ok {
		var out []any
		for _, a := range ra {
			if am, _ := a.(map[string]any); am != nil {
				out = append(out, map[string]any{"value": am["value"], "via": am["via"]})
			}
		}
		it.body["recovery_addresses"] = out
	}
	if creds, ok := m["credentials"].(map[string]any); ok {
		for _, t := range slices.Sorted(maps.Keys(creds)) {
			cm, _ := creds[t].(map[string]any)
			cfg, _ := cm["config"].(map[string]any)
			if t != "password" {
				if t != "code" && t != "profile" { // derived from traits, nothing to carry over
					it.warnings = append(it.warnings, fmt.Sprintf("%s credentials are not imported", t))
				}
				continue
			}
			if ids, ok := cm["identifiers"].([]any); ok && len(ids) > 0 {
				it.identifier, _ = ids[0].(string)
			}
			pc := map[string]any{}
			if h, _ := cfg["hashed_password"].(string); h != "" {
				pc["hashed_password"] = h
			} else if p, _ := cfg["password"].(string); p != "" {
				pc["password"] = p
			} else {
				it.warnings = append(it.warnings, "the password credential has no hashed_password (export with ?include_credential=password); imported without a password")
				continue
			}
			it.body["credentials"] = map[string]any{"password": map[string]any{"config": pc}}
		}
	}
	if it.identifier == "" {
		if t, ok := m["traits"].(map[string]any); ok {
			it.identifier, _ = t["email"].(string)
		}
	}
	return it
}

// --- client ---

// adminClient talks to Caddy's admin endpoint like Caddy's own commands
// (caddycmd.AdminAPIRequest): any network Caddy can listen on, and the
// Origin header the endpoint's host and origin checks expect.
type adminClient struct {
	addr      string
	origin    string
	setOrigin bool // not for unix sockets and fds, as caddycmd does
	hc        *http.Client
}

func newAdminClient(addr string) (*adminClient, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	cl := &adminClient{addr: addr, origin: "http://" + na.JoinHostPort(0), setOrigin: true}
	dialAddr := na.JoinHostPort(0)
	if na.IsUnixNetwork() || na.IsFdNetwork() {
		cl.origin, cl.setOrigin = "http://127.0.0.1", false
		dialAddr, _, _ = strings.Cut(dialAddr, "|") // socket permission bits
	}
	cl.hc = &http.Client{
		Timeout: 5 * time.Minute, // imports hash plaintext passwords
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, na.Network, dialAddr)
			},
		},
	}
	return cl, nil
}

// adminAPIError is an error answer of the admin API.
type adminAPIError struct {
	status  int
	message string
	details struct {
		Identities []struct {
			Action   string          `json:"action"`
			Identity string          `json:"identity"`
			Error    json.RawMessage `json:"error"`
		} `json:"identities"`
	}
}

func (e *adminAPIError) Error() string { return e.message }

// call sends a JSON request and decodes a 2xx JSON answer into out.
func (cl *adminClient) call(method, path string, body, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, cl.origin+path, rd)
	if err != nil {
		return nil, err
	}
	if cl.setOrigin {
		req.Header.Set("Origin", cl.origin)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := cl.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is the server running? (could not reach the admin API at %s: %v)", cl.addr, unwrapNetError(err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %v", err)
	}
	if res.StatusCode >= 300 {
		return res, decodeAPIError(res.StatusCode, raw)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res, fmt.Errorf("unexpected answer from the admin API (HTTP %d): %v", res.StatusCode, err)
		}
	}
	return res, nil
}

func unwrapNetError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeAPIError turns an error answer into a readable message: Kratos's
// error shape, Caddy's admin error shape, or the raw body.
func decodeAPIError(status int, raw []byte) error {
	e := &adminAPIError{status: status}
	var k struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &k) == nil && len(k.Error) > 0 {
		var s string
		if json.Unmarshal(k.Error, &s) == nil { // Caddy's admin errors
			e.message = fmt.Sprintf("the admin endpoint refused the request (HTTP %d): %s", status, s)
			return e
		}
		var ke struct {
			Details struct {
				Identities json.RawMessage `json:"identities"`
			} `json:"details"`
		}
		_ = json.Unmarshal(k.Error, &ke)
		if len(ke.Details.Identities) > 0 {
			_ = json.Unmarshal(ke.Details.Identities, &e.details.Identities)
		}
		e.message = describeError(k.Error)
		if status == http.StatusNotFound && strings.Contains(e.message, "Unable to locate the resource") {
			e.message = "not found (HTTP 404)"
		}
		return e
	}
	body := strings.TrimSpace(string(raw))
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	if status == http.StatusNotFound {
		e.message = "the admin endpoint has no Kratos admin API (HTTP 404): is this caddy-kratos?"
		return e
	}
	e.message = fmt.Sprintf("HTTP %d: %s", status, body)
	return e
}

// describeError renders a Kratos error object as "<code> <message>: <reason>".
func describeError(raw json.RawMessage) string {
	var ke struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(raw, &ke) != nil || ke.Code == 0 {
		return strings.TrimSpace(string(raw))
	}
	s := fmt.Sprintf("%s (HTTP %d)", ke.Message, ke.Code)
	if ke.Reason != "" {
		s += ": " + ke.Reason
	}
	return s
}

// nextLink returns the path and query of the rel="next" link, or "".
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			return ""
		}
		return u.RequestURI()
	}
	return ""
}

// --- output ---

type cliIdentity struct {
	ID             string          `json:"id"`
	SchemaID       string          `json:"schema_id"`
	State          string          `json:"state"`
	StateChangedAt *time.Time      `json:"state_changed_at"`
	Traits         json.RawMessage `json:"traits"`
	Credentials    map[string]struct {
		Identifiers []string `json:"identifiers"`
	} `json:"credentials"`
	VerifiableAddresses []struct {
		Value    string `json:"value"`
		Via      string `json:"via"`
		Verified bool   `json:"verified"`
	} `json:"verifiable_addresses"`
	MetadataPublic json.RawMessage `json:"metadata_public"`
	MetadataAdmin  json.RawMessage `json:"metadata_admin"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

func (id cliIdentity) identifiers() string {
	if c, ok := id.Credentials["password"]; ok && len(c.Identifiers) > 0 {
		return strings.Join(c.Identifiers, ",")
	}
	var t struct {
		Email string `json:"email"`
	}
	_ = json.Unmarshal(id.Traits, &t)
	return t.Email
}

func (id cliIdentity) verified() string {
	if len(id.VerifiableAddresses) == 0 {
		return "-"
	}
	n := 0
	for _, a := range id.VerifiableAddresses {
		if a.Verified {
			n++
		}
	}
	switch n {
	case 0:
		return "no"
	case len(id.VerifiableAddresses):
		return "yes"
	}
	return fmt.Sprintf("%d/%d", n, len(id.VerifiableAddresses))
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

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return "null"
	}
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
