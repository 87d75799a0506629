package testdb

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	_ "modernc.org/sqlite"             // the "sqlite" driver, as the store uses it
)

// LapseRepairLeases ends every lease in the dual-write journal of the
// state store at dsn ("sqlite:PATH" or a PostgreSQL URL), as the passing
// of the lease time on the store's clock would: recovery and the
// deliverers then take the writes up at once.
func LapseRepairLeases(t testing.TB, dsn string) {
	t.Helper()
	driver, name, past := "pgx", dsn, any(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, name, past = "sqlite", path, "2000-01-01T00:00:00.000000Z"
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE strangler_repairs SET lease_until = $1 WHERE lease_until IS NOT NULL`, past); err != nil {
		t.Fatal(err)
	}
}

// PassRepairTime moves the times in columns of every write in the
// dual-write journal of the state store at dsn ("sqlite:PATH" or a
// PostgreSQL URL) d into the past, as the passing of d on the store's
// clock would: that clock is the PostgreSQL server's, or the SQLite
// process's, and no test can move either. A NULL stays NULL. The purge
// of finished writes (repairs.keep) reads updated_at; deliveries and
// recovery read next_attempt_at and lease_until.
func PassRepairTime(t testing.TB, dsn string, d time.Duration, columns ...string) {
	t.Helper()
	path, sqlite := strings.CutPrefix(dsn, "sqlite:")
	if !sqlite {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, col := range columns {
			if _, err := db.Exec(`UPDATE strangler_repairs SET `+col+` = `+col+` - $1 * interval '1 microsecond'`, d.Microseconds()); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// SQLite keeps times as text (store's timeLayout), which its own
	// date functions would round to milliseconds.
	const layout = "2006-01-02T15:04:05.000000Z"
	for _, col := range columns {
		rows, err := db.Query(`SELECT id, ` + col + ` FROM strangler_repairs WHERE ` + col + ` IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		moved := map[string]string{}
		for rows.Next() {
			var id, at string
			if err := rows.Scan(&id, &at); err != nil {
				t.Fatal(err)
			}
			when, err := time.Parse(layout, at)
			if err != nil {
				t.Fatal(err)
			}
			moved[id] = when.Add(-d).Format(layout)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		for id, at := range moved {
			if _, err := db.Exec(`UPDATE strangler_repairs SET `+col+` = $1 WHERE id = $2`, at, id); err != nil {
				t.Fatal(err)
			}
		}
	}
}
