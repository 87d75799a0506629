package router

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/metrics"
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
	refusals        *prometheus.CounterVec
	replayBuffered  prometheus.Gauge
}

// NewMetrics registers the router's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests:        metrics.Requests.CounterVec(),
		duration:        metrics.RequestDuration.HistogramVec(),
		fallbacks:       metrics.Fallbacks.CounterVec(),
		routeMode:       metrics.RouteMode.GaugeVec(),
		shadowResults:   metrics.ShadowComparisons.CounterVec(),
		shadowDurations: metrics.ShadowDuration.HistogramVec(),
		dualWrites:      metrics.DualWrites.CounterVec(),
		forced:          metrics.ForcedRequests.CounterVec(),
		forceIgnored:    metrics.ForceIgnored.CounterVec(),
		schemaDrift:     metrics.SchemaDrift.CounterVec(),
		refusals:        metrics.Refused.CounterVec(),
		replayBuffered:  metrics.ReplayBuffered.Gauge(),
	}
	reg.MustRegister(m.requests, m.duration, m.fallbacks, m.routeMode, m.shadowResults, m.shadowDurations, m.dualWrites, m.forced, m.forceIgnored, m.schemaDrift,
		m.refusals, m.replayBuffered)
	return m
}

// refused counts a request the facade answered alone, by why.
func (m *Metrics) refused(route string, why refusal) {
	m.refusals.WithLabelValues(route, string(why)).Inc()
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
// request allocates nothing. The set is closed, whatever a backend
// answers: a status net/http registers (and 499, the client left) is its
// number; any other is its class (a backend answering 299, 418 or 599
// counts as "2xx", "418", "5xx"), or "other" outside 100–599, so that a
// hostile or broken backend cannot mint label values.
var statusLabels = func() [600]string {
	var s [600]string
	for i := range s {
		switch {
		case i < 100:
			s[i] = codeOther
		case http.StatusText(i) != "" || i == statusClientClosed:
			s[i] = strconv.Itoa(i)
		default:
			s[i] = strconv.Itoa(i/100) + "xx"
		}
	}
	return s
}()

// codeOther is the code label of a status outside 100–599.
const codeOther = "other"

func codeLabel(code int) string {
	if code < 0 || code >= len(statusLabels) {
		return codeOther
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
