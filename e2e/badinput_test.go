package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// assertKratosShaped4xx fails unless the answer is a 4xx JSON body shaped
// like Kratos: an errorGeneric ({"error":{code,message,…}}) or a flow whose
// ui carries at least one message.
func assertKratosShaped4xx(t *testing.T, what string, r *http.Response, body []byte) {
	t.Helper()
	if r.StatusCode >= 500 {
		t.Errorf("%s: server error %d; body %s", what, r.StatusCode, clip(body))
		return
	}
	if r.StatusCode < 400 {
		t.Errorf("%s: status %d, want 4xx; body %s", what, r.StatusCode, clip(body))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json; body %s", what, ct, clip(body))
		return
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		t.Errorf("%s: body is not a JSON object: %s", what, clip(body))
		return
	}
	if _, ok := probe["error"]; ok {
		var e errorJSON
		if err := json.Unmarshal(body, &e); err != nil || e.Error == nil || e.Error.Code != r.StatusCode || e.Error.Message == "" {
			t.Errorf("%s: malformed errorGeneric (code must equal status %d, message set): %s", what, r.StatusCode, clip(body))
		}
		return
	}
	if _, ok := probe["ui"]; ok {
		var f flowJSON
		if err := json.Unmarshal(body, &f); err != nil || f.UI == nil {
			t.Errorf("%s: malformed flow: %s", what, clip(body))
			return
		}
		n := len(f.UI.Messages)
		for _, nd := range f.UI.Nodes {
			n += len(nd.Messages)
		}
		if n == 0 {
			t.Errorf("%s: %d flow answer without any message: %s", what, r.StatusCode, clip(body))
		}
		return
	}
	t.Errorf("%s: neither an error nor a flow: %s", what, clip(body))
}

func wantFlowMessage(t *testing.T, what string, r *http.Response, body []byte, status int, id int64) {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.StatusCode, status, clip(body))
		return
	}
	var f flowJSON
	if err := json.Unmarshal(body, &f); err != nil || f.UI == nil {
		t.Errorf("%s: want a flow with message %d, got %s", what, id, clip(body))
		return
	}
	if !containsID(f.messageIDs(), id) {
		t.Errorf("%s: ui.messages = %v, want %d", what, f.messageIDs(), id)
	}
}

func bigBody(n int) []byte { return bytes.Repeat([]byte("a"), n) }

