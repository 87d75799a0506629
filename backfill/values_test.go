package backfill_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

func TestANulByteFailsItsRowNotTheRun(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 50}, nil)
	w.exec(t, "CREATE TABLE Note (NoteSerNum INT PRIMARY KEY, Body TEXT NOT NULL, Secret VARCHAR(20))")
	w.exec(t, "INSERT INTO Note VALUES (1, 'fine', 'a'), (2, CONCAT('before', CHAR(0), 'after'), CONCAT('s', CHAR(0))), (3, 'also fine', 'c')")
	w.pg(t, "CREATE TABLE notes (legacy_id bigint UNIQUE, body text NOT NULL, secret text)")
	notes := config.BackfillTable{Name: "notes", From: "Note", Key: "NoteSerNum", To: "notes", TargetKey: "legacy_id",
		Columns: cols("NoteSerNum=legacy_id", "Body=body", "Secret=secret"), Redact: []string{"secret"}}
	// The notes come first; the tables queued after them must be copied
	// all the same.
	w.cfg.Tables = append([]config.BackfillTable{notes}, w.cfg.Tables...)
	w.cfg.Concurrency = 1

	for run := 1; run <= 2; run++ {
		rep := w.run(t, backfill.Options{})
		n := tableReport(t, rep, "notes")
		if run == 1 && (n.Inserted != 2 || n.Failed != 1) {
			t.Errorf("run %d: notes inserted %d, failed %d; want 2 and 1", run, n.Inserted, n.Failed)
		}
		if want := "column body: contains a NUL byte, which PostgreSQL text cannot hold"; !slices.Contains(failureReasons(n), want) {
			t.Errorf("run %d: reasons %q, want %q", run, failureReasons(n), want)
		}
		if p := tableReport(t, rep, "patients"); run == 1 && p.Inserted != 50 {
			t.Errorf("run %d: the patients queued after the notes: %d inserted, want 50", run, p.Inserted)
		}
	}
	var payload string
	if err := w.modern.QueryRow(context.Background(), "SELECT payload::text FROM strangler_backfill_failures WHERE table_name = 'notes'").Scan(&payload); err != nil {
		t.Fatal(err)
	}
	// The payload describes what jsonb cannot hold, as it does binary
	// values, and still never shows a redacted one.
	if want := `{"body": "<text of 12 bytes with a NUL byte>", "secret": "<redacted>", "legacy_id": "2"}`; payload != want {
		t.Errorf("ledger payload %s, want %s", payload, want)
	}
}

func TestBitColumnsMapToBooleanBitAndBytea(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Flag (FlagSerNum INT PRIMARY KEY, Active BIT(1) NOT NULL, Mask BIT(10), Raw BIT(12), Level BIT(3))",
		"CREATE TABLE flags (legacy_id bigint UNIQUE, active boolean NOT NULL, mask bit(10), raw bytea, level smallint)",
		config.BackfillTable{Name: "flags", From: "Flag", Key: "FlagSerNum", To: "flags", TargetKey: "legacy_id",
			Columns: cols("FlagSerNum=legacy_id", "Active=active", "Mask=mask", "Raw=raw", "Level=level")})
	w.exec(t, "INSERT INTO Flag VALUES (1, b'1', b'1010101010', b'111100001111', b'101'), (2, b'0', b'0', b'0', b'0'), (3, b'1', NULL, NULL, NULL)")

	rep := w.run(t, backfill.Options{})
	if f := rep.Tables[0]; f.Inserted != 3 || f.Failed != 0 {
		t.Fatalf("inserted %d, failed %d (%q); want 3 and 0", f.Inserted, f.Failed, failureReasons(f))
	}
	rows, err := w.modern.Query(context.Background(), "SELECT legacy_id, active, coalesce(mask::text, 'NULL'), coalesce(encode(raw, 'hex'), 'NULL'), coalesce(level, -1) FROM flags ORDER BY legacy_id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, level int64
		var active bool
		var mask, raw string
		if err := rows.Scan(&id, &active, &mask, &raw, &level); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %v %s %s %d", id, active, mask, raw, level))
	}
	want := []string{"1 true 1010101010 0f0f 5", "2 false 0000000000 0000 0", "3 true NULL NULL -1"}
	if !slices.Equal(got, want) {
		t.Errorf("modern rows %q, want %q", got, want)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify after the copy: %+v, want no deviation", d.Tables)
	}
	w.pg(t, "UPDATE flags SET active = false WHERE legacy_id = 3")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 || d.ChangedRows[0].Key != "3" {
		t.Errorf("verify after changing flag 3: %+v, want it changed", d)
	}
}

