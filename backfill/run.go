package backfill

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
	tables []*table
	stats  map[string]*tableStats
	pace   *pacer
	batch  int
}

func (r *runner) run(ctx context.Context) error {
	switch r.opts.mode() {
	case "keys":
		for _, t := range r.tables {
			if keys := r.opts.Keys[t.name]; len(keys) > 0 {
				if _, err := r.copyKeys(ctx, t, keys); err != nil {
					return err
				}
			}
		}
		r.finishAll()
		return nil
	case "only-failed":
		for _, t := range r.tables {
			if err := r.retryFailed(ctx, t, false); err != nil {
				return err
			}
			r.stats[t.name].done.Store(true)
		}
		return nil
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
	return nil
}

func (r *runner) finishAll() {
	for _, s := range r.stats {
		s.done.Store(true)
	}
}

// task is one key range of one table.
type task struct {
	t  *table
	rg keyRange
}

// copyWave copies tables that do not depend on each other, their key
// ranges spread over the configured number of workers, then retries the
// rows that failed in earlier runs.
func (r *runner) copyWave(ctx context.Context, wave []*table) error {
	var tasks []task
	left := map[string]*atomic.Int64{}
	for _, t := range wave {
		ts, err := r.tasks(ctx, t)
		if err != nil {
			return err
		}
		tasks = append(tasks, ts...)
		left[t.name] = &atomic.Int64{}
		left[t.name].Store(int64(len(ts)))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan task)
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, max(1, len(tasks))) {
		wg.Go(func() {
			for tk := range queue {
				if err := r.copyRange(ctx, tk.t, tk.rg); err != nil {
					cancel(err)
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
	for _, t := range wave {
		if err := r.retryFailed(ctx, t, true); err != nil {
			return err
		}
		r.stats[t.name].done.Store(true)
		r.logDone(t)
	}
	return nil
}

// tasks lists the key ranges of t still to copy: the ranges of an earlier
// run that did not finish, and the last, open-ended range, which picks up
// rows added since.
func (r *runner) tasks(ctx context.Context, t *table) ([]task, error) {
	if r.opts.Restart {
		if err := r.ledger.forget(ctx, t.name); err != nil {
			return nil, err
		}
	}
	rs, err := r.ledger.ranges(ctx, t.name)
	if err != nil {
		return nil, err
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
		if rs, err = r.ledger.setRanges(ctx, t.name, ends); err != nil {
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
	w, err := newWriter(ctx, r.dst, t, r.ledger, !r.opts.Restart)
	if err != nil {
		return err
	}
	defer w.close()
	clear, err := r.ledger.hasFailures(ctx, t.name)
	if err != nil {
		return err
	}
	rd := &reader{db: r.src, t: t, limit: r.batch, pace: r.pace}
	read := func(ctx context.Context, out chan<- batch) error { return rd.keyset(ctx, rg, out) }
	return pipeline(ctx, read, func(b batch) error {
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
		m.Rows.WithLabelValues(t.name, "inserted").Add(float64(out.inserted))
		m.Rows.WithLabelValues(t.name, "updated").Add(float64(out.updated))
		m.Rows.WithLabelValues(t.name, "already_present").Add(float64(out.present))
		m.Rows.WithLabelValues(t.name, "failed").Add(float64(len(out.failures)))
	}
}

func (r *runner) logDone(t *table) {
	rep := r.stats[t.name].report()
	r.opts.Log.Info("backfill table done", "table", t.name, "read", rep.Read, "written", rep.Written(),
		"already_present", rep.Present, "failed", rep.Failed, "duration_s", rep.Seconds)
}

// keyResult is what copying a set of keys did to each of them.
type keyResult struct {
	found, failed map[string]bool
}

// copyKeys copies the rows of t with the given source keys, then the rows
// of the tables that look t's rows up (its dependants), so that a
// repaired patient arrives with its MRNs and photos.
func (r *runner) copyKeys(ctx context.Context, t *table, keys []string) (keyResult, error) {
	res, err := r.copyBy(ctx, t, t.sourceKey, keys)
	if err != nil {
		return res, err
	}
	r.stats[t.name].notInSource.Add(int64(len(keys) - len(res.found)))
	var found []string
	for k := range res.found {
		if !res.failed[k] {
			found = append(found, k)
		}
	}
	slices.Sort(found)
	for _, dep := range r.dependants(t) {
		if len(found) == 0 {
			break
		}
		sub, err := r.copyBy(ctx, dep.t, "src."+myIdent(dep.col.cfg.From), found)
		if err != nil {
			return res, err
		}
		var subKeys []string
		for k := range sub.found {
			subKeys = append(subKeys, k)
		}
		// Their own dependants, found through their keys.
		for _, grand := range r.dependants(dep.t) {
			if _, err := r.copyBy(ctx, grand.t, "src."+myIdent(grand.col.cfg.From), subKeys); err != nil {
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

// copyBy copies the rows of t whose column is one of values, without
// checkpoints, and forgets earlier failures of the rows it writes.
func (r *runner) copyBy(ctx context.Context, t *table, column string, values []string) (keyResult, error) {
	res := keyResult{found: map[string]bool{}, failed: map[string]bool{}}
	if len(values) == 0 {
		return res, nil
	}
	r.stats[t.name].active(time.Now())
	w, err := newWriter(ctx, r.dst, t, r.ledger, false)
	if err != nil {
		return res, err
	}
	defer w.close()
	rd := &reader{db: r.src, t: t, limit: r.batch, pace: r.pace}
	read := func(ctx context.Context, out chan<- batch) error { return rd.byValues(ctx, column, values, out) }
	err = pipeline(ctx, read, func(b batch) error {
		out, err := w.write(ctx, b, nil, true, r.opts.DryRun)
		if err != nil {
			return err
		}
		r.account(t, b, out)
		for _, row := range b.rows {
			res.found[string(row.key)] = true
		}
		for _, f := range out.failures {
			res.failed[f.key] = true
		}
		return nil
	})
	return res, err
}

// retryFailed retries t's failed rows on record, a page at a time; rows
// gone from the source are forgotten. earlierOnly skips the rows that
// failed in this very run.
func (r *runner) retryFailed(ctx context.Context, t *table, earlierOnly bool) error {
	after := ""
	for {
		keys, err := r.ledger.failedKeys(ctx, t.name, after, r.batch, earlierOnly)
		if err != nil || len(keys) == 0 {
			return err
		}
		after = keys[len(keys)-1]
		res, err := r.copyBy(ctx, t, t.sourceKey, keys)
		if err != nil {
			return err
		}
		var gone []string
		for _, k := range keys {
			if !res.found[k] {
				gone = append(gone, k)
			}
		}
		r.stats[t.name].notInSource.Add(int64(len(gone)))
		if err := r.forgetFailures(ctx, t, gone); err != nil {
			return err
		}
	}
}

func (r *runner) forgetFailures(ctx context.Context, t *table, keys []string) error {
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
			if _, err := r.copyKeys(ctx, t, keys); err != nil {
				return err
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
