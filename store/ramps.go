package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"strangler/domain"
)

// RampState is where a scheduled ramp is in its life. It is a closed set,
// and every query uses these constants.
type RampState string

// The states of a ramp. Running ramps take their steps; paused and held
// ones wait for an operator to resume or cancel them; done and cancelled
// ones are history, which a new ramp of the route replaces.
const (
	RampRunning   RampState = "running"
	RampPaused    RampState = "paused"
	RampHeld      RampState = "held"
	RampDone      RampState = "done"
	RampCancelled RampState = "cancelled"
)

// RampStates lists every state of a ramp.
var RampStates = []RampState{RampRunning, RampPaused, RampHeld, RampDone, RampCancelled}

// Active reports whether the ramp is still under way: running, paused or
// held. A route has at most one active ramp: StartRamp replaces only a
// ramp that is not (its SQL is written from this rule, rampOverSQL).
func (s RampState) Active() bool { return s == RampRunning || s == RampPaused || s == RampHeld }

// rampOverSQL is the SQL condition that the stored ramp is no longer
// active, written from RampState.Active.
var rampOverSQL = func() string {
	var over []string
	for _, st := range RampStates {
		if !st.Active() {
			over = append(over, "strangler_ramps.state = '"+string(st)+"'")
		}
	}
	return "(" + strings.Join(over, " OR ") + ")"
}()

// Ramp is a route's share to modern raised step by step over time.
type Ramp struct {
	Route string
	// Mode is the mode of every step: fallback or modern.
	Mode domain.Mode
	// Steps are the percents sent to modern, rising.
	Steps []float64
	// Every is how long the route stays at a step before the next.
	Every time.Duration
	// Taken is how many steps have been taken: Steps[Taken] is next.
	Taken int
	State RampState
	// NextAt is when the next step is due.
	NextAt time.Time
	// Waiting says why a due step is not taken yet, such as a gate's
	// refusal, since WaitingSince; "" when it is not waiting.
	Waiting      string
	WaitingSince time.Time
	// Note says why the ramp is paused, held, done or cancelled.
	Note string
	// AtMode, AtPercent and AtVersion are the route's flags (mode,
	// percent, override version) as the ramp last set or saw them.
	AtMode    domain.Mode
	AtPercent *float64
	AtVersion int64
	// Actor started the ramp, for Reason; ApprovedBy approved it, when
	// the route needs approvals.
	Actor, Reason, ApprovedBy string
	CreatedAt, UpdatedAt      time.Time
	// Version counts the row's changes: UpdateRamp takes the version the
	// caller read, so two replicas or operators never overwrite each
	// other's change unseen.
	Version int64
}

const rampColumns = `route, mode, steps, every_ns, taken, state, next_at, waiting, waiting_since, note,
	at_mode, at_percent, at_version, actor, reason, approved_by, created_at, updated_at, version`

func scanRamp(row interface{ Scan(...any) error }) (Ramp, error) {
	var r Ramp
	var steps string
	var every int64
	var atPct sql.NullFloat64
	err := row.Scan(&r.Route, &r.Mode, &steps, &every, &r.Taken, &r.State, scanTime(&r.NextAt), &r.Waiting,
		scanTime(&r.WaitingSince), &r.Note, &r.AtMode, &atPct, &r.AtVersion, &r.Actor, &r.Reason, &r.ApprovedBy,
		scanTime(&r.CreatedAt), scanTime(&r.UpdatedAt), &r.Version)
	if err != nil {
		return Ramp{}, err
	}
	if err := json.Unmarshal([]byte(steps), &r.Steps); err != nil {
		return Ramp{}, fmt.Errorf("steps of %s: %w", r.Route, err)
	}
	r.Every, r.AtPercent = time.Duration(every), sharePtr(atPct)
	return r, nil
}

// Ramps returns every route's latest ramp, by route.
func (s *Store) Ramps(ctx context.Context) (map[string]Ramp, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+rampColumns+` FROM strangler_ramps`)
	if err != nil {
		return nil, fmt.Errorf("store: ramps: %w", err)
	}
	defer rows.Close()
	out := map[string]Ramp{}
	for rows.Next() {
		r, err := scanRamp(rows)
		if err != nil {
			return nil, fmt.Errorf("store: ramps: %w", err)
		}
		out[r.Route] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: ramps: %w", err)
	}
	return out, nil
}

