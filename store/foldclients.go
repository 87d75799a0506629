package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"strangler/stats"
)

// foldClientVersions counts every client version an earlier release
// stored by a name this one would not count it by (stats.ClientVersion)
// under the name this one gives: "other" for free text after the
// version (5.2.1-JaneDoe), the version for one whose build metadata was
// kept (5.2.1+sha.1a2b → 5.2.1). Each row's requests are added to the
// row of that name in the same route and hour, and the row is deleted,
// so a name a client put in its version leaves the store and routes
// report while its totals stay. "unknown" and "other" stay as they are,
// and a name this release counts by is left alone, so running this again
// changes nothing. Run after migration 0240, in its transaction, which
// other replicas opening the store wait for (the migration lock).
//
// Names an earlier release counted beyond this one's 32 a route an hour
// stay names: each is shaped like a version.
func (s *Store) foldClientVersions(ctx context.Context, tx *sql.Tx) error {
	return s.foldClientsSince(ctx, tx, time.Unix(0, 0), "store migration")
}

// foldWindow is how long after migration 0240 the hourly purge folds
// the client versions replicas of an earlier release still count by
// name during a rolling upgrade, and how far back it looks each time.
const foldWindow = 7 * 24 * time.Hour

// foldLateClientVersions folds, as foldClientVersions does, the rows of
// the hours from the one before migration 0240 was applied on, over the
// last foldWindow: those a replica of an earlier release still running
// went on counting by name after the upgrade. Nothing once the
// migration is older than foldWindow. In the purge's transaction.
func (s *Store) foldLateClientVersions(ctx context.Context, tx *sql.Tx, now time.Time) error {
	var applied time.Time
	err := tx.QueryRowContext(ctx, `SELECT applied_at FROM strangler_schema_migrations WHERE version = 240`).Scan(scanTime(&applied))
	if errors.Is(err, sql.ErrNoRows) {
		return nil // a newer release renumbered it: its own purge folds
	} else if err != nil {
		return fmt.Errorf("store: fold the client versions of an earlier release: %w", err)
	}
	since := applied.UTC().Truncate(time.Hour).Add(-time.Hour)
	if since.Before(now.Add(-foldWindow)) {
		return nil
	}
	return s.foldClientsSince(ctx, tx, since, "purge")
}

// foldClientsSince folds the rows of the hours from since on; by names
// the log line.
func (s *Store) foldClientsSince(ctx context.Context, tx *sql.Tx, since time.Time, by string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("store: fold the client versions of an earlier release: %w", err)
		}
	}()
	if s.dialect.name == "postgres" {
		// A replica of an earlier release flushing meanwhile locks its
		// rows by route, hour and client, where this goes by client:
		// each could hold a row the other waits for. Its flushes wait
		// for the migration instead (its own transaction touches this
		// table alone, so it holds nothing the migration waits for).
		if _, err := tx.ExecContext(ctx, `LOCK TABLE strangler_legacy_clients IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
	}
	var folded, rows int64
	after := ""
	for {
		// Read a page whole before changing rows: a transaction's
		// connection runs one statement at a time.
		res, err := tx.QueryContext(ctx, `
			SELECT DISTINCT client FROM strangler_legacy_clients
			WHERE client > $1 AND hour >= $2 ORDER BY client LIMIT 500`, after, s.ts(since))
		if err != nil {
			return err
		}
		var page []string
		for res.Next() {
			var c string
			if err := res.Scan(&c); err != nil {
				res.Close()
				return err
			}
			page = append(page, c)
		}
		res.Close()
		if err := res.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			after = c
			to := foldedClient(c)
			if to == c {
				continue
			}
			// One row a route and hour: the insert meets each target row
			// at most once. (WHERE keeps SQLite from reading ON as a join.)
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO strangler_legacy_clients AS c (route, hour, client, requests)
				SELECT route, hour, $2, requests FROM strangler_legacy_clients WHERE client = $1 AND hour >= $3
				ON CONFLICT (route, hour, client) DO UPDATE SET requests = c.requests + excluded.requests`, c, to, s.ts(since)); err != nil {
				return err
			}
			r, err := tx.ExecContext(ctx, `DELETE FROM strangler_legacy_clients WHERE client = $1 AND hour >= $2`, c, s.ts(since))
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			folded, rows = folded+1, rows+n
		}
	}
	if folded > 0 {
		// The names are what the rule keeps out of the store: the log
		// counts them only.
		s.log.Info(by+": client versions an earlier release counted by a name this one does not are counted as this one counts them",
			"store", s.dialect.name, "names", folded, "rows", rows)
	}
	return nil
}

// foldedClient is the name this release counts a client version stored
// as c by: c itself for "unknown" and "other", which stats counts
// versions that are none, or past its bound, as.
func foldedClient(c string) string {
	if c == "unknown" || c == "other" {
		return c
	}
	if name, ok := stats.ClientVersion(c); ok {
		return name
	}
	return "other"
}