// TestLossyMappingsGoToTheLedger: a target type that would change a value
// (drop the time of day, round, cut) refuses the row with the reason,
// and verify calls such a copy what it is: not equal.
func TestLossyMappingsGoToTheLedger(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Day DATETIME(6), Amount DECIMAL(34,4), At DATETIME(6), Code VARCHAR(10))",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, day date, amount numeric(32,2), at timestamp(0), code varchar(3))",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: cols("VisitSerNum=legacy_id", "Day=day", "Amount=amount", "At=at", "Code=code")})
	w.exec(t, `INSERT INTO Visit VALUES
		(1, '2024-02-29 00:00:00', 12.5000, '2024-02-29 10:11:12', 'abc'),
		(2, '2024-02-29 10:11:12.123456', NULL, NULL, NULL),
		(3, NULL, 12.3456, NULL, NULL),
		(4, NULL, NULL, '9999-12-31 23:59:59.900000', NULL),
		(5, NULL, NULL, NULL, 'abc  '),
		(6, NULL, NULL, NULL, 'abcd')`)

	rep := w.run(t, backfill.Options{})
	v := rep.Tables[0]
	if v.Inserted != 1 || v.Failed != 5 {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 5", v.Inserted, v.Failed, failureReasons(v))
	}
	for _, want := range []string{
		"column day: date would drop the time of day (lossy: true allows it)",
		"column amount: numeric(32,2) would round it to 2 decimal places (lossy: true allows it)",
		"column at: timestamp(0) without time zone would round it to 0 fractional digits (lossy: true allows it)",
		"column code: character varying(3) would cut it to 3 characters (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(v), want) {
			t.Errorf("reasons %q lack %q", failureReasons(v), want)
		}
	}
	if n := w.count(t, "SELECT count(*) FROM visits"); n != 1 {
		t.Errorf("modern has %d visits, want only the exact one", n)
	}
	// A row that reached modern some other way, with the date alone, is
	// not what legacy holds.
	w.pg(t, "INSERT INTO visits (legacy_id, day) VALUES (2, '2024-02-29')")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	if d.Changed != 1 || d.ChangedRows[0].Key != "2" || d.Missing != 4 || d.MissingFailed != 4 {
		t.Errorf("verify: %+v; want visit 2 changed and 4 missing, all failed in the ledger", d)
	}

	t.Run("lossy: true copies what the type keeps, and verify agrees", func(t *testing.T) {
		for name, c := range w.cfg.Tables[0].Columns {
			if name != "legacy_id" {
				c.Lossy = true
				w.cfg.Tables[0].Columns[name] = c
			}
		}
		v := w.run(t, backfill.Options{}).Tables[0]
		// Visit 2 is in modern already as the lossy mapping has it: only
		// its failure, retried, is read again.
		if v.Failed != 0 || v.Written() != 4 || v.Present != 1 {
			t.Errorf("written %d, present %d, failed %d (%q); want 4 of the refused rows written, visit 2 present", v.Written(), v.Present, v.Failed, failureReasons(v))
		}
		if n := w.count(t, "SELECT count(*) FROM strangler_backfill_failures"); n != 0 {
			t.Errorf("the ledger still holds %d failures", n)
		}
		var got string
		if err := w.modern.QueryRow(context.Background(), `SELECT string_agg(concat_ws(' ', legacy_id, day, amount, at, code), ' | ' ORDER BY legacy_id) FROM visits`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := "1 2024-02-29 12.50 2024-02-29 10:11:12 abc | 2 2024-02-29 | 3 12.35 | 4 10000-01-01 00:00:00 | 5 abc | 6 abc"; got != want {
			t.Errorf("modern holds %q, want %q", got, want)
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want none: the copy is what the lossy mapping makes", d.Tables)
		}
	})
}

func TestDuplicateJSONKeysAreRefusedAndJSONIsComparedByStructure(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Doc (DocSerNum INT PRIMARY KEY, Body JSON)",
		"CREATE TABLE docs (legacy_id bigint UNIQUE, body jsonb)",
		config.BackfillTable{Name: "docs", From: "Doc", Key: "DocSerNum", To: "docs", TargetKey: "legacy_id",
			Columns: cols("DocSerNum=legacy_id", "Body=body")})
	w.exec(t, `INSERT INTO Doc VALUES (1, '{"b": [1, 2.50, 1e2], "a": {"x" : null}}'), (2, '{"dose":1,"dose":2}'),
		(3, '[{"k": "v", "n": {"k": 1, "k": 2}}]'), (4, '  "text"  '), (5, NULL), (6, '{"é": "\\u00e9", "long key first": true, "z": 1}')`)

	rep := w.run(t, backfill.Options{})
	d := rep.Tables[0]
	if d.Inserted != 4 || d.Failed != 2 {
		t.Errorf("inserted %d, failed %d (%q); want 4 and 2", d.Inserted, d.Failed, failureReasons(d))
	}
	if want := "column body: jsonb would keep only the last of a JSON object's keys given twice (lossy: true allows it)"; len(d.Failures) != 1 || d.Failures[0].Reason != want {
		t.Errorf("reasons %q, want %q", failureReasons(d), want)
	}
	// Documents differ from legacy's text in spacing, key order and number
	// spelling, not in structure.
	vr := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	if vr.Changed != 0 || vr.Missing != 2 || vr.MissingFailed != 2 {
		t.Errorf("verify: %+v; want only the 2 refused documents missing", vr)
	}
	w.pg(t, `UPDATE docs SET body = '{"b": [1, 2.5, 100], "a": {"x": null}}' WHERE legacy_id = 1`)
	if vr := w.verify(t, backfill.VerifyOptions{}).Tables[0]; vr.Changed != 1 || vr.ChangedRows[0].Key != "1" {
		t.Errorf("verify after 2.50 became 2.5: %+v, want document 1 changed", vr)
	}

	t.Run("lossy: true keeps the last of a duplicate key, and verify agrees", func(t *testing.T) {
		w.cfg.Tables[0].Columns["body"] = config.Column{From: "Body", Lossy: true}
		if d := w.run(t, backfill.Options{}).Tables[0]; d.Failed != 0 || d.Written() != 3 {
			t.Errorf("written %d, failed %d; want the 2 refused documents and the changed one written", d.Written(), d.Failed)
		}
		if n := w.count(t, `SELECT count(*) FROM docs WHERE legacy_id = 2 AND body = '{"dose": 2}'`); n != 1 {
			t.Error(`document 2 is not {"dose": 2} in modern`)
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want none", d.Tables)
		}
	})
}

