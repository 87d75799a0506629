// Command benchbackfill measures `strangler backfill` and `strangler
// verify` on a large table. It fills a fresh MariaDB/MySQL database with
// generated patients in the legacy schema; then, in alternating rounds, it
// backfills them into a fresh PostgreSQL schema in the modern one,
// verifies the two, and loads the same table with pgloader (when it is
// installed) for comparison. It prints every round and, from the best
// round of each, rows per second, the ratio to pgloader, the backfill's
// peak resident memory and the verify time.
//
//	go run ./backfill [-rows 1000000] [-rounds 2] [-mysql URL] [-postgres URL]
//	go run ./backfill -scale -rows 50000 -rounds 3
//
// strangler runs as a child process, so its memory is its own. The ledger
// is kept as in any run. pgloader runs with its defaults for a MySQL
// source (it creates the table and builds indexes after loading), which is
// what its users get; strangler writes into the modern schema's existing
// table with its constraints and unique indexes, upserting. Both read
// from and write to the same servers on the same machine, one after the
// other.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"strangler/backfill/fixture"
	"strangler/internal/mysqldsn"
	"strangler/legacy"
	"strangler/modern"
)

type options struct {
	rows        int
	mysqlURL    string
	pgURL       string
	strangler   string
	concurrency int
	batch       int
	rounds      int
	keep        bool
	skipLoad    bool
	scale       bool
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 1_000_000, "patients to generate and copy")
	flag.StringVar(&o.mysqlURL, "mysql", env("STRANGLER_BENCH_MYSQL", "mysql://root@127.0.0.1:3306/strangler_bench"), "MariaDB/MySQL `URL`; its database is dropped and recreated")
	flag.StringVar(&o.pgURL, "postgres", env("STRANGLER_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL `URL`; the schemas strangler_bench and strangler_bench_pgloader are dropped and recreated in it")
	flag.StringVar(&o.strangler, "strangler", "", "strangler `binary` (default: build ./cmd/strangler)")
	flag.IntVar(&o.concurrency, "concurrency", 2, "backfill concurrency")
	flag.IntVar(&o.batch, "batch", 5000, "backfill batch size")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds of each tool, alternating; the best counts")
	flag.BoolVar(&o.keep, "keep", false, "keep the databases afterwards (for -reuse)")
	flag.BoolVar(&o.skipLoad, "reuse", false, "reuse the generated legacy rows of an earlier -keep run")
	flag.BoolVar(&o.scale, "scale", false, "instead: the backfill through the reference modern API, and 1, 2 and 4 workers on one run (see scale.go)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "benchbackfill:", err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// result is one measured run.
type result struct {
	name    string
	rows    int64
	elapsed time.Duration
	cpu     time.Duration // the process's own user and system time
	peakRSS int64         // bytes; 0 if unknown
	note    string
}

func (r result) rate() float64 { return float64(r.rows) / r.elapsed.Seconds() }

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "benchbackfill")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.strangler == "" {
		o.strangler = filepath.Join(dir, "strangler")
		fmt.Println("building strangler…")
		// The bench is a module of its own; strangler's is where its
		// replace directive points.
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "strangler").Output()
		if err != nil {
			return fmt.Errorf("cannot find the strangler module (go list -m strangler: %v); run from bench/ or pass -strangler", err)
		}
		build := exec.Command("go", "build", "-o", o.strangler, "./cmd/strangler")
		build.Dir = strings.TrimSpace(string(root))
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if o.scale {
		return scale(ctx, o, dir)
	}
	src, dropLegacy, err := prepareLegacy(ctx, o)
	if err != nil {
		return err
	}
	if !o.keep {
		defer dropLegacy()
	}
	pgloader, lookErr := exec.LookPath("pgloader")
	var results []result
	// Rounds alternate the tools, so that the database servers' background
	// work (InnoDB flushing the generated rows, autovacuum) and the other
	// load on the machine weigh on both alike; the best round of each
	// counts.
	for round := 1; round <= o.rounds; round++ {
		target, cleanup, err := prepareModern(ctx, o.pgURL, "strangler_bench")
		if err != nil {
			return err
		}
		// Each round recreates the schema; one cleanup drops it at the end.
		if !o.keep && round == 1 {
			defer cleanup()
		}
		cfgPath := filepath.Join(dir, "backfill.yaml")
		if err := os.WriteFile(cfgPath, []byte(configFile(src, target, o)), 0o600); err != nil {
			return err
		}
		fmt.Printf("round %d: backfilling %d rows with strangler (concurrency %d, batch %d)…\n", round, o.rows, o.concurrency, o.batch)
		reportPath := filepath.Join(dir, "report.json")
		r, err := measure("strangler backfill", o.strangler, "backfill", "--config", cfgPath, "--tables", "patients",
			"--progress", "none", "--report-json", reportPath)
		if err != nil {
			return err
		}
		if r.rows, err = rowsWritten(reportPath); err != nil {
			return err
		}
		results = append(results, r)

		fmt.Printf("round %d: verifying %d equal rows…\n", round, o.rows)
		v, err := measure("strangler verify", o.strangler, "verify", "--config", cfgPath, "--tables", "patients")
		if err != nil {
			return err
		}
		v.rows = int64(o.rows)
		results = append(results, v)

		if lookErr != nil {
			continue
		}
		pgTarget, cleanupPG, err := prepareModern(ctx, o.pgURL, "strangler_bench_pgloader")
		if err != nil {
			return err
		}
		if !o.keep && round == 1 {
			defer cleanupPG()
		}
		fmt.Printf("round %d: loading the same table with pgloader…\n", round)
		load := filepath.Join(dir, "patients.load")
		if err := os.WriteFile(load, []byte(pgloaderFile(src, pgTarget)), 0o600); err != nil {
			return err
		}
		p, err := measure("pgloader", pgloader, load)
		if err != nil {
			return err
		}
		p.rows = int64(o.rows)
		results = append(results, p)
	}
	if lookErr != nil {
		results = append(results, result{name: "pgloader", note: "not installed (apt-get install pgloader); skipped"})
	}
	printResults(results, o)
	return nil
}

