package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/internal/testdb"
	"strangler/modern"
)

// TestBackfillOverSeveralSources runs one API plan over two clinics'
// databases whose keys overlap: each clinic's rows reach the API under
// their own Idempotency-Keys and ledger rows, the report counts each
// clinic and the total, --only-failed retries each clinic's failures, and
// a re-run through a sources_query finds the same ledger and sends
// nothing twice.
func TestBackfillOverSeveralSources(t *testing.T) {
	ctx := context.Background()
	clinics := map[string]*sql.DB{}
	urls := map[string]string{}
	for name, n := range map[string]int{"clinic-a": 20, "clinic-b": 15} {
		dsn := testdb.MySQL(t)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// Both clinics number their patients from 1; LegacyId, the modern
		// service's id, is unique across them.
		if _, err := db.Exec(`CREATE TABLE Patient (PatientSerNum INT PRIMARY KEY, LegacyId INT NOT NULL,
			FirstName VARCHAR(50) NOT NULL, LastName VARCHAR(50) NOT NULL, Email VARCHAR(100))`); err != nil {
			t.Fatal(err)
		}
		base := map[string]int{"clinic-a": 1000, "clinic-b": 2000}[name]
		for k := 1; k <= n; k++ {
			email := fmt.Sprintf("p%d@example.org", k)
			if k == 7 {
				email = "p7 at example.org"
			}
			if _, err := db.Exec("INSERT INTO Patient VALUES (?, ?, ?, 'Lovelace', ?)", k, base+k, fmt.Sprint("Ada", k), email); err != nil {
				t.Fatal(err)
			}
		}
		clinics[name], urls[name] = db, fixture.MySQLURL(dsn)
	}
	catalogueDSN := testdb.MySQL(t)
	catalogue, err := sql.Open("mysql", catalogueDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer catalogue.Close()
	if _, err := catalogue.Exec("CREATE TABLE tenants (name VARCHAR(63) PRIMARY KEY, dsn VARCHAR(500) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := catalogue.Exec("INSERT INTO tenants VALUES ('clinic-a', ?), ('clinic-b', ?)", urls["clinic-a"], urls["clinic-b"]); err != nil {
		t.Fatal(err)
	}
	pool, api := importsAPI(t, modern.Faults{})

	dir := t.TempDir()
	write := func(file, sources string) string {
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, fmt.Appendf(nil, `backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: %[2]q }
store: sqlite:%[3]s
backfill:
%[1]s
  api: { url: %[2]q }
  tables:
    - name: patients
      from: Patient
      key: PatientSerNum
      target_api:
        method: PUT
        path: /imports/patients/{LegacyId}
        body: { first_name: FirstName, last_name: LastName, email: Email }
        retry: { backoff: 10ms, max_backoff: 1s }
      redact: [first_name, email]
`, sources, api.URL, filepath.Join(dir, "state.db")), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	listed := write("listed.yaml", fmt.Sprintf("  sources:\n    - { name: clinic-a, dsn: %q }\n    - { name: clinic-b, dsn: %q }",
		urls["clinic-a"], urls["clinic-b"]))
	queried := write("queried.yaml", fmt.Sprintf("  sources_query: { dsn: %q, query: \"SELECT name, dsn FROM tenants ORDER BY name\" }",
		fixture.MySQLURL(catalogueDSN)))
	reportPath, htmlPath := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.html")
	run := func(config string, args ...string) (string, *backfill.Report, error) {
		var out, logs bytes.Buffer
		os.Remove(reportPath)
		err := run(ctx, append([]string{"backfill", "--config", config, "--progress", "none", "--report-json", reportPath, "--report-html", htmlPath}, args...),
			func(string) string { return "" }, &out, &logs)
		var rep backfill.Report
		if b, rerr := os.ReadFile(reportPath); rerr == nil {
			if jerr := json.Unmarshal(b, &rep); jerr != nil {
				t.Fatal(jerr)
			}
		}
		return out.String(), &rep, err
	}
	// counts are each source's and the total's migrated and failed rows.
	counts := func(rep *backfill.Report) string {
		var s []string
		for _, src := range rep.Sources {
			s = append(s, fmt.Sprintf("%s %d/%d", src.Source, src.Written, src.Failed))
		}
		if rep.Total != nil {
			s = append(s, fmt.Sprintf("total %d/%d", rep.Total.Written, rep.Total.Failed))
		}
		return strings.Join(s, ", ")
	}
	imports := func(prefix string) (n int64) {
		pool.QueryRow(ctx, "SELECT count(DISTINCT idempotency_key) FROM import_log WHERE idempotency_key LIKE $1", prefix+"%").Scan(&n)
		return n
	}

	var mu sync.Mutex
	var pushed []byte
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushed = b
		mu.Unlock()
	}))
	defer gw.Close()
	out, rep, err := run(listed, "--metrics-push", gw.URL)
	if err == nil || !strings.Contains(err.Error(), "2 rows failed") {
		t.Errorf("a run with a rejected row in each clinic: got %v, want 2 rows failed\n%s", err, out)
	}
	if got, want := counts(rep), "clinic-a 19/1, clinic-b 14/1, total 33/2"; got != want {
		t.Errorf("the report counts %s, want %s\n%s", got, want, out)
	}
	for _, want := range []string{"clinic-a/patients", "clinic-b/patients: 1 failed", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("the text report lacks %q:\n%s", want, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Contains(pushed, []byte("source")) || !bytes.Contains(pushed, []byte("clinic-b")) {
		t.Errorf("the pushed metrics lack the source label:\n%q", pushed)
	}
	if page, _ := os.ReadFile(htmlPath); !bytes.Contains(page, []byte("<td>clinic-b/patients</td>")) || !bytes.Contains(page, []byte("<th>Total</th>")) {
		t.Errorf("the HTML report lacks the clinics' rows or the total:\n%s", page)
	}
	if a, b := imports("clinic-a:patients:"), imports("clinic-b:patients:"); a != 19 || b != 14 {
		t.Errorf("the API applied %d imports keyed clinic-a:patients:… and %d clinic-b:patients:…, want 19 and 14", a, b)
	}

	if _, err := clinics["clinic-a"].Exec("UPDATE Patient SET Email = 'p7@example.org' WHERE PatientSerNum = 7"); err != nil {
		t.Fatal(err)
	}
	out, rep, err = run(listed, "--only-failed")
	if err == nil || !strings.Contains(err.Error(), "1 rows failed") {
		t.Errorf("--only-failed with clinic-b's row still bad: got %v, want 1 row failed\n%s", err, out)
	}
	if got, want := counts(rep), "clinic-a 1/0, clinic-b 0/1, total 1/1"; got != want {
		t.Errorf("--only-failed counts %s, want %s\n%s", got, want, out)
	}
	if _, err := clinics["clinic-b"].Exec("UPDATE Patient SET Email = 'p7@example.org' WHERE PatientSerNum = 7"); err != nil {
		t.Fatal(err)
	}
	if out, rep, err = run(listed, "--only-failed"); err != nil || counts(rep) != "clinic-a 0/0, clinic-b 1/0, total 1/0" {
		t.Errorf("--only-failed after both fixes: %v, counts %s\n%s", err, counts(rep), out)
	}
	if a, b := imports("clinic-a:"), imports("clinic-b:"); a != 20 || b != 15 {
		t.Errorf("after the fixes the API has %d and %d imports, want 20 and 15", a, b)
	}

	if out, rep, err = run(queried); err != nil || counts(rep) != "clinic-a 0/0, clinic-b 0/0, total 0/0" {
		t.Errorf("a re-run through sources_query: %v, counts %s; want nothing sent\n%s", err, counts(rep), out)
	}
	if n := imports(""); n != 35 {
		t.Errorf("the API has %d imports, want 35: none twice", n)
	}

	// A source that cannot be reached is reported, and the next one runs.
	gone, err := url.Parse(urls["clinic-b"])
	if err != nil {
		t.Fatal(err)
	}
	gone.Path += "_gone"
	broken := write("broken.yaml", fmt.Sprintf("  sources:\n    - { name: clinic-x, dsn: %q }\n    - { name: clinic-b, dsn: %q }", gone.String(), urls["clinic-b"]))
	out, rep, err = run(broken)
	if err == nil || !strings.Contains(err.Error(), "source clinic-x") || counts(rep) != "clinic-x 0/0, clinic-b 0/0, total 0/0" ||
		rep.Sources[0].Error == "" || rep.Sources[1].Error != "" {
		t.Errorf("a run whose first source is gone: %v, counts %s, want clinic-x's error and clinic-b run\n%s", err, counts(rep), out)
	}

	// A catalogue row the plan cannot use is named with the file's line,
	// and its password is not printed.
	if _, err := catalogue.Exec("INSERT INTO tenants VALUES ('clinic-c', 'postgres://migrate:hunter2@db/c')"); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(queried)
	if err == nil || !strings.Contains(err.Error(), "queried.yaml:6:") || !strings.Contains(err.Error(), `"clinic-c"`) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a postgres:// source in the catalogue: got %v, want the file's line, the source's name and no password", err)
	}
}
