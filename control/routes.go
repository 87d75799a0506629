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
	Gatherer prometheus.Gatherer
	// Registerer takes the admin listener's own metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	Readiness  *Readiness
	Flags      *Flags
	Tokens     *Tokens
	// Proxies are the trusted proxies in front of the admin listener;
	// nil trusts none.
	Proxies *Proxies
	// Hosts are the host names the listener answers to besides localhost
	// and IP addresses; nil answers to those alone.
	Hosts   *Hosts
	Reports *Reports
	Audit   AuditReader
	Repairs RepairStore
	// Sessions keeps the status page's logins.
	Sessions SessionStore
	// Rollouts are the scheduled ramps and change requests; nil leaves
	// them out (their endpoints answer 503).
	Rollouts *Rollouts
	Samples  shadow.SampleStore
	// Noise lists a route's learned noise fields.
	Noise func(route string) []string
	// Schemas are the routes' learned response schemas; nil keeps none.
	Schemas SchemaSource
	// Live is this replica's recent traffic per route.
	Live LiveStats
	Log  *slog.Logger
	Now  func() time.Time
	// StoreLead is how far the state store's clock is ahead of Now
	// (store.Store.LastClockOffset): force values expire on that clock,
	// which every replica checking them shares; nil means none.
	StoreLead func() time.Duration

	// Writes says whether the store takes dual-write journal writes, for
	// /readyz; nil leaves them out.
	Writes WriteHealth
}

// storeNow is now on the state store's clock (StoreLead ahead of Now),
// which the times the store stamps itself are on.
func (a *admin) storeNow() time.Time {
	if a.StoreLead == nil {
		return a.now()
	}
	return a.now().Add(a.StoreLead())
}

// NewAdmin returns the admin listener's handler. Every route of the admin
// API is listed here; who may call each is decided in permissions.
func NewAdmin(d AdminDeps) http.Handler { return newAdmin(d).handler() }

// handler is the admin listener: its mux behind the security headers and
// closeRefused, which so reach the mux's own 404 and 405 answers too, and
// those in JSON (muxRefusals), and behind the Host check (checkHost),
// which comes before any handler reads a cookie or the store.
func (a *admin) handler() http.Handler {
	return withHeaders(closeRefused(a.checkHost(a.muxRefusals(a.mux))))
}

// maxScrapes is how many /metrics scrapes are gathered at once; more
// answer 503 at once. /metrics needs no token, and a scrape costs far
// more than /healthz (every collector, /proc read for the process
// metrics, the store read for the rollouts'): 300 clients scraping in a
// loop made each dual write wait for seconds. Prometheus scrapes a
// replica once per server, two for an HA pair (node_exporter's limit is
// 40, for a host's every collector).
const maxScrapes = 4

func newAdmin(d AdminDeps) *admin {
	if d.Now == nil {
		d.Now = time.Now
	}
	a := &admin{
		AdminDeps: d, mux: http.NewServeMux(), perms: permissions(),
		crossOrigin: http.NewCrossOriginProtection(), denied: newDeniedCounter(d.Registerer),
		lockouts: newLockoutCounter(d.Registerer),
		log:      d.Log, now: d.Now,
	}

	// Open to orchestrators and Prometheus.
	a.handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{MaxRequestsInFlight: maxScrapes}))
	a.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }))
	a.handle("GET /readyz", http.HandlerFunc(a.readyz))

	// The admin API: a bearer token on every call.
	a.handle("GET /admin/routes", a.api(a.listRoutes))
	a.handle("GET /admin/routes/{name}", a.api(a.getRoute))
	a.handle("PATCH /admin/routes/{name}", a.mutation(a.patchRoute))
	a.handle("GET /admin/routes/{name}/report", a.api(a.routeReport))
	a.handle("GET /admin/report", a.api(a.report))
	a.handle("GET /admin/audit", a.api(a.audit))
	a.handle("GET /admin/repairs", a.api(a.listRepairs))
	a.handle("GET /admin/repairs/{id}", a.api(a.getRepair))
	a.handle("POST /admin/repairs/{id}/retry", a.mutation(a.retryRepair))
	a.handle("POST /admin/repairs/{id}/stop", a.mutation(a.stopRepair))
	a.handle("DELETE /admin/repairs/{id}", a.mutation(a.discardRepair))
	a.handle("POST /admin/repairs/retry", a.mutation(a.retryRepairs))
	a.handle("POST /admin/repairs/discard", a.mutation(a.discardRepairs))
	a.handle("GET /admin/diffs", a.api(a.diffs))
	a.handle("POST /admin/routes/{name}/force-token", a.mutation(a.forceToken))
	a.handle("GET /admin/routes/{name}/schema", a.api(a.routeSchema))
	a.handle("GET /admin/changes", a.api(a.listChanges))
	a.handle("GET /admin/changes/{change}", a.api(a.getChange))
	a.handle("POST /admin/changes/{change}/approve", a.mutation(a.approveChange))
	a.handle("POST /admin/changes/{change}/reject", a.mutation(a.rejectChange))

	// The status page: a session cookie and a form token.
	a.pageRoutes()
	return a
}

// handle registers an endpoint of the admin listener.
func (a *admin) handle(pattern string, h http.Handler) {
	a.mux.Handle(pattern, h)
	a.patterns = append(a.patterns, pattern)
}
