package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Concurrent writers of one identity (issue 11, item 10): every change
// survives, whatever the order the writes commit in.

// raceResult is one answer of a concurrent request.
type raceResult struct {
	status int
	body   map[string]any
	raw    []byte
	err    error
}

// raceDo is do for goroutines: it reports errors instead of failing t.
func raceDo(method, u string, body any, hdr map[string]string) raceResult {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return raceResult{err: err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return raceResult{err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return raceResult{status: res.StatusCode, body: m, raw: raw, err: err}
}

// raceAll runs every request at once (after a common start signal) and
// returns the answers in order.
func raceAll(reqs []func() raceResult) []raceResult {
	out := make([]raceResult, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = req()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

const raceMetadataWriters = 16

// metadataPatches are admin JSON patches that each add their own key to
// metadata_public.
func metadataPatches(admURL, id string) []func() raceResult {
	var reqs []func() raceResult
	for i := range raceMetadataWriters {
		reqs = append(reqs, func() raceResult {
			return raceDo("PATCH", admURL+"/admin/identities/"+id,
				[]map[string]any{{"op": "add", "path": fmt.Sprintf("/metadata_public/k%d", i), "value": i}}, nil)
		})
	}
	return reqs
}

func missingMetadata(raw json.RawMessage) []string {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	var missing []string
	for i := range raceMetadataWriters {
		if _, ok := m[fmt.Sprintf("k%d", i)]; !ok {
			missing = append(missing, fmt.Sprintf("metadata_public.k%d", i))
		}
	}
	return missing
}

// Admin patches of metadata, traits, address verification and state race
// with logins that upgrade the password hash.
func TestIdentityWritersRaceAdminAndLogin(t *testing.T) {
	e, pub, adm := admEngine(t, nil)
	pbkdf2 := admHashVectors[2].hash // "test", upgraded to bcrypt at the first login
	id := admCreate(t, adm, map[string]any{
		"schema_id": "default", "traits": map[string]any{"email": "race-admin@example.com"},
		"metadata_public": map[string]any{},
		"credentials":     map[string]any{"password": map[string]any{"config": map[string]any{"hashed_password": pbkdf2}}},
	})
	reqs := metadataPatches(adm.URL, id)
	patch := func(ops ...map[string]any) func() raceResult {
		return func() raceResult { return raceDo("PATCH", adm.URL+"/admin/identities/"+id, ops, nil) }
	}
	reqs = append(reqs,
		patch(map[string]any{"op": "add", "path": "/traits/name", "value": map[string]any{"first": "Ada"}}),
		patch(map[string]any{"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true}),
		patch(map[string]any{"op": "replace", "path": "/state", "value": "inactive"}))
	nAdmin := len(reqs)
	for range 4 {
		f := do(t, nil, "GET", pub.URL+"/self-service/login/api", nil, nil)
		action := actionOf(t, f)
		reqs = append(reqs, func() raceResult {
			return raceDo("POST", action, map[string]any{"method": "password", "identifier": "race-admin@example.com", "password": "test"}, nil)
		})
	}
	for i, r := range raceAll(reqs) {
		switch {
		case r.err != nil:
			t.Fatalf("request %d: %v", i, r.err)
		case i < nAdmin && r.status != http.StatusOK:
			t.Errorf("admin patch %d: %d %s", i, r.status, r.raw)
		case i >= nAdmin && r.status != http.StatusOK && !(r.status == http.StatusBadRequest && contains(messageIDs(r.body), 4010011)):
			t.Errorf("login %d: %d %s", i, r.status, r.raw)
		}
	}

	got, err := e.store.GetIdentity(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	missing := missingMetadata(got.MetadataPublic)
	if got.State != "inactive" {
		missing = append(missing, "state inactive")
	}
	if first, _ := identity.LookupPath(identity.TraitsOf(got), "name.first"); first != "Ada" {
		missing = append(missing, "traits.name.first")
	}
	if len(got.VerifiableAddresses) != 1 || !got.VerifiableAddresses[0].Verified {
		missing = append(missing, "verified address")
	}
	var pc identity.PasswordConfig
	_ = identity.DecodeConfig(got.Credentials["password"].Config, &pc)
	if ok, _ := identity.VerifyHash("test", pc.HashedPassword); !ok || !strings.HasPrefix(pc.HashedPassword, "$2a$04$") {
		missing = append(missing, "password hash upgrade")
	}
	if len(missing) > 0 {
		t.Fatalf("lost changes: %v (identity %s)", missing, identity.EncodeConfig(got))
	}
}

// Settings changes (profile, password, backup codes) race with admin
// patches; a settings write that read the identity before the others
// must not undo them, nor they it.
func TestIdentityWritersRaceSettingsAndAdmin(t *testing.T) {
	e, pub, adm := admEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"lookup_secret": true}
		c.RequiredAAL = "aal1" // backup codes confirmed meanwhile must not make the other submits aal2
	})
	const email = "race-settings@example.com"
	token := registerNative(t, pub.URL, email)
	who := whoamiStatus(t, pub.URL, token)
	id := who.body["identity"].(map[string]any)["id"].(string)
	if r := do(t, nil, "PATCH", adm.URL+"/admin/identities/"+id,
		[]map[string]any{{"op": "replace", "path": "/metadata_public", "value": map[string]any{}}}, nil); r.status != 200 {
		t.Fatalf("metadata: %d %s", r.status, r.raw)
	}
	profile := actionOf(t, nativeSettings(t, pub.URL, token))
	password := actionOf(t, nativeSettings(t, pub.URL, token))
	lookup := actionOf(t, nativeSettings(t, pub.URL, token))
	if r := do(t, nil, "POST", lookup, map[string]any{"method": "lookup_secret", "lookup_secret_regenerate": true}, tokenHeader(token)); r.status != 200 {
		t.Fatalf("regenerate: %d %s", r.status, r.raw)
	}
	const newPassword = "Vq3$mZ8!rTw5#kLp"
	reqs := metadataPatches(adm.URL, id)
	nAdmin := len(reqs)
	reqs = append(reqs,
		func() raceResult {
			return raceDo("POST", profile, map[string]any{"method": "profile",
				"traits": map[string]any{"email": email, "name": map[string]any{"first": "Grace"}}}, tokenHeader(token))
		},
		func() raceResult {
			return raceDo("POST", password, map[string]any{"method": "password", "password": newPassword}, tokenHeader(token))
		},
		func() raceResult {
			return raceDo("POST", lookup, map[string]any{"method": "lookup_secret", "lookup_secret_confirm": true}, tokenHeader(token))
		})
	for i, r := range raceAll(reqs) {
		switch {
		case r.err != nil:
			t.Fatalf("request %d: %v", i, r.err)
		case r.status != http.StatusOK:
			t.Errorf("request %d (admin: %v): %d %s", i, i < nAdmin, r.status, r.raw)
		case i >= nAdmin && r.body["state"] != "success":
			t.Errorf("settings %d: state %v", i, r.body["state"])
		}
	}

	got, err := e.store.GetIdentity(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	missing := missingMetadata(got.MetadataPublic)
	if got.State != "active" {
		missing = append(missing, "state active")
	}
	if first, _ := identity.LookupPath(identity.TraitsOf(got), "name.first"); first != "Grace" {
		missing = append(missing, "traits.name.first")
	}
	var pc identity.PasswordConfig
	_ = identity.DecodeConfig(got.Credentials["password"].Config, &pc)
	if ok, _ := identity.VerifyHash(newPassword, pc.HashedPassword); !ok {
		missing = append(missing, "new password")
	}
	if !identity.HasCredential(got, "lookup_secret") {
		missing = append(missing, "backup codes")
	}
	if len(missing) > 0 {
		t.Fatalf("lost changes: %v (identity %s)", missing, identity.EncodeConfig(got))
	}
}

// A settings change whose identity was deactivated while the method was
// working (hashing, say) is refused with 401 and leaves the identity as
// the admin left it. A probe method deactivates the identity through the
// admin API between the session check and the write.
func TestSettingsWriteRefusedAfterDeactivation(t *testing.T) {
	var admURL string
	probe := &probeMethod{
		name: "race_probe",
		update: func(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
			res := raceDo("PATCH", admURL+"/admin/identities/"+st.Identity.ID,
				[]map[string]any{{"op": "replace", "path": "/state", "value": "inactive"}}, nil)
			if res.status != http.StatusOK {
				return flow.SettingsOutcome{Err: wire.Internal("deactivation failed: " + string(res.raw))}
			}
			return flow.SettingsOutcome{Success: true, Apply: func(cur *sessionstore.Identity) error {
				cur.Traits = json.RawMessage(`{"email":"race-deactivated@example.com","name":{"first":"Mallory"}}`)
				return nil
			}}
		},
	}
	e, pub, adm := admEngine(t, func(c *Config) { c.Methods = map[string]bool{"race_probe": true} })
	e.settings.AddMethod(probe)
	admURL = adm.URL
	token := registerNative(t, pub.URL, "race-deactivated@example.com")
	id := whoamiStatus(t, pub.URL, token).body["identity"].(map[string]any)["id"].(string)
	action := actionOf(t, nativeSettings(t, pub.URL, token))

	r := do(t, nil, "POST", action, map[string]any{"method": "race_probe"}, tokenHeader(token))
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.raw), "No valid session credentials found in the request.") {
		t.Fatalf("settings write after deactivation: %d %s, want 401", r.status, r.raw)
	}
	got, err := e.store.GetIdentity(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := identity.LookupPath(identity.TraitsOf(got), "name.first"); got.State != "inactive" || first != nil {
		t.Fatalf("identity after the refused write: state %q, name.first %v", got.State, first)
	}
}

// probeMethod is a settings method of a test: always on, no nodes, its
// update what the test says.
type probeMethod struct {
	name   string
	update func(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome
}

func (m *probeMethod) ID() string                                                      { return m.name }
func (m *probeMethod) Enabled() bool                                                   { return true }
func (m *probeMethod) SettingsNodes(*http.Request, *flow.Flow, *sessionstore.Identity) {}
func (m *probeMethod) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	return m.update(r, st)
}
