package backfill_test

import (
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestALookupKeyMustBeUnique: a lookup whose key is not unique in its
// table (site code A twice, a join table's) joined each row with A
// twice: the copy failed its whole batch (ON CONFLICT DO UPDATE command
// cannot affect row a second time), so no ward was copied, and verify
// counted 5 wards missing of 3, then, once modern held them, wards 1 and
// 3 changed however they were copied. Both refuse the table before
// reading a row, naming the field.
func TestALookupKeyMustBeUnique(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.pg(t, "CREATE TABLE fidelity2_sites (code text, id bigint)")
	w.pg(t, "INSERT INTO fidelity2_sites VALUES ('A', 1), ('A', 2), ('B', 3)")
	bt := config.BackfillTable{Name: "wards", From: "fidelity2_Ward", Key: "WardSerNum", To: "fidelity2_wards", TargetKey: "legacy_id",
		Columns: cols("WardSerNum=legacy_id")}
	bt.Columns["site_id"] = config.Column{From: "Site", Lookup: &config.Lookup{Table: "fidelity2_sites", Key: "code", Column: "id"}}
	w.mapTable(t, "CREATE TABLE fidelity2_Ward (WardSerNum INT PRIMARY KEY, Site VARCHAR(4))",
		"CREATE TABLE fidelity2_wards (legacy_id bigint UNIQUE, site_id bigint)", bt)
	w.exec(t, "INSERT INTO fidelity2_Ward VALUES (1, 'A'), (2, 'B'), (3, 'A')")
	want := `columns.site_id.lookup.key: fidelity2_sites has no unique index on "code" alone, so a value could find several rows`
	if _, err := backfill.Run(t.Context(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("backfill: %v; want an error saying %q", err, want)
	}
	if n := w.count(t, "SELECT count(*) FROM fidelity2_wards"); n != 0 {
		t.Errorf("backfill wrote %d rows; want none", n)
	}
	if _, err := backfill.Verify(t.Context(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: %v; want an error saying %q", err, want)
	}

	// A unique index is what makes one row per value certain.
	w.pg(t, "DELETE FROM fidelity2_sites WHERE id = 2")
	w.pg(t, "CREATE UNIQUE INDEX ON fidelity2_sites (code)")
	if r := w.run(t, backfill.Options{}).Tables[0]; r.Inserted != 3 || r.Failed != 0 {
		t.Errorf("backfill with a unique lookup key: inserted %d, failed %q; want 3 and none", r.Inserted, failureReasons(r))
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify of the copy: %+v; want no deviation", d.Tables)
	}
}
