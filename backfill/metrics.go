package backfill

import "github.com/prometheus/client_golang/prometheus"

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
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_backfill_rows_total",
			Help: "Rows the backfill handled, by source (of several; empty for one), table and result (inserted, updated, already_present, failed, deleted; migrated for the API).",
		}, []string{"source", "table", "result"}),
		Deviations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_verify_deviations",
			Help: "Rows that differ between legacy and modern at the last verify, by table and kind (missing, extra, changed).",
		}, []string{"table", "kind"}),
		LastVerify: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_verify_last_run_timestamp_seconds",
			Help: "When the last verify finished.",
		}),
	}
	reg.MustRegister(m.Rows, m.Deviations, m.LastVerify)
	return m
}
