package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The metrics of caddy-kratos live in Caddy's metrics registry, served
// by the admin endpoint's /metrics (and by a `metrics` handler where the
// operator mounts one): no listener of our own. Each config load gives
// Caddy a new registry; the collectors below are created once per
// process and registered into every config's registry, so counters keep
// counting across reloads and a second registration into one registry
// (several gates, the app and its gates) is no error.
//
// Label values come only from fixed lists (see the label* functions): no
// identity, address, session or client IP ever becomes a label, so the
// number of series stays bounded whatever clients send.

const (
	metricsNamespace = "caddy"
	metricsSubsystem = "kratos"
)

// metricSet holds the process-wide collectors.
type metricSet struct {
	logins          *prometheus.CounterVec
	registrations   *prometheus.CounterVec
	recoveries      *prometheus.CounterVec
	verifications   *prometheus.CounterVec
	settings        *prometheus.CounterVec
	logouts         prometheus.Counter
	sessionsRevoked *prometheus.CounterVec
	identityChanges *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	gateDecisions   *prometheus.CounterVec
	gateDuration    *prometheus.HistogramVec
	whoamiDuration  prometheus.Histogram
	storeDuration   *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	courierAttempts *prometheus.CounterVec
	// courierResults are courierAttempts' series by courier state.
	courierResults map[courier.State]prometheus.Counter
}

// latencyBuckets suit the gate and whoami: tens of microseconds on a
// cache hit, milliseconds when the storage is read.
var latencyBuckets = prometheus.ExponentialBuckets(25e-6, 4, 9) // 25µs … 1.6s

// storeBuckets suit one storage operation, from a cache hit to a slow
// database round trip.
var storeBuckets = prometheus.ExponentialBuckets(10e-6, 4, 10) // 10µs … 2.6s

var kratosMetrics = newMetricSet()

func newMetricSet() *metricSet {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: name, Help: help, Buckets: buckets}, labels)
	}
	return (&metricSet{
		logins: counter("logins_total",
			"Sign-in attempts that completed a login method, by method, outcome and (failures) reason.", "method", "outcome", "reason"),
		registrations: counter("registrations_total", "Completed sign-ups, by method and outcome.", "method", "outcome"),
		recoveries:    counter("recoveries_total", "Completed account recoveries, by method and outcome.", "method", "outcome"),
		verifications: counter("verifications_total", "Completed address verifications, by method and outcome.", "method", "outcome"),
		settings: counter("settings_changes_total",
			"Changes made in the settings flow, by method, change and outcome.", "method", "change", "outcome"),
		logouts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "logouts_total", Help: "Self-service logouts."}),
		sessionsRevoked: counter("sessions_revoked_total", "Sessions revoked, by who acted and why.", "actor", "reason"),
		identityChanges: counter("admin_identity_changes_total",
			"Identities created, updated or deleted through the admin API.", "change"),
		rateLimited: counter("ratelimit_blocks_total", "Attempts refused by an abuse limit, by rule.", "rule"),
		gateDecisions: counter("gate_decisions_total",
			"Requests decided by a kratos_gate, by gate and outcome.", "gate", "outcome"),
		gateDuration: histogram("gate_duration_seconds",
			"Time a kratos_gate took to check a request's session and decide (the upstream's time excluded).", latencyBuckets, "gate"),
		whoamiDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "whoami_duration_seconds", Help: "Time taken to answer /sessions/whoami.", Buckets: latencyBuckets}),
		storeDuration: histogram("store_operation_duration_seconds",
			"Time of storage operations as the engine sees them (cache hits included), by engine and operation.", storeBuckets, "engine", "op"),
		storeErrors: counter("store_errors_total",
			"Storage operations that failed (not found, duplicates and conflicts are answers, not errors), by engine and operation.", "engine", "op"),
		courierAttempts: counter("courier_attempts_total",
			"Mail delivery attempts, by result: sent, retry (failed, tried again later) or abandoned (failed for the last time).", "result"),
	}).resolve()
}

func (m *metricSet) resolve() *metricSet {
	m.courierResults = map[courier.State]prometheus.Counter{
		courier.StateSent:      m.courierAttempts.WithLabelValues("sent"),
		courier.StateQueued:    m.courierAttempts.WithLabelValues("retry"),
		courier.StateAbandoned: m.courierAttempts.WithLabelValues("abandoned"),
	}
	return m
}

func (m *metricSet) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.logins, m.registrations, m.recoveries, m.verifications, m.settings, m.logouts,
		m.sessionsRevoked, m.identityChanges, m.rateLimited, m.gateDecisions, m.gateDuration, m.whoamiDuration,
		m.storeDuration, m.storeErrors, m.courierAttempts}
}

