package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"strangler/modern"
)

// scale measures what issue 15 added: the backfill through the modern
// service's API (requests/s against the reference API at concurrency 8
// with no rate limit, and the backfill's CPU per row), and database
// backfills by 1, 2 and 4 workers sharing one run (rows/s, the ratio to
// one worker, and rows copied more than once, which must be 0). Each is
// measured o.rounds times; the median and the spread are printed.
func scale(ctx context.Context, o options, dir string) error {
	src, dropLegacy, err := prepareLegacy(ctx, o)
	if err != nil {
		return err
	}
	if !o.keep {
		defer dropLegacy()
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load average at the start: %s", load)

	var apiRates, apiCPU []float64
	for round := 1; round <= o.rounds; round++ {
		rate, cpuPerRow, err := apiRound(ctx, o, dir, src)
		if err != nil {
			return err
		}
		fmt.Printf("round %d: API backfill of %d rows: %.0f requests/s, %.1f µs CPU per row\n", round, o.rows, rate, cpuPerRow)
		apiRates, apiCPU = append(apiRates, rate), append(apiCPU, cpuPerRow)
	}
	workers := []int{1, 2, 4}
	rates := map[int][]float64{}
	for round := 1; round <= o.rounds; round++ {
		for _, n := range workers {
			rate, twice, err := workersRound(ctx, o, dir, src, n)
			if err != nil {
				return err
			}
			fmt.Printf("round %d: %d worker(s): %.0f rows/s, %d rows copied more than once\n", round, n, rate, twice)
			if twice != 0 {
				return fmt.Errorf("%d workers copied %d rows more than once", n, twice)
			}
			rates[n] = append(rates[n], rate)
		}
	}
	load, _ = os.ReadFile("/proc/loadavg")
	fmt.Printf("\nload average at the end: %s", load)
	fmt.Printf("median of %d rounds (min–max):\n", o.rounds)
	fmt.Printf("API backfill, concurrency 8, no rate limit: %s requests/s, %s µs CPU per row\n", spread(apiRates), spread(apiCPU))
	one := median(rates[1])
	for _, n := range workers {
		fmt.Printf("database backfill, %d worker(s): %s rows/s, %.2fx one worker\n", n, spread(rates[n]), median(rates[n])/one)
	}
	return nil
}

// apiRound sends the legacy patients to a fresh reference modern API.
func apiRound(ctx context.Context, o options, dir, src string) (rate, cpuPerRow float64, err error) {
	target, cleanup, err := prepareModern(ctx, o.pgURL, "strangler_bench_api")
	if err != nil {
		return 0, 0, err
	}
	if !o.keep {
		defer cleanup()
	}
	pool, err := modern.Open(ctx, target)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	srv := httptest.NewServer(modern.NewImports(pool, modern.Faults{}, slog.New(slog.DiscardHandler)).Handler())
	defer srv.Close()
	state := filepath.Join(dir, "state.db")
	os.Remove(state)
	cfgPath := filepath.Join(dir, "api.yaml")
	cfg := fmt.Sprintf(`backends:
  legacy: { url: "http://legacy.invalid" }
  modern: { url: "http://modern.invalid" }
store: sqlite:%s
backfill:
  source: %q
  api: { url: %q }
  batch: %d
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      target_api:
        method: PUT
        path: "/imports/patients/{PatientSerNum}"
        body:
          first_name: { from: FirstName, transform: [trim] }
          last_name: { from: LastName, transform: [trim] }
          email: { from: Email, transform: [trim, lower, null_if_empty] }
        concurrency: 8
      redact: [first_name, last_name, email]
`, state, src, srv.URL, o.batch)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return 0, 0, err
	}
	reportPath := filepath.Join(dir, "api-report.json")
	r, err := measure("strangler backfill (API)", o.strangler, "backfill", "--config", cfgPath, "--progress", "none", "--report-json", reportPath)
	if err != nil {
		return 0, 0, err
	}
	rep, err := readReport(reportPath)
	if err != nil {
		return 0, 0, err
	}
	if rep.Inserted != rep.Read {
		return 0, 0, fmt.Errorf("the API accepted %d of %d rows; the measure is of rows it applies", rep.Inserted, rep.Read)
	}
	return float64(rep.Read) / r.elapsed.Seconds(), float64(r.cpu.Microseconds()) / float64(rep.Read), nil
}

// workersRound copies the legacy patients into a fresh schema with n
// worker processes on one run, and returns the rows per second and how
// many rows were written more than once.
func workersRound(ctx context.Context, o options, dir, src string, n int) (rate float64, twice int64, err error) {
	target, cleanup, err := prepareModern(ctx, o.pgURL, "strangler_bench")
	if err != nil {
		return 0, 0, err
	}
	if !o.keep {
		defer cleanup()
	}
	cfgPath := filepath.Join(dir, "workers.yaml")
	if err := os.WriteFile(cfgPath, []byte(configFile(src, target, o)), 0o600); err != nil {
		return 0, 0, err
	}
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	start := time.Now()
	for i := range n {
		cmds[i] = exec.Command(o.strangler, "backfill", "--config", cfgPath, "--tables", "patients", "--run", "bench",
			"--worker", "--worker-id", fmt.Sprint("w", i), "--progress", "none", "--report-json", filepath.Join(dir, fmt.Sprintf("w%d.json", i)))
		outs[i] = &strings.Builder{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			return 0, 0, err
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			return 0, 0, fmt.Errorf("worker %d: %v\n%s", i, err, outs[i])
		}
	}
	elapsed := time.Since(start)
	var written int64
	for i := range n {
		rep, err := readReport(filepath.Join(dir, fmt.Sprintf("w%d.json", i)))
		if err != nil {
			return 0, 0, err
		}
		written += rep.Inserted + rep.Updated + rep.Present
	}
	return float64(o.rows) / elapsed.Seconds(), written - int64(o.rows), nil
}

type tableReport struct {
	Read, Inserted, Updated int64
	Present                 int64 `json:"already_present"`
}

// readReport reads the one table of a JSON report.
func readReport(path string) (tableReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tableReport{}, err
	}
	var rep struct{ Tables []tableReport }
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Tables) != 1 {
		return tableReport{}, fmt.Errorf("report %s: %v", path, err)
	}
	return rep.Tables[0], nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func spread(xs []float64) string {
	return fmt.Sprintf("%.0f (%.0f–%.0f)", median(xs), slices.Min(xs), slices.Max(xs))
}