// TestDatetimesAreWallTimeInTheSourceTimeZone: a DATETIME holds no zone;
// source_time_zone says which one its wall time is in, for the backfill
// and verify alike. A TIMESTAMP holds its instant already.
func TestDatetimesAreWallTimeInTheSourceTimeZone(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Dose (DoseSerNum INT PRIMARY KEY, GivenAt DATETIME(6), LoggedAt TIMESTAMP(6) NULL, Day DATETIME)",
		"CREATE TABLE doses (legacy_id bigint UNIQUE, given_at timestamptz, logged_at timestamptz, day timestamp)",
		config.BackfillTable{Name: "doses", From: "Dose", Key: "DoseSerNum", To: "doses", TargetKey: "legacy_id",
			Columns: cols("DoseSerNum=legacy_id", "GivenAt=given_at", "LoggedAt=logged_at", "Day=day")})
	// The monolith's sessions ran at +05:30.
	conn := w.legacyConn(t)
	if _, err := conn.ExecContext(context.Background(), "SET time_zone = '+05:30'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "INSERT INTO Dose VALUES (1, '2024-03-10 08:00:00.250000', '2024-03-10 08:00:00.250000', '2024-03-10 08:00:00')"); err != nil {
		t.Fatal(err)
	}
	w.cfg.SourceTimeZone = "Asia/Kolkata"
	if d := w.run(t, backfill.Options{}).Tables[0]; d.Inserted != 1 {
		t.Fatalf("inserted %d, want 1 (%q)", d.Inserted, failureReasons(d))
	}
	var given, logged, day string
	err := w.modern.QueryRow(context.Background(), `SELECT (given_at AT TIME ZONE 'UTC')::text, (logged_at AT TIME ZONE 'UTC')::text, day::text FROM doses`).Scan(&given, &logged, &day)
	if err != nil {
		t.Fatal(err)
	}
	if given != "2024-03-10 02:30:00.25" || logged != "2024-03-10 02:30:00.25" || day != "2024-03-10 08:00:00" {
		t.Errorf("in UTC: given %s, logged %s, day %s; want both instants 02:30:00.25 and the wall time 08:00 kept", given, logged, day)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want none", d.Tables)
	}
	w.cfg.SourceTimeZone = ""
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 || len(d.ChangedRows[0].Columns) != 1 || d.ChangedRows[0].Columns[0].Column != "given_at" {
		t.Errorf("verify taking DATETIME as UTC: %+v, want given_at changed", d)
	}
}

func TestFloatsAndDoublesRoundTripThroughVerify(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Measure (MeasureSerNum INT PRIMARY KEY, F FLOAT, D DOUBLE)",
		"CREATE TABLE measures (legacy_id bigint UNIQUE, f real, d double precision)",
		config.BackfillTable{Name: "measures", From: "Measure", Key: "MeasureSerNum", To: "measures", TargetKey: "legacy_id",
			Columns: cols("MeasureSerNum=legacy_id", "F=f", "D=d")})
	r := rand.New(rand.NewPCG(7, 19))
	var values []string
	for id := 1; id <= 3000; id++ {
		f := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
		d := r.NormFloat64() * math.Pow(10, float64(r.IntN(600)-300))
		values = append(values, fmt.Sprintf("(%d, %v, %v)", id, f, d))
	}
	values = append(values, "(3001, 590.7676, 3.41e-11)", "(3002, 16777217, 5e-324)", "(3003, -3.40282e38, 1.7976931348623157e308)", "(3004, 1.17549435e-38, 2.2250738585072014e-308)", "(3005, NULL, NULL)")
	w.exec(t, "INSERT INTO Measure VALUES "+strings.Join(values, ", "))

	if rep := w.run(t, backfill.Options{}); rep.Tables[0].Inserted != 3005 {
		t.Fatalf("inserted %d, want 3005 (%q)", rep.Tables[0].Inserted, failureReasons(rep.Tables[0]))
	}
	// MySQL's own text for this FLOAT is 590.768, another float.
	var real, double string
	if err := w.modern.QueryRow(context.Background(), "SELECT f::text, d::text FROM measures WHERE legacy_id = 3001").Scan(&real, &double); err != nil {
		t.Fatal(err)
	}
	if real != "590.7676" || double != "3.41e-11" {
		t.Errorf("modern holds %s and %s, want 590.7676 and 3.41e-11", real, double)
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 0 || d.Missing != 0 || d.Extra != 0 {
		t.Errorf("verify of an exact copy: %d changed (e.g. %+v), %d missing, %d extra; want none", d.Changed, d.ChangedRows, d.Missing, d.Extra)
	}
	// One step of float precision, and one of double precision, is a
	// difference.
	w.pg(t, "UPDATE measures SET f = 590.76764 WHERE legacy_id = 3001")
	w.pg(t, "UPDATE measures SET d = 3.4100000000000004e-11 WHERE legacy_id = 3002")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	var keys []string
	for _, c := range d.ChangedRows {
		keys = append(keys, c.Key)
	}
	if d.Changed != 2 || !slices.Equal(keys, []string{"3001", "3002"}) {
		t.Errorf("verify after changing one float and one double: changed %v, want 3001 and 3002", keys)
	}

	t.Run("a re-run copies changed floats exactly", func(t *testing.T) {
		w.exec(t, "UPDATE Measure SET F = 16777216 WHERE MeasureSerNum = 1")
		w.run(t, backfill.Options{})
		var real string
		if err := w.modern.QueryRow(context.Background(), "SELECT f::text FROM measures WHERE legacy_id = 1").Scan(&real); err != nil {
			t.Fatal(err)
		}
		// MySQL's text would say 16777200.
		if real != "1.6777216e+07" {
			t.Errorf("modern holds %s, want 1.6777216e+07", real)
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify after the re-run: %+v", d.Tables)
		}
	})
}

