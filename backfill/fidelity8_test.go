package backfill_test

import (
	"reflect"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestAPrefixIndexDoesNotMakeAKeyUnique: UNIQUE (Name(6)) compares the
// first six characters, where utf8mb4_unicode_ci tells Straße from
// Strasse (Straße's six are Strasse's seven), while in full they are one
// key to it, as ORDER BY and > compare them. The plan took the index as
// proof that the key is unique, and a page ending on one of them skipped
// the other: with a batch of one, 2 of the 3 rows were read and copied,
// without a word (verify, whose chunks of 10,000 rows did not end
// there, found the third missing; a chunk that did would have missed it
// too). The key is refused before a row is copied, saying what to do,
// and the query the refusal suggests copies every row.
func TestAPrefixIndexDoesNotMakeAKeyUnique(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity8_Street (Name VARCHAR(40) COLLATE utf8mb4_unicode_ci NOT NULL, V INT NOT NULL, UNIQUE KEY (Name(6)))",
		"CREATE TABLE fidelity8_streets (name text UNIQUE, v int NOT NULL)",
		config.BackfillTable{Name: "streets", From: "fidelity8_Street", Key: "Name", To: "fidelity8_streets", TargetKey: "name", Columns: cols("Name=name", "V=v")})
	w.exec(t, "INSERT INTO fidelity8_Street VALUES ('Straße', 1), ('Strasse', 2), ('Strbbb', 3)")
	w.cfg.Batch = 1

	want := "backfill.tables[0].key: Name holds keys that differ in their bytes but are one key to its collation"
	rep, err := backfill.Run(t.Context(), w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), want) {
		read := int64(-1)
		if rep != nil && len(rep.Tables) > 0 {
			read = rep.Tables[0].Read
		}
		t.Errorf("backfill: %v (%d of 3 rows read); want an error saying %q", err, read, want)
	}
	if n := w.count(t, "SELECT count(*) FROM fidelity8_streets"); n != 0 {
		t.Errorf("%d rows copied before the refusal", n)
	}
	if _, err := backfill.Verify(t.Context(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: %v; want an error saying %q", err, want)
	}

	t.Run("the query the refusal suggests copies every row", func(t *testing.T) {
		bt := &w.cfg.Tables[0]
		bt.From, bt.Key = "", "NameKey"
		bt.Query = "SELECT COALESCE(CONVERT(Name USING utf8mb4) COLLATE utf8mb4_nopad_bin, '') AS NameKey, V FROM fidelity8_Street"
		bt.Columns = cols("NameKey=name", "V=v")
		if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 3 || tr.Failed != 0 {
			t.Errorf("inserted %d, failed %d (%q); want 3 and 0", tr.Inserted, tr.Failed, failureReasons(tr))
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want no deviation", d.Tables)
		}
	})
}

// TestAYearKeyOfZeroIsReadBackAsItself: the driver sends YEAR 0000 (the
// year a lenient legacy stores for one it could not read) as 0, and
// MySQL reads the text '0' as the year 2000, as it reads '99' as 1999.
// Passed back as text, the page after 0000 began after 2000, skipping
// 1999 and 2000, and row 0000 asked for by its key was 2000's: its
// failure was forgotten as a row gone from legacy, and a re-run never
// copied it once it could be.
func TestAYearKeyOfZeroIsReadBackAsItself(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity8_Budget (FiscalYear YEAR PRIMARY KEY, Amount INT NOT NULL)",
		"CREATE TABLE fidelity8_budgets (fiscal_year int UNIQUE, amount int NOT NULL CHECK (amount >= 0))",
		config.BackfillTable{Name: "budgets", From: "fidelity8_Budget", Key: "FiscalYear", To: "fidelity8_budgets", TargetKey: "fiscal_year",
			Columns: cols("FiscalYear=fiscal_year", "Amount=amount")})
	// Year 0000 has an amount the target refuses.
	w.exec(t, "INSERT INTO fidelity8_Budget VALUES (0, -1), (1999, 2), (2000, 3), (2001, 4)")
	w.cfg.Batch = 1
	years := func() []int64 {
		rows, err := w.modern.Query(t.Context(), "SELECT fiscal_year FROM fidelity8_budgets ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []int64
		for rows.Next() {
			var y int64
			if err := rows.Scan(&y); err != nil {
				t.Fatal(err)
			}
			out = append(out, y)
		}
		return out
	}
	failed := func() int64 {
		return w.count(t, "SELECT count(*) FROM strangler_backfill_failures WHERE table_name = 'budgets' AND source_key = '0'")
	}

	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Read != 4 || tr.Inserted != 3 || tr.Failed != 1 {
		t.Errorf("first run: read %d, inserted %d, failed %d; want 4, 3 and 1 (year 0000)", tr.Read, tr.Inserted, tr.Failed)
	}
	if got := years(); !reflect.DeepEqual(got, []int64{1999, 2000, 2001}) {
		t.Errorf("modern holds years %v, want 1999, 2000 and 2001", got)
	}
	tr = w.run(t, backfill.Options{}).Tables[0]
	if tr.Failed != 1 || tr.NotInSource != 0 || failed() != 1 {
		t.Errorf("plain re-run: failed %d, not in source %d, failures on record for year 0000 %d; want 1, 0 and 1", tr.Failed, tr.NotInSource, failed())
	}
	w.exec(t, "UPDATE fidelity8_Budget SET Amount = 5 WHERE FiscalYear = 0")
	tr = w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 1 || tr.Failed != 0 || failed() != 0 {
		t.Errorf("plain re-run once year 0000 can be copied: inserted %d, failed %d, failures on record %d; want 1, 0 and 0", tr.Inserted, tr.Failed, failed())
	}
	if got := years(); !reflect.DeepEqual(got, []int64{0, 1999, 2000, 2001}) {
		t.Errorf("modern holds years %v, want 0, 1999, 2000 and 2001", got)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want no deviation", d.Tables)
	}
}
