package e2e

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeResult is one scrape of the admin endpoint's /metrics: every
// sample as "name{label=value,…}" (labels sorted; histograms by their
// _count), and every label value seen.
type scrapeResult struct {
	samples map[string]float64
	values  []string
}

// sum adds the samples of name whose labels include every one of want
// ("label=value").
func (s scrapeResult) sum(name string, want ...string) float64 {
	var n float64
	for k, v := range s.samples {
		metric, labels, _ := strings.Cut(k, "{")
		if metric != name {
			continue
		}
		have := strings.Split(strings.TrimSuffix(labels, "}"), ",")
		ok := true
		for _, w := range want {
			if !containsString(have, w) {
				ok = false
				break
			}
		}
		if ok {
			n += v
		}
	}
	return n
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// scrape reads the admin endpoint's /metrics as Prometheus does.
func scrape(t *testing.T, in *instance) scrapeResult {
	t.Helper()
	resp, err := plainHTTP().Get(in.adminBase + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s/metrics: %v", in.adminBase, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s/metrics: status %d", in.adminBase, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	out := scrapeResult{samples: map[string]float64{}}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
				out.values = append(out.values, l.GetValue())
			}
			sort.Strings(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out.samples[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out.samples[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out.samples[key] = float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_UNTYPED:
				out.samples[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// TestMetrics scrapes the admin endpoint for real: a sign-up, a
// successful and a failed password login, a gated request with a session
// and one without move their counters by one each, whoami and the gate
// are timed, the caches, store and outbox are reported, and no label
// carries the user's address or identity id.
func TestMetrics(t *testing.T) {
	t.Parallel()
	in := startInstance(t, instanceOptions{})
	before := scrape(t, in)

	u := registerNative(t, in)
	tok, _ := loginNative(t, in, u.Email, u.Password)

	c := in.api()
	flow, resp, err := c.FrontendAPI.CreateNativeLoginFlow(ctx).Execute()
	wantSDKStatus(t, resp, err, http.StatusOK)
	_, resp, err = c.FrontendAPI.UpdateLoginFlow(ctx).Flow(flow.Id).UpdateLoginFlowBody(passwordLoginBody(u.Email, "wrong-"+u.Password, "")).Execute()
	wantSDKStatus(t, resp, err, http.StatusBadRequest)

	r, body, echo := gateGet(t, in, plainHTTP(), "/private/metrics", hdr{"Accept": "application/json", "X-Session-Token": tok})
	wantStatus(t, r, body, http.StatusOK)
	if echo == nil {
		t.Fatal("the gated request with a session did not reach the upstream")
	}
	r, body, _ = gateGet(t, in, plainHTTP(), "/private/metrics", hdr{"Accept": "application/json"})
	wantStatus(t, r, body, http.StatusUnauthorized)

	if _, code := whoamiToken(t, in, tok); code != http.StatusOK {
		t.Fatalf("whoami: %d", code)
	}

	after := scrape(t, in)
	for _, tc := range []struct {
		name   string
		labels []string
		delta  float64
	}{
		{"caddy_kratos_registrations_total", []string{"method=password", "outcome=success"}, 1},
		{"caddy_kratos_logins_total", []string{"method=password", "outcome=success"}, 1},
		{"caddy_kratos_logins_total", []string{"method=password", "outcome=failure", "reason=invalid_credentials"}, 1},
		{"caddy_kratos_gate_decisions_total", []string{"outcome=passed"}, 1},
		{"caddy_kratos_gate_decisions_total", []string{"outcome=unauthorized"}, 1},
		{"caddy_kratos_gate_decisions_total", []string{"outcome=redirected"}, 0},
		{"caddy_kratos_gate_duration_seconds", nil, 2},
		{"caddy_kratos_whoami_duration_seconds", nil, 1},
	} {
		if d := after.sum(tc.name, tc.labels...) - before.sum(tc.name, tc.labels...); d != tc.delta {
			t.Errorf("%s%v moved by %v, want %v", tc.name, tc.labels, d, tc.delta)
		}
	}
	// Read at scrape time from the storage and the courier.
	for _, name := range []string{"caddy_kratos_cache_lookups_total", "caddy_kratos_store_operation_duration_seconds"} {
		if after.sum(name) <= before.sum(name) {
			t.Errorf("%s did not move: %v → %v", name, before.sum(name), after.sum(name))
		}
	}
	for _, k := range []string{"caddy_kratos_outbox_pending{}", "caddy_kratos_outbox_oldest_pending_age_seconds{}",
		"caddy_kratos_cache_entries{engine=" + in.engineLabel() + ",tier=decoded}"} {
		if _, ok := after.samples[k]; !ok {
			t.Errorf("no sample %s", k)
		}
	}
	// Caddy's own metrics are served alongside, from the same registry.
	if after.sum("caddy_admin_http_requests_total") == 0 {
		t.Error("no caddy_admin_http_requests_total in the scrape: not Caddy's registry?")
	}
	for _, v := range after.values {
		for _, secret := range []string{u.Email, u.IdentityID, u.SessionID, tok} {
			if strings.Contains(v, secret) {
				t.Errorf("label value %q carries %q", v, secret)
			}
		}
	}

	// A reload gives Caddy a new registry: the counters keep their values
	// and the gate its label.
	cfg := in.caddyfile(instanceOptions{GlobalKratos: []string{"session_lifespan 25h"}})
	r, body = do(t, plainHTTP(), "POST", in.adminBase+"/load", hdr{"Content-Type": "text/caddyfile"}, []byte(cfg))
	wantStatus(t, r, body, http.StatusOK)
	reloaded := scrape(t, in)
	for k, v := range after.samples {
		for _, name := range []string{"caddy_kratos_logins_total{", "caddy_kratos_registrations_total{", "caddy_kratos_gate_decisions_total{"} {
			if strings.HasPrefix(k, name) && reloaded.samples[k] != v {
				t.Errorf("after a reload %s = %v, was %v", k, reloaded.samples[k], v)
			}
		}
	}
}

// engineLabel is the storage engine as the metrics name it.
func (in *instance) engineLabel() string {
	if in.onPostgres() {
		return "postgres"
	}
	return "badger"
}