// TestFailureReasonsNeverHoldRedactedValues: PostgreSQL's messages quote
// the value they refuse, and a trigger's message says what it likes; the
// ledger and the report must show neither for a redacted column.
func TestFailureReasonsNeverHoldRedactedValues(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Person (PersonSerNum INT PRIMARY KEY, Ssn VARCHAR(40), Name VARCHAR(40))",
		"CREATE TABLE persons (legacy_id bigint UNIQUE, ssn bigint, name text)",
		config.BackfillTable{Name: "persons", From: "Person", Key: "PersonSerNum", To: "persons", TargetKey: "legacy_id",
			Columns: cols("PersonSerNum=legacy_id", "Ssn=ssn", "Name=name"), Redact: []string{"ssn", "name"}})
	w.pg(t, `CREATE FUNCTION refuse_who() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.name LIKE 'Who%' THEN RAISE EXCEPTION 'patient % may not be copied', NEW.name; END IF; RETURN NEW; END $$`)
	w.pg(t, "CREATE TRIGGER refuse_who BEFORE INSERT OR UPDATE ON persons FOR EACH ROW EXECUTE FUNCTION refuse_who()")
	w.exec(t, `INSERT INTO Person VALUES (1, '12"Dr. Who', 'Ann'), (2, '123', 'Whoever Smith'), (3, '456', 'Bob')`)

	rep := w.run(t, backfill.Options{})
	p := rep.Tables[0]
	if p.Inserted != 1 || p.Failed != 2 {
		t.Errorf("inserted %d, failed %d; want 1 and 2", p.Inserted, p.Failed)
	}
	var ledger []string
	rows, err := w.modern.Query(context.Background(), "SELECT reason || ' ' || payload::text FROM strangler_backfill_failures")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		ledger = append(ledger, s)
	}
	for _, s := range append(ledger, failureReasons(p)...) {
		for _, secret := range []string{"Dr", "Who", "12", "Smith"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows part of a redacted value (%q)", s, secret)
			}
		}
	}
	want := []string{"column ssn: not a valid bigint (SQLSTATE 22P02)", "refused by a trigger or function (SQLSTATE P0001)"}
	if got := failureReasons(p); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("reasons %q, want %q", got, want)
	}
}

// TestFailureReasonsHoldNoValueThatHoldsQuotes: PostgreSQL quotes the
// value it refuses without escaping it, so cutting the message between
// one pair of quotes left the rest of a value that holds quotes in the
// report, the ledger's reason and the HTML report: `column num: invalid
// input syntax for type integerCanary`. Reports show no column's value,
// redacted or not.
func TestFailureReasonsHoldNoValueThatHoldsQuotes(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.pg(t, "CREATE TYPE mood AS ENUM ('calm')")
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Num VARCHAR(80), Seen VARCHAR(80), Mood VARCHAR(80))",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, num int, seen date, mood mood)",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: cols("VisitSerNum=legacy_id", "Num=num", "Seen=seen", "Mood=mood")})
	w.exec(t, `INSERT INTO Visit VALUES
		(1, 'Zelda "Canary" MRN7730019', NULL, NULL),
		(2, NULL, '1901-02-03 "Zelda" Canary', NULL),
		(3, NULL, NULL, '"Zelda" "Canary"'),
		(4, '7', '1901-02-03', 'calm')`)

	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 1 || tr.Failed != 3 {
		t.Errorf("inserted %d, failed %d; want 1 and 3", tr.Inserted, tr.Failed)
	}
	want := []string{
		"column mood: invalid input value for enum mood",
		"column num: invalid input syntax for type integer",
		"column seen: invalid input syntax for type date",
	}
	if got := slices.Sorted(slices.Values(failureReasons(tr))); !slices.Equal(got, want) {
		t.Errorf("reasons %q, want %q", got, want)
	}
	var html strings.Builder
	if err := (&backfill.Report{Tables: []backfill.TableReport{tr}}).WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{"the HTML report": html.String()}
	rows, err := w.modern.Query(context.Background(), "SELECT reason FROM strangler_backfill_failures")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		shown["the ledger's reason "+s] = s
	}
	for where, s := range shown {
		for _, canary := range []string{"Zelda", "Canary", "7730019"} {
			if strings.Contains(s, canary) {
				t.Errorf("%s shows part of a value (%q)", where, canary)
			}
		}
	}
}

// TestValuesOfTypesWithASyntaxGoToTheLedger: tsvector and tsquery refuse
// a value with a syntax error (SQLSTATE 42601), not a data exception, so
// one such row stopped the whole table, and the table's error, in the
// report, the log and the command's output, quoted the value: `write
// notes: copy: ERROR: syntax error in tsvector: "Zelda:::Canary"`. The
// row goes to the ledger, named by its column, and the run goes on.
func TestValuesOfTypesWithASyntaxGoToTheLedger(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Note (NoteSerNum INT PRIMARY KEY, Words VARCHAR(80), Search VARCHAR(80))",
		"CREATE TABLE notes (legacy_id bigint UNIQUE, words tsvector, search tsquery)",
		config.BackfillTable{Name: "notes", From: "Note", Key: "NoteSerNum", To: "notes", TargetKey: "legacy_id",
			Columns: cols("NoteSerNum=legacy_id", "Words=words", "Search=search"), Redact: []string{"search"}})
	w.exec(t, `INSERT INTO Note VALUES (1, 'Zelda:::Canary', NULL), (2, NULL, 'Zelda & '), (3, 'seen:1 mrn', 'seen & mrn')`)

	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Error != "" || tr.Inserted != 1 || tr.Failed != 2 {
		t.Errorf("error %q, inserted %d, failed %d; want no error, 1 and 2", tr.Error, tr.Inserted, tr.Failed)
	}
	want := []string{"column search: not a valid tsquery (SQLSTATE 42601)", "column words: syntax error in tsvector"}
	if got := slices.Sorted(slices.Values(failureReasons(tr))); !slices.Equal(got, want) {
		t.Errorf("reasons %q, want %q", got, want)
	}
}

