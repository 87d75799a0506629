package backfill_test

import (
	"reflect"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestCaseInsensitiveTargetColumnsAreComparedByTheirBytes: a target
// column under a nondeterministic collation (case-insensitive ICU, which
// also calls NFC and NFD spellings equal) holds 'ABC' and 'abc' as equal
// values, and a cast to text keeps that collation. Verify, the backfill's
// "already the same" and its key checks must still tell them apart: a
// copy whose case or normalisation changed is not the legacy value.
func TestCaseInsensitiveTargetColumnsAreComparedByTheirBytes(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.pg(t, "CREATE COLLATION fidelity1_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
	w.mapTable(t, "CREATE TABLE Tag (Name VARCHAR(20) COLLATE utf8mb4_bin PRIMARY KEY, Label VARCHAR(20))",
		"CREATE TABLE tags (name text COLLATE fidelity1_ci UNIQUE, label varchar(20) COLLATE fidelity1_ci)",
		config.BackfillTable{Name: "tags", From: "Tag", Key: "Name", To: "tags", TargetKey: "name", Columns: cols("Name=name", "Label=label")})
	w.exec(t, "INSERT INTO Tag VALUES ('a1', 'abc'), ('b2', 'é'), ('c3', 'x')")
	if r := w.run(t, backfill.Options{}).Tables[0]; r.Inserted != 3 || r.Failed != 0 {
		t.Fatalf("copy: inserted %d, failed %d %q; want 3 and 0", r.Inserted, r.Failed, failureReasons(r))
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed+d.Missing+d.Extra != 0 {
		t.Fatalf("verify of the copy: %+v, want no deviation", d)
	}

	w.pg(t, "UPDATE tags SET label = 'ABC' WHERE name = 'a1'")
	w.pg(t, "UPDATE tags SET label = 'e' || chr(769) WHERE name = 'b2'") // NFD of legacy's NFC é
	w.pg(t, "UPDATE tags SET name = 'C3' WHERE name = 'c3'")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	want := []backfill.ChangedRow{{Key: "a1", Columns: []backfill.ColumnDiff{{Column: "label"}}}, {Key: "b2", Columns: []backfill.ColumnDiff{{Column: "label"}}}}
	if d.Changed != 2 || !reflect.DeepEqual(d.ChangedRows, want) || !reflect.DeepEqual(d.MissingKeys, []string{"c3"}) || !reflect.DeepEqual(d.ExtraKeys, []string{"C3"}) {
		t.Errorf("verify: changed %+v, missing %v, extra %v; want a1 and b2's label changed, c3 missing, C3 extra", d.ChangedRows, d.MissingKeys, d.ExtraKeys)
	}
	// The backfill calls them changed too, and copies the labels back;
	// c3 is refused, as writing it would overwrite C3's row.
	r := w.run(t, backfill.Options{Restart: true}).Tables[0]
	if r.Updated != 2 || r.Present != 0 || !reflect.DeepEqual(failureReasons(r), []string{"target key collides with C3"}) {
		t.Errorf("restart: updated %d, present %d, failed %q; want 2 updated and c3 colliding with C3", r.Updated, r.Present, failureReasons(r))
	}
	w.pg(t, "DELETE FROM tags WHERE name = 'C3'")
	w.run(t, backfill.Options{Restart: true})
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed+d.Missing+d.Extra != 0 {
		t.Errorf("verify after copying again: %+v, want no deviation", d)
	}

	// Legacy's keys are byte-distinct; two the target key calls one are
	// refused, never written over each other (A1 sorts first in the batch,
	// a1 is in modern already; D4 and d4 are new), instead of failing the
	// whole table.
	w.exec(t, "INSERT INTO Tag VALUES ('A1', 'other'), ('D4', 'x'), ('d4', 'y')")
	r = w.run(t, backfill.Options{Restart: true}).Tables[0]
	wantFailed := []string{"target key collides with A1", "target key collides with D4", "target key collides with a1"}
	if !reflect.DeepEqual(failureReasons(r), wantFailed) || r.Error != "" || r.Inserted != 1 {
		t.Errorf("keys equal under the target's collation: inserted %d, failed %q, error %q; want D4 inserted and %q", r.Inserted, failureReasons(r), r.Error, wantFailed)
	}
	var label string
	if err := w.modern.QueryRow(t.Context(), "SELECT label FROM tags WHERE name = 'a1'").Scan(&label); err != nil || label != "abc" {
		t.Errorf("a1's label is %q (%v), want abc", label, err)
	}
}

// TestVerifySaysWhichTablesItDidNotCompare: a table sent to the API
// (target_api) has no target table to compare; verify's report must name
// it as not compared, not leave it out of a clean "0 deviations" that an
// operator reads as "both sides agree".
func TestVerifySaysWhichTablesItDidNotCompare(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Ward (WardSerNum INT PRIMARY KEY)", "CREATE TABLE wards (legacy_id bigint UNIQUE)",
		config.BackfillTable{Name: "wards", From: "Ward", Key: "WardSerNum", To: "wards", TargetKey: "legacy_id", Columns: cols("WardSerNum=legacy_id")})
	w.cfg.Tables = append(w.cfg.Tables, config.BackfillTable{Name: "ward-imports", From: "Ward", Key: "WardSerNum",
		TargetAPI: &config.TargetAPI{Method: "PUT", Path: "/imports/wards/{WardSerNum}"}})
	rep := w.verify(t, backfill.VerifyOptions{})
	if rep.Deviations() != 0 || len(rep.Tables) != 1 || !reflect.DeepEqual(rep.NotCompared, []string{"ward-imports"}) {
		t.Errorf("verify: %d deviations, %d tables compared, not compared %v; want 0, 1 and [ward-imports]", rep.Deviations(), len(rep.Tables), rep.NotCompared)
	}
	var text strings.Builder
	rep.WriteText(&text)
	for _, want := range []string{"in 1 tables (1 more not compared)", "ward-imports: not compared: its rows are sent to the API"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the report does not say %q:\n%s", want, text.String())
		}
	}
	if rep := w.verify(t, backfill.VerifyOptions{Tables: []string{"wards"}}); len(rep.NotCompared) != 0 {
		t.Errorf("verify --tables wards: not compared %v; want none (only wards was asked for)", rep.NotCompared)
	}
}

// TestAnInvalidUniqueIndexIsNoTargetKey: a CREATE UNIQUE INDEX
// CONCURRENTLY that failed on duplicates leaves an invalid index, which
// enforces nothing. Taken as the target key's, verify joined each legacy
// row with both duplicates, found them alike and reported 0 deviations
// for 2 legacy rows and 3 modern ones; the table is refused instead.
func TestAnInvalidUniqueIndexIsNoTargetKey(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Ward (WardSerNum INT PRIMARY KEY, Code VARCHAR(10))", "CREATE TABLE wards (legacy_id bigint, code text)",
		config.BackfillTable{Name: "wards", From: "Ward", Key: "WardSerNum", To: "wards", TargetKey: "legacy_id", Columns: cols("WardSerNum=legacy_id", "Code=code")})
	w.exec(t, "INSERT INTO Ward VALUES (1, 'a'), (2, 'b')")
	w.pg(t, "INSERT INTO wards VALUES (1, 'a'), (1, 'a'), (2, 'b')")
	if _, err := w.modern.Exec(t.Context(), "CREATE UNIQUE INDEX CONCURRENTLY wards_legacy_id ON wards (legacy_id)"); err == nil {
		t.Fatal("the unique index was built over duplicates")
	}
	_, err := backfill.Verify(t.Context(), w.cfg, backfill.VerifyOptions{Log: discard()})
	if want := `wards has no unique index on "legacy_id" alone`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: %v; want an error saying %q", err, want)
	}
}