// TestBadInputSubmitEndpoints throws malformed requests at every submit
// endpoint of the scope: login, registration (native and browser) and native
// logout. Each must answer a Kratos-shaped 4xx, never 5xx.
func TestBadInputSubmitEndpoints(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	const mb = 1 << 20
	noStrategy := map[string]int64{"login": 4010002, "registration": 4010003}

	validBody := func(kind string) string {
		if kind == "login" {
			return `{"method":"password","identifier":"` + u.Email + `","password":"` + u.Password + `"}`
		}
		return `{"method":"password","password":"` + randPassword() + `","traits":{"email":"` + randEmail() + `"}}`
	}
	hugePassword := func(kind string) []byte {
		pw := strings.Repeat("p", mb)
		if kind == "login" {
			return []byte(`{"method":"password","identifier":"` + u.Email + `","password":"` + pw + `"}`)
		}
		return []byte(`{"method":"password","password":"` + pw + `","traits":{"email":"` + randEmail() + `"}}`)
	}

	for _, kind := range []string{"login", "registration"} {
		t.Run(kind+"/native", func(t *testing.T) {
			newFlow := func() string {
				r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/"+kind+"/api", hdr{"Accept": "application/json"}, nil)
				wantStatus(t, r, body, http.StatusOK)
				return decodeFlow(t, body).ID
			}
			post := func(flowQuery, ct string, body []byte) (*http.Response, []byte) {
				h := hdr{"Accept": "application/json"}
				if ct != "" {
					h["Content-Type"] = ct
				}
				return do(t, plainHTTP(), "POST", in.apiBase+"/self-service/"+kind+flowQuery, h, body)
			}
			const js = "application/json"

			// Exact answers from the captured Kratos (observed.md, samples 82-84).
			for name, tc := range map[string]struct {
				ct   string
				body []byte
				id   int64
			}{
				"malformed JSON":            {js, []byte(`{"method": "password", "identifier": `), 4000001},
				"JSON array":                {js, []byte(`[]`), 4000001},
				"JSON string":               {js, []byte(`"password"`), 4000001},
				"text/plain":                {"text/plain", []byte("method=password&identifier=a&password=b"), 4000001},
				"form body labelled JSON":   {js, []byte("method=password&identifier=a%40b.c&password=b"), 4000001},
				"unknown method":            {js, []byte(`{"method":"foo"}`), noStrategy[kind]},
				"missing method":            {js, []byte(`{"identifier":"a@b.c","password":"x"}`), noStrategy[kind]},
				"1 MB of garbage as JSON":   {js, bigBody(mb), 4000001},
				"method of the wrong type":  {js, []byte(`{"method":42}`), noStrategy[kind]},
				"null body":                 {js, []byte(`null`), 4000001},
				"empty body with JSON type": {js, []byte{}, 4000001},
			} {
				r, body := post("?flow="+newFlow(), tc.ct, tc.body)
				if r.StatusCode >= 500 {
					t.Errorf("%s: server error %d: %s", name, r.StatusCode, clip(body))
					continue
				}
				switch name {
				case "method of the wrong type", "null body", "empty body with JSON type", "1 MB of garbage as JSON":
					// Not captured from Kratos: any Kratos-shaped 4xx.
					assertKratosShaped4xx(t, name, r, body)
				default:
					wantFlowMessage(t, name, r, body, http.StatusBadRequest, tc.id)
				}
			}

			// Shapes only.
			for name, tc := range map[string]struct {
				ct   string
				body []byte
			}{
				"JSON body labelled as a form":  {"application/x-www-form-urlencoded", []byte(validBody(kind))},
				"multipart without boundary":    {"multipart/form-data", []byte(validBody(kind))},
				"1 MB password":                 {js, hugePassword(kind)},
				"1 MB form":                     {"application/x-www-form-urlencoded", append([]byte("method=password&password="), bigBody(mb)...)},
				"no Content-Type":               {"", []byte(validBody(kind))},
				"deeply nested JSON":            {js, []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000))},
				"traits of the wrong type":      {js, []byte(`{"method":"password","password":"x","traits":"nope","identifier":7}`)},
				"invalid UTF-8 in JSON strings": {js, []byte("{\"method\":\"password\",\"identifier\":\"\xff\xfe\",\"password\":\"\xc3\x28\",\"traits\":{\"email\":\"\xff@x.y\"}}")},
			} {
				r, body := post("?flow="+newFlow(), tc.ct, tc.body)
				assertKratosShaped4xx(t, name, r, body)
			}

			// Flow id problems.
			r, body := post("?flow=00000000-0000-4000-8000-000000000000", js, []byte(validBody(kind)))
			wantStatus(t, r, body, http.StatusNotFound)
			decodeError(t, 404, body)
			wantErrorHeaders(t, r, "")
			for name, q := range map[string]string{"non-UUID flow": "?flow=not-a-uuid", "missing flow": "", "empty flow": "?flow="} {
				r, body := post(q, js, []byte(validBody(kind)))
				if r.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400; body %s", name, r.StatusCode, clip(body))
					continue
				}
				decodeError(t, 400, body)
			}
			for name, id := range map[string]string{"non-UUID": "not-a-uuid", "unknown": "00000000-0000-4000-8000-000000000000"} {
				r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/"+kind+"/flows?id="+id, hdr{"Accept": "application/json"}, nil)
				if r.StatusCode != http.StatusNotFound {
					t.Errorf("get %s flow: status %d, want 404; body %s", name, r.StatusCode, clip(body))
					continue
				}
				decodeError(t, 404, body)
			}
		})

		t.Run(kind+"/browser", func(t *testing.T) {
			b := newBrowser(t, in)
			newFlow := func() (string, string) {
				r, body := do(t, b.hc, "GET", in.apiBase+"/self-service/"+kind+"/browser", hdr{"Accept": "application/json"}, nil)
				wantStatus(t, r, body, http.StatusOK)
				f := decodeFlow(t, body)
				v, _ := f.node("csrf_token").Attributes["value"].(string)
				return f.ID, v
			}
			for name, tc := range map[string]struct {
				ct   string
				body func(csrf string) []byte
			}{
				"malformed JSON":           {"application/json", func(string) []byte { return []byte(`{"method": "password", "csrf_token": `) }},
				"text/plain":               {"text/plain", func(c string) []byte { return []byte("method=password&csrf_token=" + c) }},
				"form body as JSON":        {"application/json", func(c string) []byte { return []byte("method=password&csrf_token=" + c) }},
				"JSON body as form":        {"application/x-www-form-urlencoded", func(c string) []byte { return []byte(`{"method":"password","csrf_token":"` + c + `"}`) }},
				"1 MB body":                {"application/json", func(string) []byte { return bigBody(mb) }},
				"missing CSRF token":       {"application/json", func(string) []byte { return []byte(validBody(kind)) }},
				"unknown method with CSRF": {"application/json", func(c string) []byte { return []byte(`{"method":"foo","csrf_token":"` + c + `"}`) }},
			} {
				id, csrf := newFlow()
				r, body := do(t, b.hc, "POST", in.apiBase+"/self-service/"+kind+"?flow="+id,
					hdr{"Accept": "application/json", "Content-Type": tc.ct}, tc.body(csrf))
				assertKratosShaped4xx(t, name, r, body)
				if name == "missing CSRF token" && r.StatusCode != http.StatusForbidden {
					t.Errorf("missing CSRF token: status %d, want 403", r.StatusCode)
				}
				if cookieFrom(r, "ory_kratos_session") != nil {
					t.Errorf("%s: bad input produced a session cookie", name)
				}
			}
		})
	}

	t.Run("native logout", func(t *testing.T) {
		tok, _ := loginNative(t, in, u.Email, u.Password)
		del := func(ct string, body []byte) (*http.Response, []byte) {
			h := hdr{"Accept": "application/json"}
			if ct != "" {
				h["Content-Type"] = ct
			}
			return do(t, plainHTTP(), "DELETE", in.apiBase+"/self-service/logout/api", h, body)
		}
		r, body := del("application/json", []byte(`{"session_token": `))
		wantStatus(t, r, body, http.StatusBadRequest)
		decodeError(t, 400, body)
		for name, tc := range map[string]struct {
			ct   string
			body []byte
		}{
			"JSON array":              {"application/json", []byte(`[]`)},
			"token of the wrong type": {"application/json", []byte(`{"session_token": 5}`)},
			"text/plain":              {"text/plain", []byte("session_token=" + tok)},
			"form body as JSON":       {"application/json", []byte("session_token=" + tok)},
			"1 MB body":               {"application/json", bigBody(mb)},
			"1 MB token":              {"application/json", []byte(`{"session_token":"` + strings.Repeat("x", mb) + `"}`)},
			"no body":                 {"application/json", nil},
			"empty object":            {"application/json", []byte(`{}`)},
		} {
			r, body := del(tc.ct, tc.body)
			assertKratosShaped4xx(t, name, r, body)
		}
		if _, code := whoamiToken(t, in, tok); code != http.StatusOK {
			t.Errorf("bad native logout requests revoked the session: whoami %d", code)
		}
	})
}
