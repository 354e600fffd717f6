package flows

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// defaultIdentitySchema is used when no identity_schema is configured:
// Kratos's quickstart email + password schema with an optional name.
const defaultIdentitySchema = `{
  "$id": "https://schemas.caddy-kratos.dev/default/identity.schema.json",
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Person",
  "type": "object",
  "properties": {
    "traits": {
      "type": "object",
      "properties": {
        "email": {
          "type": "string",
          "format": "email",
          "title": "E-Mail",
          "minLength": 3,
          "maxLength": 320,
          "ory.sh/kratos": {
            "credentials": {
              "password": { "identifier": true },
              "webauthn": { "identifier": true },
              "code": { "identifier": true, "via": "email" },
              "passkey": { "display_name": true },
              "totp": { "account_name": true }
            },
            "verification": { "via": "email" },
            "recovery": { "via": "email" }
          }
        },
        "name": {
          "type": "object",
          "properties": {
            "first": { "title": "First Name", "type": "string" },
            "last": { "title": "Last Name", "type": "string" }
          }
        }
      },
      "required": ["email"],
      "additionalProperties": false
    }
  }
}`

// traitField is one leaf trait of the identity schema, in schema order.
type traitField struct {
	Path      string // dotted, without "traits."
	JSONType  string
	Format    string
	Title     string
	Required  bool
	Pattern   string
	Enum      []any
	MaxLength int
	// ParentRequired: the parent object lists the field as required
	// (what Kratos's form decoder asks, see formTraits).
	ParentRequired bool
	// ItemType is the items type of an array trait.
	ItemType string

	// ory.sh/kratos annotations
	Identifier      map[string]bool // credential type → is identifier
	CodeVia         string
	TOTPAccountName bool
	PasskeyName     bool
	VerificationVia string
	RecoveryVia     string
}

// identitySchema is a compiled identity schema.
type identitySchema struct {
	ID  string
	Raw []byte
	// Selectable: registration flows may choose it by id
	// (selfservice_selectable).
	Selectable bool
	Fields     []traitField
	// Objects are the dotted paths of nested object traits ("name").
	Objects []string
	sch     *jsonschema.Schema
}

// loadSchemas compiles the configured identity schemas and picks the
// default one (identity.schemas, identity.default_schema_id).
func (e *Engine) loadSchemas() error {
	var list []IdentitySchemaConfig
	if len(e.cfg.IdentitySchema) > 0 || len(e.cfg.IdentitySchemas) == 0 {
		// The one schema of the simple configuration; the built-in one
		// when none is given.
		list = append(list, IdentitySchemaConfig{ID: e.cfg.IdentitySchemaID, Raw: e.cfg.IdentitySchema})
	}
	list = append(list, e.cfg.IdentitySchemas...)
	e.schemas = make(map[string]*identitySchema, len(list))
	ids := make([]string, 0, len(list))
	for i, c := range list {
		if err := CheckIdentitySchemaID(c.ID); err != nil {
			return err
		}
		if e.schemas[c.ID] != nil {
			return fmt.Errorf("identity schema %q is configured twice", c.ID)
		}
		if len(c.Raw) == 0 && (i > 0 || len(e.cfg.IdentitySchemas) > 0) {
			return fmt.Errorf("identity schema %q is empty", c.ID)
		}
		sch, err := loadIdentitySchema(c.ID, c.Raw)
		if err != nil {
			return fmt.Errorf("identity schema %q: %w", c.ID, err)
		}
		sch.Selectable = c.SelfserviceSelectable
		e.schemas[c.ID] = sch
		e.schemaList = append(e.schemaList, sch)
		ids = append(ids, c.ID)
	}
	def := e.cfg.DefaultIdentitySchemaID
	switch {
	case def != "":
	case e.schemas[e.cfg.IdentitySchemaID] != nil:
		def = e.cfg.IdentitySchemaID
	case len(list) == 1:
		def = list[0].ID
	default:
		return fmt.Errorf("no default identity schema: name one of %s as the default (default_identity_schema)", strings.Join(ids, ", "))
	}
	if e.schema = e.schemas[def]; e.schema == nil {
		return fmt.Errorf("default identity schema %q is not configured (configured: %s)", def, strings.Join(ids, ", "))
	}
	return nil
}

// CheckIdentitySchemaID accepts an identity schema id: 1 to 128 printable
// characters without spaces (the id appears in URLs and in the Caddyfile).
func CheckIdentitySchemaID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("invalid identity schema id %q: want 1 to 128 characters", id)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '/' {
			return fmt.Errorf("invalid identity schema id %q: no spaces, control characters or '/'", id)
		}
	}
	return nil
}

