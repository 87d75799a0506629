package dualwrite

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/router"
	"strangler/store"
	"strangler/upstream"
)

// These tests run the worker's steps one at a time (a claim, a recovery
// pass, a purge) against a real state store and real HTTP backends on
// loopback, on a clock the test moves.

// routes is the configuration as the worker sees it: backends and route
// settings the tests change at will, and the facade's own router for what
// a create made, so that recovery is held to the rule the request path
// follows.
type routes struct {
	mu        sync.Mutex
	backends  map[string]*upstream.Upstream
	dualWrite map[string]routeSettings
	router    *router.Router
}

// routeSettings are a dual-write route's id_field and primary_idempotent.
type routeSettings struct {
	idField    string
	idempotent bool
}

func (r *routes) Backend(name domain.Backend) *upstream.Upstream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backends[string(name)]
}

func (r *routes) DualWrite(route string) (domain.FieldPath, bool, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.dualWrite[route]
	if !ok {
		return nil, false, false
	}
	var p domain.FieldPath
	if s.idField != "" {
		p, _ = domain.ParseFieldPath(s.idField)
	}
	return p, s.idempotent, true
}

func (r *routes) Template(route string) string {
	if _, _, ok := r.DualWrite(route); ok {
		return "/items/{id}"
	}
	return ""
}

func (r *routes) Created(route string, w domain.Repair, o *domain.Outcome) {
	r.router.Created(route, w, o)
}

// newRouter is the facade's router with the tests' routes.
func newRouter(t *testing.T, legacyURL, modernURL string, journal router.Journal) *router.Router {
	t.Helper()
	cfg, err := configfile.Parse("test.yaml", fmt.Appendf(nil, `
backends:
  legacy: {url: %q}
  modern: {url: %q}
routes:
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
  - {name: delete-item, match: "DELETE /items/{id}", mode: dual-write}
  - {name: create-item, match: "POST /items", mode: dual-write, id_field: id}
`, legacyURL, modernURL), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	rtr := router.New(router.Deps{Metrics: router.NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.DiscardHandler), Journal: journal})
	table, err := rtr.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rtr.Swap(table)
	return rtr
}

// setBackend points name at rawURL with timeout.
func (r *routes) setBackend(t *testing.T, name, rawURL string, timeout time.Duration) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.backends[name] = upstream.New(name, upstream.Config{URL: u, Timeout: timeout})
}

// rig is a worker with its store, backends, metrics, logs and clock.
type rig struct {
	t              *testing.T
	dsn            string
	store          *store.Store
	w              *Worker
	routes         *routes
	legacy, modern *testkit.Backend
	reg            *prometheus.Registry
	logs           *testkit.Logs
	clock          *testkit.Clock
}

// testSettings are the repairs section the tests use unless they say
// otherwise.
var testSettings = config.Repairs{MaxAttempts: 5, Backoff: config.Duration(time.Second), MaxBackoff: config.Duration(time.Minute), Workers: 4, Keep: config.Duration(time.Hour)}

// sqlite is the DSN of a new SQLite store in the test's folder.
func sqlite(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "strangler.db")
}

// postgres is the DSN of a new schema on the test PostgreSQL server.
func postgres(t *testing.T) string { return testdb.Postgres(t) }