// prepareLegacy creates the legacy database and fills it, unless reusing
// it; drop removes it.
func prepareLegacy(ctx context.Context, o options) (url string, drop func(), err error) {
	dsn, err := mysqldsn.DriverDSN(o.mysqlURL)
	if err != nil {
		return "", nil, err
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", nil, err
	}
	name := cfg.DBName
	server := cfg.Clone()
	server.DBName = ""
	admin := func(q string) error {
		db, err := sql.Open("mysql", server.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, q)
		return err
	}
	drop = func() { admin("DROP DATABASE IF EXISTS `" + name + "`") }
	if !o.skipLoad {
		for _, q := range []string{"DROP DATABASE IF EXISTS `" + name + "`", "CREATE DATABASE `" + name + "`"} {
			if err := admin(q); err != nil {
				return "", nil, fmt.Errorf("legacy database: %w", err)
			}
		}
	}
	db, err := legacy.Open(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	if !o.skipLoad {
		fmt.Printf("generating %d legacy patients…\n", o.rows)
		start := time.Now()
		if err := fixture.Generate(ctx, db, fixture.Sizes{Patients: o.rows}); err != nil {
			return "", nil, err
		}
		fmt.Printf("generated in %s\n", time.Since(start).Round(time.Millisecond))
	}
	// Fresh statistics: the row estimate sizes the key ranges.
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE Patient"); err != nil {
		return "", nil, err
	}
	settle(ctx, db)
	return o.mysqlURL, drop, nil
}

// settle waits (up to a minute) for InnoDB to write the generated rows
// out, so that the first tool measured does not pay for it.
func settle(ctx context.Context, db *sql.DB) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var name string
		var dirty, total int64
		db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty)
		db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_total'").Scan(&name, &total)
		if total == 0 || dirty*100 < total {
			return
		}
		time.Sleep(time.Second)
	}
}

