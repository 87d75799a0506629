package backfill

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"strangler/internal/dberr"
)

// Failure reasons go to the ledger, the report and the logs, which must
// never hold a value (dberr cuts out what PostgreSQL quotes), and a
// trigger's message says whatever its author wrote. So where a redacted
// value may be involved, a reason is built from the error's code and the
// column's name and type alone.

// reason explains why the target refused staged row row of the writer's
// batch. For a bad value it finds the column by storing the row's values
// one at a time into a probe table of the target's types, since the
// target's message does not name the column.
func (w *writer) reason(ctx context.Context, tx pgx.Tx, row int, cause error) string {
	var pg *pgconn.PgError
	if !errors.As(cause, &pg) {
		return "refused by the target"
	}
	var culprit *column
	// Where is set for a value too, not only for a trigger: jsonb's
	// input says where in the document it stopped. The probe tells them
	// apart: it has no triggers.
	if valueError(pg.Code) {
		culprit, pg = probe(ctx, tx, w.t, w.stage, row, pg)
	}
	return describe(w.t, culprit, pg)
}

// describeErr words err, a row error, with no column known.
func describeErr(t *table, err error) string {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return "refused by the target"
	}
	return describe(t, nil, pg)
}

// probe finds the column whose staged value of row the target's type
// refuses, and that refusal; nil and cause when none does alone. Only a
// value's own error (valueError) blames a column: a value staged as
// something else (a comparer's MD5 of a binary value) fails with another
// error.
func probe(ctx context.Context, tx pgx.Tx, t *table, stage string, row int, cause *pgconn.PgError) (*column, *pgconn.PgError) {
	name := "strangler_probe_" + strings.TrimPrefix(stage, "strangler_")
	var defs []string
	for i, c := range t.cols {
		typ := c.typ.full
		if c.lookup != nil {
			typ = c.lookup.keyType
		}
		defs = append(defs, fmt.Sprintf("c%d %s", i, typ))
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+name+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return nil, cause
	}
	for i := range t.cols {
		c := &t.cols[i]
		expr := c.valueExpr(fmt.Sprintf("s.c%d", i))
		if c.lookup != nil {
			expr = fmt.Sprintf("s.c%d::%s", i, c.lookup.keyType)
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			break
		}
		_, err = sp.Exec(ctx, fmt.Sprintf("INSERT INTO %s (c%d) SELECT %s FROM %s s WHERE s._row = $1", name, i, expr, stage), row)
		sp.Rollback(ctx)
		var pg *pgconn.PgError
		if errors.As(err, &pg) && valueError(pg.Code) {
			return c, pg
		}
	}
	return nil, cause
}

// describe words a refusal without a value: a type's refusal of a
// redacted column's value (c, found by probe) is told by its code, a
// trigger's message is dropped when the table has redacted columns
// (triggerRefusal). Other messages are kept as dberr words them, without
// the values a data exception quotes (so that reasons group too); on a
// table with redacted columns only those known to quote none: an
// integrity violation's, PostgreSQL's own for a statement it stopped.
func describe(t *table, c *column, pg *pgconn.PgError) string {
	if s, ok := triggerRefusal(t, pg); ok && c == nil {
		return s
	}
	switch {
	case c != nil && c.redacted:
		return fmt.Sprintf("column %s: %s (SQLSTATE %s)", c.name, condition(pg.Code, c.typ.full), pg.Code)
	case c != nil:
		return "column " + c.name + ": " + dberr.PostgresMessage(pg)
	case t.redacted && !strings.HasPrefix(pg.Code, "23") && !stoppedStatement(pg):
		// Integrity violations name constraints and columns, never values,
		// in their message; other errors may quote any value.
		return fmt.Sprintf("refused by the target (SQLSTATE %s)", pg.Code)
	}
	return dberr.PostgresMessage(pg)
}

// triggerRefusal is what a row's reason and a table's error say in
// place of pg's message, and true, when pg came from a trigger or
// function (it has a context) on t, a table with redacted columns: its
// author's message may quote any value. PostgreSQL's own words for a
// statement it stopped are kept (stoppedStatement).
func triggerRefusal(t *table, pg *pgconn.PgError) (string, bool) {
	if !t.redacted || pg.Where == "" || stoppedStatement(pg) {
		return "", false
	}
	return fmt.Sprintf("refused by a trigger or function (SQLSTATE %s)", pg.Code), true
}

// stoppedStatement reports whether pg is PostgreSQL stopping a statement
// for what happened around it, in its own English words: a
// statement_timeout or lock_timeout run out, a cancel, a deadlock. They
// quote no value, whatever function was running when they came (a
// trigger's pg_sleep, a COPY's row), so they are kept where a trigger's
// own message is dropped, and say where to look: the timeout, not the
// trigger.
func stoppedStatement(pg *pgconn.PgError) bool {
	switch pg.Code + " " + pg.Message {
	case "57014 canceling statement due to statement timeout",
		"57014 canceling statement due to user request",
		"55P03 canceling statement due to lock timeout",
		"40P01 deadlock detected":
		return true
	}
	return false
}

// condition says in words what a data exception means for a value of typ.
func condition(code, typ string) string {
	switch code {
	case "22P02", "22007", "42601":
		return "not a valid " + typ
	case "22003", "22008":
		return "out of range for " + typ
	case "22001":
		return "too long for " + typ
	case "22021", "22P05":
		return "not text the target's encoding can hold"
	}
	return "refused by type " + typ
}
