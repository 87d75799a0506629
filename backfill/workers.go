package backfill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Workers. Several processes (a Kubernetes Job with parallelism: N) share
// one run through the ledger in the target database: the first to come
// cuts each table into key ranges, and each worker then leases a range at
// a time with FOR UPDATE SKIP LOCKED, copies it, and takes the next. A
// worker renews its lease while it copies; one that dies stops renewing,
// and once the lease has run out another worker takes the range over from
// its checkpoint. A batch commits only while its worker still holds the
// lease (ledger.advance), so a worker that lost its lease without knowing
// it (paused, cut off) cannot write rows its successor writes again:
// every row is copied once.

// errLeaseLost means another worker took over the range being copied.
var errLeaseLost = errors.New("another worker took over this key range (its lease ran out)")

// ErrRangesOfAnotherPlan means a worker's file plans a table otherwise
// than the one that cut its key ranges last (table.cutFor): leasing them,
// it would copy their rows as another mapping writes them, and mark them
// done for the plan that cut them.
var ErrRangesOfAnotherPlan = errors.New("its key ranges were cut by a worker started with another file " +
	"(another source table, key, target table, target key or column mapping); start this worker with that file, " +
	"or stop the workers of the other file first")

// DefaultLease is how long a worker's lease on a key range lasts without
// renewal.
const DefaultLease = 30 * time.Second

// rangesPerWorker is how many key ranges a shared run cuts a table into
// per concurrent copy of one worker: enough that the ranges spread over
// several workers and a taken-over range is a small share.
const rangesPerWorker = 4

// work is a worker's run: wave by wave, it copies the ranges it can
// lease until none of the wave is left, its own or another's.
func (r *runner) work(ctx context.Context) error {
	for _, wave := range waves(r.tables) {
		share := func() error { return r.shareRanges(ctx, wave) }
		if err := r.resume(ctx, []any{"step", "cut tables into key ranges"}, share); err != nil {
			return r.stepGone(ctx, err, r.opts.policy().resumed("the cutting of tables into key ranges"))
		}
		names := make([]string, len(wave))
		for i, t := range wave {
			// Every worker moves the sequences before it copies: a move
			// only ever goes forward, so the later ones find nothing to do.
			start := func() error { return r.advanceSequences(ctx, t) }
			if err := r.fail(ctx, t, r.step(ctx, t, "the start of the copy of "+t.name, start)); err != nil {
				return err
			}
			names[i] = t.name
			r.stats[t.name].estimate.Store(estimateRows(ctx, r.src, t))
		}
		var wg sync.WaitGroup
		errs := make([]error, r.cfg.Concurrency)
		for i := range r.cfg.Concurrency {
			// A range being copied resumes by itself (copyLeased); this
			// resumes the leasing, whose queries break too.
			wg.Go(func() {
				errs[i] = r.resume(ctx, []any{"step", "lease key ranges"}, func() error { return r.leaseLoop(ctx, names) })
			})
		}
		wg.Wait()
		for _, err := range errs {
			// Every turn finds the ranges of another plan alike: one
			// says so.
			if errors.Is(err, ErrRangesOfAnotherPlan) {
				return err
			}
		}
		// A target gone while this worker leases its next range (or
		// waits for others' ranges) stops the run as a range's copy
		// finding it gone does.
		if err := errors.Join(errs...); err != nil {
			var gone *databaseGone
			if errors.As(err, &gone) {
				return gone
			}
			return r.stepGone(ctx, err, r.opts.policy().resumed("this worker's leasing of key ranges"))
		}
		for _, t := range wave {
			// Every worker that sees the wave done moves the sequences:
			// a move only ever goes forward, so the later ones find
			// nothing to do.
			if r.stats[t.name].stopped() == nil {
				finish := func() error { return r.resetSequences(ctx, t) }
				if err := r.fail(ctx, t, r.step(ctx, t, "the finish of the copy of "+t.name, finish)); err != nil {
					return err
				}
			}
			r.stats[t.name].done.Store(true)
			r.logDone(t)
		}
	}
	return r.stoppedTables()
}

