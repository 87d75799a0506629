package backfill_test

import (
	"fmt"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestSqlidentJSONColumnsOfASchemaQualifiedTableGoAsDocuments: from
// db.Consent looked for the CHECK json_valid MariaDB keeps of a JSON
// column under a table named "db.Consent" in the connection's database,
// found none, and sent the document {"a": 1} as the string "{\"a\": 1}";
// from Consent sent it as the document.
func TestSqlidentJSONColumnsOfASchemaQualifiedTableGoAsDocuments(t *testing.T) {
	sent := &sentBodies{}
	w := newConsentAPI(t, sent)
	var db string
	if err := w.legacy.QueryRow("SELECT DATABASE()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"ALTER TABLE Consent ADD Doc JSON NULL", `UPDATE Consent SET Doc = '{"a": 1}' WHERE ConsentSerNum = 1`} {
		if _, err := w.legacy.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := w.config(t)
	cfg.Tables[0].From = db + ".Consent"
	cfg.Tables[0].TargetAPI.Body = map[string]config.Column{"doc": {From: "Doc"}}
	if rep := w.run(t, cfg, backfill.Options{}).Tables[0]; rep.Inserted != 3 {
		t.Fatalf("migrated %d rows, want 3 (failures %+v)", rep.Inserted, rep.Failures)
	}
	if got, want := sent.all()["/consents/1"], `{"doc":{"a":1}}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

// TestSqlidentNamesInAnotherCaseSayWhatTheTargetHas: PostgreSQL keeps
// CREATE TABLE Wards (WardSerNum …) as wards (wardsernum), and the file's
// names are quoted, so to: Wards found no table; the error said only
// "no table Wards", as if the table were not there. Backfill and verify
// now name the table and columns the target has in another case. Names
// in their case, reserved words and $ copy and compare as they are.
func TestSqlidentNamesInAnotherCaseSayWhatTheTargetHas(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.exec(t, "CREATE TABLE `sqlident1_Order` (`select` INT PRIMARY KEY, `User` VARCHAR(20), `a$b` VARCHAR(20))")
	w.exec(t, "INSERT INTO `sqlident1_Order` VALUES (1, 'u1', 'ab1'), (2, 'u2', 'ab2')")
	w.pg(t, `CREATE TABLE sqlident1_Wards (Select_Key bigint UNIQUE, Ward text)`)
	w.pg(t, `CREATE TABLE sqlident1_sites (Code text UNIQUE, "Id" bigint)`)
	for _, c := range []struct {
		bt   config.BackfillTable
		want string
	}{
		{config.BackfillTable{Name: "wards", From: "sqlident1_Order", Key: "select", To: "sqlident1_Wards", TargetKey: "select_key", Columns: cols("select=select_key")},
			`backfill.tables[0].to: no table sqlident1_Wards in the target database; it has "sqlident1_wards": names are matched in their case`},
		{config.BackfillTable{Name: "wards", From: "sqlident1_Order", Key: "select", To: "sqlident1_wards", TargetKey: "Select_Key", Columns: cols("select=Select_Key")},
			`backfill.tables[0].columns.Select_Key: no column "Select_Key" in target table sqlident1_wards; it has "select_key"`},
		{config.BackfillTable{Name: "wards", From: "sqlident1_Order", Key: "select", To: "sqlident1_wards", TargetKey: "select_key",
			Columns: map[string]config.Column{"select_key": {From: "select"}, "ward": {From: "User", Lookup: &config.Lookup{Table: "sqlident1_sites", Key: "Code", Column: "Id"}}}},
			`backfill.tables[0].columns.ward.lookup.key: table sqlident1_sites has no column "Code"; it has "code"`},
	} {
		w.cfg.Tables = []config.BackfillTable{c.bt}
		if _, err := backfill.Run(t.Context(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("backfill: %v; want an error saying %q", err, c.want)
		}
		if _, err := backfill.Verify(t.Context(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("verify: %v; want an error saying %q", err, c.want)
		}
	}

	w.pg(t, `CREATE TABLE "sqlident1_Order" ("select" bigint UNIQUE, "User" text, "a$b" text)`)
	w.cfg.Tables = []config.BackfillTable{{Name: "orders", From: "sqlident1_Order", Key: "select", To: "sqlident1_Order", TargetKey: "select",
		Columns: map[string]config.Column{"select": {From: "select"}, "User": {From: "a$b"}, "a$b": {From: "User"}}}}
	if r := w.run(t, backfill.Options{}).Tables[0]; r.Inserted != 2 || r.Failed != 0 {
		t.Fatalf("backfill: inserted %d, failed %q; want 2 and none", r.Inserted, failureReasons(r))
	}
	if n := w.count(t, `SELECT count(*) FROM "sqlident1_Order" WHERE "User" = 'ab' || "select" AND "a$b" = 'u' || "select"`); n != 2 {
		t.Errorf("%d rows hold a$b in User and User in a$b; want 2", n)
	}
	w.pg(t, `UPDATE "sqlident1_Order" SET "a$b" = 'changed' WHERE "select" = 2`)
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	if d.Changed != 1 || len(d.ChangedRows) != 1 || d.ChangedRows[0].Key != "2" || d.ChangedRows[0].Columns[0].Column != "a$b" {
		t.Errorf("verify after a$b of row 2 changed: %+v; want row 2's a$b changed", d)
	}
}

// TestSqlidentALookupWaitsForItsTableHoweverItIsSpelt: wards look up
// patients in <schema>.sqlident1_patients, which the table patients
// copies as to: sqlident1_patients. Compared as text, the names were two
// tables: wards, first in the file, were copied before any patient, and
// all 3 failed (no row in … with legacy_id equal to the source value).
func TestSqlidentALookupWaitsForItsTableHoweverItIsSpelt(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	var schema string
	if err := w.modern.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	w.exec(t, "CREATE TABLE sqlident1_P (PatientSerNum INT PRIMARY KEY)")
	w.exec(t, "CREATE TABLE sqlident1_W (WardSerNum INT PRIMARY KEY, PatientSerNum INT)")
	w.exec(t, "INSERT INTO sqlident1_P VALUES (1), (2), (3)")
	w.exec(t, "INSERT INTO sqlident1_W VALUES (10, 1), (20, 2), (30, 3)")
	w.pg(t, "CREATE TABLE sqlident1_patients (id bigserial PRIMARY KEY, legacy_id bigint UNIQUE)")
	w.pg(t, "CREATE TABLE sqlident1_wards (legacy_id bigint UNIQUE, patient_id bigint NOT NULL)")
	wards := config.BackfillTable{Name: "wards", From: "sqlident1_W", Key: "WardSerNum", To: "sqlident1_wards", TargetKey: "legacy_id", Columns: cols("WardSerNum=legacy_id")}
	wards.Columns["patient_id"] = config.Column{From: "PatientSerNum", Lookup: &config.Lookup{Table: schema + ".sqlident1_patients", Key: "legacy_id", Column: "id"}}
	w.cfg.Tables = []config.BackfillTable{wards,
		{Name: "patients", From: "sqlident1_P", Key: "PatientSerNum", To: "sqlident1_patients", TargetKey: "legacy_id", Columns: cols("PatientSerNum=legacy_id")}}
	w.cfg.Concurrency = 1
	if r := tableReport(t, w.run(t, backfill.Options{}), "wards"); r.Inserted != 3 || r.Failed != 0 {
		t.Errorf("wards: inserted %d, failed %q; want 3 and none", r.Inserted, failureReasons(r))
	}
	if n := w.count(t, "SELECT count(*) FROM sqlident1_wards w JOIN sqlident1_patients p ON p.id = w.patient_id AND p.legacy_id * 10 = w.legacy_id"); n != 3 {
		t.Errorf("%d wards point at their patient; want 3", n)
	}
}

// TestSqlidentAQueryEndingInACommentIsRead: a query's last line that is
// a comment (-- every patient, # all) swallowed the parenthesis closing
// it as a source, and the table was refused with MySQL's syntax error
// near ”.
func TestSqlidentAQueryEndingInACommentIsRead(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.exec(t, "CREATE TABLE sqlident1_P (PatientSerNum INT PRIMARY KEY)")
	w.exec(t, "INSERT INTO sqlident1_P VALUES (1), (2), (3)")
	w.pg(t, "CREATE TABLE sqlident1_patients (legacy_id bigint UNIQUE)")
	for i, q := range []string{"SELECT PatientSerNum FROM sqlident1_P -- every patient", "SELECT PatientSerNum\nFROM sqlident1_P # all\n"} {
		w.cfg.Tables = []config.BackfillTable{{Name: fmt.Sprint("patients", i), Query: q, Key: "PatientSerNum", To: "sqlident1_patients", TargetKey: "legacy_id",
			Columns: cols("PatientSerNum=legacy_id")}}
		if r := w.run(t, backfill.Options{}).Tables[0]; r.Read != 3 || r.Failed != 0 {
			t.Errorf("%q: read %d, failed %q; want 3 rows read", q, r.Read, failureReasons(r))
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("%q: verify %+v; want no deviation", q, d.Tables)
		}
	}
}
