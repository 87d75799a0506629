package backfill

import (
	"strangler/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the backfill's and verify's Prometheus metrics. Labels are
// configured table names and closed sets, never keys.
type Metrics struct {
	// Rows counts rows by source (a named source's, empty for the single
	// source), table and result: inserted, updated,
	// already_present, failed or deleted (--propagate-deletes); for tables
	// sent to the API, migrated or failed.
	Rows *prometheus.CounterVec
	// Deviations is the last verify's count per table and kind: missing,
	// extra or changed.
	Deviations *prometheus.GaugeVec
	// LastVerify is when the last verify finished.
	LastVerify prometheus.Gauge
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Rows:       metrics.BackfillRows.CounterVec(),
		Deviations: metrics.VerifyDeviations.GaugeVec(),
		LastVerify: metrics.VerifyLastRun.Gauge(),
	}
	reg.MustRegister(m.Rows, m.Deviations, m.LastVerify)
	return m
}
