package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	oklog "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/control"
	"strangler/dualwrite"
	"strangler/edge"
	"strangler/router"
	"strangler/shadow"
	"strangler/stats"
	"strangler/store"
	"strangler/telemetry"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `file` (YAML)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"serve: --config FILE is required"}
	}
	env := configfile.Env{Getenv: getenv, ReadFile: os.ReadFile}
	cfg, err := configfile.Load(*path, env)
	if err != nil {
		return err
	}
	logs := newBufferedLog(stderr)
	defer logs.Close()
	log, err := newLogger(logs, getenv)
	if err != nil {
		return err
	}
	tracing, err := telemetry.Setup(ctx, getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, facadeOptions{reloader: &reloader{path: *path, env: env, log: log}, tracing: tracing})
}

// newLogger returns the JSON logger every component gets; the level comes
// from STRANGLER_LOG_LEVEL (debug, info, warn, error; default info).
func newLogger(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	var level slog.Level
	if v := getenv("STRANGLER_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, usageError{fmt.Sprintf("STRANGLER_LOG_LEVEL=%q: want debug, info, warn or error", v)}
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// actor is a long-lived part of the process, run in one oklog/run group:
// the first to return stops all the others, interrupted in the order they
// were added.
type actor struct {
	execute   func() error
	interrupt func(error)
}

// background runs f as an actor whose interrupt waits until f has
// returned, so the actors after it stop only once it is done.
func background(f func(context.Context) error) actor {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	return actor{
		execute: func() error {
			defer close(done)
			return f(ctx)
		},
		interrupt: func(error) {
			cancel()
			<-done
		},
	}
}

// facadeOptions are the parts of a facade process that differ between
// serve and demo.
type facadeOptions struct {
	// reloader reloads the configuration; nil disables reloading.
	reloader *reloader
	// extra actors (the demo's backends) stop after the facade has drained.
	extra []actor
	// onServing, if set, learns the listeners' addresses once they are up.
	onServing func(public, admin string)
	// tracing is OpenTelemetry as the environment configures it; nil is off.
	tracing *telemetry.Tracing
	// adminNow is the admin listener's clock (status page sessions,
	// lockouts, token expiry) and the clock of scheduled ramps and change
	// requests; nil is time.Now. Tests move it.
	adminNow func() time.Time
}

// flushInterval is how often counts go to the state store for the report
// and the gates: often enough that they are current, rarely enough to
// cost nothing.
const flushInterval = 10 * time.Second

// serve runs the facade for cfg until ctx ends (SIGTERM), then drains.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, opts facadeOptions) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := store.Start(sctx, string(cfg.Store), log, store.WithEncryption(cfg.EncryptionKeys()))
	cancel()
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	defer st.Close()

	for _, w := range cfg.Warnings {
		log.Warn(w.Msg, "file", w.File, "line", w.Line, "field", w.Field)
	}
	counters := stats.NewCounters()
	schemas := shadow.NewSchemas()
	metrics := router.NewMetrics(reg)
	var worker *dualwrite.Worker
	// Outcomes the store cannot take are kept in memory and retried.
	journal := dualwrite.NewOutcomes(st, func(id string) { worker.Kick(id) }, reg, log)
	deps := router.Deps{
		Metrics: metrics, Log: log, Journal: journal,
		Deliver:    func(id string) { worker.Kick(id) },
		Samples:    storeSamples{st},
		Noise:      st,
		Hasher:     st.Hasher(),
		Stats:      counters,
		RepairKeys: st,
		Schemas:    schemas, SchemaStore: st,
	}
	if tr := opts.tracing; tr != nil && tr.Enabled() {
		deps.Tracer, deps.Propagator = tr.Provider.Tracer("strangler"), tr.Propagator
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				log.Warn("flushing the last traces failed", "error", err)
			}
		}()
		log.Info("tracing on: spans go to the OTLP exporter the OTEL_* variables configure")
	}
	rtr := router.New(deps)
	worker = dualwrite.New(st, rtr, cfg.Repairs, reg, metrics.DualWrite, log)
	if deps.Tracer != nil {
		worker.SetTracing(deps.Tracer, deps.Propagator)
	}
	reports := &control.Reports{Counts: st, Flush: func(ctx context.Context) error {
		return counters.Flush(ctx, st, time.Now())
	}}
	snapshot := control.NewSnapshot(cfg.StateSnapshot, cfg.Store.Redacted())
	flags, err := control.NewFlags(ctx, cfg, st, snapshot, reports, func(c *config.Config) error {
		t, err := rtr.Build(c)
		if err != nil {
			return err
		}
		rtr.Swap(t)
		return nil
	}, log, time.Now)
	if err != nil {
		return err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strangler_store_up",
		Help: "1 while the state store answers and takes writes; 0 while the facade serves its last known flags without it, or keeps dual-write outcomes in memory because it refuses them.",
	}, func() float64 {
		ok, _ := flags.StoreOK()
		if failing, _ := journal.WritesFailing(); ok && failing.IsZero() {
			return 1
		}
		return 0
	}))
	tokens := &control.Tokens{}
	tokens.Set(cfg.Admin.AdminTokens())
	guard := control.NewGuard(flags, counters, st, reg, log, time.Now)
	adminNow := opts.adminNow
	if adminNow == nil {
		adminNow = time.Now
	}
	rollouts := control.NewRollouts(flags, st, st, log, adminNow)
	var current atomic.Pointer[config.Config]
	current.Store(cfg)

	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		publicLn.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	readiness := &control.Readiness{}
	public, err := edge.NewServer(rtr, log)
	if err != nil {
		return err
	}
	servePublic := func() error { return serveUntilClosed(public, edge.TrackFraming(publicLn)) }
	if cfg.TLS != nil {
		cert, err := edge.LoadCertificate(cfg.TLS.Cert, cfg.TLS.Key, log)
		if err != nil {
			return err
		}
		public.TLSConfig = edge.TLSConfig(cert)
		// The framing check reads plaintext HTTP/1 off the connection, which
		// TLS hides; over TLS net/http's own framing rules apply (it drops
		// a Content-Length sent with Transfer-Encoding and re-frames).
		servePublic = func() error { return serveTLSUntilClosed(public, publicLn) }
	}
	adminTLS, err := adminTLSConfig(cfg, log)
	if err != nil {
		return err
	}
	admin := &http.Server{
		TLSConfig: adminTLS,
		Handler: control.NewAdmin(control.AdminDeps{
			Gatherer: reg, Registerer: reg, Readiness: readiness, Flags: flags, Tokens: tokens, Reports: reports,
			Audit: st, Repairs: st, Sessions: st, Samples: storeSamples{st}, Noise: noiseOf(st), Live: counters, Log: log,
			Now: opts.adminNow, Writes: journal, Schemas: storeSchemas{schemas, st}, Rollouts: rollouts,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	var g oklog.Group
	add := func(a actor) { g.Add(a.execute, a.interrupt) }
	stop := make(chan struct{})
	g.Add(func() error {
		select {
		case <-ctx.Done():
			readiness.Drain()
			delay := time.Duration(current.Load().Shutdown.Delay)
			log.Info("draining", "delay_s", delay.Seconds(), "grace_s", time.Duration(current.Load().Shutdown.Grace).Seconds())
			select {
			case <-time.After(delay):
			case <-stop:
			}
		case <-stop:
		}
		return nil
	}, func(error) { close(stop) })
	g.Add(servePublic, func(error) {
		shutdown(public, time.Duration(current.Load().Shutdown.Grace), log)
	})
	add(background(flags.Run))
	add(background(func(ctx context.Context) error { return tokens.WarnExpiring(ctx, log, adminNow) }))
	add(background(guard.Run))
	add(background(rollouts.Run))
	add(background(rtr.RunRepairs))
	// Held outcomes get their last attempt, and then the worker stops,
	// after the public listener drained, so that every write a client saw
	// succeed has been recorded and handed to it.
	add(background(journal.Run))
	add(background(worker.Run))
	add(background(func(ctx context.Context) error { return flushCounts(ctx, counters, schemas, st, log) }))
	if rl := opts.reloader; rl != nil {
		rl.current = &current
		rl.apply = func(c *config.Config) error {
			if err := flags.SetFile(c); err != nil {
				return err
			}
			tokens.Set(c.Admin.AdminTokens())
			worker.SetSettings(c.Repairs)
			return nil
		}
		rl.prepare(reg)
		add(background(rl.run))
	}
	g.Add(func() error {
		if adminTLS != nil {
			return serveTLSUntilClosed(admin, adminLn)
		}
		return serveUntilClosed(admin, adminLn)
	}, func(error) { shutdown(admin, time.Second, log) })
	for _, a := range opts.extra {
		add(a)
	}

	go func() {
		// Ready once this replica knows its route flags (from the store, or
		// the snapshot when it starts without the store; with neither it
		// waits for the store) and follows flips made on the others, so a
		// load balancer never sends it traffic it would route by stale flags.
		select {
		case <-flags.Known():
		case <-ctx.Done():
			return
		}
		select {
		case <-flags.Watching():
		case <-time.After(10 * time.Second):
			log.Warn("not following other replicas' flips yet; ready anyway, re-reading them every few seconds")
		case <-ctx.Done():
			return
		}
		readiness.Ready()
	}()
	log.Info("serving", "listen", publicLn.Addr().String(), "admin", adminLn.Addr().String(), "routes", len(cfg.Routes), "store", st.Backend())
	if opts.onServing != nil {
		opts.onServing(publicLn.Addr().String(), adminLn.Addr().String())
	}
	err = g.Run()
	log.Info("stopped")
	return err
}

// flushCounts adds the counted traffic and the learned response schemas
// to the state store every flushInterval, and once more when ctx ends.
func flushCounts(ctx context.Context, counters *stats.Counters, schemas *shadow.Schemas, st *store.Store, log *slog.Logger) error {
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	flush := func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := counters.Flush(fctx, st, time.Now()); err != nil {
			log.Warn("flushing counts to the state store failed; they are kept for the next flush", "error", err)
		}
		if err := schemas.Flush(fctx, st); err != nil {
			log.Warn("flushing learned schemas to the state store failed; they are kept for the next flush", "error", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return nil
		case <-tick.C:
			flush()
		}
	}
}

// noiseOf lists a route's learned noise fields from the state store.
func noiseOf(st *store.Store) func(string) []string {
	return func(route string) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fields, err := st.Noise(ctx, route)
		if err != nil {
			return nil
		}
		out := make([]string, len(fields))
		for i, f := range fields {
			out[i] = f.Path
		}
		return out
	}
}

// adminTLSConfig is the admin listener's TLS, nil for plain HTTP, which
// it warns about when the listener is reachable from other machines: the
// admin token would cross the network in clear.
func adminTLSConfig(cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.Admin.TLS == nil {
		if host, _, _ := net.SplitHostPort(cfg.Admin.Listen); host != "localhost" && !isLoopbackIP(host) {
			log.Warn("the admin listener is reachable from other machines without TLS: admin tokens cross the network in clear; set admin.tls", "admin", cfg.Admin.Listen)
		}
		return nil, nil
	}
	cert, err := edge.LoadCertificate(cfg.Admin.TLS.Cert, cfg.Admin.TLS.Key, log)
	if err != nil {
		return nil, err
	}
	return edge.TLSConfig(cert), nil
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serveTLSUntilClosed(srv *http.Server, ln net.Listener) error {
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveUntilClosed(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdown lets in-flight requests finish for up to grace, then cuts off
// what is left.
func shutdown(srv *http.Server, grace time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown grace period ended with requests in flight; closing them", "error", err)
		srv.Close()
	}
}
