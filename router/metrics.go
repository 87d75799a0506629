package router

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
)

// Metrics are the router's Prometheus collectors. Labels carry route names,
// never raw paths or ids.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
	routeMode *prometheus.GaugeVec
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
			Help: "Requests a fallback route served from legacy, by reason: not_found, server_error, timeout, error.",
		}, []string{"route", "reason"}),
		routeMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_route_mode",
			Help: "1 for each route's current mode, 0 for its other modes.",
		}, []string{"route", "mode"}),
	}
	reg.MustRegister(m.requests, m.duration, m.fallbacks, m.routeMode)
	return m
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

var allModes = []config.Mode{config.ModeLegacy, config.ModeFallback, config.ModeModern}

// setModes publishes the table's route modes, forgetting removed routes.
func (m *Metrics) setModes(t *Table) {
	m.routeMode.Reset()
	for _, rt := range t.byName {
		for _, mode := range allModes {
			v := 0.0
			if rt.mode == mode {
				v = 1
			}
			m.routeMode.WithLabelValues(rt.name, string(mode)).Set(v)
		}
	}
}
