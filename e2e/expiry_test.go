package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestExpiredFlows runs on an instance with flow_lifespan 2s: getting an
// expired flow answers 410 with where to restart; submitting it answers 410
// with a replacement flow (use_flow_id) that carries the "expired" message.
func TestExpiredFlows(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"flow_lifespan 2s", "session_lifespan 3s"}})
	u := registerNative(t, in) // fresh flow, submitted well within 2s
	sess, code := whoamiToken(t, in, u.Token)
	if code != http.StatusOK {
		t.Fatalf("whoami right after registration = %d", code)
	}
	if d := sessionLifetime(sess); d < 2900*time.Millisecond || d > 3100*time.Millisecond {
		t.Errorf("session lifetime = %v, want 3s (session_lifespan)", d)
	}
	sessionEnd := *sess.ExpiresAt

	type created struct {
		kind, typ string
		id        string
		b         *browser
		csrf      string
	}
	var flows []created
	for _, kind := range []string{"login", "registration"} {
		r, body := do(t, plainHTTP(), "GET", in.apiBase+"/self-service/"+kind+"/api", hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		f := decodeFlow(t, body)
		issued, _ := time.Parse(time.RFC3339Nano, f.IssuedAt)
		expires, _ := time.Parse(time.RFC3339Nano, f.ExpiresAt)
		if d := expires.Sub(issued); d < 1900*time.Millisecond || d > 2100*time.Millisecond {
			t.Errorf("%s: expires_at - issued_at = %v, want 2s (flow_lifespan)", kind, d)
		}
		flows = append(flows, created{kind: kind, typ: "api", id: f.ID})

		b := newBrowser(t, in)
		r, body = do(t, b.hc, "GET", in.apiBase+"/self-service/"+kind+"/browser", hdr{"Accept": "application/json"}, nil)
		wantStatus(t, r, body, http.StatusOK)
		bf := decodeFlow(t, body)
		csrf, _ := bf.node("csrf_token").Attributes["value"].(string)
		flows = append(flows, created{kind: kind, typ: "browser", id: bf.ID, b: b, csrf: csrf})
	}
	// One more browser login flow for the HTML form path.
	formB := newBrowser(t, in)
	r, body := do(t, formB.hc, "GET", in.apiBase+"/self-service/login/browser", hdr{"Accept": "application/json"}, nil)
	wantStatus(t, r, body, http.StatusOK)
	formFlow := decodeFlow(t, body)
	formCSRF, _ := formFlow.node("csrf_token").Attributes["value"].(string)

	time.Sleep(2500 * time.Millisecond)

	expiredMsg := map[string]int64{"login": 4010001, "registration": 4040001}
	for _, f := range flows {
		t.Run(f.kind+"/"+f.typ, func(t *testing.T) {
			hc := plainHTTP()
			if f.b != nil {
				hc = f.b.hc
			}
			// GET → 410 with details.
			r, body := do(t, hc, "GET", in.apiBase+"/self-service/"+f.kind+"/flows?id="+f.id, hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusGone)
			e := decodeError(t, 410, body)
			if e.Error.ID != "self_service_flow_expired" {
				t.Errorf("get: error.id = %q, want self_service_flow_expired", e.Error.ID)
			}
			if f.typ == "api" {
				if want := in.apiBase + "/self-service/" + f.kind + "/api"; e.Error.Details["api"] != want {
					t.Errorf("get: details.api = %v, want %s (details %v)", e.Error.Details["api"], want, e.Error.Details)
				}
			} else {
				if want := in.apiBase + "/self-service/" + f.kind + "/browser"; e.Error.Details["redirect_to"] != want {
					t.Errorf("get: details.redirect_to = %v, want %s (details %v)", e.Error.Details["redirect_to"], want, e.Error.Details)
				}
			}

			// Submit → 410 with a replacement flow.
			var payload map[string]any
			if f.kind == "login" {
				payload = map[string]any{"method": "password", "identifier": u.Email, "password": u.Password}
			} else {
				payload = map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": randEmail()}}
			}
			if f.csrf != "" {
				payload["csrf_token"] = f.csrf
			}
			raw, _ := json.Marshal(payload)
			r, body = do(t, hc, "POST", in.apiBase+"/self-service/"+f.kind+"?flow="+f.id,
				hdr{"Accept": "application/json", "Content-Type": "application/json"}, raw)
			wantStatus(t, r, body, http.StatusGone)
			e = decodeError(t, 410, body)
			if e.Error.ID != "self_service_flow_expired" {
				t.Errorf("submit: error.id = %q", e.Error.ID)
			}
			if !isUUID(e.UseFlowID) || e.UseFlowID == f.id {
				t.Fatalf("submit: use_flow_id = %q, want a new flow id (old %s)", e.UseFlowID, f.id)
			}
			if e.ExpiredAt == "" || e.Since == nil {
				t.Errorf("submit: expired_at %q / since %v missing", e.ExpiredAt, e.Since)
			}
			if cookieFrom(r, "ory_kratos_session") != nil {
				t.Error("expired submit set a session cookie")
			}

			// The replacement flow is fresh, of the same type, with the message.
			r, body = do(t, hc, "GET", in.apiBase+"/self-service/"+f.kind+"/flows?id="+e.UseFlowID, hdr{"Accept": "application/json"}, nil)
			wantStatus(t, r, body, http.StatusOK)
			nf := decodeFlow(t, body)
			if nf.Type != f.typ {
				t.Errorf("replacement flow type = %q, want %q", nf.Type, f.typ)
			}
			if !containsID(nf.messageIDs(), expiredMsg[f.kind]) {
				t.Errorf("replacement flow messages = %v, want %d", nf.messageIDs(), expiredMsg[f.kind])
			}
		})
	}

	t.Run("login/browser form post", func(t *testing.T) {
		v := url.Values{"method": {"password"}, "csrf_token": {formCSRF}, "identifier": {u.Email}, "password": {u.Password}}
		r, body := do(t, formB.hc, "POST", in.apiBase+"/self-service/login?flow="+formFlow.ID,
			hdr{"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}, []byte(v.Encode()))
		wantStatus(t, r, body, http.StatusSeeOther)
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "http://127.0.0.1:4455/login" {
			t.Fatalf("Location = %q, want the login UI with the new flow", r.Header.Get("Location"))
		}
		if id := loc.Query().Get("flow"); !isUUID(id) || id == formFlow.ID {
			t.Errorf("Location flow = %q, want a new flow id (old %s)", id, formFlow.ID)
		}
		if cookieFrom(r, "ory_kratos_session") != nil {
			t.Error("expired form submit logged the browser in")
		}
	})

	t.Run("expired session", func(t *testing.T) {
		time.Sleep(time.Until(sessionEnd) + 300*time.Millisecond)
		if _, code := whoamiToken(t, in, u.Token); code != http.StatusUnauthorized {
			t.Errorf("whoami with an expired session = %d, want 401", code)
		}
		r, body, echo := gateGet(t, in, plainHTTP(), "/private", hdr{"Accept": "application/json", "X-Session-Token": u.Token})
		if echo != nil {
			t.Fatal("an expired session passed the gate")
		}
		wantStatus(t, r, body, http.StatusUnauthorized)
		list, resp, err := in.api().FrontendAPI.ListMySessions(ctx).XSessionToken(u.Token).Execute()
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("listMySessions with an expired session: %v %v %v", resp, list, err)
		}
	})
}
