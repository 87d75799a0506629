package backfill_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestMoneyCharAndIntervalFieldsAreRefusedUnlessLossy: money rounds to
// lc_monetary's digits, "char" keeps a string's first byte, an interval
// restricted to fields drops the finer parts; each silently, so each
// refuses the row unless the column is lossy, as numeric(p,s) does.
func TestMoneyCharAndIntervalFieldsAreRefusedUnlessLossy(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Fee (FeeSerNum INT PRIMARY KEY, Amount DECIMAL(10,3), Flag VARCHAR(4), Took TIME(6), Note VARCHAR(20))",
		`CREATE TABLE fees (legacy_id bigint UNIQUE, amount money, flag "char", took interval hour to minute, exact interval second(2), note text)`,
		config.BackfillTable{Name: "fees", From: "Fee", Key: "FeeSerNum", To: "fees", TargetKey: "legacy_id",
			Columns: cols("FeeSerNum=legacy_id", "Amount=amount", "Flag=flag", "Took=took", "Took=exact", "Note=note")})
	w.exec(t, `INSERT INTO Fee VALUES
		(1, 12.340, 'a', '10:30:00', NULL),
		(2, 12.345, NULL, NULL, NULL),
		(3, NULL, 'ab', NULL, NULL),
		(4, NULL, NULL, '10:30:15', NULL),
		(5, NULL, NULL, '838:00:00', NULL),
		(6, NULL, NULL, '00:00:01.125000', NULL)`)
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 2 || tr.Failed != 4 {
		t.Errorf("inserted %d, failed %d (%q); want 2 and 4", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	for _, want := range []string{
		"column amount: money would round it to 2 decimal places (lossy: true allows it)",
		`column flag: "char" would keep only its first byte (lossy: true allows it)`,
		"column took: interval hour to minute would drop the parts of the time finer than its minute (lossy: true allows it)",
		"column exact: interval second(2) would round it to 2 fractional digits (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(tr), want) {
			t.Errorf("reasons %q lack %q", failureReasons(tr), want)
		}
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 4 || d.Changed != 0 {
		t.Errorf("verify: %d missing, %d changed; want the 4 refused rows missing", d.Missing, d.Changed)
	}

	t.Run("text into an interval with fields is refused before copying", func(t *testing.T) {
		cfg := *w.cfg
		cfg.Tables = slices.Clone(cfg.Tables)
		cfg.Tables[0].Columns = cols("FeeSerNum=legacy_id", "Note=took")
		_, err := backfill.Run(context.Background(), &cfg, backfill.Options{Log: discard()})
		if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].columns.took: interval hour to minute drops the parts") {
			t.Errorf("got %v; want a refusal naming the column", err)
		}
	})

	t.Run("lossy: true copies what the types keep", func(t *testing.T) {
		for _, name := range []string{"amount", "flag", "took", "exact"} {
			c := w.cfg.Tables[0].Columns[name]
			c.Lossy = true
			w.cfg.Tables[0].Columns[name] = c
		}
		if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Failed != 0 || tr.Written() != 4 {
			t.Errorf("written %d, failed %d (%q); want the 4 refused rows written", tr.Written(), tr.Failed, failureReasons(tr))
		}
		if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
			t.Errorf("verify: %+v, want none", d.Tables)
		}
	})
}

