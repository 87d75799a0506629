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
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"strangler/backfill"
	"strangler/config"
	"strangler/config/configfile"
	"strangler/control"
	"strangler/edge"
	"strangler/internal/dsn"
	"strangler/internal/filecap"
	"strangler/internal/tty"
	"strangler/store"
)

func runBackfill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `file` with a backfill section")
	fs.String("tables", "", "copy only these `tables` (comma-separated names)")
	keys := keysFlag{}
	fs.Var(keys, "keys", "copy only these source keys of a table, and their dependants: `TABLE=K1,K2` (repeatable)")
	onlyFailed := fs.Bool("only-failed", false, "retry only the rows the ledger records as failed")
	restart := fs.Bool("restart", false, "ignore checkpoints and read every row again (equal rows are not rewritten)")
	sinceCheckpoint := fs.Bool("since-checkpoint", false, "copy only what is past the checkpoints, without comparing what is below them (for keys that only grow and rows that never change)")
	propagateDeletes := fs.Bool("propagate-deletes", false, "delete the target rows whose source row is gone (each recorded in strangler_backfill_deletes)")
	dryRun := fs.Bool("dry-run", false, "write nothing; report what a run would change")
	rate := fs.Int("rate", 0, "at most `N` rows per second across all tables, 0 for no limit (default: the file's rate)")
	concurrency := fs.Int("concurrency", 0, "copy `N` tables or key ranges at once, 1 to 64 (default: the file's concurrency)")
	batch := fs.Int("batch", 0, "`rows` per batch, 1 to 1000000 (default: the file's batch)")
	reportJSON := fs.String("report-json", "", "also write the report as JSON to `file`")
	reportHTML := fs.String("report-html", "", "also write the report as a web page to `file`")
	metricsAddr := fs.String("metrics-listen", "", "serve Prometheus /metrics at `address` while running")
	metricsPush := fs.String("metrics-push", "", "push the run's metrics to the Prometheus Pushgateway at `URL` when it ends (job strangler_backfill)")
	runName := fs.String("run", "", "the `name` of a run shared by several workers (with --worker)")
	worker := fs.Bool("worker", false, "join the run named by --run as one of its workers: lease key ranges (or, for tables sent to the API, groups) from the ledger, copy them, take over those of workers whose lease ran out")
	workerID := fs.String("worker-id", "", "this worker's `name` in the ledger (default: host name and process id)")
	lease := fs.Duration("lease", backfill.DefaultLease, "how long a worker's lease on a key range lasts unrenewed: a dead worker's range is taken over after it")
	progress := fs.String("progress", "auto", "progress display: auto (bars on a terminal, lines otherwise), bar, lines or none")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *path == "":
		return usageError{"backfill: --config FILE is required"}
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("backfill: unexpected argument %q", fs.Arg(0))}
	case len(keys) > 0 && (*onlyFailed || *restart):
		return usageError{"backfill: --keys cannot be combined with --only-failed or --restart"}
	case *onlyFailed && *restart:
		return usageError{"backfill: choose --only-failed or --restart"}
	case *sinceCheckpoint && (*restart || *onlyFailed || len(keys) > 0):
		return usageError{"backfill: --since-checkpoint cannot be combined with --restart, --only-failed or --keys"}
	case *propagateDeletes && (*sinceCheckpoint || *onlyFailed || len(keys) > 0):
		return usageError{"backfill: --propagate-deletes compares whole tables; it goes with a plain run or --restart, not --since-checkpoint, --only-failed or --keys"}
	case *worker != (*runName != ""):
		return usageError{"backfill: --worker and --run NAME go together"}
	case *lease <= 0:
		return usageError{"backfill: --lease wants a positive duration"}
	case !slices.Contains([]string{"auto", "bar", "lines", "none"}, *progress):
		return usageError{fmt.Sprintf("backfill: --progress %q; want auto, bar, lines or none", *progress)}
	}
	tables, err := tableList(fs, "backfill")
	if err != nil {
		return err
	}
	if err := outputFile("backfill", "report-json", *reportJSON); err != nil {
		return err
	}
	if err := outputFile("backfill", "report-html", *reportHTML); err != nil {
		return err
	}
	file, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	cfg := file.Backfill
	// A flag given overrides the file, and is held to the file's bounds:
	// --batch 0 or --concurrency 500 is a mistake, not the default.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "rate":
			cfg.Rate = *rate
		case "concurrency":
			cfg.Concurrency = *concurrency
		case "batch":
			cfg.Batch = *batch
		}
	})
	if err := cfg.CheckPace(); err != nil {
		return usageError{"backfill: --" + err.Error()}
	}
	// On a terminal the log shares the screen with the bars: its lines go
	// above them, never between.
	logOut := stderr
	var screen *backfill.Screen
	if *progress == "bar" || *progress == "auto" && tty.Is(stdout) {
		screen = backfill.NewScreen(stdout)
		logOut = screen.Logs(stderr)
	}
	log, err := newLogger(logOut, getenv)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	metrics := backfill.NewMetrics(reg)
	if *metricsAddr != "" {
		stop, err := serveMetrics(*metricsAddr, file.Admin, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	opts := backfill.Options{
		Keys: keys, OnlyFailed: *onlyFailed, Restart: *restart, DryRun: *dryRun,
		SinceCheckpoint: *sinceCheckpoint, PropagateDeletes: *propagateDeletes,
		Metrics: metrics, Log: log,
		Worker: *worker, Run: *runName, WorkerID: *workerID, Lease: *lease,
	}
	if *worker && opts.WorkerID == "" {
		host, _ := os.Hostname()
		opts.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	opts.Tables = tables
	if api, _ := cfg.APITables(); api {
		// Tables sent to the API keep their ledger in the state store; it
		// may be created here, where the facade does not run yet.
		st, err := store.Open(ctx, string(file.Store), log, store.WithEncryption(file.EncryptionKeys()))
		if err != nil {
			return fmt.Errorf("state store (the ledger of tables sent to the API): %w", err)
		}
		defer st.Close()
		opts.APILedger, opts.Hasher, opts.Requests = st, st.Hasher(), stdout
	} else if len(keys) == 0 && !*onlyFailed {
		repairs, closeStore, err := readRepairKeys(ctx, file, log)
		if err != nil {
			return err
		}
		defer closeStore()
		opts.Repairs = repairs
	}
	switch *progress {
	case "auto":
		opts.Progress, opts.Terminal = stdout, tty.Is(stdout)
	case "bar", "lines":
		opts.Progress, opts.Terminal = stdout, *progress == "bar"
	}
	opts.Screen = screen
	report, runErr := backfill.Run(ctx, cfg, opts)
	if *metricsPush != "" {
		// A batch job's metrics outlive it only where it pushes them; a
		// failed push is logged, never mistaken for a failed run.
		p := push.New(*metricsPush, "strangler_backfill").Gatherer(reg)
		if *runName != "" {
			p = p.Grouping("run", *runName).Grouping("worker", opts.WorkerID)
		}
		if err := p.PushContext(context.WithoutCancel(ctx)); err != nil {
			// The URL may carry the Pushgateway's basic-auth password,
			// which the push client's error quotes too.
			log.Error("metrics push", "url", dsn.Redact(*metricsPush), "error", dsn.RedactError(err, *metricsPush))
		}
	}
	if report == nil {
		return fmt.Errorf("backfill: %w", runErr)
	}
	report.WriteText(stdout)
	if err := writeReports(report, *reportJSON, *reportHTML); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("backfill: %w", runErr)
	}
	if n := report.Failed(); n > 0 && !*dryRun {
		where := "strangler_backfill_failures"
		if opts.APILedger != nil {
			where = "strangler_api_backfill_rows in the state store"
		}
		return fmt.Errorf("backfill: %d rows failed; they are in the ledger (%s); fix them, then run again with --only-failed", n, where)
	}
	return nil
}

// loadConfig loads a configuration file that must have a backfill section.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	cfg, err := configfile.Load(path, configfile.Env{Getenv: getenv, ReadFile: filecap.Read})
	if err != nil {
		return nil, err
	}
	if cfg.Backfill == nil {
		return nil, fmt.Errorf("%s: no backfill section; see the README for one", path)
	}
	return cfg, nil
}