// StartRamp stores r as its route's ramp, at version 1 or one more than
// the ramp it replaces, records a in the audit log, and makes the linked
// writes, in one transaction. A route whose ramp is still active keeps
// it: the error is ErrConflict and nothing is written.
func (s *Store) StartRamp(ctx context.Context, r Ramp, a domain.AuditEntry, linked ...Linked) (Ramp, error) {
	steps, err := json.Marshal(r.Steps)
	if err != nil {
		return Ramp{}, fmt.Errorf("store: start ramp of %s: %w", r.Route, err)
	}
	r = cleanRamp(r)
	err = s.auditedTx(ctx, func(tx *sql.Tx) error {
		if err := s.writeLinked(ctx, tx, linked); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, tx, a); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `
			INSERT INTO strangler_ramps (`+rampColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1)
			ON CONFLICT (route) DO UPDATE SET
				mode = excluded.mode, steps = excluded.steps, every_ns = excluded.every_ns,
				taken = excluded.taken, state = excluded.state, next_at = excluded.next_at,
				waiting = excluded.waiting, waiting_since = excluded.waiting_since, note = excluded.note,
				at_mode = excluded.at_mode, at_percent = excluded.at_percent, at_version = excluded.at_version,
				actor = excluded.actor, reason = excluded.reason, approved_by = excluded.approved_by,
				created_at = excluded.created_at, updated_at = excluded.updated_at,
				version = strangler_ramps.version + 1
			WHERE `+rampOverSQL+`
			RETURNING version`,
			r.Route, r.Mode, string(steps), int64(r.Every), r.Taken, string(r.State), s.ts(r.NextAt), r.Waiting,
			s.tsOrNull(r.WaitingSince), r.Note, r.AtMode, floatOrNull(r.AtPercent), r.AtVersion, r.Actor, r.Reason,
			r.ApprovedBy, s.ts(r.CreatedAt), s.ts(r.UpdatedAt)).Scan(&r.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("the route's ramp is still under way: %w", ErrConflict)
		}
		return err
	})
	if err != nil {
		return Ramp{}, fmt.Errorf("store: start ramp of %s: %w", r.Route, err)
	}
	return r, nil
}

// UpdateRamp stores r, its route's ramp, if its version is still
// expectVersion, and records a in the audit log (unless a has no action),
// in one transaction; the result carries the new version. A ramp that
// changed since is ErrConflict, none at all ErrNotFound.
func (s *Store) UpdateRamp(ctx context.Context, r Ramp, expectVersion int64, a domain.AuditEntry) (Ramp, error) {
	l := LinkRamp(r, expectVersion, a)
	if err := s.auditedTx(ctx, func(tx *sql.Tx) error { return l.link(ctx, s, tx) }); err != nil {
		return Ramp{}, fmt.Errorf("store: update ramp of %s: %w", r.Route, err)
	}
	r.Version = expectVersion + 1
	return r, nil
}

// LinkRamp is UpdateRamp as a write linked to an override change: a ramp
// taking its step moves the route and itself together, or neither.
func LinkRamp(r Ramp, expectVersion int64, a domain.AuditEntry) Linked {
	return rampUpdate{cleanRamp(r), expectVersion, a}
}

type rampUpdate struct {
	r      Ramp
	expect int64
	a      domain.AuditEntry
}

func (u rampUpdate) link(ctx context.Context, s *Store, tx *sql.Tx) error {
	if u.a.Action != "" {
		if err := s.appendAudit(ctx, tx, u.a); err != nil {
			return err
		}
	}
	r := u.r
	res, err := tx.ExecContext(ctx, `
		UPDATE strangler_ramps SET
			taken = $2, state = $3, next_at = $4, waiting = $5, waiting_since = $6, note = $7,
			at_mode = $8, at_percent = $9, at_version = $10, updated_at = $11, version = $12 + 1,
			actor = $13, approved_by = $14
		WHERE route = $1 AND version = $12`,
		r.Route, r.Taken, string(r.State), s.ts(r.NextAt), r.Waiting, s.tsOrNull(r.WaitingSince), r.Note,
		r.AtMode, floatOrNull(r.AtPercent), r.AtVersion, s.ts(r.UpdatedAt), u.expect, r.Actor, r.ApprovedBy)
	if err != nil {
		return fmt.Errorf("ramp: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("ramp: %w", err)
	} else if n == 0 {
		var v int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM strangler_ramps WHERE route = $1`, r.Route).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("the route has no ramp: %w", ErrNotFound)
		}
		return fmt.Errorf("the ramp is at version %d, not %d: %w", v, u.expect, ErrConflict)
	}
	return nil
}

// cleanRamp makes r's text storable.
func cleanRamp(r Ramp) Ramp {
	r.Route, r.Mode, r.Waiting, r.Note = clean(r.Route), clean(r.Mode), clean(r.Waiting), clean(r.Note)
	r.AtMode, r.Actor, r.Reason, r.ApprovedBy = clean(r.AtMode), clean(r.Actor), clean(r.Reason), clean(r.ApprovedBy)
	return r
}

// Linked is a write that commits in one transaction with an override
// change, a ramp's start or another write, or not at all: a ramp taking
// its step, a change request being applied, the change's check of the
// journal. Made by LinkRamp, LinkChange and CheckJournal.
type Linked interface {
	link(ctx context.Context, s *Store, tx *sql.Tx) error
}

func (s *Store) writeLinked(ctx context.Context, tx *sql.Tx, linked []Linked) error {
	for _, l := range linked {
		if err := l.link(ctx, s, tx); err != nil {
			return err
		}
	}
	return nil
}

// TakeLease gives owner the lease called name for ttl, on the store's
// lease clock (see leaseAt), if nobody else holds it: it is free, owner
// holds it already (a renewal), or its holder let it lapse. It reports
// whether owner holds it now.
func (s *Store) TakeLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	until, untilArg := s.leaseAt(3, ttl)
	leaseNow, nowArg := s.leaseAt(4, 0)
	var got string
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO strangler_leases (name, owner, until) VALUES ($1, $2, `+until+`)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE strangler_leases.owner = excluded.owner OR strangler_leases.until <= `+leaseNow+`
		RETURNING owner`, name, clean(owner), untilArg, nowArg).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: take lease %s: %w", name, err)
	}
	return true, nil
}

// Lease says who holds the lease called name, and until when; "" when
// nobody ever took it.
func (s *Store) Lease(ctx context.Context, name string) (owner string, until time.Time, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT owner, until FROM strangler_leases WHERE name = $1`, name).
		Scan(&owner, scanTime(&until))
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	} else if err != nil {
		return "", time.Time{}, fmt.Errorf("store: lease %s: %w", name, err)
	}
	return owner, until, nil
}

// ReleaseLease gives up owner's lease called name, so that another
// replica takes it at once rather than when it lapses. A lease owner no
// longer holds is left alone.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM strangler_leases WHERE name = $1 AND owner = $2`, name, clean(owner)); err != nil {
		return fmt.Errorf("store: release lease %s: %w", name, err)
	}
	return nil
}
