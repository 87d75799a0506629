package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"strangler/config"
	"strangler/control"
	"strangler/dualwrite"
	"strangler/edge"
	"strangler/internal/golog"
	"strangler/metrics"
	"strangler/router"
	"strangler/shadow"
	"strangler/stats"
	"strangler/store"
	"strangler/telemetry"
)

// facade is a serving process's components, built whole and in
// dependency order by newFacade, before anything runs.
type facade struct {
	cfg      *config.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	st       *store.Store
	counters *stats.Counters
	schemas  *shadow.Schemas
	journal  *dualwrite.Outcomes
	rtr      *router.Router
	worker   *dualwrite.Worker
	reports  *control.Reports
	flags    *control.Flags
	tokens   *control.Tokens
	proxies  *control.Proxies
	hosts    *control.Hosts
	guard    *control.Guard
	rollouts *control.Rollouts
	ready    *control.Readiness
	// current is the configuration in force, swapped on reload.
	current  atomic.Pointer[config.Config]
	reloader *reloader
	tracing  *telemetry.Tracing
	adminNow func() time.Time
	adminLim adminLimits
	// handling counts the public listener's requests in progress.
	handling atomic.Int64
}

// newFacade builds the facade's components for cfg over st. Kicks come
// first: the router and the outcome journal kick the writes the worker,
// built after the router it delivers through, then picks up.
func newFacade(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger, opts facadeOptions) (*facade, error) {
	f := &facade{cfg: cfg, log: log, st: st, reg: prometheus.NewRegistry(), reloader: opts.reloader, tracing: opts.tracing,
		counters: stats.NewCounters(), schemas: shadow.NewSchemas(), ready: &control.Readiness{}, adminNow: opts.adminNow, adminLim: opts.adminLimits}
	f.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if f.adminNow == nil {
		f.adminNow = time.Now
	}
	if f.adminLim == (adminLimits{}) {
		f.adminLim = adminLimits{read: adminReadTimeout, write: adminWriteTimeout, idle: adminIdleTimeout}
	}
	f.current.Store(cfg)
	routerMetrics := router.NewMetrics(f.reg)
	kicks := dualwrite.NewKicks()
	// Outcomes the store cannot take are kept in memory and retried.
	f.journal = dualwrite.NewOutcomes(st, kicks, f.reg, log)
	deps := router.Deps{
		Metrics: routerMetrics, Log: log, Journal: f.journal,
		Samples:    storeSamples{st},
		Noise:      st,
		Hasher:     st.Hasher(),
		Stats:      f.counters,
		RepairKeys: st,
		StoreLead:  st.LastClockOffset,
		Schemas:    f.schemas, SchemaStore: st,
		// The flags, built over the router below, read before any
		// request is served.
		Resync:  func(ctx context.Context) { f.flags.Resync(ctx) },
		Follows: func(ctx context.Context) (bool, time.Time) { return f.flags.Follows(ctx) },
	}
	if tr := f.tracing; tr != nil && tr.Enabled() {
		deps.Tracer, deps.Propagator = tr.Provider.Tracer("strangler"), tr.Propagator
		log.Info("tracing on: spans go to the OTLP exporter the OTEL_* variables configure")
	}
	f.rtr = router.New(deps)
	f.worker = dualwrite.New(st, f.rtr, kicks, cfg.Repairs, f.reg, routerMetrics.DualWrite, log)
	if deps.Tracer != nil {
		f.worker.SetTracing(deps.Tracer, deps.Propagator)
	}
	f.reports = &control.Reports{Counts: st, Flush: func(ctx context.Context) error {
		return f.counters.Flush(ctx, st, time.Now())
	}}
	snapshot := control.NewSnapshot(cfg.StateSnapshot, cfg.Store.Redacted())
	flags, err := control.NewFlags(ctx, cfg, st, snapshot, f.reports, f.rtr, log, time.Now)
	if err != nil {
		return nil, err
	}
	f.flags = flags
	f.reg.MustRegister(metrics.StoreUp.GaugeFunc(f.storeUp))
	f.tokens = &control.Tokens{}
	f.tokens.Set(cfg.Admin.AdminTokens())
	f.proxies = &control.Proxies{}
	f.proxies.Set(cfg.Admin.TrustedProxies)
	f.hosts = &control.Hosts{}
	f.hosts.Set(cfg.Admin.AdminHosts())
	f.guard = control.NewGuard(flags, f.counters, st, f.reg, log, time.Now)
	f.rollouts = control.NewRollouts(flags, st, st, f.tokens, log, f.adminNow)
	f.reg.MustRegister(f.rollouts.Collector())
	if rl := f.reloader; rl != nil {
		rl.current = &f.current
		rl.apply = f.applyFile
		rl.prepare(f.reg)
	}
	return f, nil
}