// TestNumbersAFloatCannotHoldAreRefused: a DECIMAL or an integer going
// into real or double precision is a decimal number; when the float's
// text would be another number (9007199254740993 reads back …992), the
// row goes to the ledger, and verify does not call such a copy equal.
func TestNumbersAFloatCannotHoldAreRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Lab (LabSerNum INT PRIMARY KEY, Result DECIMAL(65,30), Count BIGINT, Small BIGINT UNSIGNED)",
		"CREATE TABLE labs (legacy_id bigint UNIQUE, result double precision, count double precision, small real)",
		config.BackfillTable{Name: "labs", From: "Lab", Key: "LabSerNum", To: "labs", TargetKey: "legacy_id",
			Columns: cols("LabSerNum=legacy_id", "Result=result", "Count=count", "Small=small")})
	w.exec(t, `INSERT INTO Lab VALUES
		(1, 0.1, 9007199254740992, 16777216),
		(2, 12345678901234567890.0123456789, NULL, NULL),
		(3, NULL, 9007199254740993, NULL),
		(4, NULL, NULL, 16777217),
		(5, -2.5e-10, -1, 0)`)

	v := w.run(t, backfill.Options{}).Tables[0]
	if v.Inserted != 2 || v.Failed != 3 {
		t.Errorf("inserted %d, failed %d (%q); want 2 and 3", v.Inserted, v.Failed, failureReasons(v))
	}
	for _, want := range []string{
		"column result: double precision would round it to double precision (lossy: true allows it)",
		"column count: double precision would round it to double precision (lossy: true allows it)",
		"column small: real would round it to single precision (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(v), want) {
			t.Errorf("reasons %q lack %q", failureReasons(v), want)
		}
	}
	// Rows an older backfill rounded.
	w.pg(t, "INSERT INTO labs (legacy_id, result, count, small) VALUES (2, 12345678901234567890.0123456789, NULL, NULL), (3, NULL, 9007199254740993, NULL)")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	var changed []string
	for _, c := range d.ChangedRows {
		changed = append(changed, c.Key)
	}
	if !slices.Equal(changed, []string{"2", "3"}) || d.Missing != 1 {
		t.Errorf("verify: changed %v, %d missing; want 2 and 3 changed, 4 missing", changed, d.Missing)
	}

	t.Run("lossy: true copies the nearest float, and verify agrees", func(t *testing.T) {
		for name, c := range w.cfg.Tables[0].Columns {
			if name != "legacy_id" {
				c.Lossy = true
				w.cfg.Tables[0].Columns[name] = c
			}
		}
		if v := w.run(t, backfill.Options{}).Tables[0]; v.Failed != 0 {
			t.Errorf("failed %d (%q), want none", v.Failed, failureReasons(v))
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want none", d.Tables)
		}
	})
}

// TestCharColumnsCompareAsTheirPaddedValue: 'abc  ' and 'abc' are one
// char(5) value; verify must agree with the backfill, which leaves such a
// copy alone, instead of reporting it changed on every run.
func TestCharColumnsCompareAsTheirPaddedValue(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Ward (WardSerNum INT PRIMARY KEY, Code VARCHAR(10))",
		"CREATE TABLE wards (legacy_id bigint UNIQUE, code char(5))",
		config.BackfillTable{Name: "wards", From: "Ward", Key: "WardSerNum", To: "wards", TargetKey: "legacy_id",
			Columns: cols("WardSerNum=legacy_id", "Code=code")})
	w.exec(t, "INSERT INTO Ward VALUES (1, 'abc  '), (2, 'abc'), (3, ' x'), (4, ''), (5, 'abcdef')")

	if v := w.run(t, backfill.Options{}).Tables[0]; v.Inserted != 4 || v.Failed != 1 {
		t.Errorf("inserted %d, failed %d (%q); want 4 and 1", v.Inserted, v.Failed, failureReasons(v))
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 0 || d.Missing != 1 {
		t.Errorf("verify of the copy: %d changed %+v, %d missing; want none changed, ward 5 missing", d.Changed, d.ChangedRows, d.Missing)
	}
	if v := w.run(t, backfill.Options{Restart: true}).Tables[0]; v.Written() != 0 || v.Present != 4 {
		t.Errorf("restart wrote %d, found %d present; want 0 and 4", v.Written(), v.Present)
	}
	w.pg(t, "UPDATE wards SET code = ' abc' WHERE legacy_id = 1")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 || d.ChangedRows[0].Key != "1" {
		t.Errorf("verify after a leading space: %+v, want ward 1 changed", d.ChangedRows)
	}
}

// TestADatetimeTheZoneSkipsIsRefused: 02:30 on the night New York's
// clocks go forward never happened there; PostgreSQL would take it as
// 03:30 and the copy would read back an hour later. The row goes to the
// ledger, and verify calls such a copy changed. A wall time that occurs
// twice is copied as the later instant.
func TestADatetimeTheZoneSkipsIsRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Dose (DoseSerNum INT PRIMARY KEY, GivenAt DATETIME(6))",
		"CREATE TABLE doses (legacy_id bigint UNIQUE, given_at timestamptz)",
		config.BackfillTable{Name: "doses", From: "Dose", Key: "DoseSerNum", To: "doses", TargetKey: "legacy_id",
			Columns: cols("DoseSerNum=legacy_id", "GivenAt=given_at")})
	w.exec(t, "INSERT INTO Dose VALUES (1, '2024-03-10 01:59:59.999999'), (2, '2024-03-10 02:30:00'), (3, '2024-03-10 03:00:00'), (4, '2024-11-03 01:30:00')")
	w.cfg.SourceTimeZone = "America/New_York"

	d := w.run(t, backfill.Options{}).Tables[0]
	want := "column given_at: timestamp with time zone would move it: America/New_York skips that wall time (clocks go forward) (lossy: true allows it)"
	if d.Inserted != 3 || d.Failed != 1 || d.Failures[0].Reason != want {
		t.Errorf("inserted %d, failed %d (%q); want 3 and 1: %q", d.Inserted, d.Failed, failureReasons(d), want)
	}
	var got string
	if err := w.modern.QueryRow(context.Background(), "SELECT string_agg((given_at AT TIME ZONE 'UTC')::text, ' | ' ORDER BY legacy_id) FROM doses").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "2024-03-10 06:59:59.999999 | 2024-03-10 07:00:00 | 2024-11-03 06:30:00"; got != want {
		t.Errorf("modern holds %s (UTC), want %s", got, want)
	}
	// The row as a copy without the check makes it: 02:30 taken as 03:30.
	w.pg(t, "INSERT INTO doses VALUES (2, '2024-03-10 07:30:00+00')")
	if v := w.verify(t, backfill.VerifyOptions{}).Tables[0]; v.Changed != 1 || v.ChangedRows[0].Key != "2" {
		t.Errorf("verify: %+v, want dose 2 changed", v)
	}

	t.Run("lossy: true takes PostgreSQL's reading, and verify agrees", func(t *testing.T) {
		w.cfg.Tables[0].Columns["given_at"] = config.Column{From: "GivenAt", Lossy: true}
		if d := w.run(t, backfill.Options{}).Tables[0]; d.Failed != 0 {
			t.Errorf("failed %d (%q), want none", d.Failed, failureReasons(d))
		}
		if v := w.verify(t, backfill.VerifyOptions{}); v.Deviations() != 0 {
			t.Errorf("verify: %+v, want none", v.Tables)
		}
	})
}

