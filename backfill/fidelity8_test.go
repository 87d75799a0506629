package backfill_test

import (
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
