package backfill_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/config"
)

// mapTable creates a source table in legacy and a target table in modern
// from their DDL, and makes bt the configuration's only table.
func (w *world) mapTable(t *testing.T, legacyDDL, modernDDL string, bt config.BackfillTable) {
	t.Helper()
	w.exec(t, legacyDDL)
	w.pg(t, modernDDL)
	w.cfg.Tables = []config.BackfillTable{bt}
}

// pg runs statements on modern.
func (w *world) pg(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := w.modern.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// legacyConn is one legacy connection in a monolith's session settings:
// sql_mode=” lets it store what strict mode refuses.
func (w *world) legacyConn(t *testing.T) *sql.Conn {
	t.Helper()
	conn, err := w.legacy.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), "SET SESSION sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// run backfills with opts and fails the test on an error.
func (w *world) run(t *testing.T, opts backfill.Options) *backfill.Report {
	t.Helper()
	if opts.Log == nil {
		opts.Log = discard()
	}
	rep, err := backfill.Run(context.Background(), w.cfg, opts)
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	return rep
}

// verify compares and fails the test on an error.
func (w *world) verify(t *testing.T, opts backfill.VerifyOptions) *backfill.VerifyReport {
	t.Helper()
	if opts.Log == nil {
		opts.Log = discard()
	}
	rep, err := backfill.Verify(context.Background(), w.cfg, opts)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// tableReport is the report of one table.
func tableReport(t *testing.T, rep *backfill.Report, name string) backfill.TableReport {
	t.Helper()
	for _, tr := range rep.Tables {
		if tr.Table == name {
			return tr
		}
	}
	t.Fatalf("no table %s in the report", name)
	return backfill.TableReport{}
}

// cols maps each target column to the source column of the same name
// (lower-cased target names are fine: MariaDB column names are not case
// sensitive).
func cols(names ...string) map[string]config.Column {
	m := map[string]config.Column{}
	for _, n := range names {
		from, to, ok := strings.Cut(n, "=")
		if !ok {
			to = from
		}
		m[to] = config.Column{From: from}
	}
	return m
}

// failureReasons lists a report's failure reasons.
func failureReasons(tr backfill.TableReport) []string {
	var out []string
	for _, g := range tr.Failures {
		out = append(out, g.Reason)
	}
	return out
}