// openStore opens dsn for the rest of the test.
func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newRig returns a worker on a new store at dsn, with legacy and modern
// answering 200 until the test says otherwise. The clock starts a minute
// after the real time: writes journaled now are due at once.
func newRig(t *testing.T, dsn string, s config.Repairs) *rig {
	t.Helper()
	r := &rig{
		t:      t,
		dsn:    dsn,
		store:  openStore(t, dsn),
		routes: &routes{backends: map[string]*upstream.Upstream{}, dualWrite: map[string]routeSettings{}},
		legacy: testkit.NewBackend(t, nil),
		modern: testkit.NewBackend(t, nil),
		logs:   &testkit.Logs{},
		clock:  testkit.NewClock(time.Now().Add(time.Minute).UTC().Truncate(time.Second)),
	}
	r.routes.router = newRouter(t, r.legacy.URL, r.modern.URL, NewOutcomes(r.store, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	r.routes.setBackend(t, "legacy", r.legacy.URL, 2*time.Second)
	r.routes.setBackend(t, "modern", r.modern.URL, 2*time.Second)
	r.w = r.newWorker(r.store, s)
	return r
}

// newWorker returns another worker (another replica) on st, sharing the
// rig's routes, clock and logs, counting into a registry of its own.
func (r *rig) newWorker(st *store.Store, s config.Repairs) *Worker {
	reg := prometheus.NewRegistry()
	if r.reg == nil {
		r.reg = reg
	}
	counts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strangler_dualwrite_total", Help: "steps"}, []string{"route", "result"})
	reg.MustRegister(counts)
	w := New(st, r.routes, nil, s, reg, func(route, result string) { counts.WithLabelValues(route, result).Inc() },
		r.logs.Logger(slog.LevelDebug))
	w.now = r.clock.Now
	return w
}

// advance moves the rig's clock on by d, and lets d pass on the store's
// clock (passStoreTime): both replicas' clocks and the store's move on.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.clock.Advance(d)
	testdb.PassRepairTime(r.t, r.dsn, d, "next_attempt_at", "lease_until")
}

// dueIn is how long until the write id is due on the store's clock,
// which runs at the real time's pace (see passStoreTime).
func (r *rig) dueIn(id string) time.Duration {
	r.t.Helper()
	return time.Until(r.repair(id).NextAttemptAt)
}

// count is how many times route's writes reached result on the rig's
// first worker.
func (r *rig) count(route, result string) float64 {
	return testkit.Gather(r.t, r.reg).Value("strangler_dualwrite_total", "route", route, "result", result)
}

// put is a journaled PUT of an item, as the facade writes it down.
func put(id, item, body string) domain.Intent {
	return domain.Intent{
		ID: id, Route: "put-item", Resource: "/items/" + item, Method: http.MethodPut,
		Target: "/items/" + item + "?notify=1",
		Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-" + id}},
		Body:   []byte(body), Primary: "legacy",
	}
}

// asJournaled is in as the facade journals it under the route's current
// settings: with its primary_idempotent, and what it stands for.
func (r *rig) asJournaled(in domain.Intent) domain.Intent {
	_, in.PrimaryIdempotent, _ = r.routes.DualWrite(in.Route)
	in.StandsFor = canonical.StandsFor(in.Method, in.Header, in.Target, in.Body)
	return in
}

// journal writes in down and records the primary's answer o, as the
// facade does around the primary's call.
func (r *rig) journal(in domain.Intent, o domain.Outcome) {
	r.t.Helper()
	ctx := context.Background()
	if err := r.store.BeginWrite(ctx, r.asJournaled(in), time.Hour); err != nil {
		r.t.Fatal(err)
	}
	if err := r.store.RecordOutcome(ctx, in.ID, o); err != nil {
		r.t.Fatal(err)
	}
}

// deliverDue has w claim what is due on the rig's clock and waits until
// those deliveries are settled.
func (r *rig) deliverDue(w *Worker) {
	w.claimDue(context.Background())
	w.inflight.Wait()
}

// repair reads a journaled write back.
func (r *rig) repair(id string) domain.Repair {
	r.t.Helper()
	rep, err := r.store.GetRepair(context.Background(), id, true)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// gate returns a channel a backend handler can wait on and the function
// that opens it, which also runs when the test ends: a test that fails
// early must not leave a handler blocked, or closing its server would
// wait forever.
func gate(t *testing.T) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return ch, open
}

// receive returns the next value from ch, failing the test after 30 s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing after 30 s", what)
		panic("unreachable")
	}
}
