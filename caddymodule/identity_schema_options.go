package caddymodule

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// The identity schemas: identity_schema, identity_schemas and
// default_identity_schema (flows.SchemaOptions).

// IdentitySchemaEntry is one entry of identity.schemas.
type IdentitySchemaEntry struct {
	// ID is the schema id (identity schema_id, ?identity_schema=).
	ID string `json:"id"`
	// Path is the schema's JSON file: a path, a file:// URL or an inline
	// base64://… document.
	Path string `json:"path"`
	// SelfserviceSelectable lets registration flows choose this schema
	// with ?identity_schema=<id> (selfservice_selectable). Default: false,
	// only the admin API creates identities with it (the default schema
	// needs no flag).
	SelfserviceSelectable bool `json:"selfservice_selectable,omitempty"`
}

// unmarshalSchemaOption reads
//
//	identity_schema [<id>] <file> [selfservice_selectable]
//	default_identity_schema <id>
func (a *App) unmarshalSchemaOption(o *globalOption) (bool, error) {
	switch o.name {
	case "identity_schema":
		o.mark() // the last one
		return true, a.parseIdentitySchema(o.d)
	case "default_identity_schema":
		var err error
		a.DefaultIdentitySchemaID, err = o.one()
		if err != nil {
			return true, err
		}
		o.mark()
		return true, o.check(flows.CheckIdentitySchemaID(a.DefaultIdentitySchemaID))
	}
	return false, nil
}

// parseIdentitySchema reads one identity_schema line (Kratos's
// identity.schemas[]):
//
//	identity_schema <file>                                 (the schema "default")
//	identity_schema <id> <file> [selfservice_selectable]
//
// The file may also be a file:// URL or an inline base64://… schema.
func (a *App) parseIdentitySchema(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	id, path, selectable := "default", "", false
	switch len(args) {
	case 1:
		path = args[0]
	case 3:
		if args[2] != "selfservice_selectable" {
			return d.Errf("identity_schema: unknown flag %q (want selfservice_selectable)", args[2])
		}
		selectable = true
		fallthrough
	case 2:
		id, path = args[0], args[1]
		if err := flows.CheckIdentitySchemaID(id); err != nil {
			return d.Errf("identity_schema: %v", err)
		}
	default:
		return d.ArgErr()
	}
	if (id == "default" && a.IdentitySchema != "") ||
		slices.ContainsFunc(a.IdentitySchemas, func(s *IdentitySchemaEntry) bool { return s.ID == id }) {
		return d.Errf("identity_schema: schema %q is configured twice", id)
	}
	if len(args) == 1 {
		a.IdentitySchema = path
		return nil
	}
	a.IdentitySchemas = append(a.IdentitySchemas, &IdentitySchemaEntry{ID: id, Path: path, SelfserviceSelectable: selectable})
	return nil
}

// schemaIDs are the ids of the configured identity schemas; without any,
// the built-in schema "default".
func (a *App) schemaIDs() []string {
	var ids []string
	if a.IdentitySchema != "" || len(a.IdentitySchemas) == 0 {
		ids = append(ids, "default")
	}
	for _, s := range a.IdentitySchemas {
		ids = append(ids, s.ID)
	}
	return ids
}

// checkDefaultIdentitySchema: the default schema must be one of the
// configured ones, and several schemas without one named "default" need
// default_identity_schema (at and schemaAt are the file:line of that
// subdirective and of the last identity_schema).
func (a *App) checkDefaultIdentitySchema(at, schemaAt string) error {
	ids := a.schemaIDs()
	switch {
	case a.DefaultIdentitySchemaID != "":
		if !slices.Contains(ids, a.DefaultIdentitySchemaID) {
			return fmt.Errorf("default_identity_schema: %q is not a configured identity schema (configured: %s), at %s",
				a.DefaultIdentitySchemaID, strings.Join(ids, ", "), at)
		}
	case len(ids) > 1 && !slices.Contains(ids, "default"):
		return fmt.Errorf("identity_schema: several schemas (%s) and none named \"default\": name the default with default_identity_schema <id>, at %s",
			strings.Join(ids, ", "), schemaAt)
	}
	return nil
}

// schemaFlowsConfig reads the identity schema files into cfg.
func (a *App) schemaFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
	if a.IdentitySchema != "" {
		schema, err := readSchemaSource(r(a.IdentitySchema))
		errs.check("identity_schema", err)
		cfg.IdentitySchema = schema
	}
	for _, s := range a.IdentitySchemas {
		if s == nil {
			continue
		}
		if err := flows.CheckIdentitySchemaID(s.ID); err != nil {
			errs.check("identity_schemas", err)
			continue
		}
		schema, err := readSchemaSource(r(s.Path))
		errs.check("identity_schemas."+s.ID, err)
		cfg.IdentitySchemas = append(cfg.IdentitySchemas,
			flows.IdentitySchemaConfig{ID: s.ID, Raw: schema, SelfserviceSelectable: s.SelfserviceSelectable})
	}
	cfg.DefaultIdentitySchemaID = r(a.DefaultIdentitySchemaID)
}

// readSchemaSource reads an identity schema given as a file path, a
// file:// URL or an inline base64://… document (as Kratos's
// identity.schemas[].url; http(s) URLs are not fetched).
func readSchemaSource(s string) ([]byte, error) {
	switch {
	case s == "":
		return nil, errors.New("empty schema location")
	case strings.HasPrefix(s, "base64://"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "base64://"))
		if err != nil {
			if b, err = base64.URLEncoding.DecodeString(strings.TrimPrefix(s, "base64://")); err != nil {
				return nil, fmt.Errorf("invalid base64:// schema: %w", err)
			}
		}
		return b, nil
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"):
		return nil, fmt.Errorf("schema %q: remote schemas are not fetched; give a file path or base64://", s)
	}
	path := strings.TrimPrefix(s, "file://")
	b, err := os.ReadFile(path) // #nosec G304 -- schema paths come from the operator's configuration
	if err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	return b, nil
}
