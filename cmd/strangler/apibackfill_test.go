package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strangler/backfill/fixture"
	"strangler/internal/testdb"
	"strangler/modern"
)

// TestBackfillThroughTheAPIFromTheCommandLine is the README's API
// migration of a table: a dry run shows the requests, a run migrates what
// the API accepts and says where the failures are, --only-failed after
// the data is fixed migrates the rest, and a plain re-run has nothing
// left to send.
func TestBackfillThroughTheAPIFromTheCommandLine(t *testing.T) {
	ctx := context.Background()
	myDSN := testdb.MySQL(t)
	db, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE Patient (PatientSerNum INT PRIMARY KEY, FirstName VARCHAR(50) NOT NULL,
		LastName VARCHAR(50) NOT NULL, Email VARCHAR(100))`); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 30; k++ {
		email := fmt.Sprintf("p%d@example.org", k)
		if k == 13 {
			email = "p13 at example.org"
		}
		if _, err := db.Exec("INSERT INTO Patient VALUES (?, ?, 'Lovelace', ?)", k, fmt.Sprint("Ada", k), email); err != nil {
			t.Fatal(err)
		}
	}
	pool, api := importsAPI(t, modern.Faults{TooMany: 10})
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, `backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: %[2]q }
store: sqlite:%[3]s
backfill:
  source: %[1]q
  api: { url: %[2]q }
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      target_api:
        method: PUT
        path: /imports/patients/{PatientSerNum}
        body: { first_name: FirstName, last_name: LastName, email: Email }
        retry: { backoff: 10ms, max_backoff: 1s }
      redact: [first_name, email]
`, fixture.MySQLURL(myDSN), api.URL, filepath.Join(dir, "state.db")), 0o600); err != nil {
		t.Fatal(err)
	}
	backfill := func(args ...string) (string, error) {
		var out, logs bytes.Buffer
		err := run(ctx, append([]string{"backfill", "--config", path, "--progress", "none"}, args...), func(string) string { return "" }, &out, &logs)
		return out.String(), err
	}
	imports := func() (n int64) {
		pool.QueryRow(ctx, "SELECT count(*) FROM import_log").Scan(&n)
		return n
	}

	// Workers share a run through the state store, which a SQLite file
	// on one machine cannot be.
	if out, err := backfill("--run", "nightly", "--worker"); err == nil || !strings.Contains(err.Error(), "must be PostgreSQL") || imports() != 0 {
		t.Errorf("a worker on a SQLite store: %v, %d imports; want a refusal naming PostgreSQL\n%s", err, imports(), out)
	}
	out, err := backfill("--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "PUT /imports/patients/1 Idempotency-Key: patients:1 {") || strings.Contains(out, "Ada1") || imports() != 0 {
		t.Errorf("a dry run printed (want the redacted requests, nothing sent; %d sent):\n%s", imports(), out)
	}
	out, err = backfill()
	if err == nil || !strings.Contains(err.Error(), "1 rows failed") || !strings.Contains(err.Error(), "strangler_api_backfill_rows") {
		t.Errorf("a run with a rejected row: got %v, want it to say 1 row failed and where\n%s", err, out)
	}
	if !strings.Contains(out, "rejected by the API (422)") || imports() != 29 {
		t.Errorf("after the run the API applied %d imports, want 29; report:\n%s", imports(), out)
	}
	if _, err := db.Exec("UPDATE Patient SET Email = 'p13@example.org' WHERE PatientSerNum = 13"); err != nil {
		t.Fatal(err)
	}
	if out, err := backfill("--only-failed"); err != nil || imports() != 30 {
		t.Errorf("--only-failed after the fix: %v, %d imports; want 30\n%s", err, imports(), out)
	}
	if out, err := backfill(); err != nil || imports() != 30 {
		t.Errorf("a plain re-run: %v, %d imports; want nothing more sent\n%s", err, imports(), out)
	}
}