// TestLatin1TextIntoByteaVerifiesAsCopied: the backfill reads text in
// utf8mb4, so a latin1 'é' arrives in bytea as its two UTF-8 bytes; verify
// must hash it as those, not as latin1's one byte, or the copy differs on
// every run while the backfill finds it present.
func TestLatin1TextIntoByteaVerifiesAsCopied(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Letter (LetterSerNum INT PRIMARY KEY, Body TEXT CHARACTER SET latin1, Scan VARBINARY(10))",
		"CREATE TABLE letters (legacy_id bigint UNIQUE, body bytea, scan bytea)",
		config.BackfillTable{Name: "letters", From: "Letter", Key: "LetterSerNum", To: "letters", TargetKey: "legacy_id",
			Columns: cols("LetterSerNum=legacy_id", "Body=body", "Scan=scan")})
	w.exec(t, "INSERT INTO Letter VALUES (1, _latin1 X'636166E92080', X'E980FF'), (2, 'plain', NULL)")

	if d := w.run(t, backfill.Options{}).Tables[0]; d.Inserted != 2 {
		t.Fatalf("inserted %d (%q), want 2", d.Inserted, failureReasons(d))
	}
	if n := w.count(t, `SELECT count(*) FROM letters WHERE legacy_id = 1 AND body = convert_to('café €', 'UTF8') AND scan = '\xe980ff'`); n != 1 {
		t.Error("letter 1 is not 'café €' in UTF-8 with its scan's bytes in modern")
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify of the copy: %+v, want none", d.Tables)
	}
	w.pg(t, `UPDATE letters SET scan = '\xe980fe' WHERE legacy_id = 1`)
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 || len(d.ChangedRows[0].Columns) != 1 || d.ChangedRows[0].Columns[0].Column != "scan" {
		t.Errorf("verify after changing a byte of the scan: %+v, want letter 1's scan changed", d.ChangedRows)
	}
}

// TestADateIsMidnightInTheSourceTimeZone: a DATE going into timestamptz is
// midnight where legacy's dates are, as a DATETIME is wall time there;
// taken as UTC, 10 March reads as 9 March in New York. A midnight the
// zone skips (Santiago, 8 September 2024) goes to the ledger.
func TestADateIsMidnightInTheSourceTimeZone(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Day DATE)",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, day timestamptz)",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: cols("VisitSerNum=legacy_id", "Day=day")})
	w.exec(t, "INSERT INTO Visit VALUES (1, '2024-03-10'), (2, '2024-09-08')")
	w.cfg.SourceTimeZone = "America/Santiago"

	d := w.run(t, backfill.Options{}).Tables[0]
	want := "column day: timestamp with time zone would move it: America/Santiago skips that wall time (clocks go forward) (lossy: true allows it)"
	if d.Inserted != 1 || d.Failed != 1 || d.Failures[0].Reason != want {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 1: %q", d.Inserted, d.Failed, failureReasons(d), want)
	}
	var got string
	if err := w.modern.QueryRow(context.Background(), "SELECT (day AT TIME ZONE 'America/Santiago')::text FROM visits WHERE legacy_id = 1").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "2024-03-10 00:00:00" {
		t.Errorf("visit 1 is %s in Santiago, want 2024-03-10 00:00:00", got)
	}
	if v := w.verify(t, backfill.VerifyOptions{}).Tables[0]; v.Changed != 0 || v.Missing != 1 {
		t.Errorf("verify: %+v, want visit 2 missing and nothing changed", v)
	}
	w.pg(t, "UPDATE visits SET day = '2024-03-10 00:00:00+00' WHERE legacy_id = 1")
	if v := w.verify(t, backfill.VerifyOptions{}).Tables[0]; v.Changed != 1 {
		t.Errorf("verify of midnight UTC: %+v, want visit 1 changed", v)
	}
}

