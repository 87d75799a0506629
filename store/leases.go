package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// ReleaseLeases gives up owner's leases on pending writes, except those in
// keep (the deliveries it has under way). A claim whose answer was lost,
// because the connection broke as it committed (a failover), leased
// writes that owner never learned of; without this they would wait for
// their leases to pass before anyone delivered them, and every later
// write to their resources with them. It returns how many it released.
func (s *Store) ReleaseLeases(ctx context.Context, owner string, keep map[string]bool) (int, error) {
	var released int
	err := s.write(ctx, func(tx *sql.Tx) error {
		released = 0
		rows, err := tx.QueryContext(ctx, `
			SELECT id FROM strangler_repairs WHERE state = 'pending' AND lease_owner = $1`, clean(owner))
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			if !keep[id] {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := s.ts(s.clock())
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `
				UPDATE strangler_repairs SET lease_owner = NULL, lease_until = NULL, updated_at = $3
				WHERE id = $1 AND state = 'pending' AND lease_owner = $2`, id, clean(owner), now)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil {
				released += int(n)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: release leases of %s: %w", owner, err)
	}
	return released, nil
}

// Uncertain reports whether a write that failed with err may have been
// committed all the same: on PostgreSQL, the commit went out and the
// connection broke before its answer came back, as in a failover. (The
// driver may call that error safe to retry; it is not.) A failure before
// the commit, an error the server answered with, and every SQLite failure
// (its transaction is rolled back) mean that nothing was written.
func (s *Store) Uncertain(err error) bool {
	var commit *commitError
	var answered *pgconn.PgError
	return s.dialect.name != "sqlite" && errors.As(err, &commit) && !errors.As(err, &answered)
}
