package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/config"
)

// runner is one backfill run in progress.
type runner struct {
	cfg    *config.Backfill
	opts   Options
	src    *sql.DB
	dst    *pgxpool.Pool
	ledger *ledger
	// lock keeps other backfills off the ledger; nil in a dry run.
	lock   *runLock
	tables []*table
	stats  map[string]*tableStats
	pace   *pacer
	batch  int
	// newWriter makes the writer of a table's batches. It is the one place
	// that decides how rows reach the target: with SQL into its database
	// here; another strategy (the modern service's API) plugs in here.
	newWriter func(ctx context.Context, t *table, tryDirect bool) (batchWriter, error)
	// started names the tables an earlier run had begun to copy: a plain
	// re-run compares them whole, to find what changed below the
	// checkpoints.
	started map[string]bool
}

// batchWriter writes one table's batches to the target.
type batchWriter interface {
	// write writes a batch and, with it, its failed rows and checkpoint
	// (cp, nil for rows asked for by key); clear also forgets earlier
	// failures of the rows written. A dry run writes nothing and says what
	// it would have done.
	write(ctx context.Context, b batch, cp *checkpoint, clear, dry bool) (outcome, error)
	close()
}

func (r *runner) run(ctx context.Context) error {
	// The sequences' moves and the copy between them are steps (see
	// step).
	start := func(t *table) error {
		return r.step(ctx, t, "the start of the copy of "+t.name, func() error { return r.advanceSequences(ctx, t) })
	}
	finish := func(t *table) error {
		return r.step(ctx, t, "the finish of the copy of "+t.name, func() error { return r.resetSequences(ctx, t) })
	}
	switch r.opts.mode() {
	case "keys":
		for _, t := range r.tables {
			keys, err := parseKeys(t, r.opts.Keys[t.name])
			if err == nil && len(keys) > 0 {
				err = start(t)
			}
			if err == nil && len(keys) > 0 {
				// A try resumed after a lost connection copies and counts
				// only what the tries before it did not (copiedKeys).
				c := newCopiedKeys()
				err = r.step(ctx, t, "the copy of the keys of "+t.name, func() error {
					_, err := r.copyKeys(ctx, t, keys, c)
					return err
				})
			}
			if err == nil {
				err = finish(t)
			}
			if err := r.fail(ctx, t, err); err != nil {
				return err
			}
		}
		r.finishAll()
		return r.stoppedTables()
	case "only-failed":
		for _, t := range r.tables {
			err := start(t)
			if err == nil {
				c := newCopiedKeys()
				err = r.step(ctx, t, "the retry of the failed rows of "+t.name, func() error { return r.retryFailed(ctx, t, false, c) })
			}
			if err == nil {
				err = finish(t)
			}
			if err := r.fail(ctx, t, err); err != nil {
				return err
			}
			r.stats[t.name].done.Store(true)
		}
		return r.stoppedTables()
	}
	if r.opts.Worker {
		return r.work(ctx)
	}
	if r.opts.Repairs != nil {
		if err := r.drainRepairs(ctx); err != nil {
			return err
		}
	}
	for _, wave := range waves(r.tables) {
		if err := r.copyWave(ctx, wave); err != nil {
			return err
		}
	}
	return r.stoppedTables()
}

func (r *runner) finishAll() {
	for _, s := range r.stats {
		s.done.Store(true)
	}
}

// fail stops table t for err, a failure no row of its data can be blamed
// for: the other tables go on. It returns err when the run itself was
// stopped, or is to stop (a database gone, see step), and nil otherwise
// (or when err is nil).
func (r *runner) fail(ctx context.Context, t *table, err error) error {
	var gone *databaseGone
	if err == nil {
		return nil
	}
	if ctx.Err() != nil || errors.As(err, &gone) {
		return err
	}
	err = safeError(t, sourceLost(r.cfg, err))
	if r.stats[t.name].stop(err) {
		r.opts.Log.Error("backfill table stopped", "table", t.name, "error", err)
	}
	return nil
}

// stoppedTables joins why tables stopped, nil when none did.
func (r *runner) stoppedTables() error {
	var errs []error
	for _, t := range r.tables {
		if err := r.stats[t.name].stopped(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.name, err))
		}
	}
	return errors.Join(errs...)
}

