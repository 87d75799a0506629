package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"strangler/domain"
)

// Overrides returns the current overrides by route.
func (s *Store) Overrides(ctx context.Context) (map[string]domain.Override, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT route, mode, percent, version, actor, reason, updated_at FROM strangler_overrides`)
	if err != nil {
		return nil, fmt.Errorf("store: overrides: %w", err)
	}
	defer rows.Close()
	out := map[string]domain.Override{}
	for rows.Next() {
		var o domain.Override
		var pct sql.NullFloat64
		if err := rows.Scan(&o.Route, &o.Mode, &pct, &o.Version, &o.Actor, &o.Reason, scanTime(&o.UpdatedAt)); err != nil {
			return nil, fmt.Errorf("store: overrides: %w", err)
		}
		o.Percent = sharePtr(pct)
		out[o.Route] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: overrides: %w", err)
	}
	return out, nil
}

// SettledOverride reads route's override (found false without one) once
// every change of an override under way has ended, committed or rolled
// back: each holds the audit chain's head, which this read waits for.
// After a change whose commit went out and whose answer was lost (see
// Uncertain), it says whether the change was made.
func (s *Store) SettledOverride(ctx context.Context, route string) (o domain.Override, found bool, err error) {
	err = inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.readAuditHead(ctx, tx, s.dialect.forUpdate); err != nil {
			return err
		}
		var pct sql.NullFloat64
		err := tx.QueryRowContext(ctx, `
			SELECT route, mode, percent, version, actor, reason, updated_at FROM strangler_overrides WHERE route = $1`, route).
			Scan(&o.Route, &o.Mode, &pct, &o.Version, &o.Actor, &o.Reason, scanTime(&o.UpdatedAt))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			found = false
			return nil
		case err != nil:
			return err
		}
		o.Percent, found = sharePtr(pct), true
		return nil
	})
	if err != nil {
		return domain.Override{}, false, fmt.Errorf("store: override of %s: %w", route, err)
	}
	return o, found, nil
}

// RouteFlags returns the overrides by route and, on PostgreSQL, the fence
// of every route that has one, read together: a dual write decided under
// these overrides is journaled with its route's fence (domain.Intent.Fence),
// and refused once another change moved it. Each of routes that has no
// fence yet gets one first (epoch 1, or whatever a change gave it
// meanwhile), so that its writes can be journaled. On SQLite, which one
// process uses, fences is nil.
func (s *Store) RouteFlags(ctx context.Context, routes []string) (overrides map[string]domain.Override, fences map[string]int64, err error) {
	if s.dialect.name != "postgres" {
		overrides, err = s.Overrides(ctx)
		return overrides, nil, err
	}
	for range 2 {
		overrides, fences, err = s.readFlags(ctx)
		if err != nil {
			return nil, nil, err
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
			_, err = s.db.ExecContext(ctx, `
				INSERT INTO strangler_route_fences (route, epoch) VALUES ($1, 1)
				ON CONFLICT (route) DO NOTHING`, clean(r))
			if err != nil {
				return nil, nil, fmt.Errorf("store: route fence of %s: %w", r, err)
			}
		}
		if !missing {
			break
		}
	}
	return overrides, fences, nil
}

// readFlags reads every override and every fence on PostgreSQL, in one
// statement.
func (s *Store) readFlags(ctx context.Context) (map[string]domain.Override, map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT coalesce(f.route, o.route), f.epoch, o.mode, o.percent, o.version, o.actor, o.reason, o.updated_at
		FROM strangler_route_fences f FULL JOIN strangler_overrides o ON o.route = f.route`)
	if err != nil {
		return nil, nil, fmt.Errorf("store: route flags: %w", err)
	}
	defer rows.Close()
	overrides, fences := map[string]domain.Override{}, map[string]int64{}
	for rows.Next() {
		var route string
		var epoch, version sql.NullInt64
		var mode, actor, reason sql.NullString
		var pct sql.NullFloat64
		var at time.Time
		if err := rows.Scan(&route, &epoch, &mode, &pct, &version, &actor, &reason, scanTime(&at)); err != nil {
			return nil, nil, fmt.Errorf("store: route flags: %w", err)
		}
		if epoch.Valid {
			fences[route] = epoch.Int64
		}
		if mode.Valid {
			overrides[route] = domain.Override{Route: route, Mode: domain.Mode(mode.String), Percent: sharePtr(pct),
				Version: version.Int64, Actor: actor.String, Reason: reason.String, UpdatedAt: at}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: route flags: %w", err)
	}
	return overrides, fences, nil
}