// TestTimeKeysAreCopiedMatchedAndVerifiedByValue: a DATETIME, TIMESTAMP,
// DATE or TIME key's text is not the target key's (10:00:00.500000 is
// 10:00:00.5, a timestamptz adds its offset); such keys were refused
// for every row as stored differently, and verify called every row
// missing and extra.
func TestTimeKeysAreCopiedMatchedAndVerifiedByValue(t *testing.T) {
	for _, c := range []struct{ source, target, zone string }{
		{"DATETIME(3)", "timestamptz(3)", "America/New_York"},
		{"DATETIME(6)", "timestamp", ""},
		{"TIMESTAMP(6)", "timestamptz", ""},
		{"DATE", "date", ""},
		{"TIME(6)", "time", ""},
		{"TIME(6)", "timetz", ""},
	} {
		t.Run(c.source+" into "+c.target, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			w.mapTable(t, "CREATE TABLE Reading (TakenAt "+c.source+" NOT NULL PRIMARY KEY, V INT NOT NULL)",
				"CREATE TABLE readings (taken_at "+c.target+" UNIQUE, v int NOT NULL)",
				config.BackfillTable{Name: "readings", From: "Reading", Key: "TakenAt", To: "readings", TargetKey: "taken_at",
					Columns: cols("TakenAt=taken_at", "V=v")})
			w.cfg.SourceTimeZone = c.zone
			var values []string
			for i := range 25 {
				if c.source == "TIME(6)" {
					values = append(values, fmt.Sprintf("('%02d:%02d:00.500000', %d)", i%24, i, i))
				} else {
					values = append(values, fmt.Sprintf("('2024-01-%02d 10:00:00.500000', %d)", i+1, i))
				}
			}
			w.exec(t, "INSERT INTO Reading VALUES "+strings.Join(values, ", "))
			w.cfg.Batch = 10
			if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 25 || tr.Failed != 0 {
				t.Fatalf("inserted %d, failed %d (%q); want 25 and 0", tr.Inserted, tr.Failed, failureReasons(tr))
			}
			if tr := w.run(t, backfill.Options{Restart: true}).Tables[0]; tr.Written() != 0 || tr.Present != 25 || tr.Failed != 0 {
				t.Errorf("restart: written %d, present %d, failed %d; want all 25 present", tr.Written(), tr.Present, tr.Failed)
			}
			if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
				t.Errorf("verify: %+v, want none", d.Tables)
			}
			w.pg(t, "UPDATE readings SET v = -1 WHERE v = 3")
			w.pg(t, "DELETE FROM readings WHERE v = 4")
			w.exec(t, "DELETE FROM Reading WHERE V = 5")
			d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
			if d.Changed != 1 || d.Missing != 1 || d.Extra != 1 {
				t.Errorf("verify: changed %d, missing %d, extra %d; want 1 each", d.Changed, d.Missing, d.Extra)
			}
		})
	}

	t.Run("a lossy time key is refused before copying", func(t *testing.T) {
		w := newWorld(t, fixture.Sizes{}, nil)
		w.mapTable(t, "CREATE TABLE Reading (TakenAt DATETIME(3) NOT NULL PRIMARY KEY, V INT NOT NULL)",
			"CREATE TABLE readings (taken_at timestamp(0) UNIQUE, v int NOT NULL)",
			config.BackfillTable{Name: "readings", From: "Reading", Key: "TakenAt", To: "readings", TargetKey: "taken_at",
				Columns: map[string]config.Column{"taken_at": {From: "TakenAt", Lossy: true}, "v": {From: "V"}}})
		w.exec(t, "INSERT INTO Reading VALUES ('2024-03-01 10:00:00.300', 1), ('2024-03-01 10:00:00.400', 2)")
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].columns.taken_at: a key cannot be lossy") {
			t.Errorf("got %v; want a refusal before copying", err)
		}
	})

	t.Run("a zero date key fails its row, and verify goes on", func(t *testing.T) {
		w := newWorld(t, fixture.Sizes{}, nil)
		w.mapTable(t, "CREATE TABLE Reading (TakenAt DATETIME NOT NULL PRIMARY KEY, V INT NOT NULL)",
			"CREATE TABLE readings (taken_at timestamptz UNIQUE, v int NOT NULL)",
			config.BackfillTable{Name: "readings", From: "Reading", Key: "TakenAt", To: "readings", TargetKey: "taken_at",
				Columns: cols("TakenAt=taken_at", "V=v")})
		conn := w.legacyConn(t)
		for _, q := range []string{"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
			"INSERT INTO Reading VALUES ('0000-00-00 00:00:00', 1), ('2024-02-30 00:00:00', 2), ('2024-03-01 00:00:00', 3)"} {
			if _, err := conn.ExecContext(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
		if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 1 || tr.Failed != 2 {
			t.Errorf("inserted %d, failed %d (%q); want 1 and 2", tr.Inserted, tr.Failed, failureReasons(tr))
		}
		// A row only modern has: verify reads legacy's keys to find it.
		w.pg(t, "INSERT INTO readings VALUES ('2025-01-01 00:00:00', 4)")
		if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 2 || d.Extra != 1 || d.Changed != 0 {
			t.Errorf("verify: %+v; want the 2 refused rows missing, 1 extra", d)
		}
	})
}

// TestUpperCaseUUIDTextKeysAreCopied: a uuid's text is lower-case,
// hyphenated, without braces, so an upper-case text key, one in braces
// or one without hyphens was refused for every row as stored
// differently. Two keys that spell one uuid two ways are one uuid:
// refused before copying.
func TestUpperCaseUUIDTextKeysAreCopied(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Device (Guid VARCHAR(38) PRIMARY KEY, Label VARCHAR(20) NOT NULL)",
		"CREATE TABLE devices (guid uuid UNIQUE, label text NOT NULL)",
		config.BackfillTable{Name: "devices", From: "Device", Key: "Guid", To: "devices", TargetKey: "guid", Columns: cols("Guid=guid", "Label=label")})
	var values []string
	for i := range 30 {
		u := randomUUID()
		switch i % 4 {
		case 0:
			u = strings.ToUpper(u)
		case 1:
			u = "{" + u + "}"
		case 2:
			u = strings.ReplaceAll(u, "-", "")
		}
		values = append(values, fmt.Sprintf("('%s', 'device %d')", u, i))
	}
	w.exec(t, "INSERT INTO Device VALUES "+strings.Join(values, ", "))
	w.cfg.Batch = 7
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 30 || tr.Failed != 0 {
		t.Fatalf("inserted %d, failed %d (%q); want 30 and 0", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	if tr := w.run(t, backfill.Options{Restart: true}).Tables[0]; tr.Written() != 0 || tr.Present != 30 {
		t.Errorf("restart: written %d, present %d; want all 30 present", tr.Written(), tr.Present)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want none", d.Tables)
	}
	w.pg(t, "DELETE FROM devices WHERE label = 'device 0'")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 1 || d.Extra != 0 {
		t.Errorf("verify: missing %d, extra %d; want the deleted device missing", d.Missing, d.Extra)
	}

	t.Run("keys that differ only in case are refused before copying", func(t *testing.T) {
		w.exec(t, "ALTER TABLE Device MODIFY Guid VARCHAR(38) COLLATE utf8mb4_bin")
		u := randomUUID()
		w.exec(t, fmt.Sprintf("INSERT INTO Device VALUES ('%s', 'x'), ('%s', 'y')", u, strings.ToUpper(u)))
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].key: Guid holds keys that spell one uuid two ways") {
			t.Errorf("got %v; want a refusal before copying", err)
		}
	})

	t.Run("keys that differ only in braces are refused under a case-insensitive collation too", func(t *testing.T) {
		w.exec(t, "DELETE FROM Device WHERE Label IN ('x', 'y')")
		w.exec(t, "ALTER TABLE Device MODIFY Guid VARCHAR(38) COLLATE utf8mb4_general_ci")
		u := randomUUID()
		w.exec(t, fmt.Sprintf("INSERT INTO Device VALUES ('%s', 'x'), ('{%s}', 'y')", u, u))
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		if err == nil || !strings.Contains(err.Error(), "Guid holds keys that spell one uuid two ways") {
			t.Errorf("got %v; want a refusal before copying", err)
		}
	})
}