// applyFile applies a reloaded configuration file.
func (f *facade) applyFile(c *config.Config) error {
	if err := f.flags.SetFile(c); err != nil {
		return err
	}
	f.tokens.Set(c.Admin.AdminTokens())
	f.proxies.Set(c.Admin.TrustedProxies)
	f.hosts.Set(c.Admin.AdminHosts())
	f.worker.SetSettings(c.Repairs)
	return nil
}

// storeUp is strangler_store_up.
func (f *facade) storeUp() float64 {
	ok, _ := f.flags.StoreOK()
	if failing, _ := f.journal.WritesFailing(); ok && failing.IsZero() {
		return 1
	}
	return 0
}

// flushTraces sends the last spans, if tracing is on.
func flushTraces(tr *telemetry.Tracing, log *slog.Logger) {
	if tr != nil && tr.Enabled() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(ctx); err != nil {
			log.Warn("flushing the last traces failed", "error", err)
		}
	}
}

// facadeListeners are the public and the admin listener.
type facadeListeners struct{ public, admin net.Listener }

func listen(cfg *config.Config) (facadeListeners, error) {
	public, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return facadeListeners{}, fmt.Errorf("listen: %w", err)
	}
	admin, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		public.Close()
		return facadeListeners{}, fmt.Errorf("admin listen: %w", err)
	}
	return facadeListeners{public, admin}, nil
}

func (l facadeListeners) close() {
	l.public.Close()
	l.admin.Close()
}

// servers are the public and the admin server, each with the function
// that serves it until it is shut down.
type servers struct {
	public, admin           *http.Server
	servePublic, serveAdmin func() error
}

