package backfill

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"strangler/internal/dberr"
)

// sync brings a table whose copy an earlier run began up to date with the
// source, whatever its key: it compares the whole table a chunk at a time
// (as verify does) and copies the rows that differ, those that appeared
// below a checkpoint and those changed since they were copied. Rows the
// target has and the source no longer has are counted or, with
// --propagate-deletes, deleted.
func (r *runner) sync(ctx context.Context, t *table) (err error) {
	s := r.stats[t.name]
	// A sync that breaks is done again whole (finish resumes it): the
	// rows it left out for a NULL key count once, when it finishes.
	var nullKeys int64
	defer func() {
		if err == nil {
			s.addNullKeys(nullKeys)
		}
	}()
	c, err := newComparer(ctx, r.src, r.dst, t, &atomic.Int64{})
	if err != nil {
		return fmt.Errorf("compare %s: %w", t.name, err)
	}
	defer c.close()
	var inserted int64
	n, err := c.compareAll(ctx, r.batch, r.pace, func(b batch, diffs []difference) error {
		s.active(time.Now())
		s.compared.Add(int64(len(b.rows)))
		keys := make([][]byte, len(diffs))
		for i, d := range diffs {
			keys[i] = d.key
		}
		res, err := r.copyBy(ctx, t, t.sourceKey, t.keyType, keys, nil)
		inserted += res.inserted
		return err
	})
	if err != nil {
		return err
	}
	nullKeys = n.nullKeys
	extra, err := c.mayHaveExtras(ctx, n, inserted)
	if err != nil {
		return err
	}
	if !r.opts.PropagateDeletes {
		if extra {
			count, _, err := c.extras(ctx, r.batch, r.pace, 0)
			s.extra.Store(count)
			return err
		}
		return nil
	}
	var d deleted
	if extra {
		if d, err = c.deleteExtras(ctx, r.ledger, r.batch, r.pace, sampleKeys, r.opts.DryRun); err != nil {
			return fmt.Errorf("delete from %s: %w", t.name, err)
		}
	}
	if !r.opts.DryRun {
		// A try before this one (finish resumes a sync whole) may have
		// deleted rows and lost its COMMIT's answer, rows this one finds
		// gone already: the ledger's deletes, which commit with the
		// rows, count every row this run deleted.
		if d.n, d.keys, err = r.ledger.deletedThisRun(ctx, t.name, sampleKeys); err != nil {
			return fmt.Errorf("delete from %s: %w", t.name, err)
		}
	}
	if !extra && d.n == 0 {
		return nil
	}
	s.addDeleted(d)
	if m := r.opts.Metrics; m != nil && !r.opts.DryRun {
		m.Rows.WithLabelValues(r.opts.Source, t.name, "deleted").Add(float64(d.n))
	}
	r.opts.Log.Info("backfill deleted rows whose source row is gone", "table", t.name, "deleted", d.n, "refused", len(d.refused))
	return nil
}

// safeError is err as a table's error may say it, in the report, the
// log and the run's error: without the values the database's errors in
// it quote (dberr.Cut), and a message a trigger or function raised on a
// table with redacted columns is dropped as a row's reason drops it
// (triggerRefusal).
func safeError(t *table, err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return dberr.Cut(err)
	}
	if s, ok := triggerRefusal(t, pg); ok {
		return errors.New(s)
	}
	return dberr.Cut(err)
}
