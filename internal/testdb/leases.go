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
