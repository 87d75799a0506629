package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrAPIBackfillHeld means another plain run is sending a table.
var ErrAPIBackfillHeld = errors.New("another plain backfill run holds the table")

// HoldAPIBackfill holds tables for plain run run of holder (a host and
// process, as an operator would look for it) until lease from now: no
// other plain run sends them meanwhile. Called again by the same run, it
// renews the hold. A table another run holds whose hold has not run out
// is refused with an error wrapping ErrAPIBackfillHeld that names that
// run and its holder; nothing is held then.
func (s *Store) HoldAPIBackfill(ctx context.Context, run int64, holder string, tables []string, lease time.Duration) error {
	// On the store's lease clock: runs on two machines share one
	// PostgreSQL store, and one whose clock is ahead must not take a live
	// hold for lapsed.
	until, untilArg := s.leaseAt(4, lease)
	leaseNow, nowArg := s.leaseAt(5, 0)
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, table := range tables {
			res, err := tx.ExecContext(ctx, `INSERT INTO strangler_api_backfill_holds (table_name, run_id, holder, until) VALUES ($1, $2, $3, `+until+`)
				ON CONFLICT (table_name) DO UPDATE SET run_id = excluded.run_id, holder = excluded.holder, until = excluded.until
				WHERE strangler_api_backfill_holds.run_id = excluded.run_id OR strangler_api_backfill_holds.until < `+leaseNow,
				table, run, clean(holder), untilArg, nowArg)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				continue
			}
			var other int64
			var by string
			if err := tx.QueryRowContext(ctx, "SELECT run_id, holder FROM strangler_api_backfill_holds WHERE table_name = $1", table).Scan(&other, &by); err != nil {
				return err
			}
			return fmt.Errorf("%w: %s is being sent by run %d of %s; wait for it or stop it (a run that died lets go within %s)",
				ErrAPIBackfillHeld, table, other, by, lease)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: hold api backfill: %w", err)
	}
	return nil
}

// ReleaseAPIBackfill lets go of the tables run holds.
func (s *Store) ReleaseAPIBackfill(ctx context.Context, run int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM strangler_api_backfill_holds WHERE run_id = $1", run)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: release api backfill: %w", err)
	}
	return nil
}