// moveFence moves route's fence in tx, the transaction of a change of
// its override, and returns the new one: 0 on SQLite, which keeps none.
// It holds the route's fence row until tx ends, so dual writes being
// journaled under the route's flags as they were either are committed
// before it returns, for the change's check of the journal to see, or
// wait and are refused (fencedIntentStatement).
func (s *Store) moveFence(ctx context.Context, tx *sql.Tx, route string) (int64, error) {
	if s.dialect.name != "postgres" {
		return 0, nil
	}
	var epoch int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO strangler_route_fences (route, epoch) VALUES ($1, 1)
		ON CONFLICT (route) DO UPDATE SET epoch = strangler_route_fences.epoch + 1
		RETURNING epoch`, route).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("route fence: %w", err)
	}
	return epoch, nil
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
// fence moved): either all happen or none. The stored version (0 when
// the route has no override) must equal expectVersion, and an override's
// mode and percent a's from (see fromHolds), else nothing is written and
// the error is ErrConflict, as it is when a linked write finds its row
// changed. The result carries the new version, expectVersion+1, and the
// route's new fence. Every replica's Watch hears of the change once it
// is committed.
func (s *Store) SetOverride(ctx context.Context, o domain.Override, expectVersion int64, a domain.AuditEntry, linked ...Linked) (domain.Override, error) {
	if o.Route == "" || o.Mode == "" {
		return domain.Override{}, fmt.Errorf("store: set override: route and mode are required")
	}
	o.Route, o.Mode, o.Actor, o.Reason = clean(o.Route), clean(o.Mode), clean(o.Actor), clean(o.Reason)
	o.Version = expectVersion + 1
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = s.clock()
	}
	o.UpdatedAt = o.UpdatedAt.UTC().Truncate(time.Microsecond)
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		if o.Fence, err = s.moveFence(ctx, tx, o.Route); err != nil {
			return err
		}
		if err := s.writeLinked(ctx, tx, linked); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, a); err != nil {
			return err
		}
		if err := s.fromHolds(ctx, tx, o.Route, expectVersion, a); err != nil {
			return err
		}
		var query string
		if expectVersion == 0 {
			query = `
				INSERT INTO strangler_overrides (route, mode, percent, version, actor, reason, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (route) DO NOTHING`
		} else {
			query = `
				UPDATE strangler_overrides
				SET mode = $2, percent = $3, version = $4, actor = $5, reason = $6, updated_at = $7
				WHERE route = $1 AND version = $4 - 1`
		}
		res, err := tx.ExecContext(ctx, query, o.Route, o.Mode, floatOrNull(o.Percent),
			o.Version, o.Actor, o.Reason, s.ts(o.UpdatedAt))
		if err != nil {
			return err
		}
		if err := s.expectOne(ctx, tx, res, o.Route, expectVersion); err != nil {
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
// linked writes (written once the route's fence moved, as SetOverride
// does). The stored version must equal expectVersion, and the override
// a's from (see fromHolds), else nothing is written and the error is
// ErrConflict; a route without an override is ErrNotFound. It returns
// the route's new fence (0 on SQLite).
func (s *Store) ClearOverride(ctx context.Context, route string, expectVersion int64, a domain.AuditEntry, linked ...Linked) (fence int64, err error) {
	err = inTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		if fence, err = s.moveFence(ctx, tx, route); err != nil {
			return err
		}
		if err := s.writeLinked(ctx, tx, linked); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, a); err != nil {
			return err
		}
		if err := s.fromHolds(ctx, tx, route, expectVersion, a); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			DELETE FROM strangler_overrides WHERE route = $1 AND version = $2`, route, expectVersion)
		if err != nil {
			return err
		}
		if err := s.expectOne(ctx, tx, res, route, expectVersion); err != nil {
			return err
		}
		return s.notify(ctx, tx)
	})
	if err != nil {
		return 0, fmt.Errorf("store: clear override of %s: %w", route, err)
	}
	return fence, nil
}

// fromHolds refuses as a conflict a change of route's override at
// expectVersion whose audit entry a names a from (FromMode, FromPercent)
// other than the stored override's mode and percent. A version alone
// does not name a state: it starts again at 1 after a clear, so a
// replica that has not yet heard of a clear and a new flip (its
// notification late, the store restarting) holds the new flip's version
// for the state before. The guard there rolled a route an operator had
// just set to modern 10% "back" to fallback for all of its traffic, a
// step forward, and an approval applied a request whose route had moved
// since, each audited with a from the route was not. a's from is what
// the change was decided on, so it is the state the change expects.
// Called after a is appended: the audit chain's head, locked until the
// transaction ends, orders every override's changes, so the row read is
// the latest. An entry without a from (no override expected) checks
// nothing more.
func (s *Store) fromHolds(ctx context.Context, tx *sql.Tx, route string, expectVersion int64, a domain.AuditEntry) error {
	if expectVersion == 0 || a.FromMode == "" {
		return nil
	}
	var mode domain.Mode
	var pct sql.NullFloat64
	var version int64
	err := tx.QueryRowContext(ctx, `SELECT mode, percent, version FROM strangler_overrides WHERE route = $1`, route).Scan(&mode, &pct, &version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // expectOne says so
	case err != nil:
		return err
	}
	// Read as Overrides reads it (sharePtr), as the caller's from was.
	if version == expectVersion && (mode != a.FromMode || domain.FullPercent(sharePtr(pct)) != domain.FullPercent(a.FromPercent)) {
		return fmt.Errorf("version %d is %s at %s%%, not %s at %s%%: %w", version, mode, domain.PercentString(domain.FullPercent(sharePtr(pct))),
			a.FromMode, domain.PercentString(domain.FullPercent(a.FromPercent)), ErrConflict)
	}
	return nil
}

// expectOne checks that a conditional write of route's override changed
// its row, and if not, says why.
func (s *Store) expectOne(ctx context.Context, tx *sql.Tx, res sql.Result, route string, expectVersion int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var stored int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM strangler_overrides WHERE route = $1`, route).Scan(&stored)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if stored == 0 && expectVersion == 0 {
		return fmt.Errorf("route has no override: %w", ErrNotFound)
	}
	return fmt.Errorf("version is %d, not %d: %w", stored, expectVersion, ErrConflict)
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
