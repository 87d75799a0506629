// Package backfill copies the legacy database's rows into the modern one
// and checks that the two agree, per the backfill section of the
// configuration.
//
// Backfill reads each source table by keyset pagination on its key, in
// batches, optionally in parallel key ranges; writes each batch with COPY,
// straight into the target when its rows are new, else into a staging
// table followed by an upsert on the target key; and records, in the same
// transaction, the batch's checkpoint and the rows the target refused,
// with their reason, in a ledger in the target database
// (strangler_backfill_runs, _checkpoints, _failures and _deletes). So a
// killed run resumes where it stopped and re-running is idempotent. A
// re-run copies what is new past the checkpoints, then compares the
// tables it had copied before with the source, chunk by chunk, and copies
// what differs: rows that appeared below a checkpoint, rows changed since.
// It can also copy an explicit set of keys, such as the read-repair keys
// the facade records.
//
// Every value is copied exactly or its row goes to the ledger with a
// reason: one the target type would change (mapping.go, checks.go) is
// refused unless its column is lossy, and nothing in one row can stop a
// run; a failure no row can be blamed for stops only its table.
// Transforms and defaults are computed by the source database.
//
// Verify compares the two databases table by table with the same
// comparison a re-run uses (compare.go): legacy's rows, read as the
// backfill reads them, are staged in the target and compared there with
// the backfill's own conversions and equality, so verify and the
// backfill cannot disagree about what a faithful copy is.
package backfill

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/config"
	"strangler/internal/dberr"
	"strangler/internal/dsn"
	"strangler/internal/mysqldsn"
	"strangler/phi"
)

// RepairKeys is where the facade's read repair leaves the keys modern
// lacked when a client asked for them. Backfill drains it at the start of
// every full run, so those rows arrive first. Table names are the backfill
// section's table names.
type RepairKeys interface {
	// Pending returns keys of the table waiting to be copied, as source key
	// values, oldest first; it may return a page of them. None when
	// nothing waits.
	Pending(ctx context.Context, table string) ([]string, error)
	// Done records keys the backfill has dealt with: copied, not in the
	// source at all, or failed. A failed row is in the ledger, which every
	// full run retries, so it need not stay pending (and hold up the keys
	// queued after it).
	Done(ctx context.Context, table string, keys []string) error
}

// Options tune a run; the zero value copies every table, resuming from
// the checkpoints. Batch size, rate and concurrency come from the
// configuration.
type Options struct {
	// Tables limits the run to these tables; empty means all.
	Tables []string
	// Keys, when set, copies only these source keys of each named table,
	// and the rows of other tables that refer to them through a lookup
	// (a patient's MRNs and photos with the patient). Checkpoints are left
	// alone.
	Keys map[string][]string
	// OnlyFailed retries only the rows the ledger records as failed.
	OnlyFailed bool
	// Restart ignores the checkpoints and reads every row again; rows that
	// are already equal are counted, not rewritten.
	Restart bool
	// SinceCheckpoint only copies what is past the checkpoints (and retries
	// failed rows), without comparing what is below them: the fast path
	// for tables whose keys only grow and whose rows never change.
	SinceCheckpoint bool
	// PropagateDeletes deletes the target rows whose source row is gone,
	// recording each in the ledger; without it they are only counted.
	PropagateDeletes bool
	// DryRun does everything inside transactions it rolls back, and writes
	// nothing, not even the ledger: the report says what a run would do.
	DryRun bool
	// Repairs, if set, is drained before a full or restarted run.
	Repairs RepairKeys
	// Progress, if set, receives progress: bars when Terminal, plain lines
	// otherwise. Screen, if set with Terminal, draws the bars on Progress
	// and keeps the log lines written through it above them.
	Progress io.Writer
	Terminal bool
	Screen   *Screen
	// Metrics, if set, counts rows.
	Metrics *Metrics
	// Log receives a line per table and errors; nil discards them.
	Log *slog.Logger
	// APILedger keeps the ledger of tables sent to the modern service's
	// API (target_api); a dry run may go without.
	APILedger APILedger
	// Hasher hashes the redacted fields of the payloads the API ledger
	// keeps; nil hashes with a random key, which hides them but matches
	// nothing.
	Hasher *phi.Hasher
	// Requests, in a dry run of API tables, receives each request the run
	// would send, redacted.
	Requests io.Writer
	// Worker joins the shared run named Run as one of its workers, under
	// the name WorkerID, leasing key ranges (workers.go), or groups of
	// tables sent to the API (apiworkers.go), for Lease at a time. A worker copies what is not done yet; it neither
	// compares, nor retries failed rows, nor drains read repair: a plain
	// run afterwards does.
	Worker   bool
	Run      string
	WorkerID string
	Lease    time.Duration
	// Source names the source database this run reads when the plan runs
	// over several (Backfill.Sources); Run sets it for each. Empty for the
	// single source.
	Source string

	// resumePause, when set, is the first pause of the resumption
	// policy in place of resumePause: set by the package's own tests
	// alone (export_test.go), never by a user.
	resumePause time.Duration
}