// registerMetrics registers cs into the config's registry; one already
// there (an earlier module of the same config registered it) is fine.
func registerMetrics(ctx caddy.Context, cs ...prometheus.Collector) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		return nil // a bare context (tests): nothing scrapes it
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return fmt.Errorf("registering kratos metrics: %w", err)
		}
	}
	return nil
}

// The bounded label values.
var (
	labelMethods = []string{"password", "code", "link", "totp", "lookup_secret", "webauthn", "passkey", "profile", "oidc"}
	labelRules   = []string{"login_id", "login_ip", "code_ip", "send_addr", "send_ip", "reg_ip", "flow_ip"}
	labelActors  = []string{"self", "admin", "system"}
	// labelRevokeReasons are the reasons the engine gives for revoking
	// sessions it was not asked to revoke one by one.
	labelRevokeReasons = []string{"identity_deactivated", "password_changed", "other_sessions", "recovery"}
	// loginReasons names the message ids a refused sign-in reports.
	loginReasons = map[string]string{
		"4000006": "invalid_credentials",
		"4000008": "invalid_totp_code",
		"4000010": "address_not_verified",
		"4000012": "lookup_code_used",
		"4000015": "no_webauthn_account",
		"4000016": "invalid_lookup_code",
		"4000035": "no_code_account",
		"4000037": "no_account",
		"4000043": "invalid_webauthn",
		"4010008": "invalid_login_code",
		"4010011": "identity_disabled",
	}
)

// labelOf is v when it is one of allowed, "none" when empty, else "other".
func labelOf(v string, allowed []string) string {
	switch {
	case v == "":
		return "none"
	case slices.Contains(allowed, v):
		return v
	}
	return "other"
}

func loginReason(id string) string {
	if r, ok := loginReasons[id]; ok {
		return r
	}
	if id == "" {
		return "none"
	}
	return "other"
}

// Outcomes of the self-service counters.
const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"
)

// metricsSink turns the engine's events into counters (flows.EventSink).
type metricsSink struct{ m *metricSet }

// Record counts ev. It never blocks: counters are atomic.
func (s metricsSink) Record(_ context.Context, ev *flows.Event) {
	m, method := s.m, labelOf(ev.Method, labelMethods)
	switch ev.Type {
	case flows.EventLoginSucceeded:
		m.logins.WithLabelValues(method, outcomeSuccess, "").Inc()
	case flows.EventLoginFailed:
		m.logins.WithLabelValues(method, outcomeFailure, loginReason(ev.Reason)).Inc()
	case flows.EventRegistrationSucceeded:
		m.registrations.WithLabelValues(method, outcomeSuccess).Inc()
	case flows.EventRegistrationFailed:
		m.registrations.WithLabelValues(method, outcomeFailure).Inc()
	case flows.EventRecoveryUsed:
		m.recoveries.WithLabelValues(method, outcomeSuccess).Inc()
	case flows.EventRecoveryFailed:
		m.recoveries.WithLabelValues(method, outcomeFailure).Inc()
	case flows.EventVerificationCompleted:
		m.verifications.WithLabelValues(method, outcomeSuccess).Inc()
	case flows.EventVerificationFailed:
		m.verifications.WithLabelValues(method, outcomeFailure).Inc()
	case flows.EventPasswordChanged, flows.EventProfileChanged, flows.EventCredentialAdded, flows.EventCredentialRemoved:
		// password.changed → password_changed: a fixed set (the cases).
		m.settings.WithLabelValues(method, strings.ReplaceAll(string(ev.Type), ".", "_"), outcomeSuccess).Inc()
	case flows.EventSettingsFailed:
		m.settings.WithLabelValues(method, "none", outcomeFailure).Inc()
	case flows.EventLogout:
		m.logouts.Inc()
	case flows.EventSessionRevoked:
		if ev.Count > 0 {
			m.sessionsRevoked.WithLabelValues(labelOf(ev.Actor, labelActors), labelOf(ev.Reason, labelRevokeReasons)).Add(float64(ev.Count))
		}
	case flows.EventIdentityCreated, flows.EventIdentityUpdated, flows.EventIdentityDeleted:
		m.identityChanges.WithLabelValues(strings.TrimPrefix(string(ev.Type), "identity.")).Inc()
	case flows.EventRateLimited:
		m.rateLimited.WithLabelValues(labelOf(ev.Reason, labelRules)).Inc()
	}
}

// gateOutcome is how a gate decided a request.
type gateOutcome int

const (
	gatePassed       gateOutcome = iota // a valid session: passed on
	gateAllowed                         // passed without a session (allow, methods)
	gateRedirected                      // 303 to the login or settings flow
	gateUnauthorized                    // 401
	gateAALRequired                     // 403 session_aal2_required
	gateUnavailable                     // 503: the storage is down
	gateError                           // 500
	gateOutcomes
)

