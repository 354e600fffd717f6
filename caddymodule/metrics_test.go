package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// series gathers reg into "name{label=value,…}" → value, labels sorted
// by name (histograms: their _count).
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// testMetrics is a fresh set in a registry of its own.
func testMetrics(t *testing.T) (*metricSet, *prometheus.Registry) {
	t.Helper()
	m := newMetricSet()
	reg := prometheus.NewPedanticRegistry()
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return m, reg
}

// TestMetricsSink: each event moves its counter by its method, outcome
// and reason; values outside the fixed lists become "other", and nothing
// the client controls or that names a person (identity, identifier hash,
// session, IP, user agent) reaches a label.
func TestMetricsSink(t *testing.T) {
	m, reg := testMetrics(t)
	sink := metricsSink{m}
	const (
		identity = "5f0c3f9e-1111-4222-8333-944445555666"
		email    = "victim@example.com"
		ip       = "203.0.113.9"
		session  = "0c9a2b7e-aaaa-4bbb-8ccc-dddddddddddd"
	)
	personal := func(ev flows.Event) *flows.Event {
		ev.IdentityID, ev.Identifier, ev.SessionID, ev.IP, ev.UserAgent = identity, email, session, ip, "curl/8 "+email
		return &ev
	}
	for _, ev := range []flows.Event{
		{Type: flows.EventLoginSucceeded, Method: "password", AAL: "aal1"},
		{Type: flows.EventLoginSucceeded, Method: "password", AAL: "aal1"},
		{Type: flows.EventLoginSucceeded, Method: "totp", AAL: "aal2"},
		{Type: flows.EventLoginFailed, Method: "password", Reason: "4000006"},
		{Type: flows.EventLoginFailed, Method: "password", Reason: email}, // never a label
		{Type: flows.EventLoginFailed, Method: "password"},
		{Type: flows.EventLoginFailed, Method: email, Reason: "4010011"},
		{Type: flows.EventRegistrationSucceeded, Method: "password"},
		{Type: flows.EventRegistrationFailed, Method: "password", Reason: "4000007"},
		{Type: flows.EventRecoveryUsed, Method: "code"},
		{Type: flows.EventRecoveryFailed, Method: "code", Reason: "4060006"},
		{Type: flows.EventVerificationCompleted, Method: "link"},
		{Type: flows.EventVerificationFailed, Method: "code", Reason: "4070006"},
		{Type: flows.EventSettingsFailed, Method: "password", Reason: email},
		{Type: flows.EventPasswordChanged, Method: "password"},
		{Type: flows.EventProfileChanged, Method: "profile"},
		{Type: flows.EventCredentialAdded, Method: "totp"},
		{Type: flows.EventCredentialRemoved, Method: "webauthn"},
		{Type: flows.EventLogout},
		{Type: flows.EventSessionRevoked, Actor: "self", Count: 1},
		{Type: flows.EventSessionRevoked, Actor: "system", Reason: "password_changed", Count: 3},
		{Type: flows.EventSessionRevoked, Actor: "admin", Count: 0}, // nothing revoked
		{Type: flows.EventSessionRevoked, Actor: email, Reason: ip, Count: 2},
		{Type: flows.EventIdentityCreated, Actor: "admin"},
		{Type: flows.EventIdentityUpdated, Actor: "admin"},
		{Type: flows.EventIdentityDeleted, Actor: "admin"},
		{Type: flows.EventRateLimited, Reason: "login_ip"},
		{Type: flows.EventRateLimited, Reason: ip},
		{Type: flows.EventGateDenied, Gate: email}, // the gates count themselves
		{Type: "no.such.event"},
	} {
		sink.Record(context.Background(), personal(ev))
	}
	got := series(t, reg)
	want := map[string]float64{
		"caddy_kratos_logins_total{method=password,outcome=success,reason=}":                             2,
		"caddy_kratos_logins_total{method=totp,outcome=success,reason=}":                                 1,
		"caddy_kratos_logins_total{method=password,outcome=failure,reason=invalid_credentials}":          1,
		"caddy_kratos_logins_total{method=password,outcome=failure,reason=other}":                        1,
		"caddy_kratos_logins_total{method=password,outcome=failure,reason=none}":                         1,
		"caddy_kratos_logins_total{method=other,outcome=failure,reason=identity_disabled}":               1,
		"caddy_kratos_registrations_total{method=password,outcome=success}":                              1,
		"caddy_kratos_registrations_total{method=password,outcome=failure}":                              1,
		"caddy_kratos_recoveries_total{method=code,outcome=failure}":                                     1,
		"caddy_kratos_verifications_total{method=code,outcome=failure}":                                  1,
		"caddy_kratos_settings_changes_total{change=none,method=password,outcome=failure}":               1,
		"caddy_kratos_recoveries_total{method=code,outcome=success}":                                     1,
		"caddy_kratos_verifications_total{method=link,outcome=success}":                                  1,
		"caddy_kratos_settings_changes_total{change=password_changed,method=password,outcome=success}":   1,
		"caddy_kratos_settings_changes_total{change=profile_changed,method=profile,outcome=success}":     1,
		"caddy_kratos_settings_changes_total{change=credential_added,method=totp,outcome=success}":       1,
		"caddy_kratos_settings_changes_total{change=credential_removed,method=webauthn,outcome=success}": 1,
		"caddy_kratos_logouts_total{}":                                                                   1,
		"caddy_kratos_sessions_revoked_total{actor=self,reason=none}":                                    1,
		"caddy_kratos_sessions_revoked_total{actor=system,reason=password_changed}":                      3,
		"caddy_kratos_sessions_revoked_total{actor=other,reason=other}":                                  2,
		"caddy_kratos_admin_identity_changes_total{change=created}":                                      1,
		"caddy_kratos_admin_identity_changes_total{change=updated}":                                      1,
		"caddy_kratos_admin_identity_changes_total{change=deleted}":                                      1,
		"caddy_kratos_ratelimit_blocks_total{rule=login_ip}":                                             1,
		"caddy_kratos_ratelimit_blocks_total{rule=other}":                                                1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 && !strings.HasPrefix(k, "caddy_kratos_gate_") {
			t.Errorf("unexpected series %s = %v", k, v)
		}
		for _, secret := range []string{identity, email, ip, session, "curl"} {
			if strings.Contains(k, secret) {
				t.Errorf("series %s carries %q", k, secret)
			}
		}
	}
}

