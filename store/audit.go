package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"strangler/domain"
)

// AuditFilter selects audit entries for AuditLog. Zero fields do not
// filter.
type AuditFilter struct {
	Route string
	// Before keeps the entries before the first at or after this time in
	// the chain: the piece of it that WalkAudit since this time leaves
	// out, without a gap. Nil does not filter; the zero time, or one
	// before it, keeps nothing.
	Before *time.Time
	// BeforeID keeps the entries before the one with this id in the chain:
	// the next page after an entry, which entries appended meanwhile do
	// not shift.
	BeforeID int64
	// Limit caps the result: 100 when zero, at most 1000.
	Limit int
}

// AppendAudit records an event that changes no flag, such as a refused
// flip or an operator's action on a repair.
func (s *Store) AppendAudit(ctx context.Context, a domain.AuditEntry) error {
	err := s.auditedTx(ctx, func(tx *sql.Tx) error { return s.appendAudit(ctx, tx, a) })
	if err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

// appendAudit adds a to the end of the hash chain in tx. The chain's head
// stays locked until tx ends, so appends from every replica take turns
// and each links to the one before it.
//
// On PostgreSQL the entry's time is the server's clock, read once tx
// holds the head, whatever a.At says: every replica's entries are then
// on one clock, in the chain's order. Each replica's own clock, as it
// was, interleaved two replicas' entries days apart when one's clock
// was off. The embedded store, which one process writes, keeps a.At
// (zero: now).
func (s *Store) appendAudit(ctx context.Context, tx *sql.Tx, a domain.AuditEntry) error {
	if a.Action == "" {
		return errors.New("audit entry has no action")
	}
	a.Actor, a.Action, a.Route, a.FromMode, a.ToMode = clean(a.Actor), clean(a.Action), clean(a.Route), clean(a.FromMode), clean(a.ToMode)
	a.Reason, a.Detail = clean(a.Reason), clean(a.Detail)
	head, err := s.lockAuditHead(ctx, tx)
	if err != nil {
		return err
	}
	if s.dialect.name == "postgres" {
		if err := tx.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&a.At); err != nil {
			return fmt.Errorf("audit: read the server's clock: %w", err)
		}
	} else if a.At.IsZero() {
		a.At = s.clock()
	}
	// Hashed as stored: UTC at microseconds.
	a.At = a.At.UTC().Truncate(time.Microsecond)
	a.PrevHash = head.Hash
	a.Hash = auditHash(a)
	err = tx.QueryRowContext(ctx, `
		INSERT INTO strangler_audit
			(at, actor, action, route, from_mode, to_mode, from_percent, to_percent, reason, forced, detail, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		RETURNING id`,
		s.ts(a.At), a.Actor, a.Action, a.Route, a.FromMode, a.ToMode,
		floatOrNull(a.FromPercent), floatOrNull(a.ToPercent), a.Reason, a.Forced, a.Detail, a.PrevHash, a.Hash).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return s.moveAuditHead(ctx, tx, a)
}

// auditColumns are an entry's columns, in the order scanAudit reads them.
const auditColumns = `id, at, actor, action, route, from_mode, to_mode, from_percent, to_percent,
	reason, forced, detail, prev_hash, hash`

// scanAudit reads one row of auditColumns.
func scanAudit(rows *sql.Rows) (domain.AuditEntry, error) {
	var a domain.AuditEntry
	var from, to sql.NullFloat64
	var prev, hash sql.NullString
	if err := rows.Scan(&a.ID, scanTime(&a.At), &a.Actor, &a.Action, &a.Route, &a.FromMode, &a.ToMode,
		&from, &to, &a.Reason, &a.Forced, &a.Detail, &prev, &hash); err != nil {
		return domain.AuditEntry{}, err
	}
	a.FromPercent, a.ToPercent = floatPtr(from), floatPtr(to)
	a.PrevHash, a.Hash = prev.String, hash.String
	return a, nil
}

// lastOrdered is the latest time SQLite's text form of times (timeLayout)
// orders: a later one is written with five digits of year, "10000-…",
// which compares before "2026-…".
var lastOrdered = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// auditBound is t, a time an operator bounds the audit log with (before=,
// audit export --since), as a query argument: a time past the year 9999
// is the last instant of it, after every entry either way. As it was, on
// SQLite --since 9999-12-31T23:59:59-23:00 (10000-01-01 in UTC) exported
// the whole log and before= that time listed nothing (found by the red
// team).
func (s *Store) auditBound(t time.Time) any {
	if t.After(lastOrdered) {
		t = lastOrdered
	}
	return s.ts(t)
}

// AuditLog returns audit entries newest first in chain order (by id): each
// links to the one after it in the list unless a filter left some out
// between them. Times need not fall down the list: on the embedded store
// an entry's time is taken before it waits its turn at the chain's head,
// and on PostgreSQL an entry an earlier release wrote carries its
// replica's clock (see appendAudit).
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]domain.AuditEntry, error) {
	var where []string
	var args []any
	if f.Route != "" {
		args = append(args, f.Route)
		where = append(where, fmt.Sprintf("route = $%d", len(args)))
	}
	if f.Before != nil {
		// Times need not rise with ids (see WalkAudit): an entry before
		// the first at or after the time is kept whatever its own.
		args = append(args, s.auditBound(*f.Before))
		where = append(where, fmt.Sprintf("id < coalesce((SELECT min(id) FROM strangler_audit WHERE at >= $%d), id + 1)", len(args)))
	}
	if f.BeforeID != 0 {
		args = append(args, f.BeforeID)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	q := `SELECT ` + auditColumns + ` FROM strangler_audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limitOr(f.Limit, 100, 1000))
	q += fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	defer rows.Close()
	var out []domain.AuditEntry
	for rows.Next() {
		a, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: audit log: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	return out, nil
}

// flagChangeActions are the audit actions that change a route's flags:
// an operator's flip (a ramp's step and an approved change request are
// flips too; "ramp" is an earlier release's step), a clear, and the
// guard's rollback. The partial index of migration 0220 has the same
// terms.
const flagChangeActions = `action IN ('flip', 'ramp', 'clear', 'rollback')`

// LastFlagChange returns the latest audit entry that changed route's
// flags, in chain order, and false when there is none. Entries that
// change nothing (refused flips, repair reads, a ramp's pause) are passed
// over however many there are: as a look at the latest 50 of the route's
// entries, a viewer's refused flips pushed the change out of sight, and
// the guard, which reads it, stepped back a whole mode.
func (s *Store) LastFlagChange(ctx context.Context, route string) (domain.AuditEntry, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM strangler_audit
		WHERE route = $1 AND `+flagChangeActions+` ORDER BY id DESC LIMIT 1`, route)
	if err != nil {
		return domain.AuditEntry{}, false, fmt.Errorf("store: last flag change: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return domain.AuditEntry{}, false, fmt.Errorf("store: last flag change: %w", err)
		}
		return domain.AuditEntry{}, false, nil
	}
	a, err := scanAudit(rows)
	if err != nil {
		return domain.AuditEntry{}, false, fmt.Errorf("store: last flag change: %w", err)
	}
	return a, true, nil
}