// policy is the resumption policy of the run.
func (o *Options) policy() policy { return policy{cmp.Or(o.resumePause, resumePause)} }

// mode names what a run does, in the ledger and the report.
func (o *Options) mode() string {
	switch {
	case len(o.Keys) > 0:
		return "keys"
	case o.OnlyFailed:
		return "only-failed"
	case o.Restart:
		return "restart"
	case o.SinceCheckpoint:
		return "since-checkpoint"
	}
	return "full"
}

// check refuses options that contradict each other.
func (o *Options) check() error {
	switch m := o.mode(); {
	case o.Restart && o.SinceCheckpoint:
		return errors.New("choose restart or since-checkpoint")
	case o.PropagateDeletes && m != "full" && m != "restart":
		return fmt.Errorf("propagating deletes compares whole tables; it cannot be combined with %s", m)
	case o.Worker && (o.Run == "" || o.WorkerID == ""):
		return errors.New("a worker needs the run's name and its own")
	case o.Worker && (m != "full" || o.DryRun || o.PropagateDeletes):
		return errors.New("a worker copies what is not done yet; it cannot be combined with --restart, --since-checkpoint, --only-failed, --keys, --propagate-deletes or --dry-run")
	}
	return nil
}

// checkNames refuses, before any database is reached, a table that only
// (--tables) or keys (--keys) name and the backfill section does not
// have, or keys of a table only leaves out.
func checkNames(cfg *config.Backfill, only []string, keys map[string][]string) error {
	for _, name := range only {
		if cfg.Table(name) == nil {
			return fmt.Errorf("no table %q in the backfill section; it has %s", name, strings.Join(cfg.TableNames(), ", "))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		switch {
		case cfg.Table(name) == nil:
			return fmt.Errorf("keys: no table %q in the backfill section; it has %s", name, strings.Join(cfg.TableNames(), ", "))
		case len(only) > 0 && !slices.Contains(only, name):
			return fmt.Errorf("keys: table %q is not among the tables to copy (%s)", name, strings.Join(only, ", "))
		}
	}
	return nil
}

// Run backfills per cfg and returns what it did, once per source when cfg
// names several. The report is returned even with an error, covering the
// work done until it stopped.
func Run(ctx context.Context, cfg *config.Backfill, opts Options) (_ *Report, err error) {
	// Every error, the plan's too, without the values a database's error
	// in it quotes, as verify's.
	defer func() { err = dberr.Cut(err) }()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	if err := checkNames(cfg, opts.Tables, opts.Keys); err != nil {
		return nil, err
	}
	if cfg.Sources != nil || cfg.SourcesQuery != nil {
		return runSources(ctx, cfg, opts)
	}
	switch api, err := usesAPI(cfg, opts.Tables); {
	case err != nil:
		return nil, err
	case api:
		return runAPI(ctx, cfg, opts)
	}
	started := time.Now()
	src, dst, err := connect(ctx, cfg, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	defer dst.Close()
	tables, err := planResuming(ctx, cfg, opts.Tables, src, dst, opts.policy(), opts.Log, false)
	if err != nil {
		return nil, err
	}
	var held *runLock
	if !opts.DryRun {
		take := lock
		if opts.Worker {
			take = lockShared
		}
		if held, err = take(ctx, dst); err != nil {
			return nil, err
		}
		defer boundTarget(context.WithoutCancel(ctx), cfg, func(ctx context.Context) error { held.release(ctx); return nil })
	}
	l, err := openLedger(ctx, dst, opts.DryRun)
	if err != nil {
		return nil, err
	}
	if opts.Worker {
		l.owner = &opts.WorkerID
		if opts.Lease <= 0 {
			opts.Lease = DefaultLease
		}
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	if err := l.startRun(ctx, opts.mode(), names, opts.Run); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, opts: opts, src: src, dst: dst, ledger: l, lock: held, tables: tables,
		stats: map[string]*tableStats{}, pace: newPacer(cfg.Rate), batch: cfg.Batch, started: map[string]bool{}}
	r.newWriter = func(ctx context.Context, t *table, tryDirect bool) (batchWriter, error) {
		return newWriter(ctx, dst, t, l, tryDirect)
	}
	// A batch never holds more than a second of rows, so the rate holds
	// smoothly rather than in bursts.
	if cfg.Rate > 0 {
		r.batch = max(1, min(r.batch, cfg.Rate))
	}
	var all []*tableStats
	for _, t := range tables {
		s := newTableStats(t.name, t.reportKey, opts.DryRun)
		r.stats[t.name] = s
		all = append(all, s)
	}
	opts.Log.Info("backfill started", "mode", opts.mode(), "dry_run", opts.DryRun, "tables", names, "run_id", l.runID)
	prog := startProgress(opts.Progress, opts.Terminal, opts.Screen, all)
	runErr := r.run(ctx)
	prog.finish()

	report := &Report{RunID: l.runID, Mode: opts.mode(), DryRun: opts.DryRun, Started: started, Finished: time.Now()}
	for _, t := range tables {
		report.Tables = append(report.Tables, r.stats[t.name].report())
	}
	status, runErr := report.end(ctx, runErr)
	finish := func(ctx context.Context) error { return l.finishRun(ctx, status, report, runErr) }
	if err := boundTarget(context.WithoutCancel(ctx), cfg, finish); err != nil && runErr == nil {
		runErr = ledgerError("recording the run's end", err)
	}
	if err := boundTarget(context.WithoutCancel(ctx), cfg, l.trimLeases); err != nil {
		opts.Log.Warn("backfill lease records not dropped", "error", err)
	}
	return report, runErr
}

// connect opens both databases with room for conns workers.
func connect(ctx context.Context, cfg *config.Backfill, conns int) (*sql.DB, *pgxpool.Pool, error) {
	if cfg.Target.URL == nil {
		return nil, nil, errors.New("target: the backfill section names no target database")
	}
	src, err := connectSource(ctx, cfg, conns)
	if err != nil {
		return nil, nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.Target.String())
	if err != nil {
		src.Close()
		return nil, nil, fmt.Errorf("target: %w", dsn.RedactError(err, cfg.Target.String()))
	}
	pcfg.MaxConns = int32(conns + 2)
	rp := pcfg.ConnConfig.RuntimeParams
	// set sets a session setting, whatever case the URL spelt it in
	// (PostgreSQL's names are not case sensitive, and two spellings would
	// both be sent, in no set order).
	set := func(name, value string) {
		for k := range rp {
			if strings.EqualFold(k, name) {
				delete(rp, k)
			}
		}
		rp[name] = value
	}
	set("application_name", "strangler backfill")
	set("timezone", "UTC")
	// Floats are compared by their text (0 and -0 are equal as values):
	// with extra_float_digits 0, which a database may still set, two
	// doubles one step apart would read alike. Any positive value gives
	// the shortest exact text (3: exact on servers before 12 too).
	set("extra_float_digits", "3")
	// Text is read as dates and intervals the same way whatever the
	// database sets: 03/10/2024 as PostgreSQL's default reads it (10
	// March, where DMY reads 3 October), and -1 2:03:04 as -1 day plus
	// 2:03:04 (sql_standard negates it all).
	set("datestyle", "ISO, MDY")
	set("intervalstyle", "postgres")
	// A batch and its checkpoint commit together, so losing the last few
	// commits to a server crash only means redoing those batches: waiting
	// for each commit's WAL flush buys nothing here.
	set("synchronous_commit", "off")
	// Below TLS, so pgx still finds its *tls.Conn (channel binding).
	bound := cmp.Or(time.Duration(cfg.BatchTimeout), config.DefaultBatchTimeout)
	dial := pcfg.ConnConfig.DialFunc
	pcfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &silentConn{Conn: c, bound: bound}, nil
	}
	dst, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		err = dst.Ping(ctx)
	}
	if err != nil {
		src.Close()
		if dst != nil {
			dst.Close()
		}
		return nil, nil, fmt.Errorf("target %s: %w", cfg.Target.Redacted(), err)
	}
	return src, dst, nil
}

