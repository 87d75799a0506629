package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"strangler/domain"
)

// CountTotals adds up a route's hours.
type CountTotals struct {
	Requests, Modern, Fallbacks     int64
	ConfirmedMissing                int64
	ShadowMatches, ShadowMismatches int64
	// Legacy counts the requests legacy answered itself, not as a
	// fallback. In hours counted before the store kept it apart, every
	// request modern did not serve counts: a guess that can only hold a
	// retirement back.
	Legacy int64
	// ModernFailed counts the requests among Modern that modern served
	// no one: answers that were a 5xx or broke off, and none before the
	// client left.
	ModernFailed int64
	// LastFallbackAt is the latest fallback in the period; zero if none.
	// LastLegacyHour is the latest hour in it in which legacy answered a
	// request itself; zero if none.
	LastFallbackAt, LastLegacyHour time.Time
	// FirstHour is the route's earliest counted hour, however long ago:
	// counts that begin within a period do not vouch for all of it (a
	// route new or renamed since).
	FirstHour time.Time
}

// ModernServed is how many requests modern served: its answers that did
// not fail, each of them to a client still there to get it.
func (t CountTotals) ModernServed() int64 { return t.Modern - t.ModernFailed }

// legacyServed is the SQL of an hour's requests legacy answered itself;
// see CountTotals.Legacy.
const legacyServed = `COALESCE(legacy, requests - modern - fallbacks - confirmed_missing)`

// AddCounts adds counts to the stored hours, creating hours not seen yet.
func (s *Store) AddCounts(ctx context.Context, counts []domain.HourCount) error {
	rows := make([]domain.HourCount, len(counts))
	for i, c := range counts {
		c.Route, c.Hour = clean(c.Route), c.Hour.UTC().Truncate(time.Hour)
		rows[i] = c
	}
	rows = domain.MergeHourCounts(rows)
	// One order for every replica, so two flushes touching the same hours
	// lock them in the same order and cannot deadlock.
	slices.SortFunc(rows, func(a, b domain.HourCount) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), a.Hour.Compare(b.Hour))
	})
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO strangler_route_hours AS h
				(route, hour, requests, modern, fallbacks, shadow_matches, shadow_mismatches, last_fallback_at, confirmed_missing, legacy, modern_failed)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (route, hour) DO UPDATE SET
				requests = h.requests + excluded.requests,
				modern = h.modern + excluded.modern,
				fallbacks = h.fallbacks + excluded.fallbacks,
				confirmed_missing = h.confirmed_missing + excluded.confirmed_missing,
				-- an hour begun before the column stays NULL: unknown
				legacy = h.legacy + excluded.legacy,
				modern_failed = h.modern_failed + excluded.modern_failed,
				shadow_matches = h.shadow_matches + excluded.shadow_matches,
				shadow_mismatches = h.shadow_mismatches + excluded.shadow_mismatches,
				last_fallback_at = CASE
					WHEN h.last_fallback_at IS NULL OR excluded.last_fallback_at > h.last_fallback_at
					THEN excluded.last_fallback_at
					ELSE h.last_fallback_at END`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range rows {
			if _, err := stmt.ExecContext(ctx, c.Route, s.ts(c.Hour), c.Requests, c.Modern, c.Fallbacks,
				c.ShadowMatches, c.ShadowMismatches, s.tsOrNull(c.LastFallbackAt), c.ConfirmedMissing, c.Legacy, c.ModernFailed); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add counts: %w", err)
	}
	return nil
}

// AddLegacyClients adds per-client counts of requests that reached legacy.
func (s *Store) AddLegacyClients(ctx context.Context, counts []domain.ClientCount) error {
	rows := make([]domain.ClientCount, len(counts))
	for i, c := range counts {
		c.Route, c.Client, c.Hour = clean(c.Route), clean(c.Client), c.Hour.UTC().Truncate(time.Hour)
		rows[i] = c
	}
	rows = domain.MergeClientCounts(rows)
	slices.SortFunc(rows, func(a, b domain.ClientCount) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), a.Hour.Compare(b.Hour), cmp.Compare(a.Client, b.Client))
	})
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			INSERT INTO strangler_legacy_clients AS c (route, hour, client, requests)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (route, hour, client) DO UPDATE SET requests = c.requests + excluded.requests`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, c := range rows {
			if _, err := stmt.ExecContext(ctx, c.Route, s.ts(c.Hour), c.Client, c.Requests); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add legacy clients: %w", err)
	}
	return nil
}

