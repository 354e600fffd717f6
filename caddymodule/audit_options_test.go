package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/audit"
	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// TestAuditOptionsChecked: a JSON config's audit options are checked at
// start, naming the option.
func TestAuditOptionsChecked(t *testing.T) {
	for _, tc := range []struct {
		opts *AuditOptions
		want string
	}{
		{&AuditOptions{MaxAge: caddy.Duration(30 * time.Minute)}, "audit.max_age: must be at least 1h"},
		{&AuditOptions{MaxRecords: -5}, "audit.max_records: must be at least 1"},
	} {
		err := provisionApp(t, &App{Audit: tc.opts})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

// TestAuditTrailProvisioned: the app starts the trail with its options,
// hands it to the engine (its events are recorded and listed by the
// admin API), and Stop writes what is queued.
func TestAuditTrailProvisioned(t *testing.T) {
	off := false
	a := &App{Audit: &AuditOptions{MaxRecords: 10, Log: &off}}
	if err := provisionApp(t, a); err != nil {
		t.Fatal(err)
	}
	if a.trail == nil {
		t.Fatal("no audit trail")
	}
	a.trail.Record(context.Background(), &event.Event{Type: event.IdentityDeleted, IdentityID: "x", Actor: event.ActorAdmin})
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Engine().AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/audit?identity=x", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"type":"identity.deleted"`) {
		t.Fatalf("admin audit list: %d %s", rec.Code, rec.Body)
	}
}

// denialLog keeps the gate's denials.
type denialLog struct {
	mu  sync.Mutex
	all []string
}

func (d *denialLog) GateDenied(gate, reason, ip string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, gate+" "+reason+" "+ip)
}

// TestGateRecordsDenials: every refusal — 401, redirect, aal2 — is
// tallied with the gate's name (or the request's host), the reason and
// the client address; a pass and a storage outage are not.
func TestGateRecordsDenials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		accept string
		want   string
	}{
		{"app", flows.ErrNoSession, "application/json", "app no_session 192.0.2.1"},
		{"", flows.ErrNoSession, "text/html", "app.example.com no_session 192.0.2.1"},
		{"app", flows.ErrAAL2Required, "application/json", "app aal2_required 192.0.2.1"},
		{"app", flows.ErrAAL2SetupRequired, "text/html", "app aal2_setup_required 192.0.2.1"},
		{"app", fmt.Errorf("%w: connection refused", sessionstore.ErrUnavailable), "application/json", ""},
		{"app", nil, "application/json", ""},
	} {
		log := &denialLog{}
		auth := &fakeAuth{err: tc.err, info: &flows.SessionInfo{IdentityID: "id-1"}}
		g := newGate(t, &Gate{Name: tc.name}, auth)
		g.denials = log
		r, _ := caddyRequest(http.MethodGet, "http://app.example.com:8443/private")
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1"}))
		r.Header.Set("Accept", tc.accept)
		_ = g.ServeHTTP(httptest.NewRecorder(), r, &nextRecorder{})
		got := strings.Join(log.all, ";")
		if got != tc.want {
			t.Errorf("%v: denials %q, want %q", tc.err, got, tc.want)
		}
	}
}

// BenchmarkGateDenied is the cost of a refusal (401 in Kratos's JSON) with
// the audit trail tallying it: no storage write per request.
func BenchmarkGateDenied(b *testing.B) {
	st, err := sessionstore.Open(b.TempDir(), sessionstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	trail := audit.New(st, audit.Options{})
	defer trail.Close(context.Background())
	g := &Gate{Name: "app"}
	if err := g.provision(); err != nil {
		b.Fatal(err)
	}
	g.auth = &fakeAuth{err: flows.ErrNoSession}
	g.denials = trail
	base, _ := caddyRequest(http.MethodGet, "http://app.example.com/private")
	base.Header.Set("Accept", "application/json")
	base = base.WithContext(context.WithValue(base.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1"}))
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := g.ServeHTTP(httptest.NewRecorder(), base, next); err != nil {
			b.Fatal(err)
		}
	}
}