var gateOutcomeLabels = [gateOutcomes]string{"passed", "allowed", "redirected", "unauthorized", "aal_required", "unavailable", "error"}

// gateMetrics are one gate's series, resolved at Provision so that the
// request path only increments and observes (no lookup, no allocation).
// The zero value (a gate provisioned without Caddy, in tests) records
// nothing.
type gateMetrics struct {
	decisions [gateOutcomes]prometheus.Counter
	duration  prometheus.Observer
}

func newGateMetrics(m *metricSet, gate string) gateMetrics {
	var gm gateMetrics
	for o, label := range gateOutcomeLabels {
		gm.decisions[o] = m.gateDecisions.WithLabelValues(gate, label)
	}
	gm.duration = m.gateDuration.WithLabelValues(gate)
	return gm
}

// untimed is the start of a decision that is counted, not timed.
const untimed time.Duration = -1

// start is when a check begins (monotonic; untimed when nothing is
// recorded).
func (gm *gateMetrics) start() time.Duration {
	if gm.duration == nil {
		return untimed
	}
	return monotonic()
}

// done counts a decision and, for a request whose session was checked
// (start not untimed), its duration.
func (gm *gateMetrics) done(o gateOutcome, start time.Duration) {
	if gm.duration == nil {
		return
	}
	gm.decisions[o].Inc()
	if start != untimed {
		gm.duration.Observe((monotonic() - start).Seconds())
	}
}

// clockBase anchors monotonic: time.Since reads only the monotonic clock,
// about half the cost of time.Now (wall and monotonic) on the hot paths.
var clockBase = time.Now()

// monotonic is the time since clockBase, for durations.
func monotonic() time.Duration { return time.Since(clockBase) }

// gateLabels numbers the unnamed gates of each server of a config.
type gateLabels struct {
	mu  sync.Mutex
	seq map[string]int
}

// gateLabel is a gate's label: its name, else its server's name and its
// place among that server's unnamed gates in provisioning order (routes
// in order), which is the same for every load of an unchanged config.
func (a *App) gateLabel(ctx caddy.Context, name string) string {
	if name != "" {
		return name
	}
	server := "gate"
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Name() != "" {
		server = srv.Name()
	}
	gl := a.gates
	gl.mu.Lock()
	defer gl.mu.Unlock()
	n := gl.seq[server]
	gl.seq[server]++
	return fmt.Sprintf("%s/%d", server, n)
}

// appMetrics reads, at scrape time, what the app's storage and courier
// keep: the caches' counters and the outbox. One per config (each config
// has its own registry); the storage outlives reloads, so its counters
// keep growing.
type appMetrics struct {
	engine string
	caches func() (sessionstore.CacheStats, bool)
	outbox *outboxProbe

	cacheLookups, cacheEvictions, cacheEntries *prometheus.Desc
	outboxPending, outboxOldest, outboxErr     *prometheus.Desc
}

func newAppMetrics(engine string, caches func() (sessionstore.CacheStats, bool), outbox *outboxProbe) *appMetrics {
	name := func(n string) string { return prometheus.BuildFQName(metricsNamespace, metricsSubsystem, n) }
	return &appMetrics{
		engine: engine, caches: caches, outbox: outbox,
		cacheLookups: prometheus.NewDesc(name("cache_lookups_total"),
			"Cache lookups, by cache and result (hit or miss). session and identity are the decoded tiers; compact is the tier both fall back to before reading storage.",
			[]string{"engine", "cache", "result"}, nil),
		cacheEvictions: prometheus.NewDesc(name("cache_evictions_total"),
			"Cache entries dropped to make room, by cache.", []string{"engine", "cache"}, nil),
		cacheEntries: prometheus.NewDesc(name("cache_entries"),
			"Entries held now, by tier (decoded: sessions and identities together; compact).", []string{"engine", "tier"}, nil),
		outboxPending: prometheus.NewDesc(name("outbox_pending"),
			"Mails queued and not delivered yet (waiting, between retries, or being sent).", nil, nil),
		outboxOldest: prometheus.NewDesc(name("outbox_oldest_pending_age_seconds"),
			"Age of the oldest undelivered mail (0: none).", nil, nil),
		outboxErr: prometheus.NewDesc(name("outbox_scrape_errors_total"),
			"Failed reads of the outbox for these metrics.", nil, nil),
	}
}

// Describe sends every descriptor (Caddy's registry is pedantic).
func (am *appMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{am.cacheLookups, am.cacheEvictions, am.cacheEntries, am.outboxPending, am.outboxOldest, am.outboxErr} {
		ch <- d
	}
}

