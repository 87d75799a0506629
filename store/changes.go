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

// ChangeState is where a change request is in its life: a closed set,
// used by every query.
type ChangeState string

// The states of a change request. Only a pending one can be approved or
// rejected; the others are history.
const (
	ChangePending  ChangeState = "pending"
	ChangeApplied  ChangeState = "applied"
	ChangeRejected ChangeState = "rejected"
	ChangeExpired  ChangeState = "expired"
	// ChangeStale is a request whose route changed after it was made, so
	// that applying it would do something nobody approved.
	ChangeStale ChangeState = "stale"
)

// ChangeKind is what a change request would do.
type ChangeKind string

// The kinds of change request.
const (
	ChangeFlip  ChangeKind = "flip"
	ChangeClear ChangeKind = "clear"
	ChangeRamp  ChangeKind = "ramp"
)

// Change is a change request: a flip, clear or ramp that moves a route
// forward and waits for other token names to approve it.
type Change struct {
	// ID is assigned by CreateChange.
	ID    int64
	Route string
	Kind  ChangeKind
	// Mode and Percent are where a flip or clear takes the route; for a
	// ramp, its mode. Forced flips skip the gates.
	Mode    domain.Mode
	Percent *float64
	Forced  bool
	// RampSteps and RampEvery are a ramp's plan.
	RampSteps []float64
	RampEvery time.Duration
	// FromMode, FromPercent and BaseVersion are the route as the
	// requester saw it.
	FromMode    domain.Mode
	FromPercent *float64
	BaseVersion int64
	Requester   string
	Reason      string
	// Needed is how many approvals it needs besides the requester's;
	// Approvers are the token names that gave theirs, in order.
	Needed    int
	Approvers []string
	State     ChangeState
	// DecidedBy applied (by the last approval), rejected or voided it,
	// at DecidedAt; Decision says why it was rejected or is stale.
	DecidedBy, Decision  string
	DecidedAt            time.Time
	CreatedAt, ExpiresAt time.Time
	// Version counts the row's changes, as a ramp's does.
	Version int64
}

const changeColumns = `id, route, kind, mode, percent, forced, ramp_steps, ramp_every_ns, from_mode, from_percent,
	base_version, requester, reason, needed, approvers, state, decided_by, decision, decided_at,
	created_at, expires_at, version`

