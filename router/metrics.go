package router

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/shadow"
)

// Metrics are the router's Prometheus collectors. Labels carry route names,
// never raw paths or ids.
type Metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	fallbacks       *prometheus.CounterVec
	routeMode       *prometheus.GaugeVec
	shadowResults   *prometheus.CounterVec
	shadowDurations *prometheus.HistogramVec
	dualWrites      *prometheus.CounterVec
	forced          *prometheus.CounterVec
	forceIgnored    *prometheus.CounterVec
	schemaDrift     *prometheus.CounterVec
}

// NewMetrics registers the router's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_requests_total",
			Help: "Backend exchanges by route, backend and status code; a fallback counts the modern attempt and the legacy answer. 499: the client left first.",
		}, []string{"route", "backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_request_duration_seconds",
			Help:    "Time from receiving a request to the end of a backend exchange, by route and backend.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "backend"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_fallback_total",
			Help: "Requests a fallback route served from legacy, by reason: not_found, server_error, timeout, error; confirmed_missing is a not_found that legacy answered 404 or 410 too (the resource exists nowhere), which holds back neither gates nor retirement.",
		}, []string{"route", "reason"}),
		routeMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_route_mode",
			Help: "1 for each route's current mode; a route has one series, for the mode it is in.",
		}, []string{"route", "mode"}),
		shadowResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_shadow_comparisons_total",
			Help: "Shadow comparisons by route and result: match, mismatch, error, dropped (pool full), too_large.",
		}, []string{"route", "result"}),
		shadowDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_shadow_duration_seconds",
			Help:    "Time the shadow copy took to be answered, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		dualWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_dualwrite_total",
			Help: "Dual writes by route and result: queued, skipped (primary refused), unknown (primary outcome lost), refused (journal down: 503), applied, failed (an attempt; retried), dead.",
		}, []string{"route", "result"}),
		forced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_forced_requests_total",
			Help: "Requests a valid X-Strangler-Force header sent to one backend, past the route's mode and split, by route and backend.",
		}, []string{"route", "backend"}),
		forceIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_force_ignored_total",
			Help: "X-Strangler-Force headers ignored (the request routed as usual), by route and reason: malformed, forged (bad signature), expired, other_route, dual_write, off (no force_token_key).",
		}, []string{"route", "reason"}),
		schemaDrift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_schema_drift_total",
			Help: "Departures of modern's JSON answers from the schema learned from legacy's, by route and kind: missing (a field legacy always sends), type (a type legacy never sent there); each field once per answer.",
		}, []string{"route", "kind"}),
	}
	reg.MustRegister(m.requests, m.duration, m.fallbacks, m.routeMode, m.shadowResults, m.shadowDurations, m.dualWrites, m.forced, m.forceIgnored, m.schemaDrift)
	return m
}

func (m *Metrics) shadowResult(route, result string) {
	m.shadowResults.WithLabelValues(route, result).Inc()
}

func (m *Metrics) shadowDuration(route string, d time.Duration) {
	m.shadowDurations.WithLabelValues(route).Observe(d.Seconds())
}

// DualWrite counts one step of a dual write; the repair worker counts the
// steps after the request with it.
func (m *Metrics) DualWrite(route, result string) {
	m.dualWrites.WithLabelValues(route, result).Inc()
}

// statusLabels are the code label values, precomputed so that counting a
// request allocates nothing.
var statusLabels = func() [600]string {
	var s [600]string
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func codeLabel(code int) string {
	if code < 0 || code >= len(statusLabels) {
		return strconv.Itoa(code)
	}
	return statusLabels[code]
}

func (m *Metrics) exchange(route, backend string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, backend, codeLabel(code)).Inc()
	m.duration.WithLabelValues(route, backend).Observe(d.Seconds())
}

func (m *Metrics) fallback(route, reason string) {
	m.fallbacks.WithLabelValues(route, reason).Inc()
}

// setModes publishes the table's route modes, forgetting removed routes
// and modes left. One series per route keeps 10,000 routes affordable; a
// dashboard reads the mode from the label.
func (m *Metrics) setModes(t *Table) {
	m.routeMode.Reset()
	for _, rt := range t.byName {
		m.routeMode.WithLabelValues(rt.name, string(rt.mode)).Set(1)
		m.initMode(rt)
	}
}

// Result labels of the counters set to 0 for the routes whose mode counts
// them, so that rates and alerts see a series from the start rather than
// from the first event.
var (
	fallbackReasons = []string{"not_found", "server_error", "timeout", "error", reasonConfirmedMissing}
	shadowResults   = []string{"match", "mismatch", "error", "dropped", "too_large"}
	dualWriteSteps  = []string{"queued", "skipped", "unknown", "refused", "applied", "failed", "dead"}
)

func (m *Metrics) initMode(rt *route) {
	switch rt.mode {
	case domain.ModeFallback:
		for _, r := range fallbackReasons {
			m.fallbacks.WithLabelValues(rt.name, r)
		}
		m.initSchemaDrift(rt.name)
	case domain.ModeShadow:
		for _, r := range shadowResults {
			m.shadowResults.WithLabelValues(rt.name, r)
		}
		m.initSchemaDrift(rt.name)
	case domain.ModeDualWrite:
		for _, r := range dualWriteSteps {
			m.dualWrites.WithLabelValues(rt.name, r)
		}
	}
}

func (m *Metrics) initSchemaDrift(route string) {
	for _, k := range []string{shadow.DriftMissing, shadow.DriftType} {
		m.schemaDrift.WithLabelValues(route, k)
	}
}
