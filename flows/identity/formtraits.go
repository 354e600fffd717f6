package identity

import (
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// FormTraits types the traits of a form post (url-encoded or multipart)
// by the identity schema, as Kratos's form decoder does (ory/x decoderx
// with the identity schema, conversion errors kept as the raw string):
//
//   - string: the first value; an empty one is dropped (a required trait
//     then answers "missing").
//   - number, integer: the first value parsed as a number; empty: dropped,
//     or 0 when the parent requires the field; not a number: the string
//     (validation answers the type).
//   - boolean: the last value (a hidden "false" before a checked box)
//     parsed as Go's ParseBool does; empty: dropped, or false when
//     required; otherwise the string.
//   - array: every value, items typed as above but never dropped.
//
// Names that are no trait of the schema are dropped, as Kratos's decoder
// knows only the schema's paths. A trait without a type counts as a
// string. has reports whether the form carried any traits.* name at all
// (a form without one leaves the flow's stored traits in place).
func (s *Schema) FormTraits(vals url.Values) (traits map[string]any, has bool) {
	traits = map[string]any{}
	for k, vs := range vals {
		path, ok := strings.CutPrefix(k, "traits.")
		if !ok {
			continue
		}
		has = true
		f := s.Field(path)
		if f == nil || len(vs) == 0 {
			continue
		}
		if v, keep := f.formValue(vs); keep {
			setPath(traits, path, v)
		}
	}
	return traits, has
}

// Field returns the leaf trait at the dotted path, or nil.
func (s *Schema) Field(path string) *Trait {
	for i := range s.Fields {
		if s.Fields[i].Path == path {
			return &s.Fields[i]
		}
	}
	return nil
}

// formValue converts the form values of f; keep is false when the field
// is left out.
func (f *Trait) formValue(vs []string) (v any, keep bool) {
	switch f.JSONType {
	case "null":
		return nil, false
	case "number", "integer":
		s := vs[0]
		if s == "" {
			if !f.ParentRequired {
				return nil, false
			}
			s = "0"
		}
		return formNumber(s), true
	case "boolean":
		s := vs[len(vs)-1]
		if s == "" {
			if !f.ParentRequired {
				return nil, false
			}
			s = "false"
		}
		return formBool(s), true
	case "array":
		out := make([]any, len(vs))
		for i, s := range vs {
			switch f.ItemType {
			case "number", "integer":
				out[i] = formNumber(s)
			case "boolean":
				out[i] = formBool(s)
			default:
				out[i] = s
			}
		}
		return out, true
	}
	if vs[0] == "" {
		return nil, false
	}
	return vs[0], true
}

// formNumber parses s as a finite number, else keeps the string.
func formNumber(s string) any {
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
		return s
	}
	return json.Number(strconv.FormatFloat(n, 'g', -1, 64))
}

// formBool parses s as Go's strconv.ParseBool does, else keeps the string.
func formBool(s string) any {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return s
	}
	return b
}

// setPath sets a dotted path in nested maps, creating the objects on the
// way (a non-object in the way is replaced: the schema says it is one).
func setPath(m map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}