// TestARowCopiedDuringVerifyHidesNoExtraRow: verify looks for rows
// modern has and legacy lacks only when modern holds more rows than the
// comparison matched. Ward 11, missing when verify counted modern, is
// copied while it runs (here by a check on the value's domain, in the
// first chunk's comparison; in production a dual write or a backfill), so
// it is matched, and the counts agreed although modern also holds ward
// 100, which legacy lacks: verify said 0 deviations.
func TestARowCopiedDuringVerifyHidesNoExtraRow(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.pg(t, "CREATE TABLE fidelity1_arm (armed bool)")
	w.pg(t, `CREATE FUNCTION fidelity1_copy_ward_11() RETURNS bool LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT FROM fidelity1_arm) THEN
				DELETE FROM fidelity1_arm;
				INSERT INTO wards VALUES (11, 7);
			END IF;
			RETURN true;
		END $$`)
	w.pg(t, "CREATE DOMAIN fidelity1_code AS int CHECK (fidelity1_copy_ward_11())")
	w.mapTable(t, "CREATE TABLE Ward (WardSerNum INT PRIMARY KEY, Code INT)", "CREATE TABLE wards (legacy_id bigint UNIQUE, code fidelity1_code)",
		config.BackfillTable{Name: "wards", From: "Ward", Key: "WardSerNum", To: "wards", TargetKey: "legacy_id", Columns: cols("WardSerNum=legacy_id", "Code=code")})
	for i := 1; i <= 11; i++ {
		w.exec(t, "INSERT INTO Ward VALUES (?, 7)", i)
		if i <= 10 {
			w.pg(t, "INSERT INTO wards VALUES ($1, 7)", i)
		}
	}
	w.pg(t, "INSERT INTO wards VALUES (100, 7)")
	w.pg(t, "INSERT INTO fidelity1_arm VALUES (true)")
	d := w.verify(t, backfill.VerifyOptions{Chunk: 5}).Tables[0]
	if w.count(t, "SELECT count(*) FROM fidelity1_arm") != 0 {
		t.Fatal("ward 11 was not copied during the comparison")
	}
	if d.Missing != 0 || d.Extra != 1 || !reflect.DeepEqual(d.ExtraKeys, []string{"100"}) {
		t.Errorf("verify: missing %d, extra %d %v; want ward 100 extra", d.Missing, d.Extra, d.ExtraKeys)
	}
}