func scanChange(row interface{ Scan(...any) error }) (Change, error) {
	var c Change
	var pct, fromPct sql.NullFloat64
	var steps, approvers string
	var every int64
	err := row.Scan(&c.ID, &c.Route, &c.Kind, &c.Mode, &pct, &c.Forced, &steps, &every, &c.FromMode, &fromPct,
		&c.BaseVersion, &c.Requester, &c.Reason, &c.Needed, &approvers, &c.State, &c.DecidedBy, &c.Decision,
		scanTime(&c.DecidedAt), scanTime(&c.CreatedAt), scanTime(&c.ExpiresAt), &c.Version)
	if err != nil {
		return Change{}, err
	}
	c.Percent, c.FromPercent, c.RampEvery = sharePtr(pct), sharePtr(fromPct), time.Duration(every)
	if steps != "" {
		if err := json.Unmarshal([]byte(steps), &c.RampSteps); err != nil {
			return Change{}, fmt.Errorf("ramp steps of change %d: %w", c.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(approvers), &c.Approvers); err != nil {
		return Change{}, fmt.Errorf("approvers of change %d: %w", c.ID, err)
	}
	return c, nil
}

// CreateChange stores c as a pending change request at version 1 and
// records a, whose Detail may name the request as "{id}", in the audit
// log, in one transaction. A route with a pending request keeps it: the
// error is ErrConflict and nothing is written.
func (s *Store) CreateChange(ctx context.Context, c Change, a domain.AuditEntry) (Change, error) {
	c = cleanChange(c)
	c.State, c.Version, c.Approvers = ChangePending, 1, nil
	steps := ""
	if c.RampSteps != nil {
		b, err := json.Marshal(c.RampSteps)
		if err != nil {
			return Change{}, fmt.Errorf("store: create change of %s: %w", c.Route, err)
		}
		steps = string(b)
	}
	err := s.auditedTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			INSERT INTO strangler_changes (route, kind, mode, percent, forced, ramp_steps, ramp_every_ns, from_mode,
				from_percent, base_version, requester, reason, needed, approvers, state, decided_by, decision,
				decided_at, created_at, expires_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '[]', 'pending', '', '', NULL, $14, $15, 1)
			ON CONFLICT DO NOTHING
			RETURNING id`,
			c.Route, string(c.Kind), c.Mode, floatOrNull(c.Percent), c.Forced, steps, int64(c.RampEvery), c.FromMode,
			floatOrNull(c.FromPercent), c.BaseVersion, c.Requester, c.Reason, c.Needed, s.ts(c.CreatedAt), s.ts(c.ExpiresAt)).
			Scan(&c.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("the route has a pending change request: %w", ErrConflict)
		} else if err != nil {
			return err
		}
		a.Detail = strings.ReplaceAll(a.Detail, "{id}", fmt.Sprint(c.ID))
		return s.appendAudit(ctx, tx, a)
	})
	if err != nil {
		return Change{}, fmt.Errorf("store: create change of %s: %w", c.Route, err)
	}
	return c, nil
}

// Change returns the change request id names; ErrNotFound if none does.
func (s *Store) Change(ctx context.Context, id int64) (Change, error) {
	c, err := scanChange(s.db.QueryRowContext(ctx, `SELECT `+changeColumns+` FROM strangler_changes WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Change{}, fmt.Errorf("store: change %d: %w", id, ErrNotFound)
	} else if err != nil {
		return Change{}, fmt.Errorf("store: change %d: %w", id, err)
	}
	return c, nil
}

// ChangeFilter selects change requests for Changes; zero fields do not
// filter.
type ChangeFilter struct {
	Route string
	State ChangeState
	// Limit caps the result: 100 when zero, at most 1000.
	Limit int
}

// Changes returns change requests, newest first.
func (s *Store) Changes(ctx context.Context, f ChangeFilter) ([]Change, error) {
	var where []string
	var args []any
	if f.Route != "" {
		args = append(args, f.Route)
		where = append(where, fmt.Sprintf("route = $%d", len(args)))
	}
	if f.State != "" {
		args = append(args, string(f.State))
		where = append(where, fmt.Sprintf("state = $%d", len(args)))
	}
	q := `SELECT ` + changeColumns + ` FROM strangler_changes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limitOr(f.Limit, 100, 1000))
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: changes: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			return nil, fmt.Errorf("store: changes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: changes: %w", err)
	}
	return out, nil
}

// UpdateChange stores c's approvers, state and decision if its version is
// still expectVersion, and records a in the audit log (unless a has no
// action), in one transaction; the result carries the new version. A
// request that changed since is ErrConflict, none at all ErrNotFound.
// now is the clock that set the request's expiry: any decision but the
// expiry itself is written only while the request is pending by StateAt
// at the time now reads as the row is written, else ErrConflict.
func (s *Store) UpdateChange(ctx context.Context, c Change, expectVersion int64, now func() time.Time, a domain.AuditEntry) (Change, error) {
	l := LinkChange(c, expectVersion, now, a)
	if err := s.auditedTx(ctx, func(tx *sql.Tx) error { return l.link(ctx, s, tx) }); err != nil {
		return Change{}, fmt.Errorf("store: update change %d: %w", c.ID, err)
	}
	c.Version = expectVersion + 1
	return c, nil
}

// LinkChange is UpdateChange as a write linked to the change the request
// asked for: the route moves and the request is applied together, or
// neither.
func LinkChange(c Change, expectVersion int64, now func() time.Time, a domain.AuditEntry) Linked {
	return changeUpdate{cleanChange(c), expectVersion, now, a}
}

type changeUpdate struct {
	c      Change
	expect int64
	now    func() time.Time
	a      domain.AuditEntry
}

func (u changeUpdate) link(ctx context.Context, s *Store, tx *sql.Tx) error {
	if u.a.Action != "" {
		if err := s.appendAudit(ctx, tx, u.a); err != nil {
			return err
		}
	}
	approvers, err := json.Marshal(append([]string{}, u.c.Approvers...)) // [] for none, never null
	if err != nil {
		return err
	}
	q, args := `
		UPDATE strangler_changes SET approvers = $2, state = $3, decided_by = $4, decision = $5, decided_at = $6,
			version = $7 + 1
		WHERE id = $1 AND version = $7`,
		[]any{u.c.ID, string(approvers), string(u.c.State), u.c.DecidedBy, u.c.Decision, s.tsOrNull(u.c.DecidedAt), u.expect}
	// The time is read here, as the row is written, not when the decision
	// was made: an approval decided before the expiry (then a slow gates
	// check, a wait for the audit chain's head) that reaches the store
	// after it finds the request expired, as StateAt would say then.
	now := u.now()
	if u.c.State != ChangeExpired {
		q += ` AND expires_at > $8`
		args = append(args, s.ts(now))
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("change: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("change: %w", err)
	} else if n == 0 {
		stored, err := scanChange(tx.QueryRowContext(ctx, `SELECT `+changeColumns+` FROM strangler_changes WHERE id = $1`, u.c.ID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("no change request %d: %w", u.c.ID, ErrNotFound)
		case err != nil:
			return fmt.Errorf("change: %w", err)
		case stored.Version == u.expect:
			return fmt.Errorf("change request %d is %s at %s: %w", u.c.ID, stored.StateAt(now), now.UTC().Format(time.RFC3339Nano), ErrConflict)
		}
		return fmt.Errorf("change request %d is at version %d, not %d: %w", u.c.ID, stored.Version, u.expect, ErrConflict)
	}
	return nil
}

// StateAt is c's state at now: a request still pending at its expiry or
// after it has expired, whether or not ExpireChanges recorded that yet.
// ExpireChanges's SQL (expires_at <= now) is the same rule, and so is
// UpdateChange's guard (a decision written while expires_at > now).
func (c Change) StateAt(now time.Time) ChangeState {
	if c.State == ChangePending && !now.Before(c.ExpiresAt) {
		return ChangeExpired
	}
	return c.State
}

// ExpireChanges marks the pending change requests that expired by now (see
// StateAt) as expired, each audited with the entry audit makes of it, and returns
// them. Replicas sweeping at once expire each request once.
func (s *Store) ExpireChanges(ctx context.Context, now time.Time, audit func(Change) domain.AuditEntry) ([]Change, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT `+changeColumns+` FROM strangler_changes WHERE state = $1 AND expires_at <= $2 ORDER BY id`,
		string(ChangePending), s.ts(now))
	if err != nil {
		return nil, fmt.Errorf("store: expire changes: %w", err)
	}
	var due []Change
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: expire changes: %w", err)
		}
		due = append(due, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: expire changes: %w", err)
	}
	var out []Change
	for _, c := range due {
		next := c
		next.State, next.DecidedAt = ChangeExpired, now
		next, err := s.UpdateChange(ctx, next, c.Version, func() time.Time { return now }, audit(next))
		switch {
		case errors.Is(err, ErrConflict):
			continue // decided or expired by someone else meanwhile
		case err != nil:
			return out, err
		}
		out = append(out, next)
	}
	return out, nil
}

func cleanChange(c Change) Change {
	c.Route, c.Mode, c.FromMode = clean(c.Route), clean(c.Mode), clean(c.FromMode)
	c.Requester, c.Reason, c.DecidedBy, c.Decision = clean(c.Requester), clean(c.Reason), clean(c.DecidedBy), clean(c.Decision)
	approvers := make([]string, len(c.Approvers))
	for i, a := range c.Approvers {
		approvers[i] = clean(a)
	}
	c.Approvers = approvers
	return c
}
