package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestExchangeSessionToken(t *testing.T) {
	t.Parallel()
	in := shared(t)

	for name, q := range map[string]string{
		"no params":           "",
		"only init_code":      "?init_code=" + randHex(32),
		"only return_to_code": "?return_to_code=" + randHex(32),
	} {
		r, body := do(t, plainHTTP(), "GET", in.apiBase+"/sessions/token-exchange"+q, hdr{"Accept": "application/json"}, nil)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400; body %s", name, r.StatusCode, clip(body))
			continue
		}
		decodeError(t, 400, body)
	}

	_, resp, err := in.api().FrontendAPI.ExchangeSessionToken(ctx).InitCode(randHex(16)).ReturnToCode(randHex(16)).Execute()
	wantSDKStatus(t, resp, err, http.StatusNotFound)
	decodeError(t, 404, sdkErrBody(t, err))

	rt := in.appBase + "/callback"
	flow, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).ReturnSessionTokenExchangeCode(true).ReturnTo(rt).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow.SessionTokenExchangeCode == nil || len(*flow.SessionTokenExchangeCode) != 64 || !isAlnum(*flow.SessionTokenExchangeCode) {
		t.Fatalf("session_token_exchange_code = %v, want 64 alphanumerics", flow.SessionTokenExchangeCode)
	}
	if flow.ReturnTo == nil || *flow.ReturnTo != rt {
		t.Errorf("return_to = %v, want %s", flow.ReturnTo, rt)
	}
	flow2, resp, err := in.api().FrontendAPI.CreateNativeLoginFlow(ctx).ReturnSessionTokenExchangeCode(true).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if flow2.SessionTokenExchangeCode == nil || len(*flow2.SessionTokenExchangeCode) != 64 {
		t.Errorf("without return_to: session_token_exchange_code = %v", flow2.SessionTokenExchangeCode)
	} else if *flow2.SessionTokenExchangeCode == *flow.SessionTokenExchangeCode {
		t.Error("two flows got the same exchange code")
	}

	// The init code with a wrong return_to_code finds nothing.
	_, resp, err = in.api().FrontendAPI.ExchangeSessionToken(ctx).InitCode(*flow.SessionTokenExchangeCode).ReturnToCode(randHex(32)).Execute()
	wantSDKStatus(t, resp, err, http.StatusNotFound)

	// Also on registration flows.
	rf, resp, err := in.api().FrontendAPI.CreateNativeRegistrationFlow(ctx).ReturnSessionTokenExchangeCode(true).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if rf.SessionTokenExchangeCode == nil || len(*rf.SessionTokenExchangeCode) != 64 {
		t.Errorf("registration session_token_exchange_code = %v, want 64 chars", rf.SessionTokenExchangeCode)
	}
}

func TestGetFlowError(t *testing.T) {
	t.Parallel()
	in := shared(t)

	fe, resp, err := in.api().FrontendAPI.GetFlowError(ctx).Id("stub:500").Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if !isUUID(fe.Id) {
		t.Errorf("stub error id = %q, want a uuid", fe.Id)
	}
	if code, _ := fe.Error["code"].(float64); code != 500 {
		t.Errorf("error.code = %v, want 500", fe.Error["code"])
	}
	if msg, _ := fe.Error["message"].(string); msg == "" {
		t.Errorf("stub error has no message: %v", fe.Error)
	}

	for _, id := range []string{"stub:404", "00000000-0000-4000-8000-000000000000", "not-a-uuid"} {
		_, resp, err := in.api().FrontendAPI.GetFlowError(ctx).Id(id).Execute()
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("getFlowError(%s): %v, want 404 (%v)", id, resp, err)
			continue
		}
		decodeError(t, 404, sdkErrBody(t, err))
	}
}

func TestWebAuthnJavaScript(t *testing.T) {
	t.Parallel()
	in := shared(t)
	js, resp, err := in.api().FrontendAPI.GetWebAuthnJavaScript(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("Content-Type = %q, want text/javascript", ct)
	}
	for _, fn := range []string{"oryWebAuthnLogin", "oryWebAuthnRegistration", "oryPasskeyLogin", "oryPasskeyLoginAutocompleteInit", "oryPasskeyRegistration", "oryPasskeySettingsRegistration"} {
		if !strings.Contains(js, fn) {
			t.Errorf("webauthn.js does not define %s", fn)
		}
	}
}

func TestIdentitySchema(t *testing.T) {
	t.Parallel()
	in := shared(t)
	u := registerNative(t, in)
	s, code := whoamiToken(t, in, u.Token)
	if code != http.StatusOK {
		t.Fatalf("whoami = %d", code)
	}
	if want := in.apiBase + "/schemas/ZGVmYXVsdA"; s.Identity.SchemaUrl != want {
		t.Errorf("schema_url = %q, want %q", s.Identity.SchemaUrl, want)
	}
	r, body := do(t, plainHTTP(), "GET", s.Identity.SchemaUrl, hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	var schema struct {
		Properties struct {
			Traits struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"traits"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &schema); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if _, ok := schema.Properties.Traits.Properties["email"]; !ok {
		t.Errorf("schema lacks properties.traits.properties.email: %s", clip(body))
	}
	if len(schema.Properties.Traits.Required) != 1 || schema.Properties.Traits.Required[0] != "email" {
		t.Errorf("schema traits.required = %v, want [email]", schema.Properties.Traits.Required)
	}

	r, body = do(t, plainHTTP(), "GET", in.apiBase+"/schemas/does-not-exist", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusNotFound)
	decodeError(t, 404, body)
}

func TestHealth(t *testing.T) {
	t.Parallel()
	in := shared(t)
	for _, p := range []string{"/health/alive", "/health/ready"} {
		r, body := do(t, plainHTTP(), "GET", in.apiBase+p, hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		var v struct{ Status string }
		if err := json.Unmarshal(body, &v); err != nil || v.Status != "ok" {
			t.Errorf("%s body = %s, want {\"status\":\"ok\"}", p, clip(body))
		}
	}
}
