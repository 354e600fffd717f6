package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// JSON Patch (RFC 6902) over JSON values decoded with UseNumber
// (map[string]any, []any, json.Number, string, bool, nil), for
// patchIdentity. All six operations are supported; a failing operation
// aborts the whole patch.

type patchOp struct {
	Op    string          `json:"op"`
	Path  *string         `json:"path"`
	From  *string         `json:"from"`
	Value json.RawMessage `json:"value"`
}

// decodeJSONValue decodes b keeping numbers exact.
func decodeJSONValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

// applyJSONPatch applies the RFC 6902 document patch to doc and returns the
// result. doc itself may be modified.
func applyJSONPatch(doc any, patch []byte) (any, error) {
	var ops []patchOp
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ops); err != nil {
		return nil, fmt.Errorf("the body is not a JSON Patch document (an array of operations): %v", err)
	}
	for i, op := range ops {
		var err error
		doc, err = applyPatchOp(doc, op)
		if err != nil {
			return nil, fmt.Errorf("operation %d (%s): %w", i, op.Op, err)
		}
	}
	return doc, nil
}

func applyPatchOp(doc any, op patchOp) (any, error) {
	if op.Path == nil {
		return nil, fmt.Errorf("missing path")
	}
	path, err := parsePointer(*op.Path)
	if err != nil {
		return nil, err
	}
	value := func() (any, error) {
		if op.Value == nil {
			return nil, fmt.Errorf("missing value")
		}
		return decodeJSONValue(op.Value)
	}
	from := func() ([]string, error) {
		if op.From == nil {
			return nil, fmt.Errorf("missing from")
		}
		return parsePointer(*op.From)
	}
	switch op.Op {
	case "add":
		v, err := value()
		if err != nil {
			return nil, err
		}
		return pointerAdd(doc, path, v)
	case "remove":
		doc, _, err := pointerRemove(doc, path)
		return doc, err
	case "replace":
		v, err := value()
		if err != nil {
			return nil, err
		}
		// The value must exist; in place, replacing is removing and adding.
		if _, err := pointerGet(doc, path); err != nil {
			return nil, err
		}
		return pointerSet(doc, path, v, false)
	case "move":
		src, err := from()
		if err != nil {
			return nil, err
		}
		if len(path) > len(src) && pointerEqual(src, path[:len(src)]) {
			return nil, fmt.Errorf("cannot move a value into itself")
		}
		doc, v, err := pointerRemove(doc, src)
		if err != nil {
			return nil, err
		}
		return pointerAdd(doc, path, v)
	case "copy":
		src, err := from()
		if err != nil {
			return nil, err
		}
		v, err := pointerGet(doc, src)
		if err != nil {
			return nil, err
		}
		return pointerAdd(doc, path, deepCopyJSON(v))
	case "test":
		v, err := value()
		if err != nil {
			return nil, err
		}
		got, err := pointerGet(doc, path)
		if err != nil {
			return nil, err
		}
		if !patchValuesEqual(got, v) {
			return nil, fmt.Errorf("test failed: the value at %q differs", *op.Path)
		}
		return doc, nil
	}
	return nil, fmt.Errorf("unknown operation %q", op.Op)
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("path %q must start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

func pointerGet(doc any, path []string) (any, error) {
	cur := doc
	for _, tok := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("path member %q does not exist", tok)
			}
			cur = v
		case []any:
			i, err := arrayIndex(tok, len(c), false)
			if err != nil {
				return nil, err
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("path member %q does not exist", tok)
		}
	}
	return cur, nil
}

// pointerAdd returns doc with v added at path (RFC 6902 "add").
func pointerAdd(doc any, path []string, v any) (any, error) { return pointerSet(doc, path, v, true) }

// pointerSet returns doc with v at path: an object member is set; an array
// element is inserted before the index (appended for "-") when insert,
// else the element at the index (which exists) is overwritten.
func pointerSet(doc any, path []string, v any, insert bool) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := pointerGet(doc, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		c[last] = v
		return doc, nil
	case []any:
		if !insert {
			i, err := arrayIndex(last, len(c), false)
			if err != nil {
				return nil, err
			}
			c[i] = v
			return doc, nil
		}
		i := len(c)
		if last != "-" {
			if i, err = arrayIndex(last, len(c), true); err != nil {
				return nil, err
			}
		}
		// The longer array replaces the old one in its parent.
		return pointerSet(doc, path[:len(path)-1], append(c[:i:i], append([]any{v}, c[i:]...)...), false)
	}
	return nil, fmt.Errorf("cannot add %q to a value that is neither an object nor an array", last)
}

// pointerRemove returns doc without the value at path, and that value.
func pointerRemove(doc any, path []string) (any, any, error) {
	if len(path) == 0 {
		return nil, doc, nil
	}
	parent, err := pointerGet(doc, path[:len(path)-1])
	if err != nil {
		return nil, nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		v, ok := c[last]
		if !ok {
			return nil, nil, fmt.Errorf("path member %q does not exist", last)
		}
		delete(c, last)
		return doc, v, nil
	case []any:
		i, err := arrayIndex(last, len(c), false)
		if err != nil {
			return nil, nil, err
		}
		v := c[i]
		n := append(c[:i:i], c[i+1:]...)
		doc, err = pointerSet(doc, path[:len(path)-1], n, false)
		return doc, v, err
	}
	return nil, nil, fmt.Errorf("path member %q does not exist", last)
}

func arrayIndex(tok string, n int, forAdd bool) (int, error) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') || strings.TrimLeft(tok, "0123456789") != "" {
		return 0, fmt.Errorf("array index %q is not a number", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("array index %q is not a number", tok)
	}
	if i > n || (!forAdd && i == n) {
		return 0, fmt.Errorf("array index %d out of range", i)
	}
	return i, nil
}

func pointerEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func deepCopyJSON(v any) any {
	switch c := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(c))
		for k, x := range c {
			m[k] = deepCopyJSON(x)
		}
		return m
	case []any:
		s := make([]any, len(c))
		for i, x := range c {
			s[i] = deepCopyJSON(x)
		}
		return s
	}
	return v
}

// patchValuesEqual compares JSON values; numbers compare by value (1 == 1.0).
func patchValuesEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !patchValuesEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !patchValuesEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, okx := new(big.Rat).SetString(string(x))
		ry, oky := new(big.Rat).SetString(string(y))
		return okx && oky && rx.Cmp(ry) == 0
	}
	return a == b
}
