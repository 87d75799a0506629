package backfill_test

import (
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestVerifyComparesAJSONColumnByItsText: a jsonb column stores a
// document (key order and spelling are its own), a json column the text
// it is given, duplicate keys included; so verify compares the first as
// jsonb and the second by its text, and a json copy that was respelt
// differs.
func TestVerifyComparesAJSONColumnByItsText(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Consent (ConsentSerNum INT PRIMARY KEY, Scope JSON)",
		"CREATE TABLE consents (legacy_id bigint UNIQUE, doc jsonb, text json)",
		config.BackfillTable{Name: "consents", From: "Consent", Key: "ConsentSerNum", To: "consents", TargetKey: "legacy_id",
			Columns: cols("ConsentSerNum=legacy_id", "Scope=doc", "Scope=text")})
	w.exec(t, `INSERT INTO Consent VALUES (1, '{"b":1,"a":1e2}')`)
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 1 {
		t.Fatalf("inserted %d (%q), want 1", tr.Inserted, failureReasons(tr))
	}
	if n := w.count(t, `SELECT count(*) FROM consents WHERE text::text = '{"b":1,"a":1e2}' AND doc = '{"a":100,"b":1}'`); n != 1 {
		t.Errorf("the json column does not hold legacy's text, or the jsonb column its document")
	}
	w.pg(t, `UPDATE consents SET doc = '{"a": 1E+2,  "b": 1}', text = '{"a":1e2, "b":1}'`)
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	if d.Changed != 1 || len(d.ChangedRows[0].Columns) != 1 || d.ChangedRows[0].Columns[0].Column != "text" {
		t.Errorf("verify: %+v; want the json column changed, not the jsonb one", d)
	}
}
