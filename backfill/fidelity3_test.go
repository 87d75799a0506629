package backfill_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestTextTimesIntoTimestamptzAreInSourceTimeZone: a date and time an
// application wrote as text is a wall time in its zone, as a DATETIME
// is; it was read in UTC whatever source_time_zone said (10:00 in New
// York arrived as 10:00 UTC, silently, and verify called it equal).
// Text giving its own offset keeps it, a wall time the zone skips is
// refused, and a TIMESTAMP made text by a transform is still the
// instant in UTC it was read as.
func TestTextTimesIntoTimestamptzAreInSourceTimeZone(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Said VARCHAR(40), Stamp TIMESTAMP(3) NULL, Wall DATETIME NULL)",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, said timestamptz, stamp timestamptz, wall timestamptz)",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: map[string]config.Column{"legacy_id": {From: "VisitSerNum"}, "said": {From: "Said"}, "wall": {From: "Wall"},
				"stamp": {From: "Stamp", Transform: []config.Transform{config.TransformTrim}}}})
	w.cfg.SourceTimeZone = "America/New_York"
	conn := w.legacyConn(t)
	for _, q := range []string{"SET SESSION time_zone = '+00:00'", `INSERT INTO Visit VALUES
		(1, '2024-03-10 10:00:00', '2024-03-10 10:00:00.250', '2024-03-10 10:00:00'),
		(2, '2024-01-15T10:00', NULL, NULL),
		(3, '2024-03-10 10:00:00+05:30', NULL, NULL),
		(4, 'infinity', NULL, NULL),
		(5, '2024-03-10', NULL, NULL),
		(6, '2024-03-10 02:30:00', NULL, NULL)`} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 5 || tr.Failed != 1 {
		t.Errorf("inserted %d, failed %d (%q); want 5 and 1", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	want := "column said: timestamp with time zone would move it: America/New_York skips that wall time (clocks go forward) (lossy: true allows it)"
	if !slices.Contains(failureReasons(tr), want) {
		t.Errorf("reasons %q lack %q", failureReasons(tr), want)
	}
	for q, n := range map[string]int64{
		"legacy_id = 1 AND said = '2024-03-10 14:00:00+00' AND wall = said AND stamp = '2024-03-10 10:00:00.25+00'": 1,
		"legacy_id = 2 AND said = '2024-01-15 15:00:00+00'":                                                         1,
		"legacy_id = 3 AND said = '2024-03-10 04:30:00+00'":                                                         1,
		"legacy_id = 4 AND said = 'infinity'":                                                                       1,
		"legacy_id = 5 AND said = '2024-03-10 05:00:00+00'":                                                         1,
	} {
		if got := w.count(t, "SELECT count(*) FROM visits WHERE "+q); got != n {
			t.Errorf("%s: %d rows, want %d", q, got, n)
		}
	}
	if tr := w.run(t, backfill.Options{Restart: true}).Tables[0]; tr.Written() != 0 || tr.Present != 5 {
		t.Errorf("restart: written %d, present %d; want all 5 present", tr.Written(), tr.Present)
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 1 || d.Changed != 0 || d.Extra != 0 {
		t.Errorf("verify: %+v; want the refused row missing, nothing changed", d)
	}
	w.pg(t, "UPDATE visits SET said = '2024-03-10 10:00:00+00' WHERE legacy_id = 1")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Changed != 1 {
		t.Errorf("verify: %d changed; want the row read in UTC changed", d.Changed)
	}
}

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

	t.Run("a lossy number key into an integer key is refused before copying", func(t *testing.T) {
		w := newWorld(t, fixture.Sizes{}, nil)
		// 1.4 and 1.3 would both be target key 1: the second row would
		// overwrite the first, each key's text being 1 once rounded.
		w.mapTable(t, "CREATE TABLE Lot (LotNum DECIMAL(5,1) PRIMARY KEY, V INT NOT NULL)",
			"CREATE TABLE lots (legacy_id bigint UNIQUE, v int NOT NULL)",
			config.BackfillTable{Name: "lots", From: "Lot", Key: "LotNum", To: "lots", TargetKey: "legacy_id",
				Columns: map[string]config.Column{"legacy_id": {From: "LotNum", Lossy: true}, "v": {From: "V"}}})
		w.exec(t, "INSERT INTO Lot VALUES (1.4, 1), (1.3, 2)")
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].columns.legacy_id: a key cannot be lossy") {
			t.Errorf("got %v; want a refusal before copying", err)
		}
		if n := w.count(t, "SELECT count(*) FROM lots"); n != 0 {
			t.Errorf("%d rows copied before the refusal", n)
		}
	})

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