// TestADomainIsCheckedAsTheTypeUnderIt: a value cast to a domain over
// varchar(3) or numeric(5,2) is cut or rounded as by that type, silently;
// the checks must see the type under the domain, and the domain's own
// constraint still applies.
func TestADomainIsCheckedAsTheTypeUnderIt(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.pg(t, "CREATE DOMAIN ward_code AS varchar(3) CHECK (VALUE <> 'bad')")
	w.pg(t, "CREATE DOMAIN dose AS numeric(5,2)")
	w.pg(t, "CREATE DOMAIN strict_dose AS dose CHECK (VALUE >= 0)")
	w.mapTable(t, "CREATE TABLE Order_ (OrderSerNum INT PRIMARY KEY, Ward VARCHAR(10), Dose DECIMAL(10,4))",
		"CREATE TABLE orders (legacy_id bigint UNIQUE, ward ward_code, dose strict_dose)",
		config.BackfillTable{Name: "orders", From: "Order_", Key: "OrderSerNum", To: "orders", TargetKey: "legacy_id",
			Columns: cols("OrderSerNum=legacy_id", "Ward=ward", "Dose=dose")})
	w.exec(t, "INSERT INTO Order_ VALUES (1, 'abc', 1.2500), (2, 'abcd', NULL), (3, NULL, 1.2345), (4, 'bad', NULL), (5, NULL, -1)")

	d := w.run(t, backfill.Options{}).Tables[0]
	if d.Inserted != 1 || d.Failed != 4 {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 4", d.Inserted, d.Failed, failureReasons(d))
	}
	for _, want := range []string{
		"column ward: ward_code would cut it to 3 characters (lossy: true allows it)",
		"column dose: strict_dose would round it to 2 decimal places (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(d), want) {
			t.Errorf("reasons %q lack %q", failureReasons(d), want)
		}
	}
	// Rows a copy without the checks makes: cut and rounded.
	w.pg(t, "INSERT INTO orders VALUES (2, 'abc', NULL), (3, NULL, 1.23)")
	v := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	var changed []string
	for _, c := range v.ChangedRows {
		changed = append(changed, c.Key)
	}
	if !slices.Equal(changed, []string{"2", "3"}) {
		t.Errorf("verify: changed %v, want orders 2 and 3", changed)
	}
}

// TestBitsTooWideForTheTargetAreRefused: MySQL's LPAD and PostgreSQL's
// cast from text both cut a bit string to fit, and the cast pads bit(n)
// on the right ('101' becomes 10100); each would change the number.
func TestBitsTooWideForTheTargetAreRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Flag (FlagSerNum INT PRIMARY KEY, Mask BIT(10), Wide BIT(10), Typed VARCHAR(10))",
		"CREATE TABLE flags (legacy_id bigint UNIQUE, mask bit(5), wide bit varying(5), typed bit(5))",
		config.BackfillTable{Name: "flags", From: "Flag", Key: "FlagSerNum", To: "flags", TargetKey: "legacy_id",
			Columns: cols("FlagSerNum=legacy_id", "Mask=mask", "Wide=wide", "Typed=typed")})
	w.exec(t, "INSERT INTO Flag VALUES (1, b'11', b'11', '00011'), (2, b'1111100000', NULL, NULL), (3, NULL, b'1111100000', NULL), (4, NULL, NULL, '101')")

	d := w.run(t, backfill.Options{}).Tables[0]
	if d.Inserted != 1 || d.Failed != 3 {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 3", d.Inserted, d.Failed, failureReasons(d))
	}
	for _, want := range []string{
		"column mask: bit(5) would cut it to 5 bits (lossy: true allows it)",
		"column wide: bit varying(5) would cut it to 5 bits (lossy: true allows it)",
		"column typed: bit(5) would pad it to 5 bits on the right (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(d), want) {
			t.Errorf("reasons %q lack %q", failureReasons(d), want)
		}
	}
	if n := w.count(t, "SELECT count(*) FROM flags WHERE mask = B'00011' AND wide = B'11' AND typed = B'00011'"); n != 1 {
		t.Error("flag 1 is not 00011, 11, 00011 in modern")
	}
	if v := w.verify(t, backfill.VerifyOptions{}).Tables[0]; v.Changed != 0 || v.Missing != 3 || v.MissingFailed != 3 {
		t.Errorf("verify: %+v, want the 3 refused flags missing", v)
	}
}

// TestADatetimeIntoTimeIsRefused: PostgreSQL's time takes a whole
// DATETIME and keeps the time of day alone, as date keeps the day.
func TestADatetimeIntoTimeIsRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Slot (SlotSerNum INT PRIMARY KEY, StartsAt DATETIME, Opens TIME)",
		"CREATE TABLE slots (legacy_id bigint UNIQUE, starts_at time, opens time)",
		config.BackfillTable{Name: "slots", From: "Slot", Key: "SlotSerNum", To: "slots", TargetKey: "legacy_id",
			Columns: cols("SlotSerNum=legacy_id", "StartsAt=starts_at", "Opens=opens")})
	w.exec(t, "INSERT INTO Slot VALUES (1, NULL, '08:30:00'), (2, '2024-01-01 10:00:00', NULL)")

	d := w.run(t, backfill.Options{}).Tables[0]
	want := "column starts_at: time without time zone would drop the date (lossy: true allows it)"
	if d.Inserted != 1 || d.Failed != 1 || d.Failures[0].Reason != want {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 1: %q", d.Inserted, d.Failed, failureReasons(d), want)
	}
	w.pg(t, "INSERT INTO slots VALUES (2, '10:00:00', NULL)")
	if v := w.verify(t, backfill.VerifyOptions{}).Tables[0]; v.Changed != 1 || v.ChangedRows[0].Key != "2" {
		t.Errorf("verify: %+v, want slot 2 changed", v)
	}
}

// TestAValueBeyondATargetLimitFailsItsRowNotTheTable: a JSON document
// nested deeper than PostgreSQL's stack allows (54001), or a value too
// big for a btree index (54000), is one row's fault; it must go to the
// ledger like any refused value, not stop the table.
func TestAValueBeyondATargetLimitFailsItsRowNotTheTable(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Form (FormSerNum INT PRIMARY KEY, Answers LONGTEXT, Code TEXT)",
		"CREATE TABLE forms (legacy_id bigint UNIQUE, answers jsonb, code text UNIQUE)",
		config.BackfillTable{Name: "forms", From: "Form", Key: "FormSerNum", To: "forms", TargetKey: "legacy_id",
			Columns: cols("FormSerNum=legacy_id", "Answers=answers", "Code=code")})
	w.exec(t, "INSERT INTO Form VALUES (1, '[1]', 'a'), (2, CONCAT(REPEAT('[', 100000), REPEAT(']', 100000)), 'b'), (3, NULL, 'c')")
	w.exec(t, "INSERT INTO Form SELECT 4, NULL, (SELECT GROUP_CONCAT(SHA2(seq, 256) SEPARATOR '') FROM seq_1_to_100)")
	w.exec(t, "INSERT INTO Form VALUES (5, '{}', 'e')")

	d := w.run(t, backfill.Options{}).Tables[0]
	if d.Inserted != 3 || d.Failed != 2 {
		t.Errorf("inserted %d, failed %d (%q); want 3 and 2", d.Inserted, d.Failed, failureReasons(d))
	}
	if want := "column answers: stack depth limit exceeded"; !slices.Contains(failureReasons(d), want) {
		t.Errorf("reasons %q lack %q", failureReasons(d), want)
	}
	v := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	if !slices.Equal(v.MissingKeys, []string{"2", "4"}) || v.MissingFailed != 2 || v.Changed != 0 {
		t.Errorf("verify: %+v, want forms 2 and 4 missing, failed in the ledger", v)
	}
}

