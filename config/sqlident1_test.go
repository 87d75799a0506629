package config_test

import (
	"strings"
	"testing"
)

// TestSqlidentAColumnNamedWithANewlineKeepsItsErrorOnOneLine: a column
// key "a\nb" is refused as no SQL name, but the field's path printed the
// newline as it is, so the terminal, and a log line, showed
// "…columns.a" and then a line "b: invalid column name…" that names no
// file or line.
func TestSqlidentAColumnNamedWithANewlineKeepsItsErrorOnOneLine(t *testing.T) {
	y := hostileBackends + "backfill:\n  source: \"mysql://u:p@db:3306/h\"\n  target: \"postgres://u:p@db:5432/app\"\n" +
		"  tables:\n    - { name: p, from: P, key: ID, to: p, target_key: legacy_id,\n" +
		"        columns: { legacy_id: ID, \"a\\nb\": { from: \"ok\" } } }\n"
	errs := parseErrors(t, y)
	msg := errs.Error()
	want := `c.yaml:9:43: backfill.tables[0].columns.a\u000ab: invalid column name "a\nb"`
	if len(errs) != 1 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, want) {
		t.Errorf("got %q; want one line saying %q", msg, want)
	}
}

// TestSqlidentALongNameIsRefusedForItsLength: a 64-character table name,
// as MySQL allows, was refused with "use letters, digits and _", which
// it does; the error says how long a name may be.
func TestSqlidentALongNameIsRefusedForItsLength(t *testing.T) {
	long := strings.Repeat("Ward", 16)
	y := hostileBackends + "backfill:\n  source: \"mysql://u:p@db:3306/h\"\n  target: \"postgres://u:p@db:5432/app\"\n" +
		"  tables:\n    - { name: p, from: " + long + ", key: ID, to: p, target_key: legacy_id, columns: { legacy_id: ID } }\n"
	errs := parseErrors(t, y)
	if want := `invalid name "` + long + `"; use up to 63 of: letters, digits and _`; len(errs) != 1 || errs[0].Field != "backfill.tables[0].from" || errs[0].Msg != want {
		t.Errorf("got %v; want one error on backfill.tables[0].from saying %s", errs, want)
	}
}