// TestTimeIntoTimetzIsRefusedOutsideUTC: a TIME is a time of day in
// source_time_zone; timetz stored it at +00, another time of day in New
// York (10:00 there is 14:00 or 15:00 UTC, by the date the TIME lacks),
// silently. Under a zone other than UTC it is refused before copying
// unless lossy.
func TestTimeIntoTimetzIsRefusedOutsideUTC(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Slot (SlotSerNum INT PRIMARY KEY, Opens TIME)",
		"CREATE TABLE slots (legacy_id bigint UNIQUE, opens timetz)",
		config.BackfillTable{Name: "slots", From: "Slot", Key: "SlotSerNum", To: "slots", TargetKey: "legacy_id",
			Columns: cols("SlotSerNum=legacy_id", "Opens=opens")})
	w.exec(t, "INSERT INTO Slot VALUES (1, '10:00:00')")
	w.cfg.SourceTimeZone = "America/New_York"
	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].columns.opens: a TIME is a time of day in source_time_zone America/New_York") {
		t.Errorf("got %v; want a refusal naming the column", err)
	}
	if _, err := backfill.Verify(context.Background(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil {
		t.Error("verify compared a mapping the backfill refuses")
	}
	for _, zone := range []string{"UTC", "Etc/UTC", ""} {
		w.cfg.SourceTimeZone = zone
		if tr := w.run(t, backfill.Options{Restart: true}).Tables[0]; tr.Failed != 0 || tr.Written()+tr.Present != 1 {
			t.Errorf("zone %q: written %d, present %d, failed %d; want the row copied", zone, tr.Written(), tr.Present, tr.Failed)
		}
	}
	if n := w.count(t, "SELECT count(*) FROM slots WHERE opens = '10:00:00+00'"); n != 1 {
		t.Error("10:00 in UTC is not 10:00+00")
	}
	w.cfg.SourceTimeZone = "America/New_York"
	c := w.cfg.Tables[0].Columns["opens"]
	c.Lossy = true
	w.cfg.Tables[0].Columns["opens"] = c
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Failed != 0 {
		t.Errorf("lossy: failed %d (%q); want none", tr.Failed, failureReasons(tr))
	}
}

// TestJSONValueRefusalsNameTheColumn: jsonb refuses \u0000 with a
// context (where in the document it stopped), which was taken for a
// trigger's: the reason named no column, and on a table with redacted
// columns said a trigger or function refused the row.
func TestJSONValueRefusalsNameTheColumn(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Form (FormSerNum INT PRIMARY KEY, Answers JSON, Secret JSON)",
		"CREATE TABLE forms (legacy_id bigint UNIQUE, answers jsonb, secret jsonb)",
		config.BackfillTable{Name: "forms", From: "Form", Key: "FormSerNum", To: "forms", TargetKey: "legacy_id",
			Columns: cols("FormSerNum=legacy_id", "Answers=answers", "Secret=secret"), Redact: []string{"secret"}})
	w.exec(t, `INSERT INTO Form VALUES (1, '{"a": "x\\u0000y"}', NULL), (2, NULL, '{"pin": "\\u0000"}'), (3, '{}', '{}')`)
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 1 || tr.Failed != 2 {
		t.Errorf("inserted %d, failed %d (%q); want 1 and 2", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	for _, want := range []string{
		"column answers: unsupported Unicode escape sequence",
		"column secret: not text the target's encoding can hold (SQLSTATE 22P05)",
	} {
		if !slices.Contains(failureReasons(tr), want) {
			t.Errorf("reasons %q lack %q", failureReasons(tr), want)
		}
	}
}

// TestFloatsIntoTextAreWrittenWithoutAnExponent: the driver writes a
// FLOAT of 1234567 as 1.234567e+06, which a text column kept: neither
// MySQL's text nor what an application reading it shows. Text columns,
// and their length checks, now get 1234567.
func TestFloatsIntoTextAreWrittenWithoutAnExponent(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Scale (ScaleSerNum INT PRIMARY KEY, F FLOAT, D DOUBLE)",
		"CREATE TABLE scales (legacy_id bigint UNIQUE, f varchar(7), d text)",
		config.BackfillTable{Name: "scales", From: "Scale", Key: "ScaleSerNum", To: "scales", TargetKey: "legacy_id",
			Columns: cols("ScaleSerNum=legacy_id", "F=f", "D=d")})
	w.exec(t, "INSERT INTO Scale VALUES (1, 1234567, 1e15), (2, 0.5, 1e300), (3, 12345678, 1e-7)")
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 2 || tr.Failed != 1 {
		t.Errorf("inserted %d, failed %d (%q); want 2 and 1", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	if want := "column f: character varying(7) would cut it to 7 characters (lossy: true allows it)"; !slices.Contains(failureReasons(tr), want) {
		t.Errorf("reasons %q lack %q", failureReasons(tr), want)
	}
	for q, n := range map[string]int64{
		"legacy_id = 1 AND f = '1234567' AND d = '1000000000000000'": 1,
		"legacy_id = 2 AND f = '0.5' AND d = '1e+300'":               1,
	} {
		if got := w.count(t, "SELECT count(*) FROM scales WHERE "+q); got != n {
			t.Errorf("%s: %d rows, want %d", q, got, n)
		}
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 1 || d.Changed != 0 {
		t.Errorf("verify: %+v; want the refused row missing, nothing changed", d)
	}
}
