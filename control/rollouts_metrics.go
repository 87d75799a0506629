package control

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/metrics"
	"strangler/store"
)

// Collector returns the ramps' and change requests' metrics, read from
// the store at each scrape: every replica reports the same numbers, so
// dashboards and alerts take their max. A scrape that cannot read the
// store leaves them out (strangler_store_up says why).
func (r *Rollouts) Collector() prometheus.Collector { return rolloutCollector{r} }

type rolloutCollector struct{ r *Rollouts }

var (
	rampStateDesc    = metrics.RampState.Desc()
	rampWaitingDesc  = metrics.RampWaiting.Desc()
	changesPendDesc  = metrics.ChangesPending.Desc()
	changeOldestDesc = metrics.ChangeOldest.Desc()
)

func (c rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
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

func (c rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := storeCall(context.Background())
	defer cancel()
	now := c.r.clock()
	if ramps, err := c.r.ramps.Ramps(ctx); err == nil {
		waited := map[string]float64{}
		for route, rp := range ramps {
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
	if list, err := c.r.changes.Changes(ctx, store.ChangeFilter{State: store.ChangePending, Limit: 1000}); err == nil {
		oldest, pending := 0.0, 0
		for _, c := range list {
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
