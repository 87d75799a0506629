package backfill_test

import (
	"slices"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestDecimalsAndFloatsIntoIntegersAreCopiedByValue: MySQL sends a FLOAT
// of 16777216 as 1.6777216e+07 and a DECIMAL(10,3) as 12.000, neither of
// which an integer type's input takes: every row failed. A whole number
// now copies exactly; a fraction is refused unless lossy (then rounded
// half away from zero, as PostgreSQL rounds a numeric).
func TestDecimalsAndFloatsIntoIntegersAreCopiedByValue(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Dose (DoseSerNum INT PRIMARY KEY, F FLOAT, D DOUBLE, N DECIMAL(65,30))",
		"CREATE TABLE doses (legacy_id bigint UNIQUE, f bigint, d integer, n bigint)",
		config.BackfillTable{Name: "doses", From: "Dose", Key: "DoseSerNum", To: "doses", TargetKey: "legacy_id",
			Columns: cols("DoseSerNum=legacy_id", "F=f", "D=d", "N=n")})
	w.exec(t, `INSERT INTO Dose VALUES
		(1, 16777216, 1e9, -9223372036854775808),
		(2, 1.5, NULL, NULL),
		(3, NULL, -2.5, NULL),
		(4, NULL, NULL, 12.000000000000000000000000000001)`)
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 1 || tr.Failed != 3 {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 3", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	for _, want := range []string{
		"column f: bigint would round it to a whole number (lossy: true allows it)",
		"column d: integer would round it to a whole number (lossy: true allows it)",
		"column n: bigint would round it to a whole number (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(tr), want) {
			t.Errorf("reasons %q lack %q", failureReasons(tr), want)
		}
	}
	if n := w.count(t, "SELECT count(*) FROM doses WHERE legacy_id = 1 AND f = 16777216 AND d = 1000000000 AND n = -9223372036854775808"); n != 1 {
		t.Error("row 1 is not in modern as it is in legacy")
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 3 || d.Changed != 0 {
		t.Errorf("verify: %+v; want the 3 refused rows missing", d)
	}

	t.Run("lossy: true rounds half away from zero", func(t *testing.T) {
		for _, name := range []string{"f", "d", "n"} {
			c := w.cfg.Tables[0].Columns[name]
			c.Lossy = true
			w.cfg.Tables[0].Columns[name] = c
		}
		if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Failed != 0 || tr.Written() != 3 {
			t.Errorf("written %d, failed %d (%q); want 3 and 0", tr.Written(), tr.Failed, failureReasons(tr))
		}
		if n := w.count(t, "SELECT count(*) FROM doses WHERE (legacy_id = 2 AND f = 2) OR (legacy_id = 3 AND d = -3) OR (legacy_id = 4 AND n = 12)"); n != 3 {
			t.Errorf("%d of rows 2, 3 and 4 rounded as PostgreSQL rounds (2, -3, 12); want 3", n)
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want none", d.Tables)
		}
	})
}