func (f *facade) servers(ln facadeListeners) (servers, error) {
	cfg, log := f.cfg, f.log
	public, err := edge.NewServer(f.counted(f.rtr), log)
	if err != nil {
		return servers{}, err
	}
	refused := registered(f.reg, metrics.Refused.CounterVec())
	publicAnswers := &edge.ServerAnswers{Listener: "public", Log: log, Count: func(reason string) {
		refused.WithLabelValues("", reason).Inc()
	}}
	for _, reason := range edge.ServerReasons() {
		refused.WithLabelValues("", reason)
	}
	publicAnswers.Install(public)
	limited := publicAnswers.Listen(edge.LimitConnections(ln.public, maxConnections(cfg, log), edge.PublicListener, f.reg, log))
	s := servers{public: public, servePublic: func() error { return serveUntilClosed(public, edge.TrackFraming(limited)) }}
	if cfg.TLS != nil {
		cert, err := edge.LoadCertificate(cfg.TLS.Cert, cfg.TLS.Key, log)
		if err != nil {
			return servers{}, err
		}
		public.TLSConfig = edge.TLSConfig(cert)
		// The framing check reads plaintext HTTP/1 off the connection, which
		// TLS hides; over TLS net/http's own framing rules apply (it drops
		// a Content-Length sent with Transfer-Encoding and re-frames).
		s.servePublic = func() error { return serveTLSUntilClosed(public, limited) }
	}
	adminTLS, err := adminTLSConfig(cfg, log)
	if err != nil {
		return servers{}, err
	}
	st := f.st
	s.admin = &http.Server{
		TLSConfig: adminTLS,
		Handler: control.NewAdmin(control.AdminDeps{
			Gatherer: f.reg, Registerer: f.reg, Readiness: f.ready, Flags: f.flags, Tokens: f.tokens, Proxies: f.proxies, Hosts: f.hosts, Reports: f.reports,
			Audit: st, Repairs: st, Sessions: st, Samples: storeSamples{st}, Noise: noiseOf(st), Live: f.counters, Log: log,
			Now: f.adminNow, StoreLead: st.LastClockOffset, Writes: f.journal, Schemas: storeSchemas{f.schemas, st}, Rollouts: f.rollouts,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       f.adminLim.read,
		WriteTimeout:      f.adminLim.write,
		IdleTimeout:       f.adminLim.idle,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          golog.Logger(log, slog.LevelDebug),
	}
	denied := registered(f.reg, metrics.AdminDenied.CounterVec())
	adminAnswers := &edge.ServerAnswers{Listener: "admin", Log: log, Count: func(reason string) {
		denied.WithLabelValues(reason).Inc()
	}}
	for _, reason := range edge.ServerReasons() {
		denied.WithLabelValues(reason)
	}
	adminAnswers.Install(s.admin)
	adminLn := adminAnswers.Listen(edge.LimitConnections(ln.admin, adminMaxConnections, edge.AdminListener, f.reg, log))
	s.serveAdmin = func() error { return serveUntilClosed(s.admin, adminLn) }
	if adminTLS != nil {
		if err := edge.ConfigureHTTP2(s.admin); err != nil {
			return servers{}, err
		}
		s.serveAdmin = func() error { return serveTLSUntilClosed(s.admin, adminLn) }
	}
	return s, nil
}

// adminLimits bound how long one client holds a connection of the admin
// listener, and with it a goroutine and a file descriptor of the process,
// which the public listener and the backends' connections share. Without
// them net/http keeps a connection for as long as its client likes: idle
// after a /healthz, or sending a body a byte at a time, or not reading an
// answer; /healthz and the login form need no token, so anyone who can
// reach the listener could use up the process's file descriptors.
type adminLimits struct {
	// read is the time to read a request whole, head and body (a change's
	// body is at most 64 KiB); net/http cancels the context of a handler
	// still running then, and no admin call waits that long for the store.
	read time.Duration
	// write is the time from the end of a request's head to the end of
	// its answer (nginx's send_timeout for a client that stops reading).
	write time.Duration
	// idle is how long a kept-alive connection waits for its next request.
	idle time.Duration
}

// The admin listener's limits, about Caddy's for its admin endpoint (read
// 10 s, idle 60 s), with room for an answer to a slow operator's link.
const (
	adminReadTimeout  = 30 * time.Second
	adminWriteTimeout = time.Minute
	adminIdleTimeout  = 2 * time.Minute
)

// adminMaxConnections bounds the connections the admin listener holds at
// once; further clients wait in the kernel's listen backlog, which costs
// the process no descriptor. Operators' browsers, Prometheus, probes and
// the CLI need a few; without a bound, clients sending heads slowly (or
// holding the idle connections /healthz leaves) took every descriptor the
// public listener's max_connections leaves over, and the facade could
// accept no client nor reach a backend. Public traffic comes first: a
// flood of the admin port slows the admin listener, not the facade.
const adminMaxConnections = 64

// adminMaxHeaderBytes is the public listener's 64 KiB head limit, less the
// 4 KiB net/http adds on top of the value it is given.
const adminMaxHeaderBytes = 64<<10 - 4<<10

// actors are the process's long-lived parts in the order they stop:
// first the drain delay, then the public listener, then the background
// work, then the admin listener, which answers until the very end, then
// extra.
func (f *facade) actors(ctx context.Context, s servers, extra []actor) []actor {
	grace := func() time.Duration { return time.Duration(f.current.Load().Shutdown.Grace) }
	list := []actor{
		f.drain(ctx),
		{execute: s.servePublic, interrupt: func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), grace())
			defer cancel()
			shutdownBy(ctx, s.public, f.log)
			// Upgraded connections (WebSockets), which Shutdown does not
			// see, get what is left of the grace too, and are then closed.
			if n := f.rtr.CloseTunnels(ctx); n > 0 {
				f.log.Info("closed upgraded connections still open when the shutdown grace ended", "connections", n)
			}
			f.awaitHandlers()
		}},
		background(f.flags.Run),
		background(func(ctx context.Context) error { return f.tokens.WarnExpiring(ctx, f.log, f.adminNow) }),
		background(f.guard.Run),
		background(f.rollouts.Run),
		background(f.rtr.RunRepairs),
		// Held outcomes get their last attempt, and then the worker stops,
		// after the public listener drained, so that every write a client saw
		// succeed has been recorded and handed to it.
		background(f.journal.Run),
		background(f.journal.Probe),
		background(f.worker.Run),
		background((&control.CountsPurger{Flags: f.flags, Store: f.st, Leftovers: f.st, Lead: f.rollouts, Log: f.log, Now: time.Now}).Run),
		background(func(ctx context.Context) error {
			return stats.RunFlushes(ctx, stats.FlushInterval, f.log, f.counters.Flusher(f.st),
				stats.Flusher{What: "learned schemas", Flush: func(ctx context.Context) error { return f.schemas.Flush(ctx, f.st) }})
		}),
	}
	if f.reloader != nil {
		list = append(list, background(f.reloader.run))
	}
	list = append(list, actor{execute: s.serveAdmin, interrupt: func(error) { shutdown(s.admin, time.Second, f.log) }})
	return append(list, extra...)
}

