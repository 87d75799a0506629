package backfill

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"strangler/store"
)

// Workers of a shared run of tables sent to the API. The ledger is the
// state store, which must then be PostgreSQL: the first worker cuts each
// table into groups (its group_by values, or key ranges when it has
// none), and each worker leases a group at a time (takeTurns, holdLease:
// the same turns as the database workers'), sends its rows in key order,
// one at a time, and records them only while it holds the lease. A
// worker that dies stops renewing; once its lease has run out another
// takes the group over from its last recorded key, and rows the dead
// worker sent after that key are sent again under the same
// Idempotency-Key, which the API applies once.

// work sends table t's groups as a worker of the shared run, until every
// group is done, by this worker or another.
func (r *apiRunner) work(ctx context.Context, t *apiTable) error {
	return r.watchingService(ctx, t, func(ctx context.Context, o *outage) error { return r.workWatched(ctx, t, o) })
}

// workWatched is work, o watching for the service gone: it stops this
// worker's turns, each group where it last recorded.
func (r *apiRunner) workWatched(ctx context.Context, t *apiTable, o *outage) error {
	l := r.opts.APILedger
	// Workers do not take a baseline (copy): one plain run does first.
	if _, ok, err := l.APIBackfillBaseline(ctx, r.ledgerName(t)); err != nil || ok {
		if err == nil {
			err = errors.New("its ledger was written by a release that kept no rows it migrated; run one plain run without --worker first, which records them")
		}
		return err
	}
	cut := func(ctx context.Context) ([]store.APIBackfillGroup, error) { return r.cutGroups(ctx, t) }
	stale, err := l.ShareAPIBackfillGroups(ctx, r.opts.Run, r.ledgerName(t), t.cutFor(), cut)
	if err != nil {
		return err
	}
	if stale {
		// As in copy: the groups done were sent as other requests.
		logStaleRanges(r.opts.Log, t.table)
	}
	r.stats[t.name].estimate.Store(estimateRows(ctx, r.src, t.table))
	reqPace := newPacer(t.api.Rate)
	claim := func(ctx context.Context) (func(context.Context) error, bool, error) {
		g, ok, err := l.ClaimAPIBackfillGroup(ctx, r.opts.Run, r.ledgerName(t), t.cutFor(), r.opts.WorkerID, r.opts.Lease)
		if !ok || err != nil {
			return nil, ok, err
		}
		return func(ctx context.Context) error { return r.sendGroup(ctx, t, g, reqPace, o) }, true, nil
	}
	left := func(ctx context.Context) (bool, error) {
		return l.APIBackfillGroupsLeft(ctx, r.opts.Run, r.ledgerName(t))
	}
	// Groups of group_by values are sent concurrency at a time, each
	// group's rows one at a time; key ranges one at a time, each range's
	// rows concurrency at a time (send).
	turns := 1
	if t.group >= 0 {
		turns = t.api.Concurrency
	}
	var wg sync.WaitGroup
	errs := make([]error, turns)
	for i := range turns {
		// A group being sent resumes by itself (sendGroup); this resumes
		// the leasing, whose queries break too.
		wg.Go(func() {
			errs[i] = r.resuming(ctx, "this worker's leasing of groups of "+t.name, []any{"table", t.name, "step", "lease groups"}, func() error {
				return takeTurns(ctx, r.opts.Lease, claim, left)
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		// Every turn finds the database gone alike: one says so.
		if gone := (*databaseGone)(nil); errors.As(err, &gone) {
			return err
		}
	}
	return errors.Join(errs...)
}

// cutGroups cuts t into the groups workers lease: its group_by values in
// order, or key ranges when it has no group_by.
func (r *apiRunner) cutGroups(ctx context.Context, t *apiTable) ([]store.APIBackfillGroup, error) {
	var out []store.APIBackfillGroup
	if t.group < 0 {
		ends, err := splitRanges(ctx, r.src, t.table, rangesPerWorker*t.api.Concurrency)
		if err != nil {
			return nil, err
		}
		for _, end := range ends {
			g := store.APIBackfillGroup{Table: r.ledgerName(t)}
			if end != nil {
				k := showKey(t.key, end)
				g.End = &k
			}
			out = append(out, g)
		}
		return out, nil
	}
	expr := t.cols[t.group].sourceExpr
	if t.groupInHex() {
		// The ledger's group_value is text, which refuses bytes that are
		// not UTF-8 (0x00, 0xff): such a run failed as it began.
		expr = "CONCAT('0x', HEX(" + expr + "))"
	}
	rows, err := r.src.QueryContext(ctx, "SELECT DISTINCT "+expr+" FROM "+t.source+" ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("read %s: its groups: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read %s: its groups: %w", t.name, err)
		}
		g := store.APIBackfillGroup{Table: r.ledgerName(t)}
		if v.Valid {
			g.Value = &v.String
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: its groups: %w", t.name, err)
	}
	return out, nil
}

// sendGroup sends a leased group's rows past its last recorded key,
// renewing the lease as it goes. A lost lease ends the group, not the
// worker: the group is another's now.
func (r *apiRunner) sendGroup(ctx context.Context, t *apiTable, g store.APIBackfillGroup, reqPace *pacer, o *outage) error {
	var rg keyRange
	for _, k := range []struct {
		s   *string
		out *[]byte
	}{{g.Start, &rg.start}, {g.End, &rg.end}, {g.Last, &rg.last}} {
		if k.s == nil {
			continue
		}
		var err error
		if *k.out, err = parseKey(t.key, *k.s); err != nil {
			return fmt.Errorf("ledger: group %d of %s: %w", g.No, t.name, err)
		}
	}
	rd := &reader{db: r.src, t: t.table, limit: r.cfg.Batch, pace: r.pace}
	if t.group >= 0 {
		expr := t.cols[t.group].sourceExpr
		if g.Value == nil {
			rd.where = expr + " IS NULL"
		} else {
			rd.where, rd.whereArgs = expr+" = "+valueParam(t.cols[t.group].srcType), []any{groupArg(t, *g.Value)}
		}
	}
	l, run, owner, lease := r.opts.APILedger, r.opts.Run, r.opts.WorkerID, r.opts.Lease
	renew := func(ctx context.Context) (error, error) {
		held, err := l.RenewAPIBackfillGroup(ctx, run, g, owner, lease)
		return lostUnless(held, err)
	}
	// A lost connection resumes the group after the last batch recorded
	// (rg.last), as a plain run's pass does.
	what, attrs := fmt.Sprintf("group %d of %s", g.No, t.name), []any{"table", t.name, "group", g.No}
	var last error // the last try's
	err := holdLease(ctx, lease, renew, func(ctx context.Context) error {
		read := func(ctx context.Context, out chan<- batch) error { return rd.keyset(ctx, rg, out) }
		return r.resuming(ctx, what, attrs, func() error {
			last = pipeline(ctx, read, r.recordGroup(ctx, t, g, &rg, reqPace, o))
			return last
		})
	})
	if errors.Is(err, errLeaseLost) {
		r.opts.Log.Warn("backfill group taken over", "table", t.name, "group", g.No, "error", err)
		// The lease can end as a batch's COMMIT goes through with its
		// answer lost: whoever takes the group goes on after the batch,
		// or finds it done, so only this worker can count it. It
		// was counted nowhere (a group of 10 rows short of 300), nor
		// was one of rows all rejected or sent before, which have no
		// row newly migrated to tell it recorded by (10 of 300).
		return r.resuming(ctx, "the count of "+what, attrs, func() error {
			var u *unrecorded
			if !errors.As(last, &u) {
				return nil
			}
			ok, err := l.APIBackfillGroupRecorded(ctx, run, g, u.last)
			if ok {
				u.account()
			}
			return err
		})
	}
	if gone := (*serviceStop)(nil); errors.As(context.Cause(ctx), &gone) {
		// Left held, the group would wait out its lease: other workers
		// polling for it meanwhile, and this one's re-run too.
		if rerr := l.ReleaseAPIBackfillGroup(context.WithoutCancel(ctx), run, g, owner); rerr != nil {
			r.opts.Log.Warn("backfill group lease not released", "table", t.name, "group", g.No, "error", rerr)
		}
	}
	return err
}

// recordGroup sends a batch of a leased group and records it with the
// group's progress, which it moves rg past.
func (r *apiRunner) recordGroup(ctx context.Context, t *apiTable, g store.APIBackfillGroup, rg *keyRange, reqPace *pacer, o *outage) func(batch) error {
	l, run, owner := r.opts.APILedger, r.opts.Run, r.opts.WorkerID
	return func(b batch) error {
		var last *string
		if len(b.rows) > 0 {
			k := showKey(t.key, b.rows[len(b.rows)-1].key)
			last = &k
		}
		record := func(migrated, failed []store.APIBackfillRow) error {
			err := l.RecordAPIBackfillGroup(ctx, run, r.run, g, owner, migrated, failed, last, b.final)
			if errors.Is(err, store.ErrAPIGroupLeaseLost) {
				return errLeaseLost
			}
			return err
		}
		if len(b.rows) == 0 {
			return record(nil, nil)
		}
		err := r.send(ctx, t, b, reqPace, o, record)
		if err == nil {
			rg.last = b.rows[len(b.rows)-1].key
		}
		return err
	}
}

// groupArg is the value a group's rows are read by: a binary group_by
// value's bytes, which cutGroups recorded in hex after 0x. A value without
// the 0x was recorded by a release that kept the bytes themselves (it
// could share a run only when every value was UTF-8).
func groupArg(t *apiTable, v string) any {
	if h, ok := strings.CutPrefix(v, "0x"); ok && t.groupInHex() {
		if b, err := hex.DecodeString(h); err == nil {
			return b
		}
	}
	return v
}

// groupInHex reports whether t's group_by values are bytes, kept in the
// ledger in hex. Not a BIT's: SELECT DISTINCT gives its number's text,
// which matches it again as a number.
func (t *apiTable) groupInHex() bool {
	typ := t.cols[t.group].srcType
	return isBinaryType(typ) && typ != "BIT"
}
