package backfill

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestAStoppedStatementKeepsItsWordsInARowsReasonToo: a row's reason
// (describe) and a table's error (safeError) word PostgreSQL's error by
// one rule on a table with redacted columns. A statement PostgreSQL
// stopped (statement_timeout, lock_timeout, a cancel, a deadlock) while
// a trigger ran kept its words in the table's error but, as a row's
// reason, said "refused by a trigger or function (SQLSTATE 57014)", or
// without a context "refused by the target (SQLSTATE 57014)". A
// trigger's own message is still dropped in both.
func TestAStoppedStatementKeepsItsWordsInARowsReasonToo(t *testing.T) {
	redacted := &table{name: "patients", redacted: true}
	trigger := "PL/pgSQL function slow_patient() line 1 at PERFORM"
	for _, c := range []struct {
		pg pgconn.PgError
		// reason is the row's; the table's error says it with its code.
		reason string
	}{
		{pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout", Where: trigger},
			"canceling statement due to statement timeout"},
		{pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"},
			"canceling statement due to statement timeout"},
		{pgconn.PgError{Code: "57014", Message: "canceling statement due to user request", Where: trigger},
			"canceling statement due to user request"},
		{pgconn.PgError{Code: "55P03", Message: "canceling statement due to lock timeout", Where: trigger},
			"canceling statement due to lock timeout"},
		{pgconn.PgError{Code: "40P01", Message: "deadlock detected", Where: trigger},
			"deadlock detected"},
		{pgconn.PgError{Code: "P0001", Message: "patient MRN7730019 is on hold", Where: trigger},
			"refused by a trigger or function (SQLSTATE P0001)"},
		// A trigger borrowing a stopped statement's code keeps no words of its own.
		{pgconn.PgError{Code: "57014", Message: "patient MRN7730019 is on hold", Where: trigger},
			"refused by a trigger or function (SQLSTATE 57014)"},
	} {
		pg := c.pg
		if got := describe(redacted, nil, &pg); got != c.reason {
			t.Errorf("%s %q: a row's reason says %q, want %q", pg.Code, pg.Message, got, c.reason)
		}
		want := c.reason
		if !strings.Contains(want, "SQLSTATE") {
			want += " (SQLSTATE " + pg.Code + ")"
		}
		if got := safeError(redacted, fmt.Errorf("copy: %w", &pg)).Error(); !strings.Contains(got, want) || strings.Contains(got, "MRN") {
			t.Errorf("%s %q: the table's error says %q, want %q", pg.Code, pg.Message, got, want)
		}
	}
}
