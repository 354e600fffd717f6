package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the hardening tests (hardening_*_test.go): raw
// requests that report a dropped connection instead of failing the test,
// the store's state as the admin API sees it, and the checks every bad
// request goes through.

// hbSend sends one raw request. Unlike do it returns transport errors (a
// dropped or reset connection) so the caller can report them as findings.
func hbSend(hc *http.Client, method, u string, h hdr, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range h {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, b, fmt.Errorf("reading the body: %w", err)
	}
	return resp, b, nil
}

// hbState is what the admin API shows of every identity and session: the
// counts and a digest of everything a bad request must not change.
type hbState struct {
	Identities int
	Sessions   int
	Digest     string
}

// hbSnapshot reads all identities (with their addresses, credentials'
// identifiers, metadata and update time) and all their sessions through
// the admin API.
func hbSnapshot(t *testing.T, in *instance) hbState {
	t.Helper()
	type ident struct {
		ID          string          `json:"id"`
		State       string          `json:"state"`
		Traits      json.RawMessage `json:"traits"`
		Credentials map[string]struct {
			Identifiers []string `json:"identifiers"`
		} `json:"credentials"`
		VerifiableAddresses []struct {
			Value    string `json:"value"`
			Verified bool   `json:"verified"`
		} `json:"verifiable_addresses"`
		RecoveryAddresses []struct {
			Value string `json:"value"`
		} `json:"recovery_addresses"`
		MetadataPublic json.RawMessage `json:"metadata_public"`
		MetadataAdmin  json.RawMessage `json:"metadata_admin"`
		UpdatedAt      string          `json:"updated_at"`
	}
	type sess struct {
		ID      string `json:"id"`
		Active  bool   `json:"active"`
		AAL     string `json:"authenticator_assurance_level"`
		Expires string `json:"expires_at"`
		Methods []struct {
			Method string `json:"method"`
		} `json:"authentication_methods"`
	}
	ids := admJSON[[]ident](t, in, "GET", "/admin/identities?page_size=500", nil, http.StatusOK)
	if len(ids) >= 500 {
		t.Fatalf("hbSnapshot: %d identities, more than one page", len(ids))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].ID < ids[j].ID })
	var b strings.Builder
	st := hbState{Identities: len(ids)}
	for _, id := range ids {
		creds := make([]string, 0, len(id.Credentials))
		for typ, c := range id.Credentials {
			creds = append(creds, typ+"="+strings.Join(c.Identifiers, ","))
		}
		sort.Strings(creds)
		fmt.Fprintf(&b, "identity %s %s traits=%s creds=%v addrs=%+v rec=%+v meta=%s/%s updated=%s\n",
			id.ID, id.State, id.Traits, creds, id.VerifiableAddresses, id.RecoveryAddresses, id.MetadataPublic, id.MetadataAdmin, id.UpdatedAt)
		ss := admJSON[[]sess](t, in, "GET", "/admin/identities/"+id.ID+"/sessions?page_size=500", nil, http.StatusOK)
		sort.Slice(ss, func(i, j int) bool { return ss[i].ID < ss[j].ID })
		st.Sessions += len(ss)
		for _, s := range ss {
			fmt.Fprintf(&b, "  session %s active=%v %s %v expires=%s\n", s.ID, s.Active, s.AAL, s.Methods, s.Expires)
		}
	}
	st.Digest = b.String()
	return st
}

// wantSameState fails when the store changed between two snapshots.
func wantSameState(t *testing.T, what string, before, after hbState) {
	t.Helper()
	if before.Identities != after.Identities || before.Sessions != after.Sessions {
		t.Errorf("%s changed the store: identities %d → %d, sessions %d → %d", what, before.Identities, after.Identities, before.Sessions, after.Sessions)
	}
	if before.Digest != after.Digest {
		t.Errorf("%s changed identities or sessions:\n--- before\n%s--- after\n%s", what, before.Digest, after.Digest)
	}
}

// hbIdentitiesWith returns the number of identities whose credentials
// carry identifier (admin API, credentials_identifier).
func hbIdentitiesWith(t *testing.T, in *instance, identifier string) int {
	t.Helper()
	list := admJSON[[]admIdentity](t, in, "GET", "/admin/identities?credentials_identifier="+url.QueryEscape(identifier), nil, http.StatusOK)
	return len(list)
}

// hbActiveSessions returns the number of active sessions of identity id.
func hbActiveSessions(t *testing.T, in *instance, id string) int {
	t.Helper()
	return len(admJSON[[]admSession](t, in, "GET", "/admin/identities/"+id+"/sessions?active=true", nil, http.StatusOK))
}

// hbLeaks are fragments that betray internals in an answer: stack traces,
// source paths, panics and the storage engine.
var hbLeaks = []string{"goroutine ", ".go:", "panic", "runtime error", "nil pointer", "badger", "sessionstore", "/work/", "/home/", "caddy-kratos/flows", "root:x:0:0"}

// hbKnownErrorIDs are Kratos's string error ids (spec/messages.md) that
// may appear in error.id and the Ory-Error-Id header.
var hbKnownErrorIDs = map[string]bool{
	"": true, "session_inactive": true, "session_aal1_required": true, "session_aal2_required": true,
	"session_already_available": true, "session_refresh_required": true, "security_csrf_violation": true,
	"security_identity_mismatch": true, "self_service_flow_expired": true, "self_service_flow_return_to_forbidden": true,
	"self_service_flow_disabled": true, "browser_location_change_required": true, "session_verified_address_required": true,
	"self_service_flow_replaced": true, "session_aal_already_fulfilled": true, "identity_disabled": true,
}

// wantNoLeak fails when an answer carries internals or an error id Kratos
// does not have.
func wantNoLeak(t *testing.T, what string, r *http.Response, body []byte) {
	t.Helper()
	low := strings.ToLower(string(body))
	for _, l := range hbLeaks {
		if strings.Contains(low, strings.ToLower(l)) {
			t.Errorf("%s: the answer leaks internals (%q): %s", what, l, clip(body))
		}
	}
	if v, ok := r.Header["Ory-Error-Id"]; ok {
		for _, id := range v {
			if !hbKnownErrorIDs[id] {
				t.Errorf("%s: Ory-Error-Id %q is not a Kratos error id", what, id)
			}
		}
	}
	var e errorJSON
	if json.Unmarshal(body, &e) == nil && e.Error != nil && !hbKnownErrorIDs[e.Error.ID] {
		t.Errorf("%s: error.id %q is not a Kratos error id", what, e.Error.ID)
	}
}

// hbClient is a cookie-less client without redirects and with a pool
// large enough for the parallel tests.
func hbClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect, Transport: tr}
}

// hbFlowID creates a flow of kind and type typ (browser or api) with hc
// (a browser's client for browser flows: the CSRF cookie lands in its
// jar) and returns its id and its csrf_token value.
func hbFlowID(t *testing.T, hc *http.Client, in *instance, kind, typ string, h hdr) (string, string) {
	t.Helper()
	hh := hdr{"Accept": "application/json"}
	for k, v := range h {
		hh[k] = v
	}
	r, body := do(t, hc, "GET", in.apiBase+"/self-service/"+kind+"/"+typ, hh, nil)
	wantStatus(t, r, body, http.StatusOK)
	f := decodeFlow(t, body)
	var csrf string
	if n := f.node("csrf_token"); n != nil {
		csrf, _ = n.Attributes["value"].(string)
	}
	return f.ID, csrf
}