// TestRegisterMetricsTwice: the app and its gates register the same
// collectors into one config's registry; the second registration is no
// error, and a config loaded later registers them into its own.
func TestRegisterMetricsTwice(t *testing.T) {
	for range 2 { // two config loads
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		for range 2 {
			if err := registerMetrics(ctx, kratosMetrics.collectors()...); err != nil {
				t.Fatal(err)
			}
		}
		// Another collector under a taken name is still refused.
		clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "caddy_kratos_logouts_total", Help: "x"})
		if err := registerMetrics(ctx, clash); err == nil {
			t.Error("a different collector under a registered name was accepted")
		}
		cancel()
	}
}

// TestGateMetrics: every way a gate decides a request counts its
// outcome under the gate's label, and checked requests are timed.
func TestGateMetrics(t *testing.T) {
	m, reg := testMetrics(t)
	info := &flows.SessionInfo{IdentityID: "3b0f5f4e-6c0b-4a8b-9a57-1b2c3d4e5f60", SessionID: "s", AAL: "aal1"}
	for _, tc := range []struct {
		err    error
		accept string
		path   string
		want   string
	}{
		{nil, "application/json", "/private", "passed"},
		{nil, "application/json", "/public/x", "allowed"},
		{flows.ErrNoSession, "text/html", "/private", "redirected"},
		{flows.ErrNoSession, "application/json", "/private", "unauthorized"},
		{flows.ErrAAL2Required, "application/json", "/private", "aal_required"},
		{flows.ErrAAL2Required, "text/html", "/private", "redirected"},
		{sessionstore.ErrUnavailable, "application/json", "/private", "unavailable"},
		{errors.New("boom"), "application/json", "/private", "error"},
	} {
		g := newGate(t, &Gate{Allow: []string{"/public/*"}}, &fakeAuth{info: info, err: tc.err})
		g.metrics = newGateMetrics(m, "app")
		r, _ := caddyRequest(http.MethodGet, "http://app.example.com"+tc.path)
		r.Header.Set("Accept", tc.accept)
		_ = g.ServeHTTP(httptest.NewRecorder(), r, &nextRecorder{})
	}
	got := series(t, reg)
	for outcome, n := range map[string]float64{"passed": 1, "allowed": 1, "redirected": 2, "unauthorized": 1,
		"aal_required": 1, "unavailable": 1, "error": 1} {
		if k := "caddy_kratos_gate_decisions_total{gate=app,outcome=" + outcome + "}"; got[k] != n {
			t.Errorf("%s = %v, want %v", k, got[k], n)
		}
	}
	// Every decision but the allowed path checked a session.
	if k := "caddy_kratos_gate_duration_seconds{gate=app}"; got[k] != 7 {
		t.Errorf("%s has %v observations, want 7", k, got[k])
	}
}

