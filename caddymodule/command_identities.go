package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// identitiesCommand is `kratos identities …`.
func (o *cliOptions) identitiesCommand() *cobra.Command {
	ids := &cobra.Command{Use: "identities", Aliases: []string{"identity"}, Short: "Lists, shows, creates, (de)activates, deletes and imports identities",
		Args: cobra.NoArgs, RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}

	// identities list
	var identifier string
	var pageSize int
	list := &cobra.Command{Use: "list", Short: "Lists identities", Args: cobra.NoArgs,
		RunE: o.run(func(cl *adminClient, c *cobra.Command, _ []string) error {
			q := url.Values{"page_size": {fmt.Sprint(pageSize)}}
			if identifier != "" {
				q = url.Values{"credentials_identifier": {identifier}}
			}
			all, err := cl.list("/kratos/admin/identities?"+q.Encode(), 0)
			if err != nil {
				return err
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
	return ids
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