// TestFloatKeysAreRefusedAndDoubleKeysPageExactly: MySQL compares a FLOAT
// key with the last key's text as a double, below the float's value, so
// the next page began with the last row again (forever, a row a page).
func TestFloatKeysAreRefusedAndDoubleKeysPageExactly(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Dose (Amount DOUBLE PRIMARY KEY, Given FLOAT NOT NULL UNIQUE)",
		"CREATE TABLE doses (amount double precision UNIQUE, given real)",
		config.BackfillTable{Name: "doses", From: "Dose", Key: "Amount", To: "doses", TargetKey: "amount", Columns: cols("Amount=amount", "Given=given")})
	w.exec(t, "INSERT INTO Dose VALUES (0.1, 0.1), (0.2, 0.2), (0.3, 0.3), (1e300, 1.5), (-2.5e-300, 2.5)")
	w.cfg.Batch = 1
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 5 || tr.Read != 5 || tr.Failed != 0 {
		t.Errorf("read %d, inserted %d, failed %d (%q); want 5, 5, 0", tr.Read, tr.Inserted, tr.Failed, failureReasons(tr))
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want none", d.Tables)
	}

	w.cfg.Tables[0].Key = "Given"
	w.cfg.Tables[0].TargetKey, w.cfg.Tables[0].Columns = "given", cols("Given=given", "Amount=amount")
	w.pg(t, "ALTER TABLE doses ADD UNIQUE (given)")
	ctx, cancel := context.WithTimeout(context.Background(), 20e9)
	defer cancel()
	_, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].key: Given is a FLOAT, which keyset pagination cannot page by exactly") {
		t.Errorf("got %v; want a refusal before copying", err)
	}
}