// Counts adds up route's hours from the one containing since onwards.
func (s *Store) Counts(ctx context.Context, route string, since time.Time) (CountTotals, error) {
	var t CountTotals
	err := s.db.QueryRowContext(ctx, `
		SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT),
			CAST(COALESCE(SUM(modern), 0) AS BIGINT),
			CAST(COALESCE(SUM(fallbacks), 0) AS BIGINT),
			CAST(COALESCE(SUM(shadow_matches), 0) AS BIGINT),
			CAST(COALESCE(SUM(shadow_mismatches), 0) AS BIGINT),
			MAX(last_fallback_at),
			CAST(COALESCE(SUM(confirmed_missing), 0) AS BIGINT),
			CAST(COALESCE(SUM(`+legacyServed+`), 0) AS BIGINT),
			MAX(CASE WHEN `+legacyServed+` > 0 THEN hour END),
			(SELECT MIN(hour) FROM strangler_route_hours WHERE route = $1),
			CAST(COALESCE(SUM(modern_failed), 0) AS BIGINT)
		FROM strangler_route_hours
		WHERE route = $1 AND hour >= $2`, route, s.ts(since.UTC().Truncate(time.Hour))).
		Scan(&t.Requests, &t.Modern, &t.Fallbacks, &t.ShadowMatches, &t.ShadowMismatches, scanTime(&t.LastFallbackAt), &t.ConfirmedMissing,
			&t.Legacy, scanTime(&t.LastLegacyHour), scanTime(&t.FirstHour), &t.ModernFailed)
	if err != nil {
		return CountTotals{}, fmt.Errorf("store: counts of %s: %w", route, err)
	}
	return t, nil
}

// TopLegacyClients returns the n client app versions that sent route the
// most requests reaching legacy, from the hour containing since onwards,
// most first.
func (s *Store) TopLegacyClients(ctx context.Context, route string, since time.Time, n int) ([]domain.ClientCount, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT client, CAST(SUM(requests) AS BIGINT) AS total
		FROM strangler_legacy_clients
		WHERE route = $1 AND hour >= $2
		GROUP BY client
		ORDER BY total DESC, client
		LIMIT $3`, route, s.ts(since.UTC().Truncate(time.Hour)), limitOr(n, 5, 1000))
	if err != nil {
		return nil, fmt.Errorf("store: top legacy clients of %s: %w", route, err)
	}
	defer rows.Close()
	var out []domain.ClientCount
	for rows.Next() {
		c := domain.ClientCount{Route: route}
		if err := rows.Scan(&c.Client, &c.Requests); err != nil {
			return nil, fmt.Errorf("store: top legacy clients of %s: %w", route, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: top legacy clients of %s: %w", route, err)
	}
	return out, nil
}

// PurgeCounts deletes hourly counts, per-client ones included, of hours
// before olderThan, and returns how many rows it deleted. In the week
// after migration 0240 it also folds the client versions a replica of an
// earlier release counted by name meanwhile (foldLateClientVersions).
func (s *Store) PurgeCounts(ctx context.Context, olderThan time.Time) (int, error) {
	total := 0
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		total = 0 // a run after a broken connection counts afresh
		// First: on PostgreSQL it locks a table, which the deletes would
		// otherwise hold row locks in as it waits.
		if err := s.foldLateClientVersions(ctx, tx, s.clock()); err != nil {
			return err
		}
		for _, table := range []string{"strangler_route_hours", "strangler_legacy_clients"} {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE hour < $1`, s.ts(olderThan))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge counts: %w", err)
	}
	return total, nil
}

// HourlyCounts returns route's hours from the one containing since
// onwards, oldest first; hours without traffic are absent.
func (s *Store) HourlyCounts(ctx context.Context, route string, since time.Time) ([]domain.HourCount, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT hour, requests, modern, fallbacks, shadow_matches, shadow_mismatches, last_fallback_at, confirmed_missing, `+legacyServed+`
		FROM strangler_route_hours
		WHERE route = $1 AND hour >= $2
		ORDER BY hour`, route, s.ts(since.UTC().Truncate(time.Hour)))
	if err != nil {
		return nil, fmt.Errorf("store: hourly counts of %s: %w", route, err)
	}
	defer rows.Close()
	var out []domain.HourCount
	for rows.Next() {
		h := domain.HourCount{Route: route}
		if err := rows.Scan(scanTime(&h.Hour), &h.Requests, &h.Modern, &h.Fallbacks, &h.ShadowMatches, &h.ShadowMismatches, scanTime(&h.LastFallbackAt), &h.ConfirmedMissing, &h.Legacy); err != nil {
			return nil, fmt.Errorf("store: hourly counts of %s: %w", route, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: hourly counts of %s: %w", route, err)
	}
	return out, nil
}
