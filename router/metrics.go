package router

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
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
	broken          *prometheus.CounterVec
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
	staleWrites     *prometheus.CounterVec
	replayBuffered  prometheus.Gauge
}

// NewMetrics registers the router's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests:        metrics.Requests.CounterVec(),
		broken:          metrics.BrokenAnswers.CounterVec(),
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
		staleWrites:     metrics.StaleFlagsWrites.CounterVec(),
		replayBuffered:  metrics.ReplayBuffered.Gauge(),
	}
	reg.MustRegister(m.requests, m.broken, m.duration, m.fallbacks, m.routeMode, m.shadowResults, m.shadowDurations, m.dualWrites, m.forced, m.forceIgnored, m.schemaDrift,
		m.refusals, m.staleWrites, m.replayBuffered)
	return m
}

// refused counts a request the facade answered alone, by why.
func (m *Metrics) refused(route string, why refusal) {
	m.refusals.WithLabelValues(route, string(why)).Inc()
}

func (m *Metrics) shadowResult(rt *route, result string) {
	count(m.shadowResults, rt.series.shadowResults[:], shadowResults[:], rt.name, result)
}

func (m *Metrics) shadowDuration(rt *route, d time.Duration) {
	rt.series.shadowDuration.get(m.shadowDurations, rt.name).Observe(d.Seconds())
}

// brokeOff counts an answer of backend on route that broke off mid-body,
// err being the read that broke it. Only a broken answer takes the series
// (WithLabelValues), so the normal path pays nothing.
func (m *Metrics) brokeOff(route, backend string, err error) {
	m.broken.WithLabelValues(route, backend, brokenReason(err)).Inc()
}

// brokenReason is the reason label of a body read's error, a closed set:
// stalled (a read waited for the backend's timeout: upstream's
// errBodyStalled, or a read deadline), closed (the connection ended short
// of the body: io.ErrUnexpectedEOF, a chunked body without its last
// chunk), reset (the connection failed: a reset, any other network
// error), malformed (anything else: net/http's errors for a chunk size
// that is no number, an unreadable trailer).
func brokenReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "stalled"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case ne != nil || errors.Is(err, syscall.ECONNRESET):
		return "reset"
	}
	return "malformed"
}

// DualWrite counts one step of a dual write; the repair worker counts the
// steps after the request with it.
func (m *Metrics) DualWrite(route, result string) {
	m.dualWrites.WithLabelValues(route, result).Inc()
}

// statusLabels are the code label values, precomputed so that counting a
// request allocates nothing. The set is closed, whatever a backend
// answers: a status net/http registers is its number; any other is its
// class (a backend answering 299, 418, 499 or 599 counts as "2xx",
// "418", "4xx", "5xx"), or "other" outside 100–599, so that a hostile or
// broken backend cannot mint label values. "499" is codeClientLeft's
// alone.
var statusLabels = func() [600]string {
	var s [600]string
	for i := range s {
		switch {
		case i < 100:
			s[i] = codeOther
		case http.StatusText(i) != "":
			s[i] = strconv.Itoa(i)
		default:
			s[i] = strconv.Itoa(i/100) + "xx"
		}
	}
	return s
}()

// codeOther is the code label of a status outside 100–599.
const codeOther = "other"

// codeClientLeft is the code an exchange is counted with when its client
// went away before its answer: the label "499", nginx's convention. A
// backend answering 499 itself counts as "4xx", so that the label says
// one thing (found by the red team: a backend's 499 read as clients
// leaving, and stayed out of modern's guard counts).
const codeClientLeft = -1

func codeLabel(code int) string {
	if code == codeClientLeft {
		return "499"
	}
	if code < 0 || code >= len(statusLabels) {
		return codeOther
	}
	return statusLabels[code]
}

// exchange counts one exchange of rt with backend (a backend's name, or
// "none" when the facade answered alone).
func (m *Metrics) exchange(rt *route, backend string, code int, d time.Duration) {
	var b *backendSeries
	switch backend {
	case "legacy":
		b = &rt.series.legacy
	case "modern":
		b = &rt.series.modern
	default:
		m.requests.WithLabelValues(rt.name, backend, codeLabel(code)).Inc()
		m.duration.WithLabelValues(rt.name, backend).Observe(d.Seconds())
		return
	}
	b.requests(m, rt.name, backend, code).Inc()
	b.duration.get(m.duration, rt.name, backend).Observe(d.Seconds())
}

func (m *Metrics) fallback(rt *route, reason string) {
	count(m.fallbacks, rt.series.fallbacks[:], fallbackReasons[:], rt.name, reason)
}

// count counts one in vec's series of route and value, through the
// route's kept handle (kept[i] for values[i]) when value is one of values.
func count(vec *prometheus.CounterVec, kept []counterSeries, values []string, route, value string) {
	if i := slices.Index(values, value); i >= 0 {
		kept[i].get(vec, route, value).Inc()
		return
	}
	vec.WithLabelValues(route, value).Inc()
}

// routeSeries are a route's handles on the series the request path
// counts in, each taken on its first use and kept with the route: a
// handle costs an atomic load, where WithLabelValues hashes the labels and
// takes a lock (100-180 ns, several times a request). They are taken on
// use, never ahead, so that a table of 10,000 routes does not fill
// /metrics with series that count nothing. A reload builds new routes,
// which take their handles again.
type routeSeries struct {
	legacy, modern backendSeries
	fallbacks      [len(fallbackReasons)]counterSeries
	shadowResults  [len(shadowResults)]counterSeries
	shadowDuration observerSeries
}

// backendSeries are a route's series of exchanges with one backend.
type backendSeries struct {
	duration observerSeries
	// codes are the request counters of the last status codes counted, a
	// few, as a route answers with few codes at a time.
	codes [4]atomic.Pointer[codeCounter]
	next  atomic.Uint32 // the slot of codes a new code takes
}

type codeCounter struct {
	code int
	prometheus.Counter
}

// requests is the route's request counter of backend and code.
func (b *backendSeries) requests(m *Metrics, route, backend string, code int) prometheus.Counter {
	for i := range b.codes {
		if c := b.codes[i].Load(); c != nil && c.code == code {
			return c.Counter
		}
	}
	c := &codeCounter{code, m.requests.WithLabelValues(route, backend, codeLabel(code))}
	b.codes[b.next.Add(1)%uint32(len(b.codes))].Store(c)
	return c.Counter
}

// counterSeries is a route's handle on one counter series.
type counterSeries struct {
	p atomic.Pointer[prometheus.Counter]
}

func (s *counterSeries) get(vec *prometheus.CounterVec, route, value string) prometheus.Counter {
	if c := s.p.Load(); c != nil {
		return *c
	}
	c := vec.WithLabelValues(route, value)
	s.p.Store(&c)
	return c
}

// observerSeries is a route's handle on one histogram series.
type observerSeries struct {
	p atomic.Pointer[prometheus.Observer]
}

func (s *observerSeries) get(vec *prometheus.HistogramVec, labels ...string) prometheus.Observer {
	if o := s.p.Load(); o != nil {
		return *o
	}
	o := vec.WithLabelValues(labels...)
	s.p.Store(&o)
	return o
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
	fallbackReasons = [...]string{"not_found", "server_error", "timeout", "error", reasonConfirmedMissing}
	shadowResults   = [...]string{"match", "mismatch", "error", "dropped", "too_large"}
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