// counted is h counting its requests in progress in f.handling.
func (f *facade) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.handling.Add(1)
		defer f.handling.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// awaitHandlers waits, after the public listener shut down, for requests
// whose clients it cut off but which go on: a dual write whose primary
// has not answered still gets its answer, and records it (so the write
// ends pending, not unknown for an operator), before the journal and the
// worker stop. It waits as long as a primary may take to answer and the
// store to take the outcome (config's AfterGrace), no longer.
func (f *facade) awaitHandlers() {
	if f.handling.Load() == 0 {
		return
	}
	bound := f.current.Load().AfterGrace()
	f.log.Info("waiting for requests still at a backend after the shutdown grace", "requests", f.handling.Load(), "max_wait_s", bound.Seconds())
	deadline := time.Now().Add(bound)
	for f.handling.Load() > 0 {
		if time.Now().After(deadline) {
			f.log.Warn("requests still at a backend when the facade stops; their dual writes become unknown for an operator", "requests", f.handling.Load())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drain waits for ctx to end (SIGTERM), then fails readiness and waits
// shutdown.delay for load balancers to stop sending traffic before the
// public listener stops.
func (f *facade) drain(ctx context.Context) actor {
	stop := make(chan struct{})
	return actor{
		execute: func() error {
			select {
			case <-ctx.Done():
				f.ready.Drain()
				cur := f.current.Load()
				delay := time.Duration(cur.Shutdown.Delay)
				f.log.Info("draining", "delay_s", delay.Seconds(), "grace_s", time.Duration(cur.Shutdown.Grace).Seconds())
				select {
				case <-time.After(delay):
				case <-stop:
				}
			case <-stop:
			}
			return nil
		},
		interrupt: func(error) { close(stop) },
	}
}

// readyWhenFollowing marks the replica ready once it knows its route
// flags (from the store, or the snapshot when it starts without the
// store; with neither it waits for the store) and follows flips made on
// the others, so a load balancer never sends it traffic it would route by
// stale flags.
func (f *facade) readyWhenFollowing(ctx context.Context) {
	select {
	case <-f.flags.Known():
	case <-ctx.Done():
		return
	}
	select {
	case <-f.flags.Watching():
	case <-time.After(10 * time.Second):
		f.log.Warn("not following other replicas' flips yet; ready anyway, re-reading them every few seconds")
	case <-ctx.Done():
		return
	}
	f.ready.Ready()
}

// registered returns c registered on reg, or the collector of the same
// metric that another package (the router's strangler_refused_total, the
// admin API's strangler_admin_denied_total) registered there already.
func registered(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(c); errors.As(err, &are) {
		return are.ExistingCollector.(*prometheus.CounterVec)
	} else if err != nil {
		panic(err) // a metric definition clashing with another: a bug
	}
	return c
}