func writeReports(report *backfill.Report, jsonPath, htmlPath string) error {
	if jsonPath != "" {
		if err := writeJSONReport(jsonPath, report); err != nil {
			return err
		}
	}
	if htmlPath != "" {
		// Readable by its owner alone, as the JSON report: it names rows' keys.
		f, err := os.OpenFile(htmlPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if err := report.WriteHTML(f); err != nil {
			f.Close()
			return fmt.Errorf("report: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

// keysFlag collects --keys TABLE=K1,K2 flags.
type keysFlag map[string][]string

// tableList is the --tables flag of fs, cmd's: nil when it is not
// given, and an error when it is given but names no table. Taken as not
// given, --tables "$TABLES" with TABLES empty would copy, or compare,
// every table.
func tableList(fs *flag.FlagSet, cmd string) ([]string, error) {
	f := fs.Lookup("tables")
	given := false
	fs.Visit(func(v *flag.Flag) { given = given || v == f })
	if !given {
		return nil, nil
	}
	var names []string
	for _, name := range strings.Split(f.Value.String(), ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, usageError{fmt.Sprintf("%s: --tables %q names no table; leave it out for all of them", cmd, f.Value.String())}
	}
	return names, nil
}

func (k keysFlag) String() string { return "" }

func (k keysFlag) repeatable() {}

func (k keysFlag) Set(v string) error {
	table, list, ok := strings.Cut(v, "=")
	if !ok || table == "" || list == "" {
		return errors.New("want TABLE=K1,K2,…")
	}
	n := 0
	for _, key := range strings.Split(list, ",") {
		if key = strings.TrimSpace(key); key != "" {
			n++
			if !slices.Contains(k[table], key) {
				k[table] = append(k[table], key)
			}
		}
	}
	if n == 0 {
		// Taken as no --keys at all, it would copy every row of every
		// table: what --keys TABLE=$EMPTY_LIST asked for is none.
		return fmt.Errorf("%s= lists no key; want TABLE=K1,K2,…", table)
	}
	return nil
}

// serveMetrics serves reg's metrics at addr until stop is called, behind
// the admin listener's Host check (control.Hosts.Check): they name tables
// and count their rows and deviations, which a page whose owner points its
// name at addr (DNS rebinding) could read otherwise. It answers to
// localhost, IP addresses, addr's host name and admin's hosts, as the
// admin listener does with admin.listen's.
func serveMetrics(addr string, admin config.Admin, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	hosts := &control.Hosts{}
	hosts.Set(config.Admin{Listen: addr, Hosts: admin.Hosts}.AdminHosts())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: hosts.Check(mux, "--metrics-listen", nil), ReadHeaderTimeout: 10 * time.Second}
	// Logged, not counted: the backfill's and verify's metrics count rows.
	answers := &edge.ServerAnswers{Listener: "metrics", Log: log}
	answers.Install(srv)
	go srv.Serve(answers.Listen(ln))
	log.Info("metrics", "listen", ln.Addr().String())
	return func() { srv.Close() }, nil
}