// TestDoubleKeysOfAMillionAndMoreAreCopied: the driver writes a DOUBLE
// from 1e6 on with an exponent (1.234567e+06), PostgreSQL's double
// precision without one below 1e15 (1234567); the key checks compared the
// texts, so such a key failed as "would store the key differently" and
// verify called it missing. They are the same value, which reports spell
// as modern does.
func TestDoubleKeysOfAMillionAndMoreAreCopied(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Dose (Amount DOUBLE PRIMARY KEY, V INT)", "CREATE TABLE doses (amount double precision UNIQUE, v int)",
		config.BackfillTable{Name: "doses", From: "Dose", Key: "Amount", To: "doses", TargetKey: "amount", Columns: cols("Amount=amount", "V=v")})
	w.exec(t, "INSERT INTO Dose VALUES (1234567, 1), (0.000001, 2), (1e20, 3), (5, 4), (-98765432.125, 5)")
	if r := w.run(t, backfill.Options{}).Tables[0]; r.Inserted != 5 || r.Failed != 0 {
		t.Errorf("copy: inserted %d, failed %q; want all 5", r.Inserted, failureReasons(r))
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify of the copy: %+v; want no deviation", d.Tables)
	}
	w.pg(t, "UPDATE doses SET amount = 1234568 WHERE amount = 1234567")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; !reflect.DeepEqual(d.MissingKeys, []string{"1234567"}) || !reflect.DeepEqual(d.ExtraKeys, []string{"1234568"}) {
		t.Errorf("verify: missing %v, extra %v; want 1234567 missing and 1234568 extra", d.MissingKeys, d.ExtraKeys)
	}
}