// TestGateMetricsNoAllocs: counting and timing a passed request costs
// the gate no allocation.
func TestGateMetricsNoAllocs(t *testing.T) {
	m, _ := testMetrics(t)
	auth := &fakeAuth{info: &flows.SessionInfo{IdentityID: "3b0f5f4e-6c0b-4a8b-9a57-1b2c3d4e5f60", SessionID: "s", AAL: "aal1"}}
	plain := newGate(t, &Gate{}, auth)
	metered := newGate(t, &Gate{}, auth)
	metered.metrics = newGateMetrics(m, "app")
	r, _ := caddyRequest(http.MethodGet, "http://app.example.com/private")
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	without := testing.AllocsPerRun(200, func() { _ = plain.ServeHTTP(w, r, next) })
	with := testing.AllocsPerRun(200, func() { _ = metered.ServeHTTP(w, r, next) })
	t.Logf("gate allocations: %.1f with metrics, %.1f without", with, without)
	if with > without {
		t.Errorf("the gate allocates %.1f times with metrics, %.1f without", with, without)
	}
}

// TestGateLabels: a named gate keeps its name; unnamed ones are numbered
// per server, in provisioning order.
func TestGateLabels(t *testing.T) {
	a := &App{gates: &gateLabels{seq: map[string]int{}}}
	base, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	srv := &caddyhttp.Server{}
	var got []string
	got = append(got, a.gateLabel(base, ""), a.gateLabel(base, "api"), a.gateLabel(base, ""))
	ctx := base.WithValue(caddyhttp.ServerCtxKey, srv) // unnamed server: as none
	got = append(got, a.gateLabel(ctx, ""))
	if want := []string{"gate/0", "api", "gate/1", "gate/2"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("labels %q, want %q", got, want)
	}
	if err := checkGateName("srv0/app:v2.x_y-z"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"a b", `a"b`, "é", strings.Repeat("x", 65)} {
		if checkGateName(bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

// storeFixture opens a Badger store (closed when tb ends) and returns it
// with a session to store.
func storeFixture(tb testing.TB) (*sessionstore.Store, *sessionstore.Session) {
	tb.Helper()
	st, err := sessionstore.Open(tb.TempDir(), sessionstore.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	return st, &sessionstore.Session{ID: "77777777-7777-4777-8777-000000000001", IdentityID: "77777777-7777-4777-8777-000000000002",
		TokenHash: []byte("0123456789abcdef0123456789abcdef"), Active: true, IssuedAt: now, AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour),
		AuthenticationMethods: []sessionstore.AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: now}}, AAL: "aal1"}
}

// TestMeteredStore: operations are timed per engine and operation;
// failures count as errors, answers (not found) and the caller's own
// errors handed back do not; the gate's session lookup stays
// allocation-free.
func TestMeteredStore(t *testing.T) {
	st, sess := storeFixture(t)
	m, reg := testMetrics(t)
	ms := newMeteredStore(st, m, "badger")
	ctx := context.Background()
	if err := ms.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.GetSession(ctx, "77777777-7777-4777-8777-00000000dead"); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	mine := errors.New("the caller's refusal")
	if err := ms.UpdateRecord(ctx, "test", "k", func([]byte) ([]byte, time.Duration, error) { return nil, 0, mine }); !errors.Is(err, mine) {
		t.Fatalf("UpdateRecord: %v", err)
	}
	if err := ms.PutRecord(ctx, "bad/ns", "k", []byte("v"), 0); err == nil {
		t.Fatal("a bad namespace was accepted")
	}
	got := series(t, reg)
	for k, v := range map[string]float64{
		"caddy_kratos_store_operation_duration_seconds{engine=badger,op=create_session}": 1,
		// The hot-path lookup is not timed (its cost is the cache's
		// hits and misses); its failures are still counted.
		"caddy_kratos_store_operation_duration_seconds{engine=badger,op=get_session_by_token_hash}": 0,
		"caddy_kratos_store_errors_total{engine=badger,op=get_session_by_token_hash}":               0,
		"caddy_kratos_store_operation_duration_seconds{engine=badger,op=get_session}":               1,
		"caddy_kratos_store_operation_duration_seconds{engine=badger,op=update_record}":             1,
		"caddy_kratos_store_errors_total{engine=badger,op=get_session}":                             0,
		"caddy_kratos_store_errors_total{engine=badger,op=update_record}":                           0,
		"caddy_kratos_store_errors_total{engine=badger,op=put_record}":                              1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = ms.GetSessionByTokenHash(ctx, sess.TokenHash) }); n != 0 {
		t.Errorf("a cached session lookup allocates %.1f times through the metered store", n)
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
		t.Fatalf("the metered store's Close closed the pool's store: %v", err)
	}
}

