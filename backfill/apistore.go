package backfill

import (
	"context"
	"time"

	"strangler/config"
	"strangler/store"
)

// boundedLedger is a run's APILedger with every call bounded by
// batch_timeout, as each statement to the target of a database run is
// (silentConn): a PostgreSQL state store gone silent, its packets
// dropped, would otherwise hold the batch being recorded, the lease
// being renewed, the run's end, for as long as TCP keeps the connection
// (some fifteen minutes), the run saying nothing. Past the bound the
// call fails as the state store's silence (silentError: a lost
// connection, which the run resumes from its last record).
type boundedLedger struct {
	l   APILedger
	cfg *config.Backfill
}

// call runs f bounded.
func (b boundedLedger) call(ctx context.Context, f func(context.Context) error) error {
	return boundSide(ctx, b.cfg, "state store", f)
}

// get runs f bounded, for the calls that return something.
func get[T any](b boundedLedger, ctx context.Context, f func(context.Context) (T, error)) (v T, err error) {
	err = b.call(ctx, func(ctx context.Context) error { v, err = f(ctx); return err })
	return v, err
}

func (b boundedLedger) StartAPIBackfill(ctx context.Context, mode string) (int64, error) {
	return get(b, ctx, func(ctx context.Context) (int64, error) { return b.l.StartAPIBackfill(ctx, mode) })
}

func (b boundedLedger) APIBackfillCheckpoint(ctx context.Context, table, plan string) (key string, ok, stale bool, err error) {
	err = b.call(ctx, func(ctx context.Context) error {
		key, ok, stale, err = b.l.APIBackfillCheckpoint(ctx, table, plan)
		return err
	})
	return key, ok, stale, err
}

func (b boundedLedger) APIBackfillBaseline(ctx context.Context, table string) (key string, ok bool, err error) {
	err = b.call(ctx, func(ctx context.Context) error { key, ok, err = b.l.APIBackfillBaseline(ctx, table); return err })
	return key, ok, err
}

func (b boundedLedger) ClearAPIBackfillBaseline(ctx context.Context, table string) error {
	return b.call(ctx, func(ctx context.Context) error { return b.l.ClearAPIBackfillBaseline(ctx, table) })
}

func (b boundedLedger) RecordAPIBackfill(ctx context.Context, run int64, table, plan string, migrated, failed []store.APIBackfillRow, checkpoint *string) error {
	return b.call(ctx, func(ctx context.Context) error {
		return b.l.RecordAPIBackfill(ctx, run, table, plan, migrated, failed, checkpoint)
	})
}

func (b boundedLedger) APIBackfillSentRows(ctx context.Context, table string, keys []string) (map[string]store.APIBackfillSent, error) {
	return get(b, ctx, func(ctx context.Context) (map[string]store.APIBackfillSent, error) {
		return b.l.APIBackfillSentRows(ctx, table, keys)
	})
}

func (b boundedLedger) APIBackfillSentCount(ctx context.Context, table string) (int64, error) {
	return get(b, ctx, func(ctx context.Context) (int64, error) { return b.l.APIBackfillSentCount(ctx, table) })
}

func (b boundedLedger) APIBackfillFailures(ctx context.Context, table, after string, limit int) ([]store.APIBackfillRow, error) {
	return get(b, ctx, func(ctx context.Context) ([]store.APIBackfillRow, error) {
		return b.l.APIBackfillFailures(ctx, table, after, limit)
	})
}

func (b boundedLedger) FinishAPIBackfill(ctx context.Context, run int64, status string, report []byte) error {
	return b.call(ctx, func(ctx context.Context) error { return b.l.FinishAPIBackfill(ctx, run, status, report) })
}

func (b boundedLedger) HoldAPIBackfill(ctx context.Context, run int64, holder string, tables []string, lease time.Duration) error {
	return b.call(ctx, func(ctx context.Context) error { return b.l.HoldAPIBackfill(ctx, run, holder, tables, lease) })
}

func (b boundedLedger) ReleaseAPIBackfill(ctx context.Context, run int64) error {
	return b.call(ctx, func(ctx context.Context) error { return b.l.ReleaseAPIBackfill(ctx, run) })
}

func (b boundedLedger) CanShareRuns() error { return b.l.CanShareRuns() }

func (b boundedLedger) ShareAPIBackfillGroups(ctx context.Context, run, table, plan string, cut func(context.Context) ([]store.APIBackfillGroup, error)) (stale bool, err error) {
	err = b.call(ctx, func(ctx context.Context) error {
		stale, err = b.l.ShareAPIBackfillGroups(ctx, run, table, plan, cut)
		return err
	})
	return stale, err
}

func (b boundedLedger) ClaimAPIBackfillGroup(ctx context.Context, run, table, plan, owner string, lease time.Duration) (g store.APIBackfillGroup, ok bool, err error) {
	err = b.call(ctx, func(ctx context.Context) error {
		g, ok, err = b.l.ClaimAPIBackfillGroup(ctx, run, table, plan, owner, lease)
		return err
	})
	return g, ok, err
}

func (b boundedLedger) RenewAPIBackfillGroup(ctx context.Context, run string, g store.APIBackfillGroup, owner string, lease time.Duration) (bool, error) {
	return get(b, ctx, func(ctx context.Context) (bool, error) { return b.l.RenewAPIBackfillGroup(ctx, run, g, owner, lease) })
}

func (b boundedLedger) ReleaseAPIBackfillGroup(ctx context.Context, run string, g store.APIBackfillGroup, owner string) error {
	return b.call(ctx, func(ctx context.Context) error { return b.l.ReleaseAPIBackfillGroup(ctx, run, g, owner) })
}

func (b boundedLedger) RecordAPIBackfillGroup(ctx context.Context, run string, runID int64, g store.APIBackfillGroup, owner string,
	migrated, failed []store.APIBackfillRow, last *string, done bool) error {
	return b.call(ctx, func(ctx context.Context) error {
		return b.l.RecordAPIBackfillGroup(ctx, run, runID, g, owner, migrated, failed, last, done)
	})
}

func (b boundedLedger) APIBackfillGroupsLeft(ctx context.Context, run, table string) (bool, error) {
	return get(b, ctx, func(ctx context.Context) (bool, error) { return b.l.APIBackfillGroupsLeft(ctx, run, table) })
}

func (b boundedLedger) APIBackfillGroupRecorded(ctx context.Context, run string, g store.APIBackfillGroup, last string) (bool, error) {
	return get(b, ctx, func(ctx context.Context) (bool, error) { return b.l.APIBackfillGroupRecorded(ctx, run, g, last) })
}

func (b boundedLedger) Ping(ctx context.Context) error { return b.l.Ping(ctx) }
