package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/backfill"
)

func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `file` with a backfill section")
	fs.String("tables", "", "compare only these `tables` (comma-separated names)")
	every := fs.Duration("every", 0, "compare again every `interval` (like 10m) until stopped, exporting strangler_verify_deviations")
	metricsAddr := fs.String("metrics-listen", "", "serve Prometheus /metrics at `address`")
	samples := fs.Int("samples", 10, "keys named per table and kind of deviation")
	reportJSON := fs.String("report-json", "", "also write the report as JSON to `file`")
	showValues := fs.Bool("show-values", false, "show the differing values of changed rows (never those of redacted columns)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case *path == "":
		return usageError{"verify: --config FILE is required"}
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("verify: unexpected argument %q", fs.Arg(0))}
	case *every < 0 || *every > 0 && *every < time.Second:
		return usageError{"verify: --every wants an interval of at least 1s"}
	case *samples < 1:
		return usageError{"verify: --samples wants at least 1"}
	}
	tables, err := tableList(fs, "verify")
	if err != nil {
		return err
	}
	if err := outputFile("verify", "report-json", *reportJSON); err != nil {
		return err
	}
	file, err := loadConfig(*path, getenv)
	if err != nil {
		return err
	}
	cfg := file.Backfill
	log, err := newLogger(stderr, getenv)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	opts := backfill.VerifyOptions{Tables: tables, Samples: *samples, ShowValues: *showValues, Metrics: backfill.NewMetrics(reg), Log: log}
	if *metricsAddr != "" {
		stop, err := serveMetrics(*metricsAddr, file.Admin, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	once := func() (*backfill.VerifyReport, error) {
		report, err := backfill.Verify(ctx, cfg, opts)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		report.WriteText(stdout)
		if *reportJSON != "" {
			if err := writeJSONReport(*reportJSON, report); err != nil {
				return nil, err
			}
		}
		return report, nil
	}
	if *every == 0 {
		report, err := once()
		if err != nil {
			return err
		}
		if n := report.Deviations(); n > 0 {
			return fmt.Errorf("verify: %d rows differ between legacy and modern", n)
		}
		return nil
	}
	// Periodic: a failed comparison is logged and retried at the next tick;
	// only a stop ends the loop.
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		if _, err := once(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("verify failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
