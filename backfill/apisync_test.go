package backfill_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/modern"
)

// TestApisyncPlainReRunSendsChangedAndLateRowsUnderTheirOwnKeys: after a
// completed backfill through the API, legacy changes a row, gains one
// below the checkpoint and loses one. A plain re-run sends the two (the
// changed row under an Idempotency-Key of its own, which the API applies
// rather than refusing as a reused key), counts the rows it left alone
// and the one gone; the next plain re-run sends nothing. A dry run and
// --since-checkpoint send nothing of them.
func TestApisyncPlainReRunSendsChangedAndLateRowsUnderTheirOwnKeys(t *testing.T) {
	for _, ledger := range []string{"sqlite", "postgres"} {
		t.Run(ledger, func(t *testing.T) { apisyncReRun(t, ledger == "postgres") })
	}
}

func apisyncReRun(t *testing.T, pgLedger bool) {
	// 30% of keys are answered 503 once: a retry keeps its key.
	w := newAPIWorld(t, 50, 5, modern.Faults{Unavailable: 30})
	ctx := context.Background()
	if pgLedger {
		st := openStore(t, testdb.Postgres(t))
		w.store = st
	}
	if _, err := w.legacy.Exec("DELETE FROM Patient WHERE PatientSerNum = 3"); err != nil {
		t.Fatal(err)
	}
	cfg := w.config(t)
	first := w.run(t, cfg, backfill.Options{}).Tables[0]
	// Row 1's e-mail is one the API refuses (rejected): 48 accepted.
	if first.Read != 49 || first.Inserted != 48 || first.Failed != 1 {
		t.Fatalf("first run: read %d, inserted %d, failed %d; want 49, 48, 1", first.Read, first.Inserted, first.Failed)
	}
	for _, q := range []string{
		"UPDATE Patient SET LastName = 'Byron' WHERE PatientSerNum = 5",
		"INSERT INTO Patient VALUES (3, 3, 'Late', 'Row', 'p3@example.org', '1980-02-02')",
		"DELETE FROM Patient WHERE PatientSerNum = 40",
	} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	imports := func() int64 {
		var n int64
		if err := w.pool.QueryRow(ctx, "SELECT count(*) FROM import_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	fast := w.run(t, cfg, backfill.Options{SinceCheckpoint: true}).Tables[0]
	if fast.Read != 0 || imports() != 48 {
		t.Errorf("--since-checkpoint: read %d, %d imports; want 0 rows past the checkpoint, 48 imports", fast.Read, imports())
	}

	var out bytes.Buffer
	dry := w.run(t, cfg, backfill.Options{DryRun: true, Requests: &out}).Tables[0]
	var sent []string
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "/imports/") {
			sent = append(sent, f[1])
		}
	}
	slices.Sort(sent)
	if want := []string{"/imports/patients/1", "/imports/patients/3", "/imports/patients/5"}; !slices.Equal(sent, want) || imports() != 48 {
		t.Errorf("dry run would send %v (%d imports); want %v and nothing sent", sent, imports(), want)
	}
	if dry.Present != 46 {
		t.Errorf("dry run: %d rows unchanged, want 46", dry.Present)
	}

	againReport := w.run(t, cfg, backfill.Options{})
	again := againReport.Tables[0]
	var text bytes.Buffer
	againReport.WriteText(&text)
	if !strings.Contains(text.String(), "patients: 1 rows sent to the API have a key the source no longer has") ||
		strings.Contains(text.String(), "--propagate-deletes") {
		t.Errorf("the report says of the row gone:\n%s\nwant that it was sent to the API, without --propagate-deletes (refused for API tables)", text.String())
	}
	if again.Read != 49 || again.Inserted != 1 || again.Updated != 1 || again.Present != 46 || again.Failed != 1 || again.Extra != 1 {
		t.Errorf("plain re-run: read %d, inserted %d, updated %d, unchanged %d, failed %d, extra %d; want 49, 1, 1, 46, 1, 1",
			again.Read, again.Inserted, again.Updated, again.Present, again.Failed, again.Extra)
	}
	var last string
	if err := w.pool.QueryRow(ctx, "SELECT last_name FROM patients WHERE legacy_id = 5").Scan(&last); err != nil || last != "Byron" {
		t.Errorf("modern's patient 5 has last name %q (%v), want the change, Byron", last, err)
	}
	var late int
	if err := w.pool.QueryRow(ctx, "SELECT count(*) FROM patients WHERE legacy_id = 3 AND first_name = 'Late'").Scan(&late); err != nil || late != 1 {
		t.Errorf("the late row 3 is in modern %d times (%v), want once", late, err)
	}
	var keys []string
	rows, err := w.pool.Query(ctx, "SELECT idempotency_key FROM import_log WHERE patient_id = 5 ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		keys = append(keys, k)
	}
	rows.Close()
	if len(keys) != 2 || keys[0] != "patients:5" || !strings.HasPrefix(keys[1], "patients:5:") || len(keys[1]) != len("patients:5:")+12 {
		t.Errorf("row 5 was imported under keys %q; want patients:5, then patients:5:<12 hex digits of its request's hash>", keys)
	}

	third := w.run(t, cfg, backfill.Options{}).Tables[0]
	if third.Inserted != 0 || third.Updated != 0 || third.Present != 48 || imports() != 50 {
		t.Errorf("a re-run with nothing changed: inserted %d, updated %d, unchanged %d, %d imports; want 0, 0, 48, 50",
			third.Inserted, third.Updated, third.Present, imports())
	}
}

