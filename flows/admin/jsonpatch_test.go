package admin

import (
	"encoding/json"
	"testing"
)

func TestAdminJSONPatch(t *testing.T) {
	doc := `{"a":{"b":[1,2,3],"c~d":"x","e/f":"y"},"n":1.0}`
	cases := []struct {
		patch, want string
		fail        bool
	}{
		{`[{"op":"add","path":"/a/b/1","value":9}]`, `{"a":{"b":[1,9,2,3],"c~d":"x","e/f":"y"},"n":1.0}`, false},
		{`[{"op":"add","path":"/a/b/-","value":4}]`, `{"a":{"b":[1,2,3,4],"c~d":"x","e/f":"y"},"n":1.0}`, false},
		{`[{"op":"remove","path":"/a/b/0"}]`, `{"a":{"b":[2,3],"c~d":"x","e/f":"y"},"n":1.0}`, false},
		{`[{"op":"replace","path":"/a/c~0d","value":"z"}]`, `{"a":{"b":[1,2,3],"c~d":"z","e/f":"y"},"n":1.0}`, false},
		{`[{"op":"replace","path":"/a/b/1","value":9}]`, `{"a":{"b":[1,9,3],"c~d":"x","e/f":"y"},"n":1.0}`, false},
		{`[{"op":"replace","path":"","value":{"z":1}}]`, `{"z":1}`, false},
		{`[{"op":"replace","path":"/a/b/3","value":9}]`, "", true},
		{`[{"op":"replace","path":"/a/b/-","value":9}]`, "", true},
		{`[{"op":"move","from":"/a/e~1f","path":"/g"}]`, `{"a":{"b":[1,2,3],"c~d":"x"},"g":"y","n":1.0}`, false},
		{`[{"op":"copy","from":"/a/b","path":"/h"}]`, `{"a":{"b":[1,2,3],"c~d":"x","e/f":"y"},"h":[1,2,3],"n":1.0}`, false},
		{`[{"op":"test","path":"/n","value":1},{"op":"remove","path":"/n"}]`, `{"a":{"b":[1,2,3],"c~d":"x","e/f":"y"}}`, false},
		{`[{"op":"test","path":"/n","value":2}]`, "", true},
		{`[{"op":"replace","path":"/missing","value":2}]`, "", true},
		{`[{"op":"remove","path":"/a/b/3"}]`, "", true},
		{`[{"op":"move","from":"/a","path":"/a/x"}]`, "", true},
		{`[{"op":"frobnicate","path":"/a"}]`, "", true},
		{`[{"op":"add","path":"a","value":1}]`, "", true},
		{`{"op":"add"}`, "", true},
	}
	for _, c := range cases {
		d, _ := decodeJSONValue([]byte(doc))
		got, err := applyJSONPatch(d, []byte(c.patch))
		if c.fail {
			if err == nil {
				t.Errorf("%s: want an error", c.patch)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.patch, err)
			continue
		}
		want, _ := decodeJSONValue([]byte(c.want))
		if !patchValuesEqual(got, want) {
			gotJSON, _ := json.Marshal(got)
			t.Errorf("%s: got %s, want %s", c.patch, gotJSON, c.want)
		}
	}
}
