package backfill_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/internal/testdb"
)

// mrnWorld is a legacy table of four patients and their MRNs, sent by
// PUT with each patient's MRN to an API that keeps every body it gets.
// Patient 1 has one MRN, patient 2 one at each of two sites, patient 3
// none, patient 4 the same MRN twice, patient 5 an MRN and a NULL one,
// patient 6 two that its case-insensitive collation calls equal.
type mrnWorld struct {
	*apiWorld
	mu     sync.Mutex
	bodies map[string]string
}

func newMRNWorld(t *testing.T, lookup string) *mrnWorld {
	t.Helper()
	myDSN := testdb.MySQL(t)
	db, err := sql.Open("mysql", myDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		"CREATE TABLE lookup1_Patient (PatientSerNum INT PRIMARY KEY, FirstName VARCHAR(50) NOT NULL)",
		"INSERT INTO lookup1_Patient VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Alan'), (4, 'Edsger'), (5, 'Barbara'), (6, 'Donald')",
		`CREATE TABLE lookup1_Patient_Hospital_Identifier (Id INT PRIMARY KEY, PatientSerNum INT NOT NULL,
			Hospital_Identifier_Type_Code VARCHAR(20) COLLATE utf8mb4_unicode_ci NOT NULL, MRN VARCHAR(20) COLLATE utf8mb4_unicode_ci, Is_Active TINYINT NOT NULL)`,
		`INSERT INTO lookup1_Patient_Hospital_Identifier VALUES (1, 2, 'MGH', 'M000002', 1), (2, 1, 'RVH', '0000001', 1),
			(3, 2, 'RVH', '0000002', 1), (4, 4, 'RVH', '0000004', 1), (5, 4, 'RVH', '0000004', 1),
			(6, 5, 'RVH', '0000005', 1), (7, 5, 'RVH', NULL, 0), (8, 6, 'RVH', 'a000006', 1), (9, 6, 'RVH', 'A000006', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	w := &mrnWorld{bodies: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.bodies[r.URL.Path] = string(b)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"))
	w.apiWorld = &apiWorld{legacy: db, store: st, cfgPath: filepath.Join(t.TempDir(), "strangler.yaml")}
	yaml := fmt.Sprintf(`
backends:
  legacy: { url: "http://legacy.internal:8080" }
  modern: { url: "%[2]s" }
backfill:
  source: %[1]s
  api: { url: "%[2]s" }
  tables:
    - name: patients
      from: lookup1_Patient
      key: PatientSerNum
      target_api:
        method: PUT
        path: "/patients/{PatientSerNum}"
        body:
          first_name: FirstName
          mrn: { lookup: { table: lookup1_Patient_Hospital_Identifier, key: PatientSerNum, column: MRN%[3]s } }
`, fixture.MySQLURL(myDSN), srv.URL, lookup)
	if err := os.WriteFile(w.cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestAPIBackfillDoesNotPickOneOfAPatientsMRNs: a body lookup read its
// value with LIMIT 1 and no order, so patient 2, with an MRN at each of
// two sites, was sent with whichever the server returned first, the
// other dropped. Such a row is not sent: it fails, naming the field and
// the lookup but neither MRN, in the ledger, the report and the log.
func TestAPIBackfillDoesNotPickOneOfAPatientsMRNs(t *testing.T) {
	w := newMRNWorld(t, "")
	var logs bytes.Buffer
	ctx := context.Background()
	report, err := backfill.Run(ctx, w.config(t), backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(),
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	tr := report.Tables[0]
	want := "not sent: field mrn: lookup of MRN in lookup1_Patient_Hospital_Identifier by PatientSerNum finds several values; narrow it with where"
	if tr.Written() != 3 || tr.Failed != 3 || len(tr.Failures) != 1 || tr.Failures[0].Reason != want {
		t.Errorf("migrated %d, failed %d (%+v); want 3 and 3: %q", tr.Written(), tr.Failed, tr.Failures, want)
	}
	wantBodies := map[string]string{
		"/patients/1": `{"first_name":"Ada","mrn":"0000001"}`,
		"/patients/3": `{"first_name":"Alan","mrn":null}`,
		"/patients/4": `{"first_name":"Edsger","mrn":"0000004"}`,
	}
	w.mu.Lock()
	for path, body := range wantBodies {
		if w.bodies[path] != body {
			t.Errorf("%s: body %s, want %s", path, w.bodies[path], body)
		}
	}
	for _, k := range []string{"2", "5", "6"} {
		if b, ok := w.bodies["/patients/"+k]; ok {
			t.Errorf("patient %s was sent %s; want not sent", k, b)
		}
	}
	w.mu.Unlock()
	failed, err := w.store.APIBackfillFailures(ctx, "patients", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 3 || failed[0].Key != "2" || failed[0].Reason != "several_values" || failed[0].Status != 0 ||
		failed[0].Payload != `{"first_name":"Grace","mrn":"\u003cseveral values\u003e"}` || failed[1].Key != "5" || failed[2].Key != "6" {
		t.Errorf("ledger %+v, want patients 2, 5 and 6 failed as several_values, never answered, patient 2's payload naming no MRN", failed)
	}
	var text bytes.Buffer
	report.WriteText(&text)
	js, _ := json.Marshal(report)
	for _, mrn := range []string{"0000002", "M000002", "0000005", "000006"} {
		for where, s := range map[string]string{"ledger": fmt.Sprintf("%+v", failed), "report": text.String(), "JSON report": string(js), "log": logs.String()} {
			if strings.Contains(s, mrn) {
				t.Errorf("the %s shows the MRN %s: %s", where, mrn, s)
			}
		}
	}
}

// TestAPIBackfillSendsTheMRNItsLookupChooses: where narrows the lookup
// to one site's MRN (its column's collation is not the connection's,
// and a number column compares with a number), so patient 2 goes with
// that one, on every run.
func TestAPIBackfillSendsTheMRNItsLookupChooses(t *testing.T) {
	w := newMRNWorld(t, ", where: { Hospital_Identifier_Type_Code: RVH, Is_Active: 1 }")
	for run := range 2 {
		// The second run (--restart) sends every row again.
		if tr := w.run(t, w.config(t), backfill.Options{Restart: run > 0}).Tables[0]; tr.Read != 6 || tr.Failed != 1 {
			t.Fatalf("run %d: read %d, failed %d (%+v); want 6 and 1 (patient 6)", run+1, tr.Read, tr.Failed, tr.Failures)
		}
		w.mu.Lock()
		for path, want := range map[string]string{
			"/patients/2": `{"first_name":"Grace","mrn":"0000002"}`,
			"/patients/5": `{"first_name":"Barbara","mrn":"0000005"}`,
		} {
			if b := w.bodies[path]; b != want {
				t.Errorf("run %d: %s sent %s, want %s", run+1, path, b, want)
			}
		}
		clear(w.bodies)
		w.mu.Unlock()
	}
}