// connectSource opens the source database with room for conns workers.
func connectSource(ctx context.Context, cfg *config.Backfill, conns int) (*sql.DB, error) {
	driverDSN, err := mysqldsn.DriverDSN(cfg.Source.String())
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	mcfg, err := mysql.ParseDSN(driverDSN)
	if err != nil {
		return nil, fmt.Errorf("source: %w", dsn.RedactError(err, driverDSN))
	}
	// Values are read as MySQL's text, not parsed into Go times, and
	// TIMESTAMP columns in UTC, as the target session reads them. Queries
	// with arguments are prepared, never interpolated: only MySQL's binary
	// protocol sends a FLOAT exactly (see sourceRow).
	mcfg.ParseTime = false
	mcfg.InterpolateParams = false
	if mcfg.Params == nil {
		mcfg.Params = map[string]string{}
	}
	mcfg.Params["time_zone"] = "'+00:00'"
	// Text comes as utf8mb4, whatever the URL asks (?charset=latin1 is
	// common in older applications' settings): in another character set
	// MySQL sends '?' for each character it lacks, and so does
	// character_set_results, which the URL may set as a session variable.
	if err := mcfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	mcfg.Params["character_set_results"] = "utf8mb4"
	boundMySQL(mcfg, cfg)
	src, err := sql.Open("mysql", mcfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	src.SetMaxOpenConns(conns + 2)
	src.SetMaxIdleConns(conns + 2)
	if err := src.PingContext(ctx); err != nil {
		src.Close()
		return nil, fmt.Errorf("source %s: %w", cfg.Source.Redacted(), err)
	}
	return src, nil
}

// boundMySQL makes every read and write of mcfg's connections wait
// batch_timeout at most (the driver's readTimeout and writeTimeout,
// unless the URL sets them shorter). A MySQL server that drops packets
// (a firewall's DROP, a host gone) answers nothing, and a read waits for
// as long as TCP keeps the connection, some fifteen minutes; the target's
// reads and writes are bounded alike (silentConn). Past it the
// connection is lost, and a range resumes from its checkpoint.
func boundMySQL(mcfg *mysql.Config, cfg *config.Backfill) {
	bound := cmp.Or(time.Duration(cfg.BatchTimeout), config.DefaultBatchTimeout)
	if mcfg.ReadTimeout == 0 || mcfg.ReadTimeout > bound {
		mcfg.ReadTimeout = bound
	}
	if mcfg.WriteTimeout == 0 || mcfg.WriteTimeout > bound {
		mcfg.WriteTimeout = bound
	}
}