// TestNullIfEmptyKeepsSpaces: null_if_empty makes an empty string NULL;
// a value of spaces is not empty, though MySQL's PAD SPACE collations
// call the two equal.
func TestNullIfEmptyKeepsSpaces(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Note (NoteSerNum INT PRIMARY KEY, Body VARCHAR(10))",
		"CREATE TABLE notes (legacy_id bigint UNIQUE, body text)",
		config.BackfillTable{Name: "notes", From: "Note", Key: "NoteSerNum", To: "notes", TargetKey: "legacy_id",
			Columns: map[string]config.Column{"legacy_id": {From: "NoteSerNum"}, "body": {From: "Body", Transform: []config.Transform{config.TransformNullIfEmpty}}}})
	w.exec(t, "INSERT INTO Note VALUES (1, ''), (2, '   '), (3, NULL), (4, 'x')")
	w.run(t, backfill.Options{})
	var got string
	if err := w.modern.QueryRow(context.Background(), "SELECT string_agg(coalesce(quote_literal(body), 'NULL'), ', ' ORDER BY legacy_id) FROM notes").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "NULL, '   ', NULL, 'x'"; got != want {
		t.Errorf("modern holds %s, want %s", got, want)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want none", d.Tables)
	}
}

// TestTextIsReadAsUTF8WhateverTheSourceURLAsks: a legacy URL with
// ?charset=latin1, common in older applications' settings, would have
// MySQL send '?' for every character latin1 lacks; the backfill reads
// utf8mb4 whatever the URL says.
func TestTextIsReadAsUTF8WhateverTheSourceURLAsks(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	for _, params := range []string{"?charset=latin1", "?character_set_results=latin1"} {
		w.cfg = w.config(t, map[string]string{"LEGACY_DSN": w.legacyURL + params})
		w.cfg.Tables = nil
		if params == "?charset=latin1" {
			w.mapTable(t, "CREATE TABLE Note (NoteSerNum INT PRIMARY KEY, Body VARCHAR(20))",
				"CREATE TABLE notes (legacy_id bigint UNIQUE, body text)",
				config.BackfillTable{Name: "notes", From: "Note", Key: "NoteSerNum", To: "notes", TargetKey: "legacy_id", Columns: cols("NoteSerNum=legacy_id", "Body=body")})
			w.exec(t, "INSERT INTO Note VALUES (1, 'ok 😀'), (2, 'Zoë')")
		} else {
			w.cfg.Tables = []config.BackfillTable{{Name: "notes", From: "Note", Key: "NoteSerNum", To: "notes", TargetKey: "legacy_id", Columns: cols("NoteSerNum=legacy_id", "Body=body")}}
		}
		if d := w.run(t, backfill.Options{Restart: true}).Tables[0]; d.Failed != 0 {
			t.Errorf("%s: failed %d (%q), want none", params, d.Failed, failureReasons(d))
		}
		var got string
		if err := w.modern.QueryRow(context.Background(), "SELECT string_agg(body, ' | ' ORDER BY legacy_id) FROM notes").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := "ok 😀 | Zoë"; got != want {
			t.Errorf("%s: modern holds %q, want %q", params, got, want)
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("%s: verify: %+v, want none", params, d.Tables)
		}
	}
}

// TestFloatsCompareExactlyWhateverTheTargetDatabaseSays: with
// extra_float_digits = 0 (the default before PostgreSQL 12, still set on
// some databases and roles) a float's text has 15 digits, and two doubles
// one step apart read alike; verify must still see them differ. The
// setting comes in the target's URL here: the test server's database is
// shared.
func TestFloatsCompareExactlyWhateverTheTargetDatabaseSays(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.cfg = w.config(t, map[string]string{"MODERN_DSN": w.modernDSN + "&extra_float_digits=0"})
	w.mapTable(t, "CREATE TABLE Measure (MeasureSerNum INT PRIMARY KEY, D DOUBLE)",
		"CREATE TABLE measures (legacy_id bigint UNIQUE, d double precision)",
		config.BackfillTable{Name: "measures", From: "Measure", Key: "MeasureSerNum", To: "measures", TargetKey: "legacy_id",
			Columns: cols("MeasureSerNum=legacy_id", "D=d")})
	w.exec(t, "INSERT INTO Measure VALUES (1, 0.1), (2, 0.30000000000000004)")
	w.run(t, backfill.Options{})
	if n := w.count(t, "SELECT count(*) FROM measures WHERE d = 0.30000000000000004::float8"); n != 1 {
		t.Errorf("measure 2 is not 0.30000000000000004 in modern")
	}
	w.pg(t, "UPDATE measures SET d = 0.10000000000000002::float8 WHERE legacy_id = 1")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 || d.ChangedRows[0].Key != "1" {
		t.Errorf("verify: %+v, want measure 1 changed by one step", d)
	}
	if d := w.run(t, backfill.Options{}).Tables[0]; d.Updated != 1 {
		t.Errorf("a re-run updated %d rows, want measure 1", d.Updated)
	}
}
