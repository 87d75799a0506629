package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// AuditEntry is one line of the audit log: who did what to which route,
// when and why.
type AuditEntry struct {
	// ID is assigned by the store; later entries have higher ids.
	ID int64
	// At is when it happened; zero means now.
	At    time.Time
	Actor string
	// Action is what happened: "flip", "clear", "denied", "rollback",
	// "repair_retry", "repair_discard", …
	Action string
	Route  string
	// FromMode and ToMode, FromPercent and ToPercent describe a flip; nil
	// percents were not set.
	FromMode, ToMode       string
	FromPercent, ToPercent *float64
	Reason                 string
	// Forced says a gate was overridden.
	Forced bool
	// Detail is free text, such as which gate refused a flip.
	Detail string
}

// AuditFilter selects audit entries for AuditLog. Zero fields do not
// filter.
type AuditFilter struct {
	Route string
	// Before keeps entries older than this time, for paging.
	Before time.Time
	// Limit caps the result: 100 when zero, at most 1000.
	Limit int
}

// AppendAudit records an event that changes no flag, such as a refused
// flip or an operator's action on a repair.
func (s *Store) AppendAudit(ctx context.Context, a AuditEntry) error {
	if err := s.appendAudit(ctx, s.db, a); err != nil {
		return fmt.Errorf("store: append audit: %w", err)
	}
	return nil
}

func (s *Store) appendAudit(ctx context.Context, q querier, a AuditEntry) error {
	if a.Action == "" {
		return fmt.Errorf("audit entry has no action")
	}
	if a.At.IsZero() {
		a.At = s.clock()
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO strangler_audit
			(at, actor, action, route, from_mode, to_mode, from_percent, to_percent, reason, forced, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		s.ts(a.At), clean(a.Actor), clean(a.Action), clean(a.Route), clean(a.FromMode), clean(a.ToMode),
		floatOrNull(a.FromPercent), floatOrNull(a.ToPercent), clean(a.Reason), a.Forced, clean(a.Detail))
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditLog returns audit entries, newest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	if f.Route != "" {
		args = append(args, f.Route)
		where = append(where, fmt.Sprintf("route = $%d", len(args)))
	}
	if !f.Before.IsZero() {
		args = append(args, s.ts(f.Before))
		where = append(where, fmt.Sprintf("at < $%d", len(args)))
	}
	q := `SELECT id, at, actor, action, route, from_mode, to_mode, from_percent, to_percent,
		reason, forced, detail FROM strangler_audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limitOr(f.Limit, 100, 1000))
	q += fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var a AuditEntry
		var from, to sql.NullFloat64
		if err := rows.Scan(&a.ID, scanTime(&a.At), &a.Actor, &a.Action, &a.Route, &a.FromMode, &a.ToMode,
			&from, &to, &a.Reason, &a.Forced, &a.Detail); err != nil {
			return nil, fmt.Errorf("store: audit log: %w", err)
		}
		a.FromPercent, a.ToPercent = floatPtr(from), floatPtr(to)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	return out, nil
}
