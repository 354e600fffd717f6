package identity

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

const formTraitsSchema = `{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "traits": {
      "type": "object",
      "properties": {
        "email": {"type": "string", "format": "email",
          "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
        "nickname": {"type": "string"},
        "consent": {"type": "boolean"},
        "tos": {"type": "boolean"},
        "age": {"type": "integer"},
        "ratio": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "array", "items": {"type": "number"}},
        "name": {"type": "object", "properties": {
          "first": {"type": "string"},
          "adult": {"type": "boolean"}
        }, "required": ["adult"]}
      },
      "required": ["email", "tos", "age"]
    }
  }
}`

// Form values are typed as Kratos's form decoder types them.
func TestFormTraits(t *testing.T) {
	s, err := loadIdentitySchema("default", []byte(formTraitsSchema))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		form string
		want string // JSON of the traits; "" means no traits at all
	}{
		{"no traits", "method=password&password=x", ""},
		{"empty optional values are dropped", "traits.email=a%40b.c&traits.consent=&traits.nickname=&traits.ratio=", `{"email":"a@b.c"}`},
		{"empty required values are zero", "traits.tos=&traits.age=", `{"tos":false,"age":0}`},
		{"values are typed", "traits.consent=true&traits.age=42&traits.ratio=0.5&traits.nickname=x",
			`{"consent":true,"age":42,"ratio":0.5,"nickname":"x"}`},
		{"the last boolean wins, the first string and number", "traits.consent=false&traits.consent=true&traits.nickname=a&traits.nickname=b&traits.age=1&traits.age=2",
			`{"consent":true,"nickname":"a","age":1}`},
		{"what does not parse stays a string", "traits.consent=on&traits.age=abc&traits.ratio=Inf",
			`{"consent":"on","age":"abc","ratio":"Inf"}`},
		{"arrays keep every value", "traits.tags=a&traits.tags=&traits.scores=1&traits.scores=x",
			`{"tags":["a",""],"scores":[1,"x"]}`},
		{"nested fields; required in their parent", "traits.name.first=Ann&traits.name.adult=", `{"name":{"first":"Ann","adult":false}}`},
		{"unknown names are dropped", "traits.admin=true&traits.name=x&traits.tags[]=a", `{}`},
	} {
		vals, err := url.ParseQuery(tc.form)
		if err != nil {
			t.Fatal(err)
		}
		got, has := s.FormTraits(vals)
		if tc.want == "" {
			if has {
				t.Errorf("%s: has traits %v, want none", tc.name, got)
			}
			continue
		}
		var want map[string]any
		d := json.NewDecoder(strings.NewReader(tc.want))
		d.UseNumber()
		if err := d.Decode(&want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !has || string(gb) != string(wb) {
			t.Errorf("%s: traits %s (has %v), want %s", tc.name, gb, has, wb)
		}
	}
}