// shareRanges cuts the wave's tables that have no ranges yet into ranges,
// once for all workers.
func (r *runner) shareRanges(ctx context.Context, wave []*table) error {
	tx, err := r.dst.Begin(ctx)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('strangler_backfill_setup'), hashtext(current_schema()))"); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	for _, t := range wave {
		var have, stale bool
		if err := tx.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_or(cut_for <> $2), false)
			FROM strangler_backfill_checkpoints WHERE table_name = $1`, t.name, t.cutFor()).Scan(&have, &stale); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if have && !stale {
			continue
		}
		if stale {
			// As in tasks: they say nothing of this plan's rows.
			logStaleRanges(r.opts.Log, t)
			if _, err := tx.Exec(ctx, "DELETE FROM strangler_backfill_checkpoints WHERE table_name = $1", t.name); err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
		}
		ends, err := splitRanges(ctx, r.src, t, rangesPerWorker*r.cfg.Concurrency)
		if err != nil {
			return err
		}
		for i, end := range ends {
			if _, err := tx.Exec(ctx, "INSERT INTO strangler_backfill_checkpoints (table_name, range_no, range_end, run_id, cut_for) VALUES ($1, $2, $3, $4, $5)",
				t.name, i, end, r.ledger.runID, t.cutFor()); err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
		}
	}
	return tx.Commit(ctx)
}

// leaseLoop leases and copies ranges of the tables named until every one
// is done (takeTurns), or stopped: a stopped table's ranges stay undone,
// and waiting for them would never end.
func (r *runner) leaseLoop(ctx context.Context, names []string) error {
	live := func() []string {
		return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return r.stats[n].stopped() != nil })
	}
	claim := func(ctx context.Context) (func(context.Context) error, bool, error) {
		var t *table
		var rg keyRange
		var ok bool
		err := r.bounded(ctx, func(ctx context.Context) (err error) {
			t, rg, ok, err = r.claim(ctx, live())
			return err
		})
		if !ok || err != nil {
			return nil, ok, err
		}
		return func(ctx context.Context) error {
			if r.stats[t.name].stopped() != nil {
				return nil
			}
			return r.copyLeased(ctx, t, rg)
		}, true, nil
	}
	left := func(ctx context.Context) (bool, error) {
		var left bool
		if err := r.bounded(ctx, func(ctx context.Context) error {
			return r.dst.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM strangler_backfill_checkpoints WHERE table_name = ANY($1) AND NOT done)",
				live()).Scan(&left)
		}); err != nil {
			return false, fmt.Errorf("ledger: %w", err)
		}
		return left, nil
	}
	return takeTurns(ctx, r.opts.Lease, claim, left)
}

// claim leases the next free range, or one whose lease ran out, of the
// ranges cut for this worker's plan of their table. Ranges of another
// plan (a worker started with another file cut them afresh, shareRanges)
// are refused with ErrRangesOfAnotherPlan: this worker would copy their
// rows as its own file maps them, and mark them done.
func (r *runner) claim(ctx context.Context, tables []string) (*table, keyRange, bool, error) {
	plans := make([]string, len(tables))
	for i, name := range tables {
		for _, t := range r.tables {
			if t.name == name {
				plans[i] = t.cutFor()
			}
		}
	}
	var other string
	err := r.dst.QueryRow(ctx, `SELECT k.table_name FROM strangler_backfill_checkpoints k
		JOIN unnest($1::text[], $2::text[]) AS p (name, plan) ON k.table_name = p.name
		WHERE k.cut_for <> p.plan LIMIT 1`, tables, plans).Scan(&other)
	switch {
	case err == nil:
		return nil, keyRange{}, false, fmt.Errorf("ledger: lease a key range of %s: %w", other, ErrRangesOfAnotherPlan)
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, keyRange{}, false, fmt.Errorf("ledger: lease a key range: %w", err)
	}
	var name string
	var rg keyRange
	err = r.dst.QueryRow(ctx, `WITH c AS (
			SELECT table_name, range_no FROM strangler_backfill_checkpoints
			WHERE table_name = ANY($1) AND NOT done AND (lease_until IS NULL OR lease_until < now())
				AND (cut_for IS NULL OR (table_name, cut_for) IN (SELECT * FROM unnest($1::text[], $4::text[])))
			ORDER BY lease_until NULLS FIRST, table_name, range_no LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE strangler_backfill_checkpoints k SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond',
			lease_no = nextval('strangler_backfill_lease_no')
		FROM c WHERE k.table_name = c.table_name AND k.range_no = c.range_no
		RETURNING k.table_name, k.range_no, k.range_end, k.last_key, k.lease_no,
			(SELECT p.range_end FROM strangler_backfill_checkpoints p WHERE p.table_name = k.table_name AND p.range_no = k.range_no - 1)`,
		tables, *r.ledger.owner, r.opts.Lease.Milliseconds(), plans).Scan(&name, &rg.no, &rg.end, &rg.last, &rg.lease, &rg.start)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, rg, false, nil
	case err != nil:
		return nil, rg, false, fmt.Errorf("ledger: lease a key range: %w", err)
	}
	for _, t := range r.tables {
		if t.name == name {
			return t, rg, true, nil
		}
	}
	return nil, rg, false, fmt.Errorf("ledger: leased a range of unknown table %q", name)
}

// copyLeased copies a leased range, renewing the lease as it goes. A lost
// lease ends the copy, not the worker: the range is another's now.
func (r *runner) copyLeased(ctx context.Context, t *table, rg keyRange) error {
	renew := func(ctx context.Context) (error, error) {
		var tag pgconn.CommandTag
		err := r.bounded(ctx, func(ctx context.Context) (err error) {
			tag, err = r.dst.Exec(ctx, `UPDATE strangler_backfill_checkpoints SET lease_until = now() + $3 * interval '1 millisecond'
			WHERE table_name = $1 AND range_no = $2 AND lease_no = $4`, t.name, rg.no, r.opts.Lease.Milliseconds(), rg.lease)
			return err
		})
		return lostUnless(tag.RowsAffected() > 0, err)
	}
	var lost error // the last try's
	err := holdLease(ctx, r.opts.Lease, renew, func(ctx context.Context) error { return r.copyRangeResuming(ctx, t, rg, &lost) })
	// Renewals failing for a lost connection stop the copy before its
	// resumptions can find the target gone (the ledger is there): then
	// the run stops as they would have stopped it, not at the next range
	// this worker cannot lease. A target that answers again leaves the
	// range to whoever takes it, as a lease lost.
	var lapsing *leaseLapsing
	lapsed := errors.As(err, &lapsing) && lapsing.last != nil
	if errors.Is(err, errLeaseLost) && !lapsed {
		return r.takenOver(ctx, t, rg, err, lost)
	}
	waited := r.opts.policy().resumed("a key range of " + t.name)
	if lapsed {
		err = lapsing.last
		waited = fmt.Sprintf("the lease (%s) of a key range of %s could not be renewed", r.opts.Lease, t.name)
	}
	err, gone := r.unreachable(ctx, t, err, waited)
	if lapsed && gone == nil {
		return r.takenOver(ctx, t, rg, lapsing, lost)
	}
	if err := r.fail(ctx, t, err); err != nil {
		return err
	}
	return gone
}

// takenOver ends the copy of range rg, whose lease ended (why), leaving
// the range to whoever takes it. The lease can end as a batch's COMMIT
// goes through with its answer lost (lost, the last try's error):
// whoever takes the range goes on after the batch, so only this worker
// can count it, once the ledger shows it committed under this lease (it
// was counted nowhere: a batch of 100 short of 1200).
func (r *runner) takenOver(ctx context.Context, t *table, rg keyRange, why, lost error) error {
	r.opts.Log.Warn("backfill range taken over", "table", t.name, "range", rg.no, "error", why)
	return r.resume(ctx, []any{"table", t.name, "range", rg.no, "step", "the count of a batch whose answer was lost"}, func() error {
		var count func()
		err := r.bounded(ctx, func(ctx context.Context) (err error) {
			count, err = r.confirm(ctx, t, rg, lost)
			return err
		})
		if err == nil {
			count()
		}
		return err
	})
}