// schemaFor is the schema with id; "" is the default schema. An identity
// keeps the schema id it was created with: when that schema is no longer
// configured, the default schema stands in (and the operator is warned),
// so its owner can still use settings.
func (e *Engine) schemaFor(id string) *identitySchema {
	if id == "" {
		return e.schema
	}
	if s := e.schemas[id]; s != nil {
		return s
	}
	if _, warned := e.schemaWarned.LoadOrStore(id, true); !warned {
		e.logger.Warn("identity schema is not configured; using the default schema for its identities",
			zap.String("schema_id", id), zap.String("default_schema_id", e.schema.ID))
	}
	return e.schema
}

// schemaOf is the schema of an identity's traits.
func (e *Engine) schemaOf(ident *sessionstore.Identity) *identitySchema {
	return e.schemaFor(ident.SchemaID)
}

// submitSchema is the schema that types a flow's form traits: the
// identity's for a settings flow, else the flow's own (registration).
func (e *Engine) submitSchema(ctx context.Context, f *flow) *identitySchema {
	if f.Kind == "settings" && f.IdentityID != "" {
		if ident, err := e.store.GetIdentityShared(ctx, f.IdentityID); err == nil {
			return e.schemaOf(ident)
		}
	}
	return e.flowSchema(f)
}

// flowSchema is the schema a registration flow creates its identity with.
func (e *Engine) flowSchema(f *flow) *identitySchema {
	return e.schemaFor(f.IdentitySchema)
}

// lookupSchema finds a configured schema by its id or by the base64url of
// its id (the last segment of schema_url).
func (e *Engine) lookupSchema(id string) *identitySchema {
	if s := e.schemas[id]; s != nil {
		return s
	}
	if b, err := base64.RawURLEncoding.DecodeString(id); err == nil {
		return e.schemas[string(b)]
	}
	return nil
}

// selfServiceSchema resolves ?identity_schema= of a new registration flow:
// empty is the default schema; a named schema must be configured and
// marked selfservice_selectable (naming the default is always fine).
// Anything else is refused, so no one signs up under a schema meant for
// identities the operator creates (staff, say).
func (e *Engine) selfServiceSchema(id string) (*identitySchema, *wire.Error) {
	if id == "" {
		return e.schema, nil
	}
	if s := e.schemas[id]; s != nil && (s.Selectable || s == e.schema) {
		return s, nil
	}
	return nil, wire.BadRequest(fmt.Sprintf("Identity schema %q does not exist or cannot be selected in self-service flows.", id))
}

// identifiers returns the normalised values of traits marked as
// identifiers of credType.
func (s *identitySchema) identifiers(traits map[string]any, credType string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if !f.Identifier[credType] {
			continue
		}
		v, ok := lookupPath(traits, f.Path)
		if !ok {
			continue
		}
		str, ok := v.(string)
		if !ok || strings.TrimSpace(str) == "" {
			continue
		}
		str = normalizeIdentifier(str)
		if !seen[str] {
			seen[str] = true
			out = append(out, str)
		}
	}
	return out
}

// addresses derives verifiable and recovery addresses from traits marked
// with ory.sh/kratos verification.via / recovery.via.
func (s *identitySchema) addresses(traits map[string]any, now time.Time) ([]sessionstore.VerifiableAddress, []sessionstore.RecoveryAddress) {
	ver := []sessionstore.VerifiableAddress{}
	rec := []sessionstore.RecoveryAddress{}
	for _, f := range s.Fields {
		v, ok := lookupPath(traits, f.Path)
		if !ok {
			continue
		}
		str, ok := v.(string)
		if !ok || strings.TrimSpace(str) == "" {
			continue
		}
		val := str
		if f.Format == "email" || f.VerificationVia == "email" || f.RecoveryVia == "email" {
			val = strings.ToLower(strings.TrimSpace(str))
		}
		if f.VerificationVia != "" {
			ver = append(ver, sessionstore.VerifiableAddress{ID: uuid.NewString(), Value: val, Via: f.VerificationVia,
				Status: "pending", CreatedAt: now, UpdatedAt: now})
		}
		if f.RecoveryVia != "" {
			rec = append(rec, sessionstore.RecoveryAddress{ID: uuid.NewString(), Value: val, Via: f.RecoveryVia,
				CreatedAt: now, UpdatedAt: now})
		}
	}
	return ver, rec
}

