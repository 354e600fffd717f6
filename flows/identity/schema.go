package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.uber.org/zap"
)

// DefaultSchema is used when no identity_schema is configured:
// Kratos's quickstart email + password schema with an optional name.
const DefaultSchema = `{
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

// Trait is one leaf trait of the identity schema, in schema order.
type Trait struct {
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

// Schema is a compiled identity schema.
type Schema struct {
	ID  string
	Raw []byte
	// Selectable: registration flows may choose it by id
	// (selfservice_selectable).
	Selectable bool
	Fields     []Trait
	// Objects are the dotted paths of nested object traits ("name").
	Objects []string
	sch     *jsonschema.Schema
}

// Schemas is every configured identity schema by id, in configuration
// order, and the default one.
type Schemas struct {
	byID    map[string]*Schema
	ordered []*Schema
	def     *Schema
	logger  *zap.Logger
	// warned: schema ids of stored identities that are no longer
	// configured, warned about once.
	warned sync.Map
}

// LoadSchemas compiles the schemas of list (identity.schemas, in
// order) and picks the default one: defaultID (identity.default_schema_id),
// else preferredID when that schema exists, else the only schema. Every
// entry needs its schema's JSON (use defaultIdentitySchema for the built-in
// one).
func LoadSchemas(list []SchemaConfig, defaultID, preferredID string, logger *zap.Logger) (*Schemas, error) {
	set := &Schemas{byID: make(map[string]*Schema, len(list)), logger: logger}
	ids := make([]string, 0, len(list))
	for _, c := range list {
		if err := CheckSchemaID(c.ID); err != nil {
			return nil, err
		}
		if set.byID[c.ID] != nil {
			return nil, fmt.Errorf("identity schema %q is configured twice", c.ID)
		}
		if len(c.Raw) == 0 {
			return nil, fmt.Errorf("identity schema %q is empty", c.ID)
		}
		sch, err := loadIdentitySchema(c.ID, c.Raw)
		if err != nil {
			return nil, fmt.Errorf("identity schema %q: %w", c.ID, err)
		}
		sch.Selectable = c.SelfserviceSelectable
		set.byID[c.ID] = sch
		set.ordered = append(set.ordered, sch)
		ids = append(ids, c.ID)
	}
	def := defaultID
	switch {
	case def != "":
	case set.byID[preferredID] != nil:
		def = preferredID
	case len(list) == 1:
		def = list[0].ID
	default:
		return nil, fmt.Errorf("no default identity schema: name one of %s as the default (default_identity_schema)", strings.Join(ids, ", "))
	}
	if set.def = set.byID[def]; set.def == nil {
		return nil, fmt.Errorf("default identity schema %q is not configured (configured: %s)", def, strings.Join(ids, ", "))
	}
	return set, nil
}

// Default is the schema of new identities when none is named.
func (s *Schemas) Default() *Schema { return s.def }

// List is every schema in configuration order.
func (s *Schemas) List() []*Schema { return s.ordered }

// Named is the configured schema with exactly that id, or nil.
func (s *Schemas) Named(id string) *Schema { return s.byID[id] }

// CheckSchemaID accepts an identity schema id: 1 to 128 printable
// characters without spaces (the id appears in URLs and in the Caddyfile).
func CheckSchemaID(id string) error {
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

// For is the schema with id; "" is the default schema. An identity
// keeps the schema id it was created with: when that schema is no longer
// configured, the default schema stands in (and the operator is warned),
// so its owner can still use settings.
func (s *Schemas) For(id string) *Schema {
	if id == "" {
		return s.def
	}
	if sch := s.byID[id]; sch != nil {
		return sch
	}
	if _, warned := s.warned.LoadOrStore(id, true); !warned {
		s.logger.Warn("identity schema is not configured; using the default schema for its identities",
			zap.String("schema_id", id), zap.String("default_schema_id", s.def.ID))
	}
	return s.def
}

// Of is the schema of an identity's traits.
func (s *Schemas) Of(ident *sessionstore.Identity) *Schema {
	return s.For(ident.SchemaID)
}

// Lookup finds a configured schema by its id or by the base64url of
// its id (the last segment of schema_url).
func (s *Schemas) Lookup(id string) *Schema {
	if sch := s.byID[id]; sch != nil {
		return sch
	}
	if b, err := base64.RawURLEncoding.DecodeString(id); err == nil {
		return s.byID[string(b)]
	}
	return nil
}

// SelfService resolves ?identity_schema= of a new registration flow:
// empty is the default schema; a named schema must be configured and
// marked selfservice_selectable (naming the default is always fine).
// Anything else is refused, so no one signs up under a schema meant for
// identities the operator creates (staff, say).
func (s *Schemas) SelfService(id string) (*Schema, *wire.Error) {
	if id == "" {
		return s.def, nil
	}
	if sch := s.byID[id]; sch != nil && (sch.Selectable || sch == s.def) {
		return sch, nil
	}
	return nil, wire.BadRequest(fmt.Sprintf("Identity schema %q does not exist or cannot be selected in self-service flows.", id))
}

// Identifiers returns the normalised values of traits marked as
// identifiers of credType.
func (s *Schema) Identifiers(traits map[string]any, credType string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if !f.Identifier[credType] {
			continue
		}
		str, ok := nonEmptyString(traits, f.Path)
		if !ok {
			continue
		}
		str = NormalizeIdentifier(str)
		if !seen[str] {
			seen[str] = true
			out = append(out, str)
		}
	}
	return out
}

// Addresses derives verifiable and recovery addresses from traits marked
// with ory.sh/kratos verification.via / recovery.via.
func (s *Schema) Addresses(traits map[string]any, now time.Time) ([]sessionstore.VerifiableAddress, []sessionstore.RecoveryAddress) {
	ver := []sessionstore.VerifiableAddress{}
	rec := []sessionstore.RecoveryAddress{}
	for _, f := range s.Fields {
		str, ok := nonEmptyString(traits, f.Path)
		if !ok {
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

func loadIdentitySchema(id string, raw []byte) (*Schema, error) {
	if len(raw) == 0 {
		raw = []byte(DefaultSchema)
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
	s := &Schema{ID: id, Raw: raw, sch: sch}
	s.walk(traits, "", true)
	return s, nil
}

func (s *Schema) walk(obj *omap, prefix string, required bool) {
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
		f := Trait{Path: path, JSONType: typ, Required: required && req[k], ParentRequired: req[k], Identifier: map[string]bool{}}
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

// IdentifierLabel is the label of the login identifier node: the title of
// the single password identifier trait (1070002), else 1070004 "ID".
func (s *Schema) IdentifierLabel(credType string) *node.Text {
	var found *Trait
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

// TraitNodes builds the input nodes for every trait in group, with values
// from traits (nil: none), as ui-nodes.md describes.
func (s *Schema) TraitNodes(group string, traits map[string]any, hidden bool) []*node.Node {
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
		if v, ok := LookupPath(traits, f.Path); ok {
			a.Value = v
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// LookupPath reads a dotted path from nested maps.
func LookupPath(m map[string]any, path string) (any, bool) {
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

// FieldError is a validation message for a trait node ("traits.email") or
// the flow ("" name).
type FieldError struct {
	Name string
	Text node.Text
}

// Validate checks traits against the schema and returns Kratos's messages
// per node. traits must be JSON-decoded with UseNumber.
func (s *Schema) Validate(traits any) []FieldError {
	raw, err := json.Marshal(map[string]any{"traits": traits})
	if err != nil {
		return []FieldError{{Text: node.TextReason(4000001, "traits are not valid JSON")}}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []FieldError{{Text: node.TextReason(4000001, "traits are not valid JSON")}}
	}
	err = s.sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldError{{Text: node.TextReason(4000001, err.Error())}}
	}
	var out []FieldError
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

func mapValidationError(e *jsonschema.ValidationError, inst any) []FieldError {
	name := strings.Join(e.InstanceLocation, ".")
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []FieldError
		for _, m := range k.Missing {
			n := m
			if name != "" {
				n = name + "." + m
			}
			out = append(out, FieldError{Name: n, Text: node.NewText(4000002, map[string]any{"property": m}, m)})
		}
		return out
	case *kind.Format:
		if k.Want == "email" {
			return []FieldError{{Name: name, Text: node.NewText(4000040, map[string]any{"value": k.Got})}}
		}
		return []FieldError{{Name: name, Text: node.NewText(4000001, map[string]any{"reason": fmt.Sprintf("%v is not valid %q", k.Got, k.Want)}, fmt.Sprintf("%v is not valid %q", k.Got, k.Want))}}
	case *kind.MinLength:
		return []FieldError{{Name: name, Text: node.NewText(4000003, map[string]any{"min_length": k.Want, "actual_length": k.Got}, k.Want, k.Got)}}
	case *kind.MaxLength:
		return []FieldError{{Name: name, Text: node.NewText(4000017, map[string]any{"max_length": k.Want, "actual_length": k.Got}, k.Want, k.Got)}}
	case *kind.Pattern:
		return []FieldError{{Name: name, Text: node.NewText(4000004, map[string]any{"pattern": k.Want}, k.Want)}}
	case *kind.Type:
		want := strings.Join(k.Want, ",")
		return []FieldError{{Name: name, Text: node.NewText(4000026, map[string]any{"allowed_types": k.Want, "actual_type": k.Got}, want, k.Got)}}
	case *kind.Minimum:
		return []FieldError{{Name: name, Text: node.NewText(4000018, map[string]any{"minimum": ratF(k.Want), "actual": ratF(k.Got)}, ratF(k.Want), ratF(k.Got))}}
	case *kind.Maximum:
		return []FieldError{{Name: name, Text: node.NewText(4000020, map[string]any{"maximum": ratF(k.Want), "actual": ratF(k.Got)}, ratF(k.Want), ratF(k.Got))}}
	case *kind.AdditionalProperties:
		var out []FieldError
		for _, p := range k.Properties {
			reason := fmt.Sprintf("additionalProperties %q not allowed", p)
			out = append(out, FieldError{Name: name, Text: node.TextReason(4000001, reason)})
		}
		return out
	}
	reason := fmt.Sprint(e.ErrorKind)
	if lk, ok := e.ErrorKind.(interface{ KeywordPath() []string }); ok {
		reason = fmt.Sprintf("%s validation failed", strings.Join(lk.KeywordPath(), "/"))
	}
	return []FieldError{{Name: name, Text: node.TextReason(4000001, reason)}}
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

// FillObjects adds an empty object for every nested object trait the
// schema declares and traits lacks ("name": {}), as Kratos stores them.
func (s *Schema) FillObjects(traits map[string]any) {
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

// AnyIdentifierLabel is the identifier label of the first credential type
// whose identifier trait has a title (the schema names the identifier
// once, whatever credential marks it), else 1070004 "ID".
func (s *Schema) AnyIdentifierLabel() *node.Text {
	for _, typ := range []string{"password", "webauthn", "code", "passkey"} {
		if l := s.IdentifierLabel(typ); l.ID != 1070004 {
			return l
		}
	}
	return node.Label(1070004, nil)
}

// SchemaConfig is one entry of identity.schemas.
type SchemaConfig struct {
	// ID names the schema (schema_id of identities, ?identity_schema=).
	ID string
	// Raw is the schema's JSON.
	Raw []byte
	// SelfserviceSelectable lets registration flows choose the schema with
	// ?identity_schema=<id> (selfservice_selectable). The default schema
	// needs no flag.
	SelfserviceSelectable bool
}

// ApplyFieldErrors puts validation messages on their trait nodes, or on
// the form when they name no field.
func ApplyFieldErrors(c *node.Container, errs []FieldError) {
	for _, fe := range errs {
		if fe.Name == "" {
			c.Messages = append(c.Messages, fe.Text)
			continue
		}
		c.AddNodeMessage(fe.Name, fe.Text)
	}
}

// nonEmptyString is the string at path in traits, if it is one and not
// blank.
func nonEmptyString(traits map[string]any, path string) (string, bool) {
	v, ok := LookupPath(traits, path)
	if !ok {
		return "", false
	}
	str, ok := v.(string)
	if !ok || strings.TrimSpace(str) == "" {
		return "", false
	}
	return str, true
}
