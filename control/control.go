// Package control owns the admin listener: metrics, health and readiness
// for orchestrators and dashboards.
package control

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is what /readyz reports: ready once the configuration is loaded
// and the listeners are up, not ready again while draining for shutdown.
type Readiness struct {
	state atomic.Int32
}

const (
	starting int32 = iota
	ready
	draining
)

// Ready marks the facade ready for traffic.
func (r *Readiness) Ready() { r.state.Store(ready) }

// Drain marks the facade as shutting down: load balancers should stop
// sending it new requests.
func (r *Readiness) Drain() { r.state.Store(draining) }

// NewAdmin returns the admin listener's handler.
func NewAdmin(gatherer prometheus.Gatherer, readiness *Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch readiness.state.Load() {
		case ready:
			w.Write([]byte("ready\n"))
		case draining:
			http.Error(w, "draining", http.StatusServiceUnavailable)
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	return mux
}