// TestTextWithAZoneIntoATypeWithoutOneIsRefused: timestamp and time
// without time zone ignore the zone or offset their input gives, so
// '10:00:00+05:30' became 10:00, another instant, silently; into
// timestamptz it is that instant. Text 'today' or 'now' became the time
// of the copy ('infinity' is infinity). name cuts text to 63 bytes as
// silently.
func TestTextWithAZoneIntoATypeWithoutOneIsRefused(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Event (EventSerNum INT PRIMARY KEY, At VARCHAR(40), Clock VARCHAR(20), Label VARCHAR(80))",
		"CREATE TABLE events (legacy_id bigint UNIQUE, at timestamp, at_tz timestamptz, at_time time, label name)",
		config.BackfillTable{Name: "events", From: "Event", Key: "EventSerNum", To: "events", TargetKey: "legacy_id",
			Columns: cols("EventSerNum=legacy_id", "At=at", "At=at_tz", "Clock=at_time", "Label=label")})
	w.exec(t, `INSERT INTO Event VALUES (1, '2024-03-10 10:00:00', '10:00 PM', 'short'), (2, '2024-03-10 10:00:00+05:30', NULL, NULL),
		(3, '2024-03-10 10:00 PM', NULL, NULL), (4, '2024-03-10T10:00:00Z', NULL, NULL), (5, NULL, NULL, REPEAT('x', 64)),
		(6, NULL, '10:00:00+05', NULL), (7, 'today', NULL, NULL), (8, NULL, 'NOW', NULL), (9, 'infinity', NULL, NULL)`)
	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 3 || tr.Failed != 6 {
		t.Errorf("inserted %d, failed %d (%q); want 3 and 6", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	for _, want := range []string{
		"column at: timestamp without time zone would drop the time zone or offset the text gives (lossy: true allows it)",
		"column label: name would cut it to 63 bytes (lossy: true allows it)",
		"column at_time: time without time zone would drop the time zone or offset the text gives (lossy: true allows it)",
		"column at: timestamp without time zone would read it as of the moment it runs (now, today, tomorrow, yesterday) (lossy: true allows it)",
		"column at_time: time without time zone would read it as of the moment it runs (now, today, tomorrow, yesterday) (lossy: true allows it)",
	} {
		if !slices.Contains(failureReasons(tr), want) {
			t.Errorf("reasons %q lack %q", failureReasons(tr), want)
		}
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 6 || d.Changed != 0 {
		t.Errorf("verify: %d missing, %d changed; want the 6 refused rows missing", d.Missing, d.Changed)
	}
}

// TestTextDatesAndIntervalsReadAlikeWhateverTheTargetDatabaseSays: the
// target's DateStyle and IntervalStyle decided what text meant, silently:
// 03/10/2024 was 3 October under DMY, and -1 2:03:04 was all negative
// under sql_standard. The settings come in the target's URL here, in
// another case than the backfill's own: the test database is shared.
func TestTextDatesAndIntervalsReadAlikeWhateverTheTargetDatabaseSays(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.cfg = w.config(t, map[string]string{"MODERN_DSN": w.modernDSN + "&DateStyle=ISO%2C%20DMY&IntervalStyle=sql_standard"})
	w.mapTable(t, "CREATE TABLE Visit (VisitSerNum INT PRIMARY KEY, Day VARCHAR(20), Took VARCHAR(20))",
		"CREATE TABLE visits (legacy_id bigint UNIQUE, day date, took interval)",
		config.BackfillTable{Name: "visits", From: "Visit", Key: "VisitSerNum", To: "visits", TargetKey: "legacy_id",
			Columns: cols("VisitSerNum=legacy_id", "Day=day", "Took=took")})
	w.exec(t, "INSERT INTO Visit VALUES (1, '03/10/2024', '-1 2:03:04')")
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 1 {
		t.Fatalf("inserted %d (%q), want 1", tr.Inserted, failureReasons(tr))
	}
	if n := w.count(t, "SELECT count(*) FROM visits WHERE day = '2024-03-10' AND took = '-1 days +02:03:04'::interval"); n != 1 {
		t.Error("visit 1 is not 10 March, -1 day +2:03:04 in modern")
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want none", d.Tables)
	}
}

// TestKeysMySQLCannotPageByAreRefused: an ENUM sorts by its place in the
// list but compares with text as text, so the page after 'b' of
// ENUM('b','a','c') skipped 'a' silently; a BIT compared with the last
// key's bytes began every page again, forever. Both are refused before
// copying, and the query each message suggests copies every row.
func TestKeysMySQLCannotPageByAreRefused(t *testing.T) {
	for _, c := range []struct{ typ, values, target, want, query string }{
		{"ENUM('b','a','c')", "('a', 1), ('b', 2), ('c', 3)", "text", "K is an ENUM, which MySQL sorts by its place in the list but compares with text as text", "SELECT COALESCE(CAST(K AS CHAR), '') AS K, V FROM S"},
		{"SET('b','a')", "('a', 1), ('b', 2), ('b,a', 3)", "text", "K is a SET, which MySQL sorts by its place", "SELECT COALESCE(CAST(K AS CHAR), '') AS K, V FROM S"},
		{"BIT(16)", "(b'0', 1), (b'10', 2), (b'11111111', 3), (b'100000000', 4)", "bigint", "K is a BIT, which keyset pagination cannot page by", "SELECT K + 0 AS K, V FROM S"},
	} {
		t.Run(c.typ, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			w.mapTable(t, "CREATE TABLE S (K "+c.typ+" NOT NULL PRIMARY KEY, V INT)", "CREATE TABLE s (k "+c.target+" UNIQUE, v int)",
				config.BackfillTable{Name: "s", From: "S", Key: "K", To: "s", TargetKey: "k", Columns: cols("K=k", "V=v")})
			w.exec(t, "INSERT INTO S VALUES "+c.values)
			w.cfg.Batch = 1
			ctx, cancel := context.WithTimeout(context.Background(), 20e9)
			defer cancel()
			_, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
			if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].key: "+c.want) {
				t.Errorf("got %v; want a refusal before copying", err)
			}
			w.cfg.Tables[0].From, w.cfg.Tables[0].Query = "", c.query
			if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != int64(strings.Count(c.values, "(")) || tr.Failed != 0 {
				t.Errorf("with the query: inserted %d, failed %d (%q); want every row", tr.Inserted, tr.Failed, failureReasons(tr))
			}
		})
	}
}
