package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/backfill/fixture"
	"strangler/internal/testdb"
	"strangler/modern"
)

// TestBackfillWorkersShareARunThroughTheAPIAndFinishAKilledWorkersGroups
// runs three worker processes on one run of a table sent to the reference
// modern API, its ledger in a PostgreSQL state store, and SIGKILLs one in
// the middle of a group: the others take its groups over once its lease
// runs out, the run completes, the API applied every row once (its
// import_log), and each group's rows reached it in key order.
func TestBackfillWorkersShareARunThroughTheAPIAndFinishAKilledWorkersGroups(t *testing.T) {
	// It waits on its workers, leases and a kill more than it computes:
	// with the other waiting tests, together.
	t.Parallel()
	const rows, groups = 6000, 30
	ctx := context.Background()
	myDSN := testdb.MySQL(t)
	db, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE Patient (PatientSerNum INT PRIMARY KEY, HospitalSerNum INT,
		FirstName VARCHAR(50) NOT NULL, LastName VARCHAR(50) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for k := 1; k <= rows; k++ {
		if sb.Len() > 0 {
			sb.WriteString(",")
		}
		hospital := fmt.Sprint(k % groups)
		if k%groups == 0 {
			hospital = "NULL" // rows without a group_by value are a group too
		}
		fmt.Fprintf(&sb, "(%d, %s, 'Ada%d', 'Lovelace')", k, hospital, k)
		if k%2000 == 0 || k == rows {
			if _, err := db.Exec("INSERT INTO Patient VALUES " + sb.String()); err != nil {
				t.Fatal(err)
			}
			sb.Reset()
		}
	}
	pool, api := importsAPI(t, modern.Faults{})
	storeURL := testdb.Postgres(t)
	ledger, err := pgxpool.New(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	path := filepath.Join(t.TempDir(), "strangler.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, `backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: %[2]q }
store: %[3]q
backfill:
  source: %[1]q
  api: { url: %[2]q }
  batch: 20
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      target_api:
        method: PUT
        path: /imports/patients/{PatientSerNum}
        body: { first_name: FirstName, last_name: LastName }
        group_by: HospitalSerNum
        concurrency: 4
        retry: { backoff: 10ms, max_backoff: 1s }
`, fixture.MySQLURL(myDSN), api.URL, storeURL), 0o600); err != nil {
		t.Fatal(err)
	}
	ws := startWorkers(t, []string{"--config", path, "--run", "nightly", "--worker", "--lease", "2s", "--progress", "none"}, nil, "w1", "w2", "w3")
	// Kill w1 once it has sent part of a group it holds.
	killWhen(t, func() bool {
		var partial int64
		ledger.QueryRow(ctx, `SELECT count(*) FROM strangler_api_backfill_groups
			WHERE lease_owner = 'w1' AND last_key IS NOT NULL AND NOT done`).Scan(&partial)
		return partial > 0
	}, ws[0], ws)
	var orphaned int64
	ledger.QueryRow(ctx, "SELECT count(*) FROM strangler_api_backfill_groups WHERE lease_owner = 'w1' AND NOT done").Scan(&orphaned)
	waitWorkers(t, ws[1:]...)
	if orphaned == 0 {
		t.Fatal("w1 held no unfinished group when it was killed")
	}
	one := func(db *pgxpool.Pool, q string) int64 {
		t.Helper()
		var n int64
		if err := db.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if got := one(ledger, "SELECT count(*) FROM strangler_api_backfill_groups WHERE run_name = 'nightly'"); got != groups {
		t.Errorf("the run has %d groups, want %d (the NULL group included)", got, groups)
	}
	if got := one(ledger, "SELECT count(*) FROM strangler_api_backfill_groups WHERE NOT done"); got != 0 {
		t.Errorf("%d groups are not done", got)
	}
	if got := one(ledger, "SELECT count(*) FROM strangler_api_backfill_rows WHERE state <> 'migrated' OR body_hash = ''"); got != 0 {
		t.Errorf("the ledger holds %d failed rows or rows without the hash of their request, want none: every row migrated", got)
	}
	if applied, keys := one(pool, "SELECT count(*) FROM import_log"), one(pool, "SELECT count(DISTINCT idempotency_key) FROM import_log"); applied != rows || keys != rows {
		t.Errorf("the API applied %d imports over %d keys; want each of the %d rows once", applied, keys, rows)
	}
	if got := one(pool, fmt.Sprintf(`SELECT count(*) FROM (SELECT patient_id,
		lag(patient_id) OVER (PARTITION BY patient_id %% %d ORDER BY seq) AS prev FROM import_log) x WHERE prev > patient_id`, groups)); got != 0 {
		t.Errorf("%d imports reached the API before a row of their group with a lower key", got)
	}
	if got := one(ledger, "SELECT count(*) FROM strangler_api_backfill_runs WHERE status = 'succeeded'"); got != 2 {
		t.Errorf("%d runs succeeded, want the two survivors'", got)
	}
}
