package identity

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

func FuzzTraitValidation(f *testing.F) {
	s, err := loadIdentitySchema("default", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"email":"a@example.com","name":{"first":"A","last":"B"}}`))
	f.Add([]byte(`{"email":"not-an-email"}`))
	f.Add([]byte(`{"email":5,"extra":true}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"name":{"first":[1,2,3]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(append([]byte(`{"traits":`), append(raw, '}')...)))
		r.Header.Set("Content-Type", "application/json")
		body, err := wire.DecodeBody(r)
		if err != nil {
			return
		}
		traits, ok := body["traits"].(map[string]any)
		if !ok {
			return
		}
		errs := s.Validate(traits)
		for _, fe := range errs {
			if fe.Text.ID == 0 || fe.Text.Text == "" {
				t.Fatalf("validation error without id or text: %+v", fe)
			}
		}
		if len(errs) == 0 {
			if v, _ := traits["email"].(string); !validEmailLoose(v) {
				t.Fatalf("accepted traits with email %q", v)
			}
		}
	})
}

// validEmailLoose is the property the schema's email format guarantees.
func validEmailLoose(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1
}
