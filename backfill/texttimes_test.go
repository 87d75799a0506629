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

// TestTextIntoDateOrTimeKeepsEveryPartOrIsRefused: a date and time an
// application wrote as text in any spelling but MySQL's own
// (2024-03-10 10:00:00) went into a date column without its time of
// day, and into a time column without its date, silently: 10:00 with no
// seconds, a T, 03/10/2024 10:00 AM, a time written 1000, the half day
// of a Julian date. Verify called the copies equal. Such a value is now
// refused unless lossy, as a DATETIME's is, and verify calls a copy
// that lost the part changed.
func TestTextIntoDateOrTimeKeepsEveryPartOrIsRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Day VARCHAR(40), Hour VARCHAR(40))",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, day date, hour time)",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: map[string]config.Column{"legacy_id": {From: "VisitSerNum"}, "day": {From: "Day"}, "hour": {From: "Hour"}}})
	w.exec(t, `INSERT INTO Visit VALUES
		(1, '2024-03-10 10:00', NULL), (2, '2024-03-10T10:00', NULL), (3, '03/10/2024 10:00 AM', NULL),
		(4, '2024-03-10 1000', NULL), (5, 'J2460380.5', NULL),
		(6, NULL, '2024-03-10 10:00'), (7, NULL, '03/10/2024 10:00 AM'), (8, NULL, 'J2460380 10:00'),
		(10, '2024-03-10', '10:00'), (11, '2024-03-10 00:00', '10:00 PM'), (12, '03/10/2024', '1000'), (13, 'Mar 10 2024', '10:00:00.5')`)
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 4 || tr.Failed != 8 {
		t.Errorf("inserted %d, failed %d (%q); want 4 and 8", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	for _, want := range []string{
		"column day: date would drop the time of day (lossy: true allows it)",
		"column hour: time without time zone would drop the date (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(tr), want) {
			t.Errorf("reasons %q lack %q", failureReasons(tr), want)
		}
	}
	if got := w.count(t, "SELECT count(*) FROM visits WHERE day = '2024-03-10' AND legacy_id BETWEEN 10 AND 13"); got != 4 {
		t.Errorf("%d rows of 10 to 13 on 10 March, want 4", got)
	}
	// A copy that lost the time of day (or the date), as the release
	// before made it, differs.
	w.pg(t, "INSERT INTO visits VALUES (1, '2024-03-10', NULL), (6, NULL, '10:00')")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	if d.Changed != 2 || d.Missing != 6 {
		t.Errorf("verify: %d changed, %d missing; want rows 1 and 6 changed, the 6 others missing", d.Changed, d.Missing)
	}
	// lossy: the day, or the time of day, is kept.
	w.cfg.Tables[0].Columns["day"] = config.Column{From: "Day", Lossy: true}
	w.cfg.Tables[0].Columns["hour"] = config.Column{From: "Hour", Lossy: true}
	if tr := w.run(t, backfill.Options{OnlyFailed: true}).Tables[0]; tr.Failed != 0 || tr.Written() != 6 {
		t.Errorf("lossy: written %d, failed %d (%q); want the 6 others written", tr.Written(), tr.Failed, failureReasons(tr))
	}
}

// TestATimestampIntoAZonelessTypeIsRefusedOutsideUTC: a TIMESTAMP is an
// instant, read in UTC; into timestamp, date or time without time zone
// it was its wall time in UTC while a DATETIME beside it kept its own,
// in source_time_zone: 23:00 on 10 March in New York became 03:00, and
// the 11th, silently. Outside UTC the table is refused before copying,
// by verify too, unless the column is lossy (then UTC's wall time is
// stored); timestamptz keeps the instant.
func TestATimestampIntoAZonelessTypeIsRefusedOutsideUTC(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Seen TIMESTAMP NULL)",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, seen timestamp, day date, at timestamptz)",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: map[string]config.Column{"legacy_id": {From: "VisitSerNum"}, "seen": {From: "Seen"}, "at": {From: "Seen"},
				"day": {From: "Seen", Transform: []config.Transform{config.TransformTrim}, Lossy: true}}})
	conn := w.legacyConn(t)
	for _, q := range []string{"SET time_zone = '-04:00'", "INSERT INTO Visit VALUES (1, '2024-03-10 23:00:00')"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	w.cfg.SourceTimeZone = "America/New_York"
	want := "backfill.tables[0].columns.seen: a TIMESTAMP is an instant, which timestamp without time zone would store as its wall time in UTC, " +
		"not in source_time_zone America/New_York"
	if _, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("backfill: %v; want an error containing %q", err, want)
	}
	if _, err := backfill.Verify(context.Background(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: %v; want an error containing %q", err, want)
	}
	if n := w.count(t, "SELECT count(*) FROM visits"); n != 0 {
		t.Errorf("%d rows copied, want none", n)
	}
	w.cfg.Tables[0].Columns["seen"] = config.Column{From: "Seen", Lossy: true}
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 1 {
		t.Fatalf("lossy: inserted %d (%q), want 1", tr.Inserted, failureReasons(tr))
	}
	if n := w.count(t, "SELECT count(*) FROM visits WHERE seen = '2024-03-11 03:00' AND day = '2024-03-11' AND at = '2024-03-11 03:00+00'"); n != 1 {
		t.Errorf("lossy: the row is not at 03:00 on the 11th in UTC")
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want none", d.Tables)
	}
}
