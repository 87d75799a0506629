package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Groups of a shared run. Workers of a run of tables sent to the API
// (strangler backfill --run NAME --worker) lease a group of a table at a
// time with FOR UPDATE SKIP LOCKED: one group_by value, or a key range
// when the table has no group_by. Lease times are the database's, so the
// workers' clocks need not agree.

// ErrAPIGroupsOfAnotherPlan means a worker's file plans a table otherwise
// than the one that cut the run's groups last: leasing them, it would
// send their rows as requests of another plan.
var ErrAPIGroupsOfAnotherPlan = errors.New("its groups in this run were cut by a worker started with another file " +
	"(another source, key, path, body or group_by); start this worker with that file, or give the new file a run of its own")

// ErrAPIGroupLeaseLost means another worker took the group over: its
// lease had run out.
var ErrAPIGroupLeaseLost = errors.New("another worker took over this group (its lease ran out)")

// APIBackfillGroup is one group of a shared run's table.
type APIBackfillGroup struct {
	Table string
	No    int64
	// Value is the group_by value its rows share, nil for NULL (and for
	// key ranges).
	Value *string
	// Start is the key the range begins after, End its last key; nil: no
	// bound. Both nil for a group_by value.
	Start, End *string
	// Last is the key up to which the group's rows were sent; nil: none.
	Last *string
	// Lease is the number of the claim the group was leased by, one more
	// than the claim before (APIBackfillGroupRecorded).
	Lease int64
}

// CanShareRuns says why this store cannot hold a run shared by workers
// on several machines, nil when it can (PostgreSQL).
func (s *Store) CanShareRuns() error {
	if s.dialect.name != "postgres" {
		return errors.New("workers of a shared run lease groups from the state store, which must be PostgreSQL: several machines cannot share a SQLite file")
	}
	return nil
}

// ShareAPIBackfillGroups records the groups cut returns for table in
// run, cut for plan (a hash the caller names its table's plan by),
// unless they are recorded already: the first worker cuts the table,
// once for all, and the others do not read it again. Groups recorded for
// another plan are dropped and the table cut afresh (stale true): their
// last keys say nothing of this plan's requests. Groups recorded before
// plans were are taken as they are.
func (s *Store) ShareAPIBackfillGroups(ctx context.Context, run, table, plan string, cut func(context.Context) ([]APIBackfillGroup, error)) (stale bool, err error) {
	if err := s.CanShareRuns(); err != nil {
		return false, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		stale = false // a retried transaction asks again
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('strangler_api_backfill_groups'), hashtext($1))", run); err != nil {
			return err
		}
		var have bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0, coalesce(bool_or(plan <> $3), false) FROM strangler_api_backfill_groups
			WHERE run_name = $1 AND table_name = $2`, run, table, plan).Scan(&have, &stale); err != nil || have && !stale {
			return err
		}
		if stale {
			// Their leases' numbers start again with the groups cut afresh.
			for _, q := range []string{"DELETE FROM strangler_api_backfill_groups WHERE run_name = $1 AND table_name = $2",
				"DELETE FROM strangler_api_backfill_group_leases WHERE run_name = $1 AND table_name = $2"} {
				if _, err := tx.ExecContext(ctx, q, run, table); err != nil {
					return err
				}
			}
		}
		groups, err := cut(ctx)
		if err != nil {
			return err
		}
		for i, g := range groups {
			value, sealed := s.sealGroupValue(run, table, int64(i), g.Value)
			if _, err := tx.ExecContext(ctx, `INSERT INTO strangler_api_backfill_groups (run_name, table_name, group_no, group_value, sealed, range_end, plan)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, run, table, i, value, sealed, g.End, plan); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: share the groups of %s: %w", table, err)
	}
	return stale, nil
}

// ClaimAPIBackfillGroup leases to owner, for lease, the next group of
// table in run that nobody holds (or whose lease ran out); ok false when
// there is none. A group whose value is encrypted with a key that is no
// longer configured is an error wrapping ErrKeyLost: its rows cannot be
// selected without it. Groups cut for another plan than the caller's
// (ShareAPIBackfillGroups) are refused with ErrAPIGroupsOfAnotherPlan.
func (s *Store) ClaimAPIBackfillGroup(ctx context.Context, run, table, plan, owner string, lease time.Duration) (g APIBackfillGroup, ok bool, err error) {
	g.Table = table
	var other bool
	if err := s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM strangler_api_backfill_groups WHERE run_name = $1 AND table_name = $2 AND plan <> $3)",
		run, table, plan).Scan(&other); err != nil {
		return g, false, fmt.Errorf("store: lease a group of %s: %w", table, err)
	}
	if other {
		return g, false, fmt.Errorf("store: lease a group of %s: %w", table, ErrAPIGroupsOfAnotherPlan)
	}
	var sealed bool
	until, untilArg := s.leaseAt(4, lease)
	err = s.db.QueryRowContext(ctx, `WITH c AS (
			SELECT group_no FROM strangler_api_backfill_groups
			WHERE run_name = $1 AND table_name = $2 AND NOT done AND (lease_until IS NULL OR lease_until < now())
			ORDER BY lease_until NULLS FIRST, group_no LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE strangler_api_backfill_groups g SET lease_owner = $3, lease_until = `+until+`, lease_no = COALESCE(g.lease_no, 0) + 1
		FROM c WHERE g.run_name = $1 AND g.table_name = $2 AND g.group_no = c.group_no
		RETURNING g.group_no, g.group_value, g.sealed, g.range_end, g.last_key, g.lease_no,
			(SELECT p.range_end FROM strangler_api_backfill_groups p WHERE p.run_name = $1 AND p.table_name = $2 AND p.group_no = g.group_no - 1)`,
		run, table, owner, untilArg).Scan(&g.No, &g.Value, &sealed, &g.End, &g.Last, &g.Lease, &g.Start)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return g, false, nil
	case err != nil:
		return g, false, fmt.Errorf("store: lease a group of %s: %w", table, err)
	}
	if g.Value, err = s.openGroupValue(run, table, g.No, g.Value, sealed); err != nil {
		return g, false, fmt.Errorf("store: lease group %d of %s: %w", g.No, table, err)
	}
	return g, true, nil
}

