package backfill_test

import (
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestAPIWorkersSendEveryGroupOfABinaryOrYearGroupBy: workers record
// each group_by value in the state store's text column, which PostgreSQL
// refuses for bytes that are not UTF-8: a run grouped by a VARBINARY or
// BINARY(n) holding 0x00 or 0xff (or BINARY(3)'s 'a', padded with 0x00)
// failed as it began, sending nothing ("invalid byte sequence for
// encoding"). Such values are kept in hex and read back as bytes; a BIT,
// whose DISTINCT values MariaDB gives as numbers, still groups by those,
// and a text value spelled like hex ('0x41') is text, not the bytes 'A'.
// A YEAR's DISTINCT values come as numbers too, year 0000 as 0, which
// read back as text was the year 2000: 2000's rows were sent twice and
// 0000's never, the run reporting every row read migrated.
func TestAPIWorkersSendEveryGroupOfABinaryOrYearGroupBy(t *testing.T) {
	w, sent := newAlteredConsentAPI(t,
		"ALTER TABLE Consent ADD Site VARBINARY(4) NULL, ADD Ward BINARY(3) NULL, ADD Granted YEAR NULL, ADD Code VARCHAR(8) NULL",
		"INSERT INTO Consent (ConsentSerNum, Site, Ward, Granted, Code) VALUES (4, 0x00, 0xff, 0, '0x41'), (5, 0xfffe, 'a', 2000, 'A'), (6, 'a', 0x00, 1999, '0x4')",
		"UPDATE Consent SET Site = 0xff00, Ward = 0xc3, Granted = 2000, Code = '0x41' WHERE ConsentSerNum IN (1, 2)")
	for _, col := range []string{"Site", "Ward", "Given", "Flags", "Granted", "Code"} {
		t.Run(col, func(t *testing.T) { sendsEveryConsentOnce(t, w, sent, col, "fidelity9"+col) })
	}
}

// TestAYearForeignKeyOfZeroFindsItsOwnRows: --keys copies a row and then
// the rows that look it up, found by their foreign key, which went back
// to MySQL as the driver sent the parent's key. Year 0000 comes as 0,
// and MySQL reads '0' as the year 2000: --keys budgets=0 copied the
// allocations of 2000, never 0000's. Into a text key year 0000 is
// '0000' (TestYearZeroIsCopiedAsMySQLWritesIt), and its allocations
// look it up as that.
func TestAYearForeignKeyOfZeroFindsItsOwnRows(t *testing.T) {
	for _, keyType := range []string{"int", "text"} {
		t.Run(keyType, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			w.exec(t, "CREATE TABLE fidelity9_Budget (FiscalYear YEAR PRIMARY KEY, Amount INT NOT NULL)")
			w.exec(t, "CREATE TABLE fidelity9_Allocation (Id INT PRIMARY KEY, FiscalYear YEAR NOT NULL, Amount INT NOT NULL)")
			w.pg(t, "CREATE TABLE fidelity9_budgets (id serial PRIMARY KEY, fiscal_year "+keyType+" UNIQUE, amount int NOT NULL)")
			w.pg(t, "CREATE TABLE fidelity9_allocations (id int UNIQUE, budget_id int NOT NULL REFERENCES fidelity9_budgets (id), amount int NOT NULL)")
			w.cfg.Tables = []config.BackfillTable{
				{Name: "budgets", From: "fidelity9_Budget", Key: "FiscalYear", To: "fidelity9_budgets", TargetKey: "fiscal_year",
					Columns: cols("FiscalYear=fiscal_year", "Amount=amount")},
				{Name: "allocations", From: "fidelity9_Allocation", Key: "Id", To: "fidelity9_allocations", TargetKey: "id",
					Columns: map[string]config.Column{"id": {From: "Id"}, "amount": {From: "Amount"},
						"budget_id": {From: "FiscalYear", Lookup: &config.Lookup{Table: "fidelity9_budgets", Key: "fiscal_year", Column: "id"}}}},
			}
			w.exec(t, "INSERT INTO fidelity9_Budget VALUES (0, 1), (2000, 2)")
			w.exec(t, "INSERT INTO fidelity9_Allocation VALUES (1, 0, 10), (2, 2000, 20)")

			tr := tableReport(t, w.run(t, backfill.Options{Keys: map[string][]string{"budgets": {"0"}}}), "allocations")
			if tr.Inserted != 1 || tr.Failed != 0 {
				t.Errorf("allocations: inserted %d, failed %d (%q); want year 0000's one", tr.Inserted, tr.Failed, failureReasons(tr))
			}
			if n := w.count(t, "SELECT count(*) FROM fidelity9_allocations WHERE id = 1"); n != 1 {
				t.Error("year 0000's allocation was not copied with its budget")
			}
			if n := w.count(t, "SELECT count(*) FROM fidelity9_allocations WHERE id = 2"); n != 0 {
				t.Error("year 2000's allocation was copied as year 0000's")
			}
			if tr := tableReport(t, w.run(t, backfill.Options{}), "allocations"); tr.Inserted != 1 || tr.Failed != 0 {
				t.Errorf("plain run: allocations inserted %d, failed %d (%q); want year 2000's one", tr.Inserted, tr.Failed, failureReasons(tr))
			}
			if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
				t.Errorf("verify: %+v, want no deviation", d.Tables)
			}
		})
	}
}