// TestApisyncAChangedRowOfATableThatCreatesIsReportedNotSentAgain: a
// table whose request creates (POST, the key not in the path) would make
// a second patient of a changed row; the re-run reports it as changed,
// by key, and sends the rows that are new, and a row the API refused
// before (which created nothing) once it is fixed.
func TestApisyncAChangedRowOfATableThatCreatesIsReportedNotSentAgain(t *testing.T) {
	w := newAPIWorld(t, 10, 2, modern.Faults{})
	ctx := context.Background()
	yaml, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	yaml = bytes.Replace(yaml, []byte(`method: PUT
        path: "/imports/patients/{PatientSerNum}"`), []byte(`method: POST
        path: "/patients"`), 1)
	if err := os.WriteFile(w.cfgPath, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	patients := func() int64 {
		var n int64
		if err := w.pool.QueryRow(ctx, "SELECT count(*) FROM patients WHERE last_name IN ('Lovelace', 'Byron')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := w.run(t, cfg, backfill.Options{}).Tables[0]
	if first.Inserted != 9 || patients() != 9 { // row 1's e-mail is refused
		t.Fatalf("first run: inserted %d, %d patients; want 9, 9", first.Inserted, patients())
	}
	// Row 5 is first refused before sending (a date that is no date),
	// then changed: the patient the API created for it must stay one.
	conn, err := w.legacy.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "UPDATE Patient SET DateOfBirth = '0000-00-00' WHERE PatientSerNum = 5"); err != nil {
		t.Fatal(err)
	}
	if r := w.run(t, cfg, backfill.Options{}).Tables[0]; r.Failed != 2 || patients() != 9 {
		t.Fatalf("a run with row 5 invalid: %d failed, %d patients; want 2 (rows 1 and 5), 9", r.Failed, patients())
	}
	for _, q := range []string{
		"UPDATE Patient SET LastName = 'Byron', DateOfBirth = '1971-01-01' WHERE PatientSerNum = 5",
		"INSERT INTO Patient VALUES (11, 1, 'New', 'Lovelace', 'p11@example.org', '1980-02-02')",
		// Row 1, which the API refused, is fixed: nothing was created.
		"UPDATE Patient SET Email = 'p1@example.org' WHERE PatientSerNum = 1",
	} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for run := range 2 {
		r := w.run(t, cfg, backfill.Options{}).Tables[0]
		var changed *backfill.FailureGroup
		for i, g := range r.Failures {
			if strings.HasPrefix(g.Reason, "changed since the API accepted it") {
				changed = &r.Failures[i]
			}
		}
		if len(r.Failures) != 1 || changed == nil || changed.Count != 1 || !slices.Equal(changed.SampleKeys, []string{"5"}) {
			t.Errorf("re-run %d: failures %+v; want row 5 reported changed, not sent", run+1, r.Failures)
		}
		if patients() != 11 {
			t.Errorf("re-run %d: %d patients, want 11: the new row 11 and the fixed row 1 once, no second patient 5", run+1, patients())
		}
	}
}

// TestApisyncJSONColumnsGoAsDocuments: a MariaDB JSON column (LONGTEXT
// with CHECK json_valid, as MariaDB keeps it) reaches the API as the
// document it holds, not as a string of its text; a LONGTEXT that only
// looks like JSON stays a string.
func TestApisyncJSONColumnsGoAsDocuments(t *testing.T) {
	sent := &sentBodies{}
	w := newConsentAPI(t, sent)
	for _, q := range []string{
		"ALTER TABLE Consent ADD Doc JSON NULL, ADD Note LONGTEXT NULL",
		`UPDATE Consent SET Doc = '{"scope": ["research"], "until": null}', Note = '{"a": 1}' WHERE ConsentSerNum = 1`,
		`UPDATE Consent SET Doc = '[1, 2.50]' WHERE ConsentSerNum = 2`,
	} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := w.config(t)
	cfg.Tables[0].TargetAPI.Body = map[string]config.Column{"doc": {From: "Doc"}, "note": {From: "Note"}}
	rep := w.run(t, cfg, backfill.Options{}).Tables[0]
	if rep.Inserted != 3 {
		t.Fatalf("migrated %d rows, want 3 (failures %+v)", rep.Inserted, rep.Failures)
	}
	want := map[string]string{
		"/consents/1": `{"doc":{"scope":["research"],"until":null},"note":"{\"a\": 1}"}`,
		"/consents/2": `{"doc":[1,2.50],"note":null}`,
		"/consents/3": `{"doc":null,"note":null}`,
	}
	bodies := sent.all()
	for path, body := range want {
		if bodies[path] != body {
			t.Errorf("%s: body %s, want %s", path, bodies[path], body)
		}
	}
}