// prepareModern recreates a schema and migrates the modern tables into it,
// returning a URL whose connections use it.
func prepareModern(ctx context.Context, base, schema string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("modern database: %w", err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{"DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", nil, fmt.Errorf("modern database: %w", err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pool, err := modern.Open(ctx, u.String())
	if err != nil {
		return "", nil, err
	}
	pool.Close()
	cleanup := func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	return u.String(), cleanup, nil
}

func configFile(src, target string, o options) string {
	return fmt.Sprintf(`backends:
  legacy: { url: "http://legacy.invalid" }
  modern: { url: "http://modern.invalid" }
backfill:
  source: %q
  target: %q
  batch: %d
  concurrency: %d
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      to: patients
      target_key: legacy_id
      columns:
        legacy_id: PatientSerNum
        first_name: { from: FirstName, transform: [trim] }
        last_name: { from: LastName, transform: [trim] }
        birth_date: DateOfBirth
        email: { from: Email, transform: [trim, lower, null_if_empty] }
      redact: [first_name, last_name, birth_date, email]
`, src, target, o.batch, o.concurrency)
}

// pgloaderFile loads the Patient table with pgloader's defaults for a
// MySQL source, into a schema of its own.
func pgloaderFile(src, target string) string {
	u, _ := url.Parse(target)
	schema := u.Query().Get("search_path")
	u.RawQuery = ""
	db := strings.TrimPrefix(must(url.Parse(src)).Path, "/")
	return fmt.Sprintf(`LOAD DATABASE
  FROM %s
  INTO %s
  WITH include drop, create tables, create indexes, reset sequences
  INCLUDING ONLY TABLE NAMES MATCHING 'Patient'
  ALTER SCHEMA '%s' RENAME TO '%s';
`, src, u.String(), db, schema)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// measure runs a command to completion and returns its wall time and peak
// resident memory.
func measure(name, path string, args ...string) (result, error) {
	cmd := exec.Command(path, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := result{name: name, elapsed: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.peakRSS = ru.Maxrss << 10 // KiB on Linux
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil {
		return r, fmt.Errorf("%s: %v\n%s", name, err, out.String())
	}
	if name == "pgloader" && strings.Contains(out.String(), "ERROR") {
		return r, errors.New("pgloader reported errors:\n" + out.String())
	}
	return r, nil
}

func rowsWritten(reportPath string) (int64, error) {
	b, err := os.ReadFile(reportPath)
	if err != nil {
		return 0, err
	}
	var rep struct {
		Tables []struct {
			Read     int64 `json:"read"`
			Inserted int64 `json:"inserted"`
			Failed   int64 `json:"failed"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Tables) != 1 {
		return 0, fmt.Errorf("report: %v", err)
	}
	if t := rep.Tables[0]; t.Failed > 0 || t.Inserted != t.Read {
		return 0, fmt.Errorf("backfill read %d rows, inserted %d, failed %d", t.Read, t.Inserted, t.Failed)
	}
	return rep.Tables[0].Inserted, nil
}

func printResults(results []result, o options) {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\trows\tseconds\trows/s\tCPU seconds\tpeak RSS\t")
	best := map[string]result{}
	for _, r := range results {
		if r.note != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t\t%s\t\n", r.name, r.note)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%.2f\t%d MiB\t\n", r.name, r.rows, r.elapsed.Seconds(), r.rate(), r.cpu.Seconds(), r.peakRSS>>20)
		if b, ok := best[r.name]; !ok || r.elapsed < b.elapsed {
			best[r.name] = r
		}
	}
	tw.Flush()
	fmt.Println("(CPU seconds: the tool's own process; both databases run on the same machine)")
	ours, theirs, verify := best["strangler backfill"], best["pgloader"], best["strangler verify"]
	var peak int64
	for _, r := range results {
		if r.name == "strangler backfill" {
			peak = max(peak, r.peakRSS)
		}
	}
	fmt.Printf("\nbest of %d rounds:\n", o.rounds)
	fmt.Printf("strangler backfill: %.0f rows/s\n", ours.rate())
	if theirs.rows > 0 {
		fmt.Printf("pgloader:           %.0f rows/s\n", theirs.rate())
		fmt.Printf("strangler backfill / pgloader: %.2fx the rows per second (target: at least 1.00x)\n", ours.rate()/theirs.rate())
	}
	fmt.Printf("strangler backfill peak RSS: %d MiB (target: under 200 MiB)\n", peak>>20)
	fmt.Printf("strangler verify of %d equal rows: %.2f s (target: under 30 s)\n", o.rows, verify.elapsed.Seconds())
}