// TestYearZeroIsCopiedAsMySQLWritesIt: the driver sends YEAR 0000 as 0,
// which a text column got as "0" (and the API as "0"): text MySQL, and a
// service reading two-digit years as it does, reads as the year 2000,
// where 1999 arrived as "1999". MariaDB's YEAR(2) 2005 came as "5", not
// "05". Verify, reading legacy alike, found the copy equal. Year 0000
// arrives as "0000", still 0 in an integer column, and verify calls a
// copy of "0" changed.
func TestYearZeroIsCopiedAsMySQLWritesIt(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity9_Grant (Id INT PRIMARY KEY, Awarded YEAR, AwardedN YEAR, Short YEAR(2))",
		"CREATE TABLE fidelity9_grants (id int UNIQUE, awarded varchar(4), awarded_n int, short text)",
		config.BackfillTable{Name: "grants", From: "fidelity9_Grant", Key: "Id", To: "fidelity9_grants", TargetKey: "id",
			Columns: cols("Id=id", "Awarded=awarded", "AwardedN=awarded_n", "Short=short")})
	w.exec(t, "INSERT INTO fidelity9_Grant VALUES (1, 0, 0, 2005), (2, 1999, 1999, 1999), (3, NULL, NULL, NULL)")

	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 3 || tr.Failed != 0 {
		t.Errorf("inserted %d, failed %d (%q); want 3 and 0", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	if n := w.count(t, "SELECT count(*) FROM fidelity9_grants WHERE id = 1 AND awarded = '0000' AND awarded_n = 0 AND short = '05'"); n != 1 {
		t.Error("year 0000 is not '0000' in the text column and 0 in the integer one, or YEAR(2) 2005 not '05'")
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want no deviation", d.Tables)
	}
	w.pg(t, "UPDATE fidelity9_grants SET awarded = '0' WHERE id = 1")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 {
		t.Errorf("verify of a copy holding '0': %+v, want the row changed", d)
	}

	t.Run("through the API", func(t *testing.T) {
		sent := &sentBodies{}
		a := newConsentAPI(t, sent)
		if _, err := a.legacy.Exec("ALTER TABLE Consent ADD Signed YEAR NULL"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.legacy.Exec("UPDATE Consent SET Signed = 0 WHERE ConsentSerNum = 1"); err != nil {
			t.Fatal(err)
		}
		cfg := a.config(t)
		cfg.Tables[0].TargetAPI.Body["signed"] = config.Column{From: "Signed"}
		a.run(t, cfg, backfill.Options{})
		if got := sent.all()["/consents/1"]; !strings.Contains(got, `"signed":"0000"`) {
			t.Errorf("sent %s, want signed 0000", got)
		}
	})
}

// TestAnInvisibleColumnIsSentToTheAPI: a table sent to the API found its
// columns with SELECT *, which leaves out MariaDB's INVISIBLE columns:
// one named in the body (or the path, or group_by) was refused as "no
// column in the source", where a table copied to the database reads it.
func TestAnInvisibleColumnIsSentToTheAPI(t *testing.T) {
	sent := &sentBodies{}
	a := newConsentAPI(t, sent)
	for _, q := range []string{
		"ALTER TABLE Consent ADD Witness INT INVISIBLE",
		"UPDATE Consent SET Witness = ConsentSerNum * 7",
	} {
		if _, err := a.legacy.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := a.config(t)
	cfg.Tables[0].TargetAPI.Body["witness"] = config.Column{From: "Witness"}
	cfg.Tables[0].TargetAPI.GroupBy = "Witness"
	a.run(t, cfg, backfill.Options{})
	if got := sent.all()["/consents/2"]; !strings.Contains(got, `"witness":14`) {
		t.Errorf("sent %s, want witness 14", got)
	}

	cfg.Tables[0].TargetAPI.Body["witness"] = config.Column{From: "Witnes"}
	want := `target_api.body.witness.from: no column "Witnes" in the source (Consent)`
	if _, err := backfill.Run(t.Context(), cfg, backfill.Options{APILedger: a.store, Hasher: a.store.Hasher(), Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a column the source lacks: %v; want an error saying %q", err, want)
	}
}

// TestATwoDigitYearKeyIsRefused: MariaDB sorts a YEAR(2) by its year
// (70 for 1970 first, 69 for 2069 last) but compares it with the last
// key read, the driver's two digits, as those digits: the page after 99
// (1999) found no key above it, and 2000 to 2069 were never read, the
// run reporting the table done. The key is refused before a row moves,
// saying what to key on.
func TestATwoDigitYearKeyIsRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity9_Class (Cohort YEAR(2) PRIMARY KEY, Size INT NOT NULL)",
		"CREATE TABLE fidelity9_classes (cohort int UNIQUE, size int NOT NULL)",
		config.BackfillTable{Name: "classes", From: "fidelity9_Class", Key: "Cohort", To: "fidelity9_classes", TargetKey: "cohort",
			Columns: cols("Cohort=cohort", "Size=size")})
	w.exec(t, "INSERT INTO fidelity9_Class VALUES (1970, 1), (1999, 2), (2000, 3), (2005, 4), (2069, 5)")
	w.cfg.Batch = 1

	keyRefusedThenQueryCopies(t, w, "fidelity9_classes", 5, "backfill.tables[0].key: Cohort is a YEAR(2)",
		"CohortKey", "SELECT Cohort + 0 AS CohortKey, Size FROM fidelity9_Class", "CohortKey=cohort", "Size=size")
}
