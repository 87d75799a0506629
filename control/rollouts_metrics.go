package control

import (
	"context"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/metrics"
	"strangler/store"
)

// Collector returns the ramps' and change requests' metrics, read from
// the store at each scrape: every replica reports the same numbers, so
// dashboards and alerts take their max. A scrape that cannot read the
// store leaves them out (strangler_store_up says why). A scrape that
// comes while another reads the store reports what the last read found:
// /metrics needs no token, and the embedded store has one connection,
// which the request path's dual-write journal waits for behind every
// read.
func (r *Rollouts) Collector() prometheus.Collector { return &rolloutCollector{r: r} }

type rolloutCollector struct {
	r       *Rollouts
	reading sync.Mutex // held by the scrape reading the store
	mu      sync.Mutex
	last    *rolloutRead // nil before the first read ended
}

// rolloutRead is what one read of the store found.
type rolloutRead struct {
	ramps                map[string]store.Ramp
	changes              []store.Change
	rampsErr, changesErr error
}

// read reads the store, or returns what the last read found while
// another scrape reads it (an error, before any read ended).
func (c *rolloutCollector) read() rolloutRead {
	if !c.reading.TryLock() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.last == nil {
			return rolloutRead{rampsErr: errReadUnderWay, changesErr: errReadUnderWay}
		}
		return *c.last
	}
	defer c.reading.Unlock()
	ctx, cancel := storeCall(context.Background())
	defer cancel()
	var rd rolloutRead
	rd.ramps, rd.rampsErr = c.r.ramps.Ramps(ctx)
	rd.changes, rd.changesErr = c.r.changes.Changes(ctx, store.ChangeFilter{State: store.ChangePending, Limit: 1000})
	c.mu.Lock()
	c.last = &rd
	c.mu.Unlock()
	return rd
}

// errReadUnderWay is the result of a scrape that came while the first
// read of the store was under way.
var errReadUnderWay = errors.New("control: the first read of the store is under way")

var (
	rampStateDesc    = metrics.RampState.Desc()
	rampWaitingDesc  = metrics.RampWaiting.Desc()
	changesPendDesc  = metrics.ChangesPending.Desc()
	changeOldestDesc = metrics.ChangeOldest.Desc()
)

func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rampStateDesc
	ch <- rampWaitingDesc
	ch <- changesPendDesc
	ch <- changeOldestDesc
}

// rampMetricState is the state a ramp under way reports: running,
// waiting (a due step its gates refuse), paused or held; "" for one
// that is done or cancelled.
func rampMetricState(rp store.Ramp) string {
	switch rp.State {
	case store.RampRunning:
		if rp.Waiting != "" {
			return "waiting"
		}
		return "running"
	case store.RampPaused, store.RampHeld:
		return string(rp.State)
	}
	return ""
}

func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	rd := c.read()
	now := c.r.clock()
	if rd.rampsErr == nil {
		waited := map[string]float64{}
		for route, rp := range rd.ramps {
			state := rampMetricState(rp)
			if state == "" {
				continue
			}
			ch <- prometheus.MustNewConstMetric(rampStateDesc, prometheus.GaugeValue, 1, route, state)
			if state == "waiting" && !rp.WaitingSince.IsZero() {
				waited[route] = now.Sub(rp.WaitingSince).Seconds()
			}
		}
		// Every route has its series, 0 without a waiting ramp, so that
		// an alert sees the first wait.
		for _, rf := range c.r.flags.All() {
			ch <- prometheus.MustNewConstMetric(rampWaitingDesc, prometheus.GaugeValue, waited[rf.Route.Name], rf.Route.Name)
		}
	}
	if rd.changesErr == nil {
		oldest, pending := 0.0, 0
		for _, c := range rd.changes {
			if c.StateAt(now) != store.ChangePending {
				continue // expired, before the driver records it so
			}
			pending++
			oldest = max(oldest, now.Sub(c.CreatedAt).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(changesPendDesc, prometheus.GaugeValue, float64(pending))
		ch <- prometheus.MustNewConstMetric(changeOldestDesc, prometheus.GaugeValue, oldest)
	}
}
