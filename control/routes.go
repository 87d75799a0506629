package control

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"strangler/shadow"
)

// AdminDeps are what the admin listener serves from.
type AdminDeps struct {
	Gatherer  prometheus.Gatherer
	Readiness *Readiness
	Flags     *Flags
	Tokens    *Tokens
	Reports   *Reports
	Audit     AuditReader
	Repairs   RepairStore
	// Sessions keeps the status page's logins.
	Sessions SessionStore
	Samples  shadow.SampleStore
	// Noise lists a route's learned noise fields.
	Noise func(route string) []string
	// Live is this replica's recent traffic per route.
	Live LiveStats
	Log  *slog.Logger
	Now  func() time.Time

	// Writes says whether the store takes dual-write journal writes, for
	// /readyz; nil leaves them out.
	Writes WriteHealth
}

// NewAdmin returns the admin listener's handler. Every route of the admin
// API is listed here.
func NewAdmin(d AdminDeps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &admin{AdminDeps: d, log: d.Log, now: d.Now}
	mux := http.NewServeMux()

	// Open to orchestrators and Prometheus.
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", a.readyz)

	// The admin API: a bearer token on every call.
	mux.Handle("GET /admin/routes", a.api(a.listRoutes))
	mux.Handle("GET /admin/routes/{name}", a.api(a.getRoute))
	mux.Handle("PATCH /admin/routes/{name}", a.mutation(a.patchRoute))
	mux.Handle("GET /admin/routes/{name}/report", a.api(a.routeReport))
	mux.Handle("GET /admin/report", a.api(a.report))
	mux.Handle("GET /admin/audit", a.api(a.audit))
	mux.Handle("GET /admin/repairs", a.api(a.listRepairs))
	mux.Handle("GET /admin/repairs/{id}", a.api(a.getRepair))
	mux.Handle("POST /admin/repairs/{id}/retry", a.mutation(a.retryRepair))
	mux.Handle("DELETE /admin/repairs/{id}", a.mutation(a.discardRepair))
	mux.Handle("GET /admin/diffs", a.api(a.diffs))

	// The status page: a session cookie and a form token.
	a.pageRoutes(mux)
	return mux
}
