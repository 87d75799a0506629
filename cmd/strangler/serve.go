package main

import (
	"context"
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
	"strangler/control"
	"strangler/edge"
	"strangler/router"
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
	env := config.Env{Getenv: getenv, ReadFile: os.ReadFile}
	cfg, err := config.Load(*path, env)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, facadeOptions{reloader: &reloader{path: *path, env: env, log: log}})
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
// the first to return stops all the others.
type actor struct {
	execute   func() error
	interrupt func(error)
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
}

// serve runs the facade for cfg until ctx ends (SIGTERM), then drains.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, opts facadeOptions) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rtr := router.New(router.NewMetrics(reg), log)
	table, err := rtr.Build(cfg)
	if err != nil {
		return err
	}
	rtr.Swap(table)
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
	public := edge.NewServer(rtr, log)
	admin := &http.Server{
		Handler:           control.NewAdmin(reg, readiness),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	var g oklog.Group
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
	g.Add(func() error {
		return serveUntilClosed(public, edge.TrackFraming(publicLn))
	}, func(error) {
		grace := time.Duration(current.Load().Shutdown.Grace)
		shutdown(public, grace, log)
	})
	g.Add(func() error {
		return serveUntilClosed(admin, adminLn)
	}, func(error) { shutdown(admin, time.Second, log) })
	if rl := opts.reloader; rl != nil {
		rl.router, rl.current = rtr, &current
		rl.registerMetrics(reg)
		rctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return rl.run(rctx) }, func(error) { cancel() })
	}
	for _, a := range opts.extra {
		g.Add(a.execute, a.interrupt)
	}

	readiness.Ready()
	log.Info("serving", "listen", publicLn.Addr().String(), "admin", adminLn.Addr().String(), "routes", len(cfg.Routes))
	if opts.onServing != nil {
		opts.onServing(publicLn.Addr().String(), adminLn.Addr().String())
	}
	err = g.Run()
	log.Info("stopped")
	return err
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