// task is one key range of one table.
type task struct {
	t  *table
	rg keyRange
}

// copyWave copies tables that do not depend on each other, their key
// ranges spread over the configured number of workers, then finishes
// each: compares it when a re-run must, and retries the rows that failed
// in earlier runs. A table stops alone; one whose lookups read a stopped
// table is not copied.
func (r *runner) copyWave(ctx context.Context, wave []*table) error {
	var tasks []task
	var live []*table
	for _, t := range wave {
		if dep := r.stoppedDependency(t); dep != "" {
			r.fail(ctx, t, fmt.Errorf("not copied: its lookups read table %s, which stopped", dep))
			continue
		}
		var ts []task
		err := r.step(ctx, t, "the start of the copy of "+t.name, func() (err error) {
			if err := r.advanceSequences(ctx, t); err != nil {
				return err
			}
			ts, err = r.tasks(ctx, t)
			return err
		})
		if err := r.fail(ctx, t, err); err != nil {
			return err
		}
		if err == nil {
			tasks, live = append(tasks, ts...), append(live, t)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan task)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, max(1, len(tasks))) {
		wg.Go(func() {
			for tk := range queue {
				if r.stats[tk.t.name].stopped() != nil {
					continue
				}
				err := r.copyRangeResuming(ctx, tk.t, tk.rg, new(error))
				err, gone := r.unreachable(ctx, tk.t, err, r.opts.policy().resumed("a key range of "+tk.t.name))
				if err := r.fail(ctx, tk.t, err); err != nil {
					cancel(err)
				}
				if gone != nil {
					cancel(gone)
				}
			}
		})
	}
feed:
	for _, tk := range tasks {
		select {
		case queue <- tk:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for _, t := range live {
		if r.stats[t.name].stopped() != nil {
			continue
		}
		if err := r.fail(ctx, t, r.finish(ctx, t)); err != nil {
			return err
		}
		r.stats[t.name].done.Store(true)
		r.logDone(t)
	}
	return nil
}

// stoppedDependency names a table t's lookups read that stopped, or "".
func (r *runner) stoppedDependency(t *table) string {
	for _, dep := range t.after {
		if s := r.stats[dep]; s != nil && s.stopped() != nil {
			return dep
		}
	}
	return ""
}

// compares reports whether t is compared whole after its ranges are
// copied: on a plain re-run, to find rows below the checkpoints and rows
// changed since they were copied; with --propagate-deletes, to find the
// rows to delete.
func (r *runner) compares(t *table) bool {
	return r.opts.PropagateDeletes || r.opts.mode() == "full" && r.started[t.name]
}

// finish ends a table's copy once its ranges are done, each part a step
// of its own: a part resumed is done again whole, and what the parts
// before it counted stays counted once.
func (r *runner) finish(ctx context.Context, t *table) error {
	step := func(f func() error) error { return r.step(ctx, t, "the finish of the copy of "+t.name, f) }
	s := r.stats[t.name]
	compared := s.compared.Load()
	err := step(func() error {
		if r.compares(t) {
			// Each try compares the whole table again: its rows count
			// once.
			s.compared.Store(compared)
			return r.sync(ctx, t)
		}
		n, err := countNullKeys(ctx, r.src, t)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		s.addNullKeys(n)
		return nil
	})
	if err == nil {
		c := newCopiedKeys()
		err = step(func() error { return r.retryFailed(ctx, t, true, c) })
	}
	if err == nil {
		err = step(func() error { return r.resetSequences(ctx, t) })
	}
	return err
}

// tasks lists the key ranges of t still to copy: the ranges of an earlier
// run that did not finish, and the last, open-ended range, which picks up
// rows added since. A restart starts over with new ranges.
func (r *runner) tasks(ctx context.Context, t *table) ([]task, error) {
	var rs []keyRange
	if !r.opts.Restart {
		var err error
		if rs, err = r.ledger.ranges(ctx, t); err != nil {
			return nil, err
		}
		for _, rg := range rs {
			r.started[t.name] = r.started[t.name] || rg.started()
		}
		if len(rs) > 0 && rs[0].stale {
			// Going on from them would skip the rows below the old key's
			// checkpoint, or every row of a new target table.
			logStaleRanges(r.opts.Log, t)
			rs = nil
		}
	}
	if len(rs) == 0 {
		n := 1
		// Splitting only pays off for tables of several batches.
		if est := estimateRows(ctx, r.src, t); est > int64(4*r.batch) {
			n = r.cfg.Concurrency
		}
		ends, err := splitRanges(ctx, r.src, t, n)
		if err != nil {
			return nil, err
		}
		if rs, err = r.ledger.setRanges(ctx, t, ends); err != nil {
			return nil, err
		}
	}
	var ts []task
	for _, rg := range rs {
		if !rg.done || rg.end == nil {
			ts = append(ts, task{t, rg})
		}
	}
	r.stats[t.name].estimate.Store(r.remaining(ctx, t))
	return ts, nil
}

// remaining estimates the rows a run will read from t, for the progress
// display.
func (r *runner) remaining(ctx context.Context, t *table) int64 {
	est := estimateRows(ctx, r.src, t)
	if est == 0 || !r.ledger.exists || r.opts.Restart {
		return est
	}
	var done int64
	r.dst.QueryRow(ctx, "SELECT coalesce(sum(rows_done), 0) FROM strangler_backfill_checkpoints WHERE table_name = $1", t.name).Scan(&done)
	return max(0, est-done)
}

// copyRange copies one key range: a reader fetches the next batch while
// the writer writes the current one.
func (r *runner) copyRange(ctx context.Context, t *table, rg keyRange) error {
	r.stats[t.name].active(time.Now())
	// Rows past a checkpoint are probably new, unless the run rereads
	// everything.
	var w batchWriter
	var clear bool
	err := r.bounded(ctx, func(ctx context.Context) (err error) {
		nw, err := r.newWriter(ctx, t, !r.opts.Restart)
		if err != nil {
			return err // nw may be a nil *writer in a non-nil batchWriter
		}
		w = nw
		clear, err = r.ledger.hasFailures(ctx, t.name)
		return err
	})
	if w != nil {
		defer w.close()
	}
	if err != nil {
		return err
	}
	rd := &reader{db: r.src, t: t, limit: r.batch, pace: r.pace}
	read := func(ctx context.Context, out chan<- batch) error { return rd.keyset(ctx, rg, out) }
	return pipeline(ctx, read, func(b batch) error {
		return r.bounded(ctx, func(ctx context.Context) error {
			out, err := w.write(ctx, b, &checkpoint{rg: &rg, done: b.final}, clear, r.opts.DryRun)
			if err != nil {
				return err
			}
			r.account(t, b, out)
			if b.final && len(b.rows) == 0 {
				return r.ledger.markDone(ctx, t.name, &rg)
			}
			return nil
		})
	})
}

// pipeline runs read in the background, one batch ahead, and hands each
// batch to write; an error from either ends both.
func pipeline(ctx context.Context, read func(context.Context, chan<- batch) error, write func(batch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan batch, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- read(ctx, batches)
	}()
	for b := range batches {
		if err := write(b); err != nil {
			cancel()
			for range batches {
			}
			return err
		}
	}
	return <-readErr
}

// account adds a written batch to the counts, the metrics and the log.
func (r *runner) account(t *table, b batch, out outcome) {
	s := r.stats[t.name]
	s.active(time.Now())
	s.read.Add(int64(len(b.rows)))
	s.inserted.Add(out.inserted)
	s.updated.Add(out.updated)
	s.present.Add(out.present)
	s.addFailures(out.failures)
	if m := r.opts.Metrics; m != nil && !r.opts.DryRun {
		m.Rows.WithLabelValues(r.opts.Source, t.name, "inserted").Add(float64(out.inserted))
		m.Rows.WithLabelValues(r.opts.Source, t.name, "updated").Add(float64(out.updated))
		m.Rows.WithLabelValues(r.opts.Source, t.name, "already_present").Add(float64(out.present))
		m.Rows.WithLabelValues(r.opts.Source, t.name, "failed").Add(float64(len(out.failures)))
	}
}

func (r *runner) logDone(t *table) {
	rep := r.stats[t.name].report()
	r.opts.Log.Info("backfill table done", "table", t.name, "read", rep.Read, "written", rep.Written(),
		"already_present", rep.Present, "failed", rep.Failed, "duration_s", rep.Seconds)
}

// keyResult is what copying a set of keys did to each of them, by key.
type keyResult struct {
	found, failed map[string]bool
	// inserted counts the rows inserted (none in a dry run).
	inserted int64
}

// copyKeys copies the rows of t with the given source keys, then the rows
// of the tables that look t's rows up (its dependants), so that a
// repaired patient arrives with its MRNs and photos.
func (r *runner) copyKeys(ctx context.Context, t *table, keys [][]byte, c *copiedKeys) (keyResult, error) {
	res, err := r.copyBy(ctx, t, t.sourceKey, t.keyType, keys, c)
	if err != nil {
		return res, err
	}
	var absent [][]byte
	for _, k := range keys {
		if !res.found[string(k)] {
			absent = append(absent, k)
		}
	}
	r.stats[t.name].notInSource.Add(c.notInSource(t, absent))
	var found [][]byte
	for _, k := range keys {
		if res.found[string(k)] && !res.failed[string(k)] {
			found = append(found, k)
		}
	}
	for _, dep := range r.dependants(t) {
		if len(found) == 0 {
			break
		}
		sub, err := r.copyBy(ctx, dep.t, "src."+myIdent(dep.col.cfg.From), dep.col.rawType, found, c)
		if err != nil {
			return res, err
		}
		var subKeys [][]byte
		for k := range sub.found {
			subKeys = append(subKeys, []byte(k))
		}
		// Their own dependants, found through their keys.
		for _, grand := range r.dependants(dep.t) {
			if _, err := r.copyBy(ctx, grand.t, "src."+myIdent(grand.col.cfg.From), grand.col.rawType, subKeys, c); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

type dependant struct {
	t   *table
	col *column
}

// dependants are the tables with a lookup through t's target key.
func (r *runner) dependants(t *table) []dependant {
	var out []dependant
	for _, u := range r.tables {
		for i := range u.cols {
			if l := u.cols[i].cfg.Lookup; l != nil && l.Table == t.cfg.To && l.Key == t.cfg.TargetKey && u != t {
				out = append(out, dependant{u, &u.cols[i]})
			}
		}
	}
	return out
}

// copiedKeys is what the tries of a step that copies rows by key
// (--keys, --only-failed, the retry of failed rows) did before a lost
// connection ended one: by table, the source keys of the rows copied or
// failed, and counted, and the keys counted as not in the source. The
// next try copies and counts none of them again: the ledger alone cannot
// say, as a row that failed again is on record as before. A nil
// *copiedKeys remembers nothing.
type copiedKeys struct {
	rows, absent map[string]map[string]bool
}

func newCopiedKeys() *copiedKeys {
	return &copiedKeys{rows: map[string]map[string]bool{}, absent: map[string]map[string]bool{}}
}

// has reports whether the row of t with key was copied and counted.
func (c *copiedKeys) has(t *table, key []byte) bool { return c != nil && c.rows[t.name][string(key)] }

// add records rows of t copied and counted.
func (c *copiedKeys) add(t *table, rows []sourceRow) {
	if c == nil {
		return
	}
	for _, row := range rows {
		mark(c.rows, t.name, row.key)
	}
}

// notInSource is how many of keys, which t's source lacks, no earlier
// try counted so; it records them counted.
func (c *copiedKeys) notInSource(t *table, keys [][]byte) int64 {
	if c == nil {
		return int64(len(keys))
	}
	var n int64
	for _, k := range keys {
		if mark(c.absent, t.name, k) {
			n++
		}
	}
	return n
}

// mark records key under name in m, and reports whether it was new.
func mark(m map[string]map[string]bool, name string, key []byte) bool {
	if m[name] == nil {
		m[name] = map[string]bool{}
	}
	if m[name][string(key)] {
		return false
	}
	m[name][string(key)] = true
	return true
}

// copyBy copies the rows of t whose column, of MySQL's type typ, is one
// of values, without checkpoints, and forgets earlier failures of the
// rows it writes. Rows c has, an earlier try's, are found and neither
// copied nor counted again.
func (r *runner) copyBy(ctx context.Context, t *table, column, typ string, values [][]byte, c *copiedKeys) (keyResult, error) {
	res := keyResult{found: map[string]bool{}, failed: map[string]bool{}}
	if len(values) == 0 {
		return res, nil
	}
	r.stats[t.name].active(time.Now())
	w, err := r.newWriter(ctx, t, false)
	if err != nil {
		return res, err
	}
	defer w.close()
	rd := &reader{db: r.src, t: t, limit: r.batch, pace: r.pace}
	read := func(ctx context.Context, out chan<- batch) error { return rd.byValues(ctx, column, typ, values, out) }
	err = pipeline(ctx, read, func(b batch) error {
		if c != nil {
			// Rows an earlier try copied and counted: found, and left.
			b.rows = slices.DeleteFunc(slices.Clone(b.rows), func(row sourceRow) bool {
				if c.has(t, row.key) {
					res.found[string(row.key)] = true
					return true
				}
				return false
			})
			if len(b.rows) == 0 {
				return nil
			}
		}
		out, err := w.write(ctx, b, nil, true, r.opts.DryRun)
		if err != nil {
			return err
		}
		r.account(t, b, out)
		c.add(t, b.rows)
		if !r.opts.DryRun {
			res.inserted += out.inserted
		}
		for _, row := range b.rows {
			res.found[string(row.key)] = true
		}
		for _, f := range out.failures {
			res.failed[string(f.key)] = true
		}
		return nil
	})
	return res, err
}

// retryFailed retries t's failed rows on record, a page at a time; rows
// gone from the source are forgotten. earlierOnly skips the rows that
// failed in this very run.
func (r *runner) retryFailed(ctx context.Context, t *table, earlierOnly bool, c *copiedKeys) error {
	var after []byte
	s := r.stats[t.name]
	for {
		keys, err := r.ledger.failedKeys(ctx, t.name, after, r.batch, earlierOnly)
		if err != nil || len(keys) == 0 {
			return err
		}
		after = keys[len(keys)-1]
		if earlierOnly && r.opts.DryRun {
			keys = slices.DeleteFunc(keys, s.failedInDryRun)
		}
		res, err := r.copyBy(ctx, t, t.sourceKey, t.keyType, keys, c)
		if err != nil {
			return err
		}
		var gone [][]byte
		for _, k := range keys {
			if !res.found[string(k)] {
				gone = append(gone, k)
			}
		}
		s.notInSource.Add(c.notInSource(t, gone))
		if err := r.forgetFailures(ctx, t, gone); err != nil {
			return err
		}
	}
}

func (r *runner) forgetFailures(ctx context.Context, t *table, keys [][]byte) error {
	if len(keys) == 0 || r.opts.DryRun {
		return nil
	}
	tx, err := r.dst.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := r.ledger.clearFailures(ctx, tx, t.name, keys); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// drainRepairs copies the keys read repair left, table by table, a page
// at a time until none are pending (or the store keeps handing back keys
// already tried this run).
func (r *runner) drainRepairs(ctx context.Context) error {
	for _, t := range r.tables {
		tried := map[string]bool{}
		for {
			pending, err := r.opts.Repairs.Pending(ctx, t.name)
			if err != nil {
				return fmt.Errorf("read-repair keys: %w", err)
			}
			var keys []string
			for _, k := range pending {
				if !tried[k] {
					tried[k] = true
					keys = append(keys, k)
				}
			}
			if len(keys) == 0 {
				break
			}
			raw := make([][]byte, 0, len(keys))
			for _, k := range keys {
				b, err := parseKey(t.key, k)
				if err != nil {
					// No source row has it (a binary table's key that
					// is not hex): the facade took it from a request's
					// path, so it is whatever a client sent, perhaps a
					// name. It leaves the queue counted as not in the
					// source and never shown; stopping the table on it
					// would stop it on every run.
					r.stats[t.name].notInSource.Add(1)
					continue
				}
				raw = append(raw, b)
			}
			if len(raw) > 0 {
				_, err = r.copyKeys(ctx, t, raw, nil)
			}
			if err != nil {
				if err := r.fail(ctx, t, err); err != nil {
					return err
				}
				break
			}
			if r.opts.DryRun {
				continue
			}
			if err := r.opts.Repairs.Done(ctx, t.name, keys); err != nil {
				return fmt.Errorf("read-repair keys: %w", err)
			}
		}
	}
	return nil
}