// TestAppMetrics: a provisioned app registers its metrics into the
// config's registry, including the caches' counters and the outbox read
// at scrape time.
func TestAppMetrics(t *testing.T) {
	a := &App{}
	if err := provisionApp(t, a); err != nil {
		t.Fatal(err)
	}
	reg := a.ctx.GetMetricsRegistry()
	if _, err := a.courier.Enqueue(context.Background(), courier.Message{To: "m@example.com", Template: courier.TemplateLoginCodeValid,
		Data: courier.TemplateData{LoginCode: "123456"}}); err != nil {
		t.Fatal(err)
	}
	got := series(t, reg)
	for _, k := range []string{
		"caddy_kratos_cache_lookups_total{cache=session,engine=badger,result=hit}",
		"caddy_kratos_cache_lookups_total{cache=compact,engine=badger,result=miss}",
		"caddy_kratos_cache_evictions_total{cache=identity,engine=badger}",
		"caddy_kratos_cache_entries{engine=badger,tier=decoded}",
		"caddy_kratos_outbox_oldest_pending_age_seconds{}",
		"caddy_kratos_whoami_duration_seconds{}",
	} {
		if _, ok := got[k]; !ok {
			t.Errorf("no series %s", k)
		}
	}
	if k := "caddy_kratos_outbox_pending{}"; got[k] != 1 {
		t.Errorf("%s = %v, want 1", k, got[k])
	}
	if k := "caddy_kratos_store_operation_duration_seconds{engine=badger,op=put_record}"; got[k] == 0 {
		t.Errorf("%s: the courier's write was not timed", k)
	}
}

// TestOutboxProbeCaches: the outbox is scanned at most once per
// outboxProbeTTL, and a failed scan keeps the last values.
func TestOutboxProbeCaches(t *testing.T) {
	scans := 0
	var fail error
	p := newOutboxProbe(func(context.Context) (courier.OutboxStats, error) {
		scans++
		if fail != nil {
			return courier.OutboxStats{}, fail
		}
		return courier.OutboxStats{Pending: scans}, nil
	})
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	st, _, _ := p.read()
	st2, _, _ := p.read()
	if scans != 1 || st.Pending != 1 || st2.Pending != 1 {
		t.Fatalf("two reads within the TTL: %d scans, pending %d, %d", scans, st.Pending, st2.Pending)
	}
	now = now.Add(outboxProbeTTL)
	fail = errors.New("down")
	st, _, failures := p.read()
	if scans != 2 || st.Pending != 1 || failures != 1 {
		t.Fatalf("failed scan: %d scans, pending %d, %d failures", scans, st.Pending, failures)
	}
}

// TestCourierAttempted: the courier's outcomes land in
// courier_attempts_total, whose series exist (at 0) from the start.
func TestCourierAttempted(t *testing.T) {
	m, reg := testMetrics(t)
	for _, k := range []string{"sent", "retry", "abandoned"} {
		if _, ok := series(t, reg)["caddy_kratos_courier_attempts_total{result="+k+"}"]; !ok {
			t.Errorf("no series for result %s before any attempt", k)
		}
	}
	m.courierResults[courier.StateQueued].Inc()
	global := prometheus.NewRegistry()
	global.MustRegister(kratosMetrics.courierAttempts)
	before := series(t, global)["caddy_kratos_courier_attempts_total{result=abandoned}"]
	courierAttempted(courier.StateAbandoned)
	courierAttempted(courier.StateSending) // not an outcome
	if got := series(t, global)["caddy_kratos_courier_attempts_total{result=abandoned}"]; got != before+1 {
		t.Errorf("abandoned %v → %v, want +1", before, got)
	}
	if got := series(t, reg)["caddy_kratos_courier_attempts_total{result=retry}"]; got != 1 {
		t.Errorf("retry = %v, want 1", got)
	}
}

// TestMetricsDocumented: every metric is listed in the README, and the
// README and the Grafana dashboard name no metric that does not exist.
func TestMetricsDocumented(t *testing.T) {
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range append(newMetricSet().collectors(), newAppMetrics("badger", nil, nil)) {
			c.Describe(ch)
		}
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dashboard, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dashboard) {
		t.Fatal("docs/grafana-dashboard.json is not JSON")
	}
	for n := range names {
		if !strings.Contains(string(readme), "`"+n+"`") {
			t.Errorf("README does not list %s", n)
		}
	}
	used := regexp.MustCompile(`caddy_kratos_[a-z_]+`)
	for file, text := range map[string][]byte{"README.md": readme, "docs/grafana-dashboard.json": dashboard} {
		for _, n := range used.FindAllString(string(text), -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && names[b] {
					base = b
				}
			}
			if !names[base] && n != "caddy_kratos_" {
				t.Errorf("%s names %s, which does not exist", file, n)
			}
		}
	}
}

// BenchmarkMeteredSessionLookup: the gate's session lookup (a decoded-tier
// hit) straight from the engine and through the metered store.
func BenchmarkMeteredSessionLookup(b *testing.B) {
	st, sess := storeFixture(b)
	ctx := context.Background()
	if err := st.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	for name, s := range map[string]sessionstore.Storage{"plain": st, "metered": newMeteredStore(st, newMetricSet(), "badger")} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetSessionByTokenHash(ctx, sess.TokenHash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
