package backfill_test

import (
	"reflect"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestReportsSpellADoubleKeyAsModernStoresIt: the driver writes a DOUBLE
// from 1e6 on with an exponent; reports named the missing, changed and
// failed rows 1.234567e+06, a key no one finds in modern, which holds
// 1234567 (double precision until 1e15, then 1e+15; text and numeric
// without an exponent up to 1e21).
func TestReportsSpellADoubleKeyAsModernStoresIt(t *testing.T) {
	for _, c := range []struct{ typ, big string }{
		{"double precision", "1e+15"},
		{"text", "1000000000000000"},
		{"numeric", "1000000000000000"},
	} {
		t.Run(c.typ, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			w.mapTable(t, "CREATE TABLE fidelity2_Dose (Amount DOUBLE PRIMARY KEY, V INT)",
				"CREATE TABLE fidelity2_doses (amount "+c.typ+" UNIQUE, v int CHECK (v > 0))",
				config.BackfillTable{Name: "doses", From: "fidelity2_Dose", Key: "Amount", To: "fidelity2_doses", TargetKey: "amount", Columns: cols("Amount=amount", "V=v")})
			w.exec(t, "INSERT INTO fidelity2_Dose VALUES (1234567, 1), (1e15, 2), (2500000, -1), (0.5, 4)")
			r := w.run(t, backfill.Options{}).Tables[0]
			if len(r.Failures) != 1 || !reflect.DeepEqual(r.Failures[0].SampleKeys, []string{"2500000"}) {
				t.Errorf("copy: failures %+v; want 2500000's", r.Failures)
			}
			w.pg(t, "DELETE FROM fidelity2_doses WHERE v = 1")
			w.pg(t, "UPDATE fidelity2_doses SET v = 3 WHERE v = 2")
			d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
			var changed []string
			for _, cr := range d.ChangedRows {
				changed = append(changed, cr.Key)
			}
			if !reflect.DeepEqual(d.MissingKeys, []string{"1234567", "2500000"}) || !reflect.DeepEqual(changed, []string{c.big}) {
				t.Errorf("verify: missing %v, changed %v; want 1234567 and 2500000 missing, %s changed", d.MissingKeys, changed, c.big)
			}
			var stored string
			if err := w.modern.QueryRow(t.Context(), "SELECT amount::text FROM fidelity2_doses WHERE v = 3").Scan(&stored); err != nil || stored != c.big {
				t.Errorf("modern holds %q (%v), want %s", stored, err, c.big)
			}
		})
	}
}

// TestANumberKeyMatchedByValueCannotBeLossy: keys into a float, or
// DOUBLE keys into a numeric, are matched by the value the target stores,
// so two keys that a lossy copy rounds to one (16777217 and 16777216 as a
// real) are one target row, whose key check cannot tell them apart: the
// second overwrote the first. Such a key is refused, as a lossy time key
// is.
func TestANumberKeyMatchedByValueCannotBeLossy(t *testing.T) {
	for _, c := range []struct{ src, dst string }{{"DECIMAL(12,3)", "real"}, {"DOUBLE", "numeric(10,2)"}} {
		t.Run(c.dst, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			bt := config.BackfillTable{Name: "doses", From: "fidelity2_Dose", Key: "Amount", To: "fidelity2_doses", TargetKey: "amount", Columns: cols("V=v")}
			bt.Columns["amount"] = config.Column{From: "Amount", Lossy: true}
			w.mapTable(t, "CREATE TABLE fidelity2_Dose (Amount "+c.src+" PRIMARY KEY, V INT)", "CREATE TABLE fidelity2_doses (amount "+c.dst+" UNIQUE, v int)", bt)
			w.exec(t, "INSERT INTO fidelity2_Dose VALUES (16777216, 1), (16777217, 2), (0.125, 3), (0.13, 4)")
			_, err := backfill.Run(t.Context(), w.cfg, backfill.Options{Log: discard()})
			if want := "columns.amount: a key cannot be lossy"; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("backfill: %v; want an error saying %q (modern holds %d rows of 4)", err, want, w.count(t, "SELECT count(*) FROM fidelity2_doses"))
			}
		})
	}
}
