package backfill

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"strangler/config"
	"strangler/phi"
	"strangler/store"
)

// APILedger is where a backfill through the modern service's API keeps
// what it migrated, what failed and why, its checkpoints and its runs:
// the facade's state store. Keys are as reports show them (binary keys
// in hex), so that any key is valid text in either store.
type APILedger interface {
	StartAPIBackfill(ctx context.Context, mode string) (int64, error)
	// Checkpoints and groups are recorded for a plan (table.cutFor):
	// those of another are none, stale true, or cut afresh.
	APIBackfillCheckpoint(ctx context.Context, table, plan string) (key string, ok, stale bool, err error)
	// The checkpoint a release that kept no ledger rows of migrated rows
	// left (copy), cleared once those rows are in the ledger.
	APIBackfillBaseline(ctx context.Context, table string) (key string, ok bool, err error)
	ClearAPIBackfillBaseline(ctx context.Context, table string) error
	RecordAPIBackfill(ctx context.Context, run int64, table, plan string, migrated, failed []store.APIBackfillRow, checkpoint *string) error
	// What was last sent for rows, and how many rows were ever sent: a
	// re-run sends only what changed, and counts what is gone.
	APIBackfillSentRows(ctx context.Context, table string, keys []string) (map[string]store.APIBackfillSent, error)
	APIBackfillSentCount(ctx context.Context, table string) (int64, error)
	APIBackfillFailures(ctx context.Context, table, after string, limit int) ([]store.APIBackfillRow, error)
	FinishAPIBackfill(ctx context.Context, run int64, status string, report []byte) error
	// A plain run holds its tables, renewing the hold, so that a second
	// plain run of them is refused (naming the run and its holder) rather
	// than racing it (apihold.go).
	HoldAPIBackfill(ctx context.Context, run int64, holder string, tables []string, lease time.Duration) error
	ReleaseAPIBackfill(ctx context.Context, run int64) error

	// The groups of a run shared by workers (apiworkers.go).
	CanShareRuns() error
	ShareAPIBackfillGroups(ctx context.Context, run, table, plan string, cut func(context.Context) ([]store.APIBackfillGroup, error)) (stale bool, err error)
	ClaimAPIBackfillGroup(ctx context.Context, run, table, plan, owner string, lease time.Duration) (store.APIBackfillGroup, bool, error)
	RenewAPIBackfillGroup(ctx context.Context, run string, g store.APIBackfillGroup, owner string, lease time.Duration) (bool, error)
	ReleaseAPIBackfillGroup(ctx context.Context, run string, g store.APIBackfillGroup, owner string) error
	RecordAPIBackfillGroup(ctx context.Context, run string, runID int64, g store.APIBackfillGroup, owner string,
		migrated, failed []store.APIBackfillRow, last *string, done bool) error
	APIBackfillGroupsLeft(ctx context.Context, run, table string) (bool, error)
	APIBackfillGroupRecorded(ctx context.Context, run string, g store.APIBackfillGroup, last string) (bool, error)

	// Ping tells a state store gone from a connection lost (see gone).
	Ping(ctx context.Context) error
}

// Reasons a row sent to the API failed, a closed set (the ledger's
// reason column and the metrics' label).
const (
	reasonRejected         = "rejected"
	reasonRetriesExhausted = "retries_exhausted"
	// reasonInvalidText: a string field is not UTF-8, and JSON would
	// carry U+FFFD in place of its bytes. The row is never sent.
	reasonInvalidText = "invalid_text"
	// reasonInvalidPath: a path column would make the path address
	// another resource. The row is never sent.
	reasonInvalidPath = "invalid_path"
	// reasonInvalidValue: a field's value has no JSON form that says
	// it: a date that is no date (0000-00-00), a number JSON cannot
	// write. The row is never sent.
	reasonInvalidValue = "invalid_value"
	// reasonSeveralValues: a body lookup finds several distinct values
	// (a patient's two MRNs) and its where does not say which one. The
	// row is never sent.
	reasonSeveralValues = "several_values"
	// reasonChanged: the row changed since the API accepted it, and the
	// table's request creates a resource (POST, the key not in the
	// path): sending it again would make a second. The row is not sent.
	reasonChanged = "changed"
)

// apiRunner is one backfill run through the API.
type apiRunner struct {
	cfg    *config.Backfill
	opts   Options
	src    *sql.DB
	client *apiClient
	run    int64
	stats  map[string]*tableStats
	pace   *pacer
	hasher *phi.Hasher
	// printMu keeps a dry run's printed requests whole.
	printMu sync.Mutex
}