func loadIdentitySchema(id string, raw []byte) (*identitySchema, error) {
	if len(raw) == 0 {
		raw = []byte(defaultIdentitySchema)
	}
	var probe map[string]any
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("identity schema is not valid JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("identity schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const loc = "urn:caddy-kratos:identity-schema"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("identity schema: %w", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("identity schema does not compile: %w", err)
	}
	root, err := decodeOrdered(raw)
	if err != nil {
		return nil, fmt.Errorf("identity schema: %w", err)
	}
	rootObj, _ := root.(*omap)
	props, _ := rootObj.get("properties").(*omap)
	traits, _ := props.get("traits").(*omap)
	if traits == nil {
		return nil, errors.New("identity schema has no properties.traits object")
	}
	s := &identitySchema{ID: id, Raw: raw, sch: sch}
	s.walk(traits, "", true)
	return s, nil
}

func (s *identitySchema) walk(obj *omap, prefix string, required bool) {
	props, _ := obj.get("properties").(*omap)
	if props == nil {
		return
	}
	req := map[string]bool{}
	if list, ok := obj.get("required").([]any); ok {
		for _, r := range list {
			if rs, ok := r.(string); ok {
				req[rs] = true
			}
		}
	}
	for _, k := range props.keys {
		p, ok := props.vals[k].(*omap)
		if !ok {
			continue
		}
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		typ, _ := p.get("type").(string)
		if typ == "object" {
			s.Objects = append(s.Objects, path)
			s.walk(p, path, required && req[k])
			continue
		}
		f := traitField{Path: path, JSONType: typ, Required: required && req[k], ParentRequired: req[k], Identifier: map[string]bool{}}
		if items, ok := p.get("items").(*omap); ok {
			f.ItemType, _ = items.get("type").(string)
		}
		f.Format, _ = p.get("format").(string)
		f.Title, _ = p.get("title").(string)
		f.Pattern, _ = p.get("pattern").(string)
		if e, ok := p.get("enum").([]any); ok {
			f.Enum = e
		}
		if n, ok := p.get("maxLength").(json.Number); ok {
			v, _ := n.Int64()
			f.MaxLength = int(v)
		}
		if ext, ok := p.get("ory.sh/kratos").(*omap); ok {
			if creds, ok := ext.get("credentials").(*omap); ok {
				for _, ct := range creds.keys {
					c, _ := creds.vals[ct].(*omap)
					if c == nil {
						continue
					}
					if b, _ := c.get("identifier").(bool); b {
						f.Identifier[ct] = true
					}
					if ct == "code" {
						f.CodeVia, _ = c.get("via").(string)
					}
					if ct == "totp" {
						f.TOTPAccountName, _ = c.get("account_name").(bool)
					}
					if ct == "passkey" {
						f.PasskeyName, _ = c.get("display_name").(bool)
					}
				}
			}
			if v, ok := ext.get("verification").(*omap); ok {
				f.VerificationVia, _ = v.get("via").(string)
			}
			if r, ok := ext.get("recovery").(*omap); ok {
				f.RecoveryVia, _ = r.get("via").(string)
			}
		}
		s.Fields = append(s.Fields, f)
	}
}

// identifierLabel is the label of the login identifier node: the title of
// the single password identifier trait (1070002), else 1070004 "ID".
func (s *identitySchema) identifierLabel(credType string) *node.Text {
	var found *traitField
	n := 0
	for i := range s.Fields {
		if s.Fields[i].Identifier[credType] {
			found = &s.Fields[i]
			n++
		}
	}
	if n == 1 && found.Title != "" {
		return node.Label(1070002, map[string]any{"title": found.Title, "name": "traits." + found.Path}, found.Title)
	}
	return node.Label(1070004, nil)
}

// traitNodes builds the input nodes for every trait in group, with values
// from traits (nil: none), as ui-nodes.md describes.
func (s *identitySchema) traitNodes(group string, traits map[string]any, hidden bool) []*node.Node {
	nodes := make([]*node.Node, 0, len(s.Fields))
	for _, f := range s.Fields {
		typ, auto := "text", ""
		switch f.JSONType {
		case "number", "integer":
			typ = "number"
		case "boolean":
			typ = "checkbox"
		}
		switch f.Format {
		case "email":
			typ, auto = "email", "email"
		case "tel":
			typ, auto = "tel", "tel"
		case "date":
			typ = "date"
		case "date-time":
			typ = "datetime-local"
		case "uri":
			typ, auto = "url", "url"
		}
		var label *node.Text
		if f.Title != "" {
			label = node.Label(1070002, map[string]any{"title": f.Title, "name": "traits." + f.Path}, f.Title)
		}
		if hidden {
			typ = "hidden"
		}
		n := node.Input(group, "traits."+f.Path, typ, label)
		a := n.Input()
		a.Required = f.Required
		a.Autocomplete = auto
		a.Pattern = f.Pattern
		for _, e := range f.Enum {
			a.Options = append(a.Options, map[string]any{"value": e})
		}
		if v, ok := lookupPath(traits, f.Path); ok {
			a.Value = v
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// lookupPath reads a dotted path from nested maps.
func lookupPath(m map[string]any, path string) (any, bool) {
	if m == nil {
		return nil, false
	}
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[p]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// fieldError is a validation message for a trait node ("traits.email") or
// the flow ("" name).
type fieldError struct {
	Name string
	Text node.Text
}

// validate checks traits against the schema and returns Kratos's messages
// per node. traits must be JSON-decoded with UseNumber.
func (s *identitySchema) validate(traits any) []fieldError {
	raw, err := json.Marshal(map[string]any{"traits": traits})
	if err != nil {
		return []fieldError{{Text: node.TextReason(4000001, "traits are not valid JSON")}}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []fieldError{{Text: node.TextReason(4000001, "traits are not valid JSON")}}
	}
	err = s.sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []fieldError{{Text: node.TextReason(4000001, err.Error())}}
	}
	var out []fieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, mapValidationError(e, inst)...)
	}
	walk(ve)
	return out
}

func mapValidationError(e *jsonschema.ValidationError, inst any) []fieldError {
	name := strings.Join(e.InstanceLocation, ".")
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []fieldError
		for _, m := range k.Missing {
			n := m
			if name != "" {
				n = name + "." + m
			}
			out = append(out, fieldError{Name: n, Text: node.NewText(4000002, map[string]any{"property": m}, m)})
		}
		return out
	case *kind.Format:
		if k.Want == "email" {
			return []fieldError{{Name: name, Text: node.NewText(4000040, map[string]any{"value": k.Got})}}
		}
		return []fieldError{{Name: name, Text: node.NewText(4000001, map[string]any{"reason": fmt.Sprintf("%v is not valid %q", k.Got, k.Want)}, fmt.Sprintf("%v is not valid %q", k.Got, k.Want))}}
	case *kind.MinLength:
		return []fieldError{{Name: name, Text: node.NewText(4000003, map[string]any{"min_length": k.Want, "actual_length": k.Got}, k.Want, k.Got)}}
	case *kind.MaxLength:
		return []fieldError{{Name: name, Text: node.NewText(4000017, map[string]any{"max_length": k.Want, "actual_length": k.Got}, k.Want, k.Got)}}
	case *kind.Pattern:
		return []fieldError{{Name: name, Text: node.NewText(4000004, map[string]any{"pattern": k.Want}, k.Want)}}
	case *kind.Type:
		want := strings.Join(k.Want, ",")
		return []fieldError{{Name: name, Text: node.NewText(4000026, map[string]any{"allowed_types": k.Want, "actual_type": k.Got}, want, k.Got)}}
	case *kind.Minimum:
		return []fieldError{{Name: name, Text: node.NewText(4000018, map[string]any{"minimum": ratF(k.Want), "actual": ratF(k.Got)}, ratF(k.Want), ratF(k.Got))}}
	case *kind.Maximum:
		return []fieldError{{Name: name, Text: node.NewText(4000020, map[string]any{"maximum": ratF(k.Want), "actual": ratF(k.Got)}, ratF(k.Want), ratF(k.Got))}}
	case *kind.AdditionalProperties:
		var out []fieldError
		for _, p := range k.Properties {
			reason := fmt.Sprintf("additionalProperties %q not allowed", p)
			out = append(out, fieldError{Name: name, Text: node.TextReason(4000001, reason)})
		}
		return out
	}
	reason := fmt.Sprint(e.ErrorKind)
	if lk, ok := e.ErrorKind.(interface{ KeywordPath() []string }); ok {
		reason = fmt.Sprintf("%s validation failed", strings.Join(lk.KeywordPath(), "/"))
	}
	return []fieldError{{Name: name, Text: node.TextReason(4000001, reason)}}
}

func ratF(r *big.Rat) float64 {
	if r == nil {
		return 0
	}
	f, _ := r.Float64()
	return f
}

// --- ordered JSON decoding (property order drives node order) ---

type omap struct {
	keys []string
	vals map[string]any
}

func (m *omap) get(k string) any {
	if m == nil {
		return nil
	}
	return m.vals[k]
}

func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := &omap{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := m.vals[k]; !dup {
					m.keys = append(m.keys, k)
				}
				m.vals[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			var list []any
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		}
	}
	return tok, nil
}

// fillObjects adds an empty object for every nested object trait the
// schema declares and traits lacks ("name": {}), as Kratos stores them.
func (s *identitySchema) fillObjects(traits map[string]any) {
	for _, path := range s.Objects {
		m := traits
		for _, p := range strings.Split(path, ".") {
			next, ok := m[p].(map[string]any)
			if !ok {
				if _, exists := m[p]; exists {
					break // a non-object value: leave it to validation
				}
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
	}
}
