package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	oklog "github.com/oklog/run"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/edge"
	"strangler/internal/filecap"
	"strangler/internal/golog"
	"strangler/internal/human"
	"strangler/internal/jsonlog"
	"strangler/shadow"
	"strangler/store"
	"strangler/telemetry"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `file` (YAML)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *path == "":
		return usageError{"serve: --config FILE is required"}
	case fs.NArg() > 0:
		// serve --config a.yaml b.yaml would serve a.yaml alone.
		return usageError{fmt.Sprintf("serve: unexpected argument %q", fs.Arg(0))}
	}
	env := configfile.Env{Getenv: getenv, ReadFile: filecap.Read}
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
	tracing, err := telemetry.Setup(ctx, getenv, log)
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
	log := slog.New(jsonlog.NewHandler(printableLines{w}, level))
	stdlog.SetFlags(0)
	// net/http's transport reports with the log package an answer a
	// backend sent on an idle connection, quoting its first bytes.
	stdlog.SetOutput(golog.Writer(log, slog.LevelWarn))
	return log, nil
}

// printableLines writes each JSON log line with every character a
// terminal acts on as a \u escape (human.Printable): encoding/json
// escapes only C0 controls, so a C1 control (U+009B is ESC [) or U+202E
// in a logged value (a route's path under log_path, a database's message
// quoting a row) reached the terminal of whoever tails the log as it was.
// The escapes are JSON's: each line stays the same JSON.
type printableLines struct{ w io.Writer }

// Write takes one line; slog writes each line whole, in one call.
func (p printableLines) Write(b []byte) (int, error) {
	if asciiBelowDEL(b) || !bytes.ContainsFunc(b, func(r rune) bool { return r != '\n' && human.ActsOnTerminal(r) }) {
		return p.w.Write(b)
	}
	if _, err := io.WriteString(p.w, human.Printable(string(b), true)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// asciiBelowDEL reports whether b holds only bytes below DEL: of those,
// JSON has escaped every one a terminal acts on but the line's end, so
// the common line (a fallback's) costs one look at each byte.
func asciiBelowDEL(b []byte) bool {
	for _, c := range b {
		if c >= 0x7f {
			return false
		}
	}
	return true
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
	// adminLimits are the admin listener's timeouts; zero is
	// adminReadTimeout, adminWriteTimeout and adminIdleTimeout. Tests
	// shorten them.
	adminLimits adminLimits
}

// storeStartBound bounds reaching the state store at start, and how long
// serve waits for its migrations before it serves: a migration still
// running then (waiting for another session's lock, rewriting a large
// table) goes on in the background, and the facade serves as with a store
// not reachable yet (store.Start).
const storeStartBound = 10 * time.Second

// serve runs the facade for cfg until ctx ends (SIGTERM), then drains.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, opts facadeOptions) error {
	sctx, cancel := context.WithTimeout(ctx, storeStartBound)
	st, err := store.Start(sctx, string(cfg.Store), log, store.WithEncryption(cfg.EncryptionKeys()))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// SIGTERM while reaching or migrating the store: Start
			// rolled the migration back, and there is nothing to drain.
			log.Info("stopped before serving", "error", err)
			return nil
		}
		return fmt.Errorf("state store: %w", err)
	}
	defer st.Close()
	logWarnings(log, cfg)
	defer flushTraces(opts.tracing, log)
	f, err := newFacade(ctx, cfg, st, log, opts)
	if err != nil {
		return err
	}
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	servers, err := f.servers(ln)
	if err != nil {
		ln.close()
		return err
	}
	var g oklog.Group
	for _, a := range f.actors(ctx, servers, opts.extra) {
		g.Add(a.execute, a.interrupt)
	}
	go f.readyWhenFollowing(ctx)
	log.Info("serving", "listen", ln.public.Addr().String(), "admin", ln.admin.Addr().String(), "routes", len(cfg.Routes), "store", st.Backend())
	if opts.onServing != nil {
		opts.onServing(ln.public.Addr().String(), ln.admin.Addr().String())
	}
	err = g.Run()
	log.Info("stopped")
	return err
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
		// A replica still on an earlier release (a rolling upgrade; store
		// migration 0100 deleted what they stored before) writes keys that
		// are data: listed as {*}.
		var out []string
		for _, f := range fields {
			if p := shadow.PublicPath(f.Path, shadow.Asked{}); !slices.Contains(out, p) {
				out = append(out, p)
			}
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
	shutdownBy(ctx, srv, log)
}

// shutdownBy lets in-flight requests finish until ctx ends, then cuts off
// what is left.
func shutdownBy(ctx context.Context, srv *http.Server, log *slog.Logger) {
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown grace period ended with requests in flight; closing them", "error", err)
		srv.Close()
	}
}

// logWarnings logs what cfg does that config check warns about or
// refuses as unsafe (Config.Unsafe), at a start and at each reload
// applied: here only a warning, so that a facade that ran with it keeps
// serving after an upgrade, and a reload adding one (trusted_proxies:
// ["0.0.0.0/0"]) is not applied in silence.
func logWarnings(log *slog.Logger, cfg *config.Config) {
	for _, w := range slices.Concat(cfg.Unsafe, cfg.Warnings) {
		log.Warn(w.Msg, "file", w.File, "line", w.Line, "field", w.Field)
	}
}