// Collect reads the current values.
func (am *appMetrics) Collect(ch chan<- prometheus.Metric) {
	if st, ok := am.caches(); ok {
		for _, c := range []struct {
			name string
			n    sessionstore.CacheCounters
		}{{"session", st.Sessions}, {"identity", st.Identities}, {"compact", st.Compact}} {
			ch <- prometheus.MustNewConstMetric(am.cacheLookups, prometheus.CounterValue, float64(c.n.Hits), am.engine, c.name, "hit")
			ch <- prometheus.MustNewConstMetric(am.cacheLookups, prometheus.CounterValue, float64(c.n.Misses), am.engine, c.name, "miss")
			ch <- prometheus.MustNewConstMetric(am.cacheEvictions, prometheus.CounterValue, float64(c.n.Evictions), am.engine, c.name)
		}
		ch <- prometheus.MustNewConstMetric(am.cacheEntries, prometheus.GaugeValue, float64(st.DecodedEntries), am.engine, "decoded")
		ch <- prometheus.MustNewConstMetric(am.cacheEntries, prometheus.GaugeValue, float64(st.CompactEntries), am.engine, "compact")
	}
	if am.outbox != nil {
		st, at, failures := am.outbox.read()
		age := 0.0
		if !st.OldestPending.IsZero() {
			age = max(at.Sub(st.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(am.outboxPending, prometheus.GaugeValue, float64(st.Pending))
		ch <- prometheus.MustNewConstMetric(am.outboxOldest, prometheus.GaugeValue, age)
		ch <- prometheus.MustNewConstMetric(am.outboxErr, prometheus.CounterValue, float64(failures))
	}
}

// outboxProbe reads the courier's outbox stats at most every
// outboxProbeTTL: the read scans the outbox, and a scrape every second
// must not turn into a scan every second.
type outboxProbe struct {
	stats func(context.Context) (courier.OutboxStats, error)
	now   func() time.Time

	mu       chan struct{} // a one-slot lock: a scrape waits for one in flight
	last     courier.OutboxStats
	lastAt   time.Time
	failures uint64
}

const (
	outboxProbeTTL     = 5 * time.Second
	outboxProbeTimeout = 5 * time.Second
)

func newOutboxProbe(stats func(context.Context) (courier.OutboxStats, error)) *outboxProbe {
	return &outboxProbe{stats: stats, now: time.Now, mu: make(chan struct{}, 1)}
}

// read returns the cached stats, refreshed when older than
// outboxProbeTTL, the time they were read and the failed reads so far.
// A failed read keeps the previous values.
func (p *outboxProbe) read() (courier.OutboxStats, time.Time, uint64) {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	now := p.now()
	if p.lastAt.IsZero() || now.Sub(p.lastAt) >= outboxProbeTTL {
		ctx, cancel := context.WithTimeout(context.Background(), outboxProbeTimeout)
		st, err := p.stats(ctx)
		cancel()
		if err != nil {
			p.failures++
		} else {
			p.last, p.lastAt = st, now
		}
	}
	return p.last, now, p.failures
}

// provisionMetrics registers the app's metrics into the config's
// registry and wires the engine's hooks to them. Call it once the
// courier exists: a scrape may come at once.
func (a *App) provisionMetrics(ctx caddy.Context, cfg *flows.Config, engine string) error {
	a.gates = &gateLabels{seq: map[string]int{}}
	m := kratosMetrics
	cfg.Events = append(cfg.Events, metricsSink{m})
	cfg.ObserveWhoami = observeSeconds(m.whoamiDuration)
	caches := func() (sessionstore.CacheStats, bool) { return sessionstore.CacheStats{}, false }
	if cs, ok := a.pool.store.(cacheReporter); ok {
		caches = func() (sessionstore.CacheStats, bool) { return cs.CacheStats(), true }
	}
	var outbox *outboxProbe
	if a.courier != nil {
		outbox = newOutboxProbe(a.courier.Stats)
	}
	return registerMetrics(ctx, append(m.collectors(), newAppMetrics(engine, caches, outbox))...)
}

// cacheReporter is an engine that reports its caches (both engines do).
type cacheReporter interface {
	CacheStats() sessionstore.CacheStats
}

// observeSeconds adapts a histogram in seconds to a duration callback.
func observeSeconds(h prometheus.Observer) func(time.Duration) {
	return func(d time.Duration) { h.Observe(d.Seconds()) }
}

// courierAttempted counts a delivery attempt by the message's new state.
func courierAttempted(s courier.State) {
	if c, ok := kratosMetrics.courierResults[s]; ok {
		c.Inc()
	}
}