// usesAPI reports whether the run's tables are sent to the API; a mix of
// API and database tables in one run is refused.
func usesAPI(cfg *config.Backfill, only []string) (bool, error) {
	var api, db []string
	for _, t := range cfg.Tables {
		if len(only) > 0 && !slices.Contains(only, t.Name) {
			continue
		}
		if t.TargetAPI != nil {
			api = append(api, t.Name)
		} else {
			db = append(db, t.Name)
		}
	}
	if len(api) > 0 && len(db) > 0 {
		return false, fmt.Errorf("tables %s go to the API and %s to the database; run them separately with --tables",
			strings.Join(api, ", "), strings.Join(db, ", "))
	}
	return len(api) > 0, nil
}

// runAPI is Run for tables sent to the API.
func runAPI(ctx context.Context, cfg *config.Backfill, opts Options) (*Report, error) {
	switch {
	case len(opts.Keys) > 0 || opts.PropagateDeletes:
		return nil, errors.New("tables sent to the API take a plain run, --since-checkpoint, --restart, --only-failed or --dry-run")
	case opts.APILedger == nil && !opts.DryRun:
		return nil, errors.New("tables sent to the API keep their ledger in the state store; configure store")
	case opts.APILedger != nil && (opts.Hasher == nil || !opts.Hasher.Ready()):
		// The ledger keeps each request's keyed hash: one drawn at random
		// would make every row look changed to the next run.
		return nil, errors.New("tables sent to the API need the state store's hash key")
	}
	if opts.APILedger != nil {
		opts.APILedger = boundedLedger{l: opts.APILedger, cfg: cfg}
	}
	if opts.Worker {
		if err := opts.APILedger.CanShareRuns(); err != nil {
			return nil, err
		}
		if opts.Lease <= 0 {
			opts.Lease = DefaultLease
		}
	}
	started := time.Now()
	src, err := connectSource(ctx, cfg, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	r := &apiRunner{cfg: cfg, opts: opts, src: src, client: newAPIClient(cfg.API), stats: map[string]*tableStats{},
		pace: newPacer(cfg.Rate), hasher: opts.Hasher}
	var tables []*apiTable
	err = r.resuming(ctx, "the planning", []any{"step", "the planning"}, func() (err error) {
		tables, err = planAPI(ctx, cfg, opts.Tables, src)
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.hasher == nil {
		r.hasher = phi.RandomHasher()
	}
	if !opts.DryRun {
		if r.run, err = opts.APILedger.StartAPIBackfill(ctx, opts.mode()); err != nil {
			return nil, err
		}
	}
	var all []*tableStats
	var names []string
	for _, t := range tables {
		s := newTableStats(t.name, func(k []byte) string { return showKey(t.key, k) }, opts.DryRun)
		r.stats[t.name] = s
		all = append(all, s)
		names = append(names, t.name)
	}
	send := func(ctx context.Context) error {
		opts.Log.Info("backfill started", "mode", opts.mode(), "dry_run", opts.DryRun, "tables", names, "run_id", r.run, "target", "api")
		prog := startProgress(opts.Progress, opts.Terminal, opts.Screen, all)
		defer prog.finish()
		return r.all(ctx, tables)
	}
	var runErr error
	if !opts.DryRun && !opts.Worker {
		var held []string
		for _, t := range tables {
			held = append(held, r.ledgerName(t))
		}
		runErr = r.holding(ctx, held, send)
	} else {
		runErr = send(ctx)
	}

	report := &Report{RunID: r.run, Mode: opts.mode(), DryRun: opts.DryRun, Started: started, Finished: time.Now()}
	for _, t := range tables {
		tr := r.stats[t.name].report()
		tr.API = true
		report.Tables = append(report.Tables, tr)
	}
	status, runErr := report.end(ctx, runErr)
	if !opts.DryRun {
		b, _ := json.Marshal(report.ledgerCopy())
		if err := opts.APILedger.FinishAPIBackfill(context.WithoutCancel(ctx), r.run, status, b); err != nil && runErr == nil {
			runErr = fmt.Errorf("ledger: %w", err)
		}
	}
	return report, runErr
}

// all runs the before steps, sends every table, waits for the service's
// jobs, then runs the after steps. A table that stops stops the run: the
// after steps (enabling workflows) belong to a migration that finished.
// Each worker of a shared run runs the steps, so they must be idempotent;
// a worker is done with a table only once every group of it is, so its
// after steps come after all the rows.
func (r *apiRunner) all(ctx context.Context, tables []*apiTable) error {
	steps := func(what string, ss []config.APIStep) error {
		for _, s := range ss {
			if r.opts.DryRun {
				r.print("%s (%s step)\n", s.Method+" "+s.Path, what)
				continue
			}
			if err := r.client.step(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			r.opts.Log.Info("backfill step done", "step", what, "method", s.Method, "path", s.Path)
		}
		return nil
	}
	if err := steps("before", r.cfg.Before); err != nil {
		return err
	}
	for _, t := range tables {
		var err error
		switch {
		case r.opts.OnlyFailed:
			err = r.retryFailed(ctx, t)
		case r.opts.Worker:
			err = r.work(ctx, t)
		default:
			err = r.copy(ctx, t)
		}
		r.stats[t.name].done.Store(true)
		if err != nil {
			err = fmt.Errorf("%s: %w", t.name, err)
			r.stats[t.name].stop(err)
			return err
		}
		r.logDone(t)
	}
	if w := r.cfg.WaitUntil; w != nil && !r.opts.DryRun {
		if err := r.client.waitUntil(ctx, w); err != nil {
			return err
		}
		r.opts.Log.Info("backfill wait done", "path", w.Path, "field", w.Field, "equals", w.Equals)
	}
	return steps("after", r.cfg.After)
}

// ledgerName is the name a table's rows, checkpoint and Idempotency-Keys
// go under: the table's, prefixed with its source's when the plan runs
// over several sources, so that two clinics' patient 7 are two rows of
// the ledger and two entities to the API. A single source keeps the bare
// name, so that runs begun before sources existed stay valid.
func (r *apiRunner) ledgerName(t *apiTable) string {
	if r.opts.Source == "" {
		return t.name
	}
	return r.opts.Source + ":" + t.name
}

func (r *apiRunner) logDone(t *apiTable) {
	rep := r.stats[t.name].report()
	r.opts.Log.Info("backfill table done", "table", t.name, "read", rep.Read, "migrated", rep.Written(),
		"failed", rep.Failed, "taken_as_sent", rep.TakenAsSent, "duration_s", rep.Seconds)
}

// copy sends a table's rows, a page at a time: with --since-checkpoint
// those past its checkpoint, else all of them, each compared with what
// the ledger says was sent for it (send). A run that read every row
// counts the rows sent once that the source no longer has (extra).
func (r *apiRunner) copy(ctx context.Context, t *apiTable) error {
	return r.watchingService(ctx, t, func(ctx context.Context, o *outage) error { return r.copyWatched(ctx, t, o) })
}

// copyWatched is copy, o watching for the service gone.
func (r *apiRunner) copyWatched(ctx context.Context, t *apiTable, o *outage) error {
	var rg keyRange
	var sentBefore int64
	whole := !r.opts.SinceCheckpoint && r.opts.APILedger != nil
	if whole {
		var err error
		if sentBefore, err = r.opts.APILedger.APIBackfillSentCount(ctx, r.ledgerName(t)); err != nil {
			return err
		}
	}
	if r.opts.SinceCheckpoint && r.opts.APILedger != nil {
		key, ok, stale, err := r.opts.APILedger.APIBackfillCheckpoint(ctx, r.ledgerName(t), t.cutFor())
		if err != nil {
			return err
		}
		if stale {
			// Going on from it would leave the rows below it unread, or
			// as the old requests sent them.
			logStaleRanges(r.opts.Log, t.table)
		}
		if ok {
			if rg.start, err = parseKey(t.key, key); err != nil {
				return fmt.Errorf("ledger: checkpoint %q: %w", key, err)
			}
		}
	}
	// A checkpoint left by a release that deleted migrated rows from the
	// ledger: the rows at or below it (MySQL compares, in the source's
	// collation) that the ledger has nothing of were sent by that release,
	// and are recorded as such rather than sent again (send's baseline).
	var baseline []byte
	hasBaseline := false
	if whole {
		key, ok, err := r.opts.APILedger.APIBackfillBaseline(ctx, r.ledgerName(t))
		if err != nil {
			return err
		}
		if ok {
			if baseline, err = parseKey(t.key, key); err != nil {
				return fmt.Errorf("ledger: baseline checkpoint %q: %w", key, err)
			}
			hasBaseline = true
		}
	}
	r.stats[t.name].estimate.Store(estimateRows(ctx, r.src, t.table))
	rd := &reader{db: r.src, t: t.table, limit: r.cfg.Batch, pace: r.pace}
	reqPace := newPacer(t.api.Rate)
	pass := func(rg keyRange, baseline bool) error {
		read := func(ctx context.Context, out chan<- batch) error { return rd.keyset(ctx, rg, out) }
		// A lost connection resumes the pass after the last batch
		// recorded (rg.last): a batch is recorded whole, and its rows the
		// API may have seen go again under the same Idempotency-Keys.
		return r.resuming(ctx, "the sending of "+t.name, []any{"table", t.name}, func() error {
			return pipeline(ctx, read, func(b batch) error {
				if len(b.rows) == 0 {
					return nil
				}
				b.baseline = baseline && !r.opts.Restart
				// Below the baseline the checkpoint stays where it is: moved
				// back, a run with --since-checkpoint would send the rows
				// between, which the ledger has nothing of, again.
				var last *string
				if !baseline {
					k := showKey(t.key, b.rows[len(b.rows)-1].key)
					last = &k
				}
				err := r.send(ctx, t, b, reqPace, o, func(migrated, failed []store.APIBackfillRow) error {
					return r.opts.APILedger.RecordAPIBackfill(ctx, r.run, r.ledgerName(t), t.cutFor(), migrated, failed, last)
				})
				if err == nil {
					rg.last = b.rows[len(b.rows)-1].key
				}
				return err
			})
		})
	}
	var err error
	if hasBaseline {
		if err = pass(keyRange{end: baseline}, true); err == nil && !r.opts.DryRun {
			err = r.opts.APILedger.ClearAPIBackfillBaseline(ctx, r.ledgerName(t))
		}
		rg.start = baseline
	}
	if err == nil {
		err = pass(rg, false)
	}
	if err == nil && whole && !t.nullKeys {
		// Every row the ledger had sent and the source still has was
		// compared once (the source's keys are unique), so the rest are
		// rows deleted in legacy since.
		s := r.stats[t.name]
		s.extra.Store(max(0, sentBefore-s.compared.Load()))
	}
	return err
}

// retryFailed sends again the rows the ledger records as failed.
func (r *apiRunner) retryFailed(ctx context.Context, t *apiTable) error {
	if r.opts.APILedger == nil {
		return nil
	}
	return r.watchingService(ctx, t, func(ctx context.Context, o *outage) error { return r.retryFailedWatched(ctx, t, o) })
}

// retryFailedWatched is retryFailed, o watching for the service gone.
// A lost connection to the source or the state store resumes on the
// run's policy at the page under way: its rows a batch recorded are no
// longer failures, or are among those c has (failed again), which are
// neither sent nor counted again; the rest go again under the same
// Idempotency-Keys.
func (r *apiRunner) retryFailedWatched(ctx context.Context, t *apiTable, o *outage) error {
	reqPace := newPacer(t.api.Rate)
	rd := &reader{db: r.src, t: t.table, limit: r.cfg.Batch, pace: r.pace}
	c := newCopiedKeys()
	after := ""
	// lost is the error of the try before: a batch whose recording's
	// answer was lost is counted, and its rows not sent again, once the
	// ledger shows it recorded, as a try that recorded it would have.
	var lost error
	return r.resuming(ctx, "the retry of the failed rows of "+t.name, []any{"table", t.name}, func() error {
		u, ok, err := r.recorded(ctx, t, lost)
		if err != nil {
			return err
		}
		if ok {
			u.account()
			c.add(t.table, u.rows)
		}
		lost = nil
		for {
			failed, err := r.opts.APILedger.APIBackfillFailures(ctx, r.ledgerName(t), after, r.cfg.Batch)
			if err != nil || len(failed) == 0 {
				return err
			}
			keys := make([][]byte, len(failed))
			for i, f := range failed {
				if keys[i], err = parseKey(t.key, f.Key); err != nil {
					return err
				}
			}
			found := map[string]bool{}
			read := func(ctx context.Context, out chan<- batch) error {
				return rd.byValues(ctx, t.sourceKey, t.keyType, keys, out)
			}
			err = pipeline(ctx, read, func(b batch) error {
				for _, row := range b.rows {
					found[string(row.key)] = true
				}
				b.rows = slices.DeleteFunc(slices.Clone(b.rows), func(row sourceRow) bool { return c.has(t.table, row.key) })
				if len(b.rows) == 0 {
					return nil
				}
				err := r.send(ctx, t, b, reqPace, o, func(migrated, failed []store.APIBackfillRow) error {
					return r.opts.APILedger.RecordAPIBackfill(ctx, r.run, r.ledgerName(t), t.cutFor(), migrated, failed, nil)
				})
				if err == nil {
					c.add(t.table, b.rows)
				}
				return err
			})
			if err != nil {
				lost = err
				return err
			}
			var absent [][]byte
			for _, k := range keys {
				if !found[string(k)] {
					absent = append(absent, k)
				}
			}
			r.stats[t.name].notInSource.Add(c.notInSource(t.table, absent))
			after = failed[len(failed)-1].Key
		}
	})
}

// result is what became of one row sent.
type result struct {
	ok bool
	// sent is the row's request as the ledger keeps it (key, status,
	// hash, Idempotency-Key) when ok.
	sent    store.APIBackfillRow
	fail    store.APIBackfillRow
	skipped bool // the run stopped before the row was sent
	// unchanged: the API accepted this very request before; not sent.
	unchanged bool
	// update: the API had accepted an earlier version of the row.
	update bool
	// resent: --restart sent again the very request the API had
	// accepted; the row is in the service as it was.
	resent bool
	// compared: the ledger had a request sent for the row.
	compared bool
	// baseline: taken as sent by a release that kept no ledger rows of
	// migrated rows; recorded with its current request, not sent.
	baseline bool
}

// send sends a batch's rows, one group at a time per worker and a group's
// rows in key order, then records them in the ledger (record, with the
// checkpoint or the lease that goes with them). A batch is recorded only
// whole: a run stopped in the middle sends the batch again, which the
// Idempotency-Keys make harmless.
func (r *apiRunner) send(ctx context.Context, t *apiTable, b batch, reqPace *pacer, o *outage, record func(migrated, failed []store.APIBackfillRow) error) error {
	s := r.stats[t.name]
	s.active(time.Now())
	var prev map[string]store.APIBackfillSent
	if r.opts.APILedger != nil {
		keys := make([]string, len(b.rows))
		for i, row := range b.rows {
			keys[i] = showKey(t.key, row.key)
		}
		var err error
		if prev, err = r.opts.APILedger.APIBackfillSentRows(ctx, r.ledgerName(t), keys); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	groups := t.groups(b.rows)
	results := make([]result, len(b.rows))
	queue := make(chan []int)
	var wg sync.WaitGroup
	for range min(t.api.Concurrency, len(groups)) {
		wg.Go(func() {
			for g := range queue {
				for _, i := range g {
					if ctx.Err() != nil {
						results[i].skipped = true
						continue
					}
					p, known := prev[showKey(t.key, b.rows[i].key)]
					results[i] = r.sendRow(ctx, t, b.rows[i], p, b.baseline && !known, reqPace, o)
				}
			}
		})
	}
	for _, g := range groups {
		queue <- g
	}
	close(queue)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	var migrated, failed []store.APIBackfillRow
	var fs []failure
	var inserted, updated, unchanged, compared, baselined, resent int64
	var proof *store.APIBackfillRow
	for i, res := range results {
		if res.compared {
			compared++
		}
		switch {
		case res.skipped:
			// Only a cancelled run skips a row; never record the batch
			// without it, or the checkpoint would pass it.
			return fmt.Errorf("row %s of %s not sent: %w", showKey(t.key, b.rows[i].key), t.name, context.Canceled)
		case res.unchanged:
			unchanged++
		case res.baseline:
			migrated = append(migrated, res.sent)
			unchanged++
			baselined++
		case res.ok && res.resent:
			migrated = append(migrated, res.sent)
			unchanged++
			resent++
		case res.ok:
			migrated = append(migrated, res.sent)
			if proof == nil {
				proof = &res.sent
			}
			if res.update {
				updated++
			} else {
				inserted++
			}
		default:
			failed = append(failed, res.fail)
			fs = append(fs, failure{key: b.rows[i].key, reason: t.describe(res.fail)})
		}
	}
	account := func() {
		s.active(time.Now())
		s.read.Add(int64(len(b.rows)))
		s.inserted.Add(inserted)
		s.updated.Add(updated)
		s.present.Add(unchanged)
		s.compared.Add(compared)
		s.baselined.Add(baselined)
		s.addFailures(fs)
		if m := r.opts.Metrics; m != nil && !r.opts.DryRun {
			// A row taken as sent was migrated by the release before, one
			// sent again by an earlier run.
			m.Rows.WithLabelValues(r.opts.Source, t.name, "migrated").Add(float64(int64(len(migrated)) - baselined - resent))
			m.Rows.WithLabelValues(r.opts.Source, t.name, "failed").Add(float64(len(failed)))
		}
	}
	if !r.opts.DryRun {
		if err := record(migrated, failed); err != nil {
			return &unrecorded{rows: b.rows, proof: proof, last: showKey(t.key, b.rows[len(b.rows)-1].key), account: account, err: err}
		}
	}
	account()
	return nil
}

// unrecorded is the error of a batch sent whose recording in the state
// store failed: its COMMIT may have gone through with its answer lost.
// The batch is recorded whole or not at all; account counts it in the
// report once the ledger shows it recorded (recorded). A plain run can
// tell only a batch with a row newly migrated (proof) recorded; one
// without is taken as not, as its rows, sent again, count the same. A
// worker tells by its group's claim (last).
type unrecorded struct {
	rows []sourceRow
	// proof is a row the batch migrated that the ledger did not have as
	// migrated by the same request; nil: none.
	proof *store.APIBackfillRow
	// last is the batch's last key, as the ledger shows it.
	last    string
	account func()
	err     error
}

func (u *unrecorded) Error() string { return u.err.Error() }
func (u *unrecorded) Unwrap() error { return u.err }

// recorded reports whether the ledger holds u, the batch of lost, t's,
// as recorded by this run: its proof row migrated by the request the
// batch sent. By this run: a worker whose lease ended with the batch's
// recording unanswered asks once another worker may have sent the batch
// again under the same requests, and recorded it as its own.
func (r *apiRunner) recorded(ctx context.Context, t *apiTable, lost error) (u *unrecorded, ok bool, err error) {
	if !errors.As(lost, &u) || u.proof == nil {
		return nil, false, nil
	}
	got, err := r.opts.APILedger.APIBackfillSentRows(ctx, r.ledgerName(t), []string{u.proof.Key})
	if err != nil {
		return nil, false, fmt.Errorf("ledger: %w", err)
	}
	p, found := got[u.proof.Key]
	return u, found && p.Migrated && p.IdempotencyKey == u.proof.IdempotencyKey && p.BodyHash == u.proof.BodyHash && p.Run == r.run, nil
}

// groups cuts a batch's rows (in key order) into groups by the group_by
// value, each in key order, groups in the order they first appear.
func (t *apiTable) groups(rows []sourceRow) [][]int {
	if t.group < 0 {
		out := make([][]int, len(rows))
		for i := range rows {
			out[i] = []int{i}
		}
		return out
	}
	at := map[string]int{}
	var out [][]int
	for i, row := range rows {
		v := row.vals[t.group]
		k := "\x00"
		if v != nil {
			k = "v" + string(v)
		}
		g, ok := at[k]
		if !ok {
			g = len(out)
			at[k] = g
			out = append(out, nil)
		}
		out[g] = append(out[g], i)
	}
	return out
}

// describe is a failure as the report counts it: the reason and status,
// and the API's message where one was kept (sendRow keeps none for a
// table with redacted fields).
func (t *apiTable) describe(f store.APIBackfillRow) string {
	var s string
	switch f.Reason {
	case reasonRejected:
		s = fmt.Sprintf("rejected by the API (%d)", f.Status)
	case reasonRetriesExhausted:
		s = fmt.Sprintf("still failing after %d attempts (last: %s)", t.api.Retry.MaxAttempts, statusText(f.Status))
	case reasonInvalidText, reasonInvalidPath, reasonInvalidValue, reasonSeveralValues:
		s = "not sent"
	case reasonChanged:
		s = "changed since the API accepted it; not sent, as the table's request (POST, its key not in the path) would create it again"
	}
	if f.Message != "" {
		s += ": " + shortMessage(f.Message)
	}
	return s
}

// shortMessage is the start of an API's message, for a failure group's
// reason: up to 200 bytes, cut between characters. The ledger keeps more.
func shortMessage(m string) string {
	const most = 200
	if len(m) <= most {
		return m
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + "…"
}

func statusText(status int) string {
	if status == 0 {
		return "no answer"
	}
	return fmt.Sprint(status)
}

// request builds a row's path and JSON body.
func (t *apiTable) request(row sourceRow) (path string, body map[string]any) {
	var p strings.Builder
	for i, part := range t.parts {
		p.WriteString(part)
		if i < len(t.pathCols) {
			c := t.pathCols[i]
			p.WriteString(url.PathEscape(t.cols[c].apiText(row.vals[c])))
		}
	}
	body = make(map[string]any, len(t.fields))
	for _, f := range t.fields {
		v := row.vals[f.col]
		switch {
		case v == nil:
			body[f.name] = nil
		case f.number:
			body[f.name] = json.Number(plainNumber(f.srcType, v))
		case f.json:
			body[f.name] = json.RawMessage(v)
		default:
			body[f.name] = t.cols[f.col].apiText(v)
		}
	}
	return p.String(), body
}

// apiText is a value of the column as a string of the request: as MySQL
// writes it, but a TIMESTAMP, an instant read in UTC (connectSource), in
// RFC 3339, where MySQL's text would be a wall time in no zone; so is
// the text a transform made of a TIMESTAMP (TRIM makes it a VARCHAR)
// while it still has a TIMESTAMP's shape.
func (c *column) apiText(v []byte) string {
	if (c.srcType == "TIMESTAMP" || c.rawType == "TIMESTAMP" && isTextType(c.srcType)) && dateTime(v) {
		return string(v[:10]) + "T" + string(v[11:]) + "Z"
	}
	return string(v)
}

// invalidPath names the first path column whose value cannot be a path
// segment of its own: empty (NULL too) makes /wards//consents/1, and
// servers resolve . and .. (RFC 3986 dot segments) to another path.
func (t *apiTable) invalidPath(row sourceRow) string {
	for _, i := range t.pathCols {
		switch string(row.vals[i]) {
		case "", ".", "..":
			return t.cols[i].cfg.From
		}
	}
	return ""
}

// severalValues names the first field whose lookup finds several
// distinct values, or "".
func (t *apiTable) severalValues(row sourceRow) string {
	for _, f := range t.fields {
		if f.several > 0 && string(row.vals[f.several]) == "1" {
			return f.name
		}
	}
	return ""
}

// severalShown stands in the ledger's payload for a lookup's field that
// found several values: none of them is shown, redacted or not.
type severalShown struct{}

// invalidText names the first field whose value would go as a JSON
// string but is not UTF-8, or "".
func (t *apiTable) invalidText(row sourceRow) string {
	for _, f := range t.fields {
		if v := row.vals[f.col]; v != nil && !f.number && !utf8.Valid(v) {
			return f.name
		}
	}
	return ""
}

// invalidValue names the first field whose value JSON cannot say, and
// why, or "": a DATE, DATETIME or TIMESTAMP that is no date (a service
// would refuse it, or read 0000-00-00 as 30 November of year -1), the
// same made text by a transform (TRIM makes a VARCHAR) while it still
// has a date's shape, or a number JSON cannot write.
func (t *apiTable) invalidValue(row sourceRow) (field, why string) {
	for _, f := range t.fields {
		v := row.vals[f.col]
		switch {
		case v == nil:
		case f.number && !jsonNumber(string(v)):
			return f.name, "is not a number JSON can write"
		case f.json && !json.Valid(v):
			return f.name, "is not a JSON document (its column is JSON)"
		case isDateType(f.srcType) || isDateType(t.cols[f.col].rawType) && isTextType(f.srcType) && dateShaped(v):
			if _, ok := realDate(v); !ok {
				return f.name, "is not a real date (0000-00-00, month or day 0, or a day its month lacks)"
			}
		}
	}
	return "", ""
}

// redactedBody is body with its redacted fields replaced by their keyed
// hash: what the ledger and a dry run show. A number JSON cannot write
// (see invalidValue) is shown in words.
func (r *apiRunner) redactedBody(t *apiTable, body map[string]any) []byte {
	shown := make(map[string]any, len(body))
	for _, f := range t.fields {
		v := body[f.name]
		switch n, ok := v.(json.Number); {
		case v == severalShown{}:
			v = "<several values>"
		case f.redacted && v != nil:
			if doc, isDoc := v.(json.RawMessage); isDoc {
				v = string(doc)
			}
			v = r.hasher.Placeholder(f.name, fmt.Sprint(v))
		case f.json && v != nil && !json.Valid(v.(json.RawMessage)):
			v = "<not a JSON document>"
		case ok && !jsonNumber(string(n)):
			v = "<not a JSON number>"
		}
		shown[f.name] = v
	}
	b, _ := json.Marshal(shown)
	return b
}

// sendRow sends one row, retrying what may be retried. prev is what the
// ledger says was last sent for it: a request the API accepted before is
// not sent again (unless --restart), and a changed one goes under an
// Idempotency-Key of its own (idempotencyKey). A baseline row (copy) is
// not sent: the ledger records its current request as accepted under
// <table>:<key>, the key the earlier release sent it with. o counts the
// rows sent that the service did not answer.
func (r *apiRunner) sendRow(ctx context.Context, t *apiTable, row sourceRow, prev store.APIBackfillSent, baseline bool, reqPace *pacer, o *outage) result {
	key := showKey(t.key, row.key)
	path, body := t.request(row)
	if baseline {
		if raw, err := json.Marshal(body); err == nil {
			hash := r.hasher.Digest("api_backfill_request", t.api.Method+" "+path+"\n"+string(raw))
			return result{baseline: true, sent: store.APIBackfillRow{Key: key, BodyHash: hash, IdempotencyKey: r.baseKey(t, key)}}
		}
	}
	// A row refused before sending keeps what was last sent for it.
	notSent := func(reason, message string) result {
		return result{compared: prev.BodyHash != "", fail: store.APIBackfillRow{Key: key, Reason: reason, Payload: string(r.redactedBody(t, body)),
			Message: message, BodyHash: prev.BodyHash, IdempotencyKey: prev.IdempotencyKey}}
	}
	// The messages name a column or field, never its value.
	if col := t.invalidPath(row); col != "" {
		return notSent(reasonInvalidPath, "path column "+col+" is empty, NULL, . or .., which would address another resource")
	}
	if field := t.severalValues(row); field != "" {
		// Not the value LIMIT 1 picked: it is one of the patient's identifiers.
		body[field] = severalShown{}
		l := t.api.Body[field].Lookup
		return notSent(reasonSeveralValues, "field "+field+": lookup of "+l.Column+" in "+l.Table+" by "+l.Key+" finds several values; narrow it with where")
	}
	if field := t.invalidText(row); field != "" {
		return notSent(reasonInvalidText, "field "+field+" is not valid UTF-8 text, which JSON cannot carry")
	}
	if field, why := t.invalidValue(row); field != "" {
		return notSent(reasonInvalidValue, "field "+field+" "+why)
	}
	raw, merr := json.Marshal(body)
	if merr != nil {
		// Not its text: json's errors quote the value.
		return notSent(reasonInvalidValue, "the body cannot be written as JSON")
	}
	hash := r.hasher.Digest("api_backfill_request", t.api.Method+" "+path+"\n"+string(raw))
	idem, res := r.idempotencyKey(t, key, hash, prev)
	switch {
	case res.unchanged:
		return res
	case prev.BodyHash != "" && prev.BodyHash != hash && t.creates && prev.Reason != reasonRejected:
		// The request last sent may have created the resource: it was
		// accepted, went unanswered, or is carried by a row refused
		// since (changed, invalid_*). Only one the API refused did not.
		return notSent(reasonChanged, "")
	}
	res.sent = store.APIBackfillRow{Key: key, BodyHash: hash, IdempotencyKey: idem}
	if r.opts.DryRun {
		r.print("%s %s Idempotency-Key: %s %s\n", t.api.Method, path, idem, r.redactedBody(t, body))
		res.ok = true
		return res
	}
	var a answer
	var err error
	answered := false // by the service, to any attempt
	for n := 1; ; n++ {
		if err := reqPace.take(ctx, 1); err != nil {
			return result{skipped: true}
		}
		a, err = r.client.do(ctx, t.api.Method, path, raw, idem)
		if ctx.Err() != nil {
			return result{skipped: true}
		}
		answered = answered || !unanswered(a, err)
		if err == nil && a.accepted() {
			o.row(true, a, nil)
			res.ok = true
			res.sent.Status = a.status
			return res
		}
		if !retryable(a, err) || n >= t.api.Retry.MaxAttempts {
			break
		}
		select {
		case <-time.After(backoff(t.api.Retry, n, a.retryAfter)):
		case <-ctx.Done():
			return result{skipped: true}
		}
	}
	f := store.APIBackfillRow{Key: key, Status: a.status, Message: a.message, Payload: string(r.redactedBody(t, body)), Reason: reasonRejected,
		BodyHash: hash, IdempotencyKey: idem}
	if t.redacted && !a.page {
		// An API's error message may quote the value it refused, and a
		// table with redacted fields sends values that must not be kept.
		// (A page's message is ours.)
		f.Message = ""
	}
	if retryable(a, err) {
		f.Reason = reasonRetriesExhausted
		if err != nil {
			f.Message = err.Error()
		}
	}
	o.row(answered, a, err)
	res.fail = f
	return res
}

// idempotencyKey is the Idempotency-Key of a row's request whose keyed
// hash is hash: <table>:<key> for a row never sent, the same key as
// before for the request sent before (a retry, which the API applies
// once), and <table>:<key>:<12 hex digits of hash> for a changed one, so
// that an API honouring keys applies the change rather than replaying
// (or refusing) the first request's answer. res says what the ledger
// knew: a request the API accepted before is unchanged, not sent again
// unless --restart.
func (r *apiRunner) idempotencyKey(t *apiTable, key, hash string, prev store.APIBackfillSent) (string, result) {
	base := r.baseKey(t, key)
	switch {
	case prev.BodyHash == "":
		return base, result{}
	case prev.BodyHash == hash:
		return cmp.Or(prev.IdempotencyKey, base), result{compared: true, unchanged: prev.Migrated && !r.opts.Restart,
			resent: prev.Migrated && r.opts.Restart}
	default:
		return base + ":" + strings.TrimPrefix(hash, "h:")[:12], result{compared: true, update: prev.Migrated}
	}
}

// baseKey is the Idempotency-Key of row key's first request:
// <table>:<key>, unless a header cannot carry the key as it is. A
// control character cannot travel at all (the row failed, retried), and
// a header value's last spaces and tabs are not part of it (RFC 9110,
// 5.5): the service read <table>:abc for key 'abc\t' (or 'abc ', another
// key under a NO PAD collation) and answered it with row abc's answer,
// and the row was never applied. Such a key goes percent-encoded after a
// ';', where no key sent as it is can be: <table>;abc%09.
func (r *apiRunner) baseKey(t *apiTable, key string) string {
	last := key[max(len(key)-1, 0):]
	if !strings.ContainsFunc(key, func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }) && last != " " && last != "\t" {
		return r.ledgerName(t) + ":" + key
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return r.ledgerName(t) + ";" + b.String()
}

// print writes a dry run's line.
func (r *apiRunner) print(format string, args ...any) {
	w := r.opts.Requests
	if w == nil {
		w = io.Discard
	}
	r.printMu.Lock()
	defer r.printMu.Unlock()
	fmt.Fprintf(w, format, args...)
}

// resuming runs attempt on the policy every backfill mode resumes on
// (attrs say what resumes), and says a lost connection after the last
// try, with the state store or the source still answering no ping, as
// the run's databaseGone (what names the step that found it gone): the
// driver's error alone ("unexpected EOF", "failed to connect to …")
// names neither the database nor what the run did.
func (r *apiRunner) resuming(ctx context.Context, what string, attrs []any, attempt func() error) error {
	return r.opts.policy().resumingGone(ctx, r.opts.Log, what, attrs, r.gone, attempt)
}

// gone is a databaseGone saying waited when the state store or the
// source answers no ping; nil when both answer.
func (r *apiRunner) gone(ctx context.Context, waited string) *databaseGone {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if l := r.opts.APILedger; l != nil {
		if err := l.Ping(ctx); err != nil {
			return &databaseGone{side: "state store", waited: waited, last: err.Error()}
		}
	}
	if err := r.src.PingContext(ctx); err != nil {
		return &databaseGone{side: "source", waited: waited, last: err.Error()}
	}
	return nil
}