// RenewAPIBackfillGroup extends owner's lease on g; held false when the
// group is another worker's now.
func (s *Store) RenewAPIBackfillGroup(ctx context.Context, run string, g APIBackfillGroup, owner string, lease time.Duration) (held bool, err error) {
	until, untilArg := s.leaseAt(5, lease)
	res, err := s.db.ExecContext(ctx, `UPDATE strangler_api_backfill_groups SET lease_until = `+until+`
		WHERE run_name = $1 AND table_name = $2 AND group_no = $3 AND lease_owner = $4`, run, g.Table, g.No, owner, untilArg)
	if err != nil {
		return false, fmt.Errorf("store: renew the lease of a group of %s: %w", g.Table, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ReleaseAPIBackfillGroup gives up owner's lease on g, not done, for
// any worker to take at once rather than once the lease runs out.
func (s *Store) ReleaseAPIBackfillGroup(ctx context.Context, run string, g APIBackfillGroup, owner string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE strangler_api_backfill_groups SET lease_owner = NULL, lease_until = NULL
		WHERE run_name = $1 AND table_name = $2 AND group_no = $3 AND lease_owner = $4`, run, g.Table, g.No, owner); err != nil {
		return fmt.Errorf("store: release the lease of a group of %s: %w", g.Table, err)
	}
	return nil
}

// RecordAPIBackfillGroup records, in one transaction and only while owner
// still holds g (ErrAPIGroupLeaseLost otherwise), the rows of g that the
// run numbered runID migrated and those that failed, that every row up
// to last was sent, and, when done, that the group is finished.
//
// A finished group keeps owner, its lease ended: nobody claims it again,
// and the recording of its last batch, tried again after its COMMIT went
// through with the answer lost, still finds it owner's. Before, it found
// the group nobody's, was refused as taken over, and the worker's report
// left out every row of that batch (50 of 1500 read).
func (s *Store) RecordAPIBackfillGroup(ctx context.Context, run string, runID int64, g APIBackfillGroup, owner string,
	migrated, failed []APIBackfillRow, last *string, done bool) error {
	now := s.ts(s.clock())
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE strangler_api_backfill_groups SET last_key = COALESCE($5, last_key), done = $6,
				lease_until = CASE WHEN $6 THEN NULL ELSE lease_until END
			WHERE run_name = $1 AND table_name = $2 AND group_no = $3 AND lease_owner = $4`, run, g.Table, g.No, owner, last, done)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, ErrAPIGroupLeaseLost)
		}
		if last != nil && g.Lease > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO strangler_api_backfill_group_leases (run_name, table_name, group_no, lease_no, last_key)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_name, table_name, group_no, lease_no) DO UPDATE SET last_key = EXCLUDED.last_key`,
				run, g.Table, g.No, g.Lease, *last); err != nil {
				return err
			}
		}
		return s.recordAPIRows(ctx, tx, runID, g.Table, migrated, failed, now)
	})
	if err != nil {
		return fmt.Errorf("store: record api backfill of %s: %w", g.Table, err)
	}
	return nil
}

// APIBackfillGroupRecorded reports whether a batch of g ending on key
// last, whose recording's answer was lost, was recorded under the claim
// g was leased by (g.Lease): the last key recorded under it is the
// batch's. Only that claim's recordings write it, where the group's
// last_key is whoever took the group over's once it went on, and a
// batch of rows all rejected or sent before has no row newly migrated to
// be told by.
func (s *Store) APIBackfillGroupRecorded(ctx context.Context, run string, g APIBackfillGroup, last string) (bool, error) {
	var yes bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM strangler_api_backfill_group_leases
		WHERE run_name = $1 AND table_name = $2 AND group_no = $3 AND lease_no = $4 AND last_key = $5)`,
		run, g.Table, g.No, g.Lease, last).Scan(&yes)
	if err != nil {
		return false, fmt.Errorf("store: api backfill group %d of %s: %w", g.No, g.Table, err)
	}
	return yes, nil
}

// APIBackfillGroupsLeft reports whether table has groups in run that are
// not done.
func (s *Store) APIBackfillGroupsLeft(ctx context.Context, run, table string) (bool, error) {
	var left bool
	err := s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM strangler_api_backfill_groups WHERE run_name = $1 AND table_name = $2 AND NOT done)",
		run, table).Scan(&left)
	if err != nil {
		return false, fmt.Errorf("store: api backfill groups of %s: %w", table, err)
	}
	return left, nil
}
