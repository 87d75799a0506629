package store

import (
	"context"
	"database/sql"
	"testing"
)

// TestMigrationsLeaveEarlierReleasesRunning: no store migration drops a
// column an earlier release reads or writes, and every column it adds to
// an earlier release's tables takes a value of its own (NULL or a
// default), so that that release's statements still run: a
// replica of that release serves on during a rolling upgrade, and after a
// rollback (README, Upgrades and rollbacks).
func TestMigrationsLeaveEarlierReleasesRunning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		d := sqliteDialect()
		if b.name == "postgres" {
			d = postgresDialect()
		}
		list, err := d.migrationList()
		if err != nil {
			t.Fatal(err)
		}
		// One migration at a time: what a release stopped before it
		// writes must survive it and every migration after it.
		_, d, db := migratedBefore(t, b, list[0].Version)
		defer db.Close()
		before := columns(t, d, db)
		for _, m := range list {
			if _, err := db.Exec(m.SQL); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			after := columns(t, d, db)
			tables := map[string]bool{}
			for c := range before {
				tables[c.table] = true
				if _, ok := after[c]; !ok {
					t.Errorf("%s drops %s.%s, which a release before it writes", m.Name, c.table, c.name)
				}
			}
			for c, required := range after {
				if was, ok := before[c]; required && tables[c.table] && (!ok || !was) {
					t.Errorf("%s makes %s.%s NOT NULL without a default: a release before it inserts into %s without it", m.Name, c.table, c.name, c.table)
				}
			}
			before = after
		}
	})
}

// column is one column of a table in the store.
type column struct{ table, name string }

// columns lists the store's columns, each true when an INSERT must name
// it (NOT NULL, no default).
func columns(t *testing.T, d *dialect, db *sql.DB) map[column]bool {
	t.Helper()
	q := `SELECT table_name, column_name, is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'
		FROM information_schema.columns WHERE table_schema = current_schema()`
	if d.name == "sqlite" {
		q = `SELECT m.name, p.name, p."notnull" AND p.dflt_value IS NULL AND NOT (p.pk AND p.type = 'INTEGER')
			FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'`
	}
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[column]bool{}
	for rows.Next() {
		var c column
		var required bool
		if err := rows.Scan(&c.table, &c.name, &required); err != nil {
			t.Fatal(err)
		}
		out[c] = required
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
