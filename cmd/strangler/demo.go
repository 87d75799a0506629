package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/legacy"
	"strangler/modern"
	"strangler/phi"
	"strangler/telemetry"
)

//go:embed demo.yaml
var demoConfig []byte

func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", ":8080", "public `address` of the facade")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "`address` of the admin listener (metrics, health)")
	legacyDSN := fs.String("legacy-dsn", "", "run the legacy API on this MariaDB/MySQL database (`URL` mysql://…) instead of in memory")
	modernDSN := fs.String("modern-dsn", "", "run the modern API on this PostgreSQL database (`URL` postgres://…) instead of in memory")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("demo: unexpected argument %q", fs.Arg(0))}
	}
	logs := newBufferedLog(stderr)
	defer logs.Close()
	log, err := newLogger(logs, getenv)
	if err != nil {
		return err
	}
	// On real databases the demo's patients are added only if they are
	// empty, so the demo can be run again over the data it left.
	legacyAPI, closeLegacy, err := referenceAPI(ctx, "legacy", *legacyDSN, legacy.DemoPatients, modern.Faults{}, log)
	if err != nil {
		return err
	}
	defer closeLegacy()
	modernAPI, closeModern, err := referenceAPI(ctx, "modern", *modernDSN, modern.DemoPatients, modern.Faults{}, log)
	if err != nil {
		return err
	}
	defer closeModern()
	legacySrv, legacyURL, err := startBackend(legacyAPI, log)
	if err != nil {
		return err
	}
	modernSrv, modernURL, err := startBackend(modernAPI, log)
	if err != nil {
		return err
	}
	stateDir, err := os.MkdirTemp("", "strangler-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	token, storeKey := rand.Text(), phi.NewKey()
	vars := map[string]string{
		"DEMO_TOKEN": token,
		"DEMO_STORE": "sqlite:" + filepath.Join(stateDir, "strangler.db"),
		// A fresh key each run, like the store itself.
		"DEMO_STORE_KEY": hex.EncodeToString(storeKey[:]),
		"DEMO_LISTEN":    *listen, "DEMO_ADMIN": *adminAddr,
		"DEMO_LEGACY_URL": legacyURL, "DEMO_MODERN_URL": modernURL,
	}
	cfg, err := configfile.Parse("demo.yaml", demoConfig, configfile.Env{
		Getenv:   func(k string) string { return vars[k] },
		ReadFile: filecap.Read,
	})
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	tracing, err := telemetry.Setup(ctx, getenv, log)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, facadeOptions{
		tracing: tracing,
		extra:   []actor{legacySrv, modernSrv},
		onServing: func(public, admin string) {
			printDemo(stdout, public, admin, legacyURL, modernURL, token)
		},
	})
}

// startBackend serves h on a free loopback port as an actor that stops
// after the facade has drained.
func startBackend(h http.Handler, log *slog.Logger) (actor, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return actor{}, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return actor{
		execute:   func() error { return serveUntilClosed(srv, ln) },
		interrupt: func(error) { shutdown(srv, time.Second, log) },
	}, "http://" + ln.Addr().String(), nil
}

func printDemo(w io.Writer, public, admin, legacyURL, modernURL, token string) {
	facade, adminURL := "http://"+loopbackHost(public), "http://"+loopbackHost(admin)
	fmt.Fprintf(w, "strangler demo is running (Ctrl-C stops it).\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  facade\t%s\n", facade)
	fmt.Fprintf(tw, "  legacy API\t%s\t(patients 1-%d)\n", legacyURL, legacy.DemoPatients)
	fmt.Fprintf(tw, "  modern API\t%s\t(patients 1-%d)\n", modernURL, modern.DemoPatients)
	fmt.Fprintf(tw, "  status page\t%s/\t(log in with the admin token)\n", adminURL)
	fmt.Fprintf(tw, "  metrics\t%s/metrics\n", adminURL)
	fmt.Fprintf(tw, "  admin token\t%s\n", token)
	tw.Flush()
	fmt.Fprintf(w, "\nTry:\n")
	fmt.Fprintf(w, "  curl -i %s/patients/42   # in modern: served by modern\n", facade)
	fmt.Fprintf(w, "  curl -i %s/patients/75   # not in modern yet: falls back to legacy\n", facade)
	fmt.Fprintf(w, "  curl -i %s/patients      # served by legacy, compared with modern\n", facade)
	fmt.Fprintf(w, "  curl -i -X POST -H 'Content-Type: application/json' -d '{\"first_name\":\"Ada\",\"last_name\":\"Byron\",\"birth_date\":\"1815-12-10\"}' %s/patients\n", facade)
	fmt.Fprintf(w, "                                    # created in legacy, copied to modern with the same id\n")
	fmt.Fprintf(w, "  export STRANGLER_ADMIN_TOKEN=%s\n", token)
	fmt.Fprintf(w, "  go run ./cmd/strangler routes list --admin %s\n", adminURL)
	fmt.Fprintf(w, "  curl -s %s/metrics | grep -E 'strangler_(fallback|shadow_comparisons|dualwrite)_total'\n", adminURL)
}

// loopbackHost turns a wildcard listen address into one a browser or curl
// on this machine can use.
func loopbackHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
