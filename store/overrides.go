package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"strangler/domain"
)

// A route's version is the epoch of its row in strangler_route_fences
// less one (a route without a row is at epoch 1, version 0): every
// change of its override moves it (moveVersion), a clear too, and
// nothing moves it back, so one version names one state of the route
// over its life in the store, the state without an override included.
// It is the ETag a change must send (If-Match). On PostgreSQL the epoch
// is also the route's fence, which dual writes are journaled under
// (RouteFlags).

// Overrides returns the current overrides by route.
func (s *Store) Overrides(ctx context.Context) (map[string]domain.Override, error) {
	overrides, _, _, err := s.readFlags(ctx)
	return overrides, err
}

// RouteFlags returns the overrides by route, the version of every route
// that has one other than 0 (with an override or not), and, on
// PostgreSQL, the fence of every route that has one, read together: a
// dual write decided under these overrides is journaled with its route's
// fence (domain.Intent.Fence), and refused once another change moved it.
// Each of routes that has no fence yet gets one first (epoch 1, version
// 0, or whatever a change gave it meanwhile), so that its writes can be
// journaled. On SQLite, which one process uses, fences is nil.
func (s *Store) RouteFlags(ctx context.Context, routes []string) (overrides map[string]domain.Override, versions, fences map[string]int64, err error) {
	if s.dialect.name != "postgres" {
		overrides, versions, _, err = s.readFlags(ctx)
		return overrides, versions, nil, err
	}
	for range 2 {
		overrides, versions, fences, err = s.readFlags(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		missing := false
		for _, r := range routes {
			if _, ok := fences[r]; ok {
				continue
			}
			missing = true
			// Committed before the read that gives a replica the fence:
			// its writes then find the row to lock, which a change
			// moving the fence waits for (fencedIntentStatement).
			if err := s.addVersion(ctx, s.db, r); err != nil {
				return nil, nil, nil, fmt.Errorf("store: route fence of %s: %w", r, err)
			}
		}
		if !missing {
			break
		}
	}
	return overrides, versions, fences, nil
}

// addVersion gives route its row at epoch 1, version 0, unless it has
// one.
func (s *Store) addVersion(ctx context.Context, ex querier, route string) error {
	_, err := ex.ExecContext(ctx, `
		INSERT INTO strangler_route_fences (route, epoch) VALUES ($1, 1)
		ON CONFLICT (route) DO NOTHING`, clean(route))
	return err
}

// readFlags reads every override, and every route's version and epoch
// (its fence on PostgreSQL), in one statement.
func (s *Store) readFlags(ctx context.Context) (overrides map[string]domain.Override, versions, epochs map[string]int64, err error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT coalesce(f.route, o.route), f.epoch, o.mode, o.percent, o.actor, o.reason, o.updated_at
		FROM strangler_route_fences f FULL JOIN strangler_overrides o ON o.route = f.route`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store: route flags: %w", err)
	}
	defer rows.Close()
	overrides, versions, epochs = map[string]domain.Override{}, map[string]int64{}, map[string]int64{}
	for rows.Next() {
		var route string
		var epoch sql.NullInt64
		var mode, actor, reason sql.NullString
		var pct sql.NullFloat64
		var at time.Time
		if err := rows.Scan(&route, &epoch, &mode, &pct, &actor, &reason, scanTime(&at)); err != nil {
			return nil, nil, nil, fmt.Errorf("store: route flags: %w", err)
		}
		var version int64
		if epoch.Valid {
			epochs[route] = epoch.Int64
			version = epoch.Int64 - 1
		}
		if version != 0 {
			versions[route] = version
		}
		if mode.Valid {
			overrides[route] = domain.Override{Route: route, Mode: domain.Mode(mode.String), Percent: sharePtr(pct),
				Version: version, Actor: actor.String, Reason: reason.String, UpdatedAt: at}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("store: route flags: %w", err)
	}
	return overrides, versions, epochs, nil
}

// moveVersion moves route's version on from expect in tx, the
// transaction of a change of its override, and returns the new one and
// the route's new fence (0 on SQLite, which keeps none); a route at
// another version is ErrConflict. It is the one place a version is
// decided. It holds the route's row until tx ends, so that changes of
// the route take turns, and dual writes being journaled under the
// route's flags as they were either are committed before it returns,
// for the change's check of the journal to see, or wait and are refused
// (fencedIntentStatement).
func (s *Store) moveVersion(ctx context.Context, tx *sql.Tx, route string, expect int64) (version, fence int64, err error) {
	if err := s.addVersion(ctx, tx, route); err != nil {
		return 0, 0, fmt.Errorf("route version: %w", err)
	}
	var epoch int64
	err = tx.QueryRowContext(ctx, `
		UPDATE strangler_route_fences SET epoch = epoch + 1 WHERE route = $1 AND epoch = $2
		RETURNING epoch`, route, expect+1).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		if err := tx.QueryRowContext(ctx, `SELECT epoch FROM strangler_route_fences WHERE route = $1`, route).Scan(&epoch); err != nil {
			return 0, 0, fmt.Errorf("route version: %w", err)
		}
		return 0, 0, fmt.Errorf("version is %d, not %d: %w", epoch-1, expect, ErrConflict)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("route version: %w", err)
	}
	if s.dialect.name == "postgres" {
		fence = epoch
	}
	return epoch - 1, fence, nil
}

// CheckJournal is a Linked that reads the journal's open writes (as
// OpenPrimaries) in the transaction of an override change, once the
// route's fence moved, and refuses the change with check's error, if
// any: no write journaled under the route's flags as they were can be
// missing from what check is given, on any replica sharing the store.
func CheckJournal(check func(open map[string]map[domain.Backend]int) error) Linked {
	return journalCheck(check)
}

type journalCheck func(open map[string]map[domain.Backend]int) error

func (c journalCheck) link(ctx context.Context, s *Store, tx *sql.Tx) error {
	open, err := s.openPrimaries(ctx, tx)
	if err != nil {
		return err
	}
	return c(open)
}

// SetOverride sets o's route flag and records a in the audit log, in one
// transaction with the linked writes (written first, once the route's
// version and fence moved): either all happen or none. The route's
// version (0 when it never changed) must be expectVersion, else nothing
// is written and the error is ErrConflict, as it is when a linked write
// finds its row changed. The result carries the route's new version and
// fence (moveVersion). Every replica's Watch hears of the change once it
// is committed.
func (s *Store) SetOverride(ctx context.Context, o domain.Override, expectVersion int64, a domain.AuditEntry, linked ...Linked) (domain.Override, error) {
	if o.Route == "" || o.Mode == "" {
		return domain.Override{}, fmt.Errorf("store: set override: route and mode are required")
	}
	o.Route, o.Mode, o.Actor, o.Reason = clean(o.Route), clean(o.Mode), clean(o.Actor), clean(o.Reason)
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = s.clock()
	}
	o.UpdatedAt = o.UpdatedAt.UTC().Truncate(time.Microsecond)
	err := s.auditedTx(ctx, func(tx *sql.Tx) error {
		var err error
		if o.Version, o.Fence, err = s.moveVersion(ctx, tx, o.Route, expectVersion); err != nil {
			return err
		}
		if err := s.writeLinked(ctx, tx, linked); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, a); err != nil {
			return err
		}
		// The row's version is the route's, for releases before store
		// migration 0190, which read and check it.
		_, err = tx.ExecContext(ctx, `
			INSERT INTO strangler_overrides (route, mode, percent, version, actor, reason, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (route) DO UPDATE SET mode = excluded.mode, percent = excluded.percent, version = excluded.version,
				actor = excluded.actor, reason = excluded.reason, updated_at = excluded.updated_at`,
			o.Route, o.Mode, floatOrNull(o.Percent), o.Version, o.Actor, o.Reason, s.ts(o.UpdatedAt))
		if err != nil {
			return err
		}
		return s.notify(ctx, tx)
	})
	if err != nil {
		return domain.Override{}, fmt.Errorf("store: set override of %s: %w", o.Route, err)
	}
	return o, nil
}

// ClearOverride removes route's override, so the config file decides
// again, and records a in the audit log, in one transaction with the
// linked writes (written once the route's version and fence moved, as
// SetOverride does). The route's version must be expectVersion, else
// nothing is written and the error is ErrConflict; a route without an
// override is ErrNotFound. It returns the route's new version, that of
// the route without an override, and its new fence (0 on SQLite).
func (s *Store) ClearOverride(ctx context.Context, route string, expectVersion int64, a domain.AuditEntry, linked ...Linked) (version, fence int64, err error) {
	route = clean(route) // as SetOverride stored it
	err = s.auditedTx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, fence, err = s.moveVersion(ctx, tx, route, expectVersion); err != nil {
			return err
		}
		if err := s.writeLinked(ctx, tx, linked); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, a); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM strangler_overrides WHERE route = $1`, route)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("route has no override: %w", ErrNotFound)
		}
		return s.notify(ctx, tx)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: clear override of %s: %w", route, err)
	}
	return version, fence, nil
}

// notify announces an override change to every Watch, on commit.
func (s *Store) notify(ctx context.Context, tx *sql.Tx) error {
	if s.dialect.notify == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.dialect.notify); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
