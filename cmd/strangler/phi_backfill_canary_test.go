package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"strangler/backfill/fixture"
	"strangler/internal/testdb"
)

// TestAnAPIBackfillKeepsNoPatientDataOfARedactedTable runs an API
// backfill of a table whose name and social security number are
// redacted, against a modern service that fails: it refuses rows quoting
// them (422), fails quoting them until the retries run out (500), and
// answers bytes that are not HTTP, quoting them. Neither the command's
// output, its logs, its JSON and HTML reports nor the state store (the
// ledger, its runs, its failed rows) may hold them, then or after a
// re-run of the failures.
func TestAnAPIBackfillKeepsNoPatientDataOfARedactedTable(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(dir string) string) {
		myDSN := testdb.MySQL(t)
		db, err := sql.Open("mysql", myDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{
			"CREATE TABLE Patient (PatientSerNum INT PRIMARY KEY, LastName VARCHAR(50), SSN VARCHAR(20), Ward VARCHAR(10))",
			"INSERT INTO Patient VALUES (1, 'Quimbyfrost', '987-65-4329', 'w1'), (2, 'Quimbyfrost', '987-65-4329', 'w1'), (3, 'Quimbyfrost', '987-65-4329', 'w2'), (4, 'Quimbyfrost', '987-65-4329', 'w2')",
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		api := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			switch r.URL.Path {
			case "/imports/patients/1":
				w.WriteHeader(http.StatusUnprocessableEntity)
				fmt.Fprintf(w, `{"error":"refused %s"}`, body)
			case "/imports/patients/2":
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, `{"error":"crashed on %s"}`, body)
			case "/imports/patients/3":
				conn, _, _ := http.NewResponseController(w).Hijack()
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n", strings.Trim(string(body), "{}"))
				conn.Close()
			}
		})
		dir := t.TempDir()
		store := dsn(dir)
		key := make([]byte, 32)
		key[0] = 7
		os.WriteFile(filepath.Join(dir, "store-key"), []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
		path := filepath.Join(dir, "strangler.yaml")
		if err := os.WriteFile(path, fmt.Appendf(nil, `backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: %[2]q }
store: %[3]q
store_encryption: { keys: ["${file:store-key}"] }
backfill:
  source: %[1]q
  api: { url: %[2]q }
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      redact: [last_name, ssn]
      target_api:
        method: PUT
        path: /imports/patients/{PatientSerNum}
        body: { last_name: LastName, ssn: SSN }
        group_by: Ward
        retry: { max_attempts: 2, backoff: 10ms, max_backoff: 20ms }
`, fixture.MySQLURL(myDSN), api.URL, store), 0o600); err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for _, c := range []struct {
			name string
			args []string
		}{
			{"the run", []string{"--report-json", filepath.Join(dir, "report.json"), "--report-html", filepath.Join(dir, "report.html")}},
			{"a re-run of the failures", []string{"--only-failed"}},
			// A dry run sends nothing and fails nothing: it prints the
			// requests it would send.
			{"a dry re-run of the failures", []string{"--only-failed", "--dry-run"}},
		} {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"backfill", "--config", path, "--progress", "none"}, c.args...), noEnv, &stdout, &stderr)
			if (err == nil) != strings.Contains(c.name, "dry") {
				t.Errorf("%s: error %v", c.name, err)
			}
			seen[c.name] = stdout.String() + stderr.String() + fmt.Sprint(err)
		}
		if out := seen["the run"]; !strings.Contains(out, "rejected by the API (422)") || !strings.Contains(out, "not valid HTTP") {
			t.Errorf("the run's output lacks the failures it must have made: the test searches nothing\n%s", out)
		}
		if out := seen["a dry re-run of the failures"]; !strings.Contains(out, "PUT /imports/patients/1") {
			t.Errorf("the dry re-run printed no request of a failed row: the test searches nothing\n%s", out)
		}
		for _, name := range []string{"report.json", "report.html"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			seen[name] = string(b)
		}
		for where, cells := range storeTables(t, store) {
			seen[where] = cells
		}
		if seen["table strangler_api_backfill_rows"] == "" || seen["table strangler_api_backfill_runs"] == "" {
			t.Error("the ledger is empty: the run did not reach it")
		}
		for where, text := range seen {
			if found := findCanaries(text); len(found) > 0 {
				t.Errorf("%s holds %v", where, found)
			}
		}
	})
}
