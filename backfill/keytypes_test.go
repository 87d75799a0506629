package backfill_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

func TestBinaryKeysAreCopiedCheckpointedAndVerifiedExactly(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Device (DeviceUuid BINARY(16) PRIMARY KEY, Label VARCHAR(20) NOT NULL)",
		"CREATE TABLE devices (legacy_id bytea UNIQUE, label text NOT NULL)",
		config.BackfillTable{Name: "devices", From: "Device", Key: "DeviceUuid", To: "devices", TargetKey: "legacy_id",
			Columns: cols("DeviceUuid=legacy_id", "Label=label")})
	var values []string
	for i := range 700 {
		b := make([]byte, 16)
		rand.Read(b)
		if i == 0 {
			b = []byte{0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // not UTF-8, a NUL among them
		}
		values = append(values, fmt.Sprintf("(x'%x', 'device %d')", b, i))
	}
	w.exec(t, "INSERT INTO Device VALUES "+strings.Join(values, ", "))
	w.cfg.Batch = 100

	if d := w.run(t, backfill.Options{}).Tables[0]; d.Inserted != 700 || d.Failed != 0 {
		t.Fatalf("inserted %d, failed %d (%q); want 700 and 0", d.Inserted, d.Failed, failureReasons(d))
	}
	if d := w.run(t, backfill.Options{}).Tables[0]; d.Written() != 0 || d.Failed != 0 {
		t.Errorf("running again wrote %d, failed %d; want nothing", d.Written(), d.Failed)
	}
	if n := w.count(t, "SELECT count(*) FROM devices WHERE legacy_id = '\\xfffe0000000000000000000000000000'::bytea AND label = 'device 0'"); n != 1 {
		t.Errorf("the device whose key is not UTF-8 is not in modern as it is in legacy")
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want no deviation", d.Tables)
	}
	w.pg(t, "DELETE FROM devices WHERE legacy_id = '\\xfffe0000000000000000000000000000'::bytea")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; !slices.Equal(d.MissingKeys, []string{"0xfffe0000000000000000000000000000"}) {
		t.Errorf("verify: missing %v, want the deleted device, its key in hex", d.MissingKeys)
	}
}

// TestAReadRepairKeyThatIsNoBinaryKeyIsDroppedUnshown queues, for a
// table keyed by BINARY(16), a device's key as the facade's read repair
// takes it from a path (hex) and a name a client put where the key
// belongs: the device is copied, the name is dropped from the queue as a
// key the source cannot have, and neither the run's error, its report
// nor its log holds the name.
func TestAReadRepairKeyThatIsNoBinaryKeyIsDroppedUnshown(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Device (DeviceUuid BINARY(16) PRIMARY KEY, Label VARCHAR(20) NOT NULL)",
		"CREATE TABLE devices (legacy_id bytea UNIQUE, label text NOT NULL)",
		config.BackfillTable{Name: "devices", From: "Device", Key: "DeviceUuid", To: "devices", TargetKey: "legacy_id",
			Columns: cols("DeviceUuid=legacy_id", "Label=label")})
	w.exec(t, "INSERT INTO Device VALUES (x'00112233445566778899aabbccddeeff', 'device 1')")
	const name = "Zelda Quimbyfrost"
	repairs := &repairKeys{pending: map[string][]string{"devices": {name, "00112233445566778899aabbccddeeff"}}, done: map[string][]string{}}
	var logs bytes.Buffer
	rep, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Repairs: repairs, Tables: []string{"devices"},
		Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	var text, js bytes.Buffer
	if rep != nil {
		rep.WriteText(&text)
		json.NewEncoder(&js).Encode(rep)
	}
	for where, s := range map[string]string{"the error": fmt.Sprint(err), "the report": text.String(), "the JSON report": js.String(), "the log": logs.String()} {
		if strings.Contains(s, "Quimbyfrost") {
			t.Errorf("%s holds the name queued as a key: %s", where, s)
		}
	}
	if err != nil {
		t.Fatalf("the run failed: %v", err)
	}
	if got := repairs.pending["devices"]; len(got) != 0 {
		t.Errorf("keys still queued: %q, want none: the device copied, the name dropped", got)
	}
	if n := w.count(t, "SELECT count(*) FROM devices WHERE label = 'device 1'"); n != 1 {
		t.Errorf("the device queued by read repair is not in modern")
	}
	if d := tableReport(t, rep, "devices"); d.NotInSource != 1 {
		t.Errorf("%d requested keys not in the source, want the name", d.NotInSource)
	}
}

func TestKeysThatCanBeNullAreRefusedBeforeCopying(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Card (CardSerNum INT PRIMARY KEY, Badge VARCHAR(20) NULL UNIQUE, Holder VARCHAR(20))",
		"CREATE TABLE cards (badge text UNIQUE, holder text)",
		config.BackfillTable{Name: "cards", From: "Card", Key: "Badge", To: "cards", TargetKey: "badge",
			Columns: cols("Badge=badge", "Holder=holder")})
	w.exec(t, "INSERT INTO Card VALUES (1, 'B1', 'Ann'), (2, NULL, 'Bob'), (3, NULL, 'Cy'), (4, 'B4', 'Di')")

	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].key: Badge can be NULL in the source") || !strings.Contains(err.Error(), "null_keys: skip") {
		t.Errorf("got %v; want a refusal that says what to do", err)
	}
	if n := w.count(t, "SELECT count(*) FROM cards"); n != 0 {
		t.Errorf("%d cards were copied before the refusal", n)
	}

	t.Run("a query key built with CONCAT", func(t *testing.T) {
		w.cfg.Tables[0].From, w.cfg.Tables[0].Query = "", "SELECT CONCAT('C', Badge) AS Badge, Holder FROM Card"
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		if err == nil || !strings.Contains(err.Error(), "Badge can be NULL in the source") {
			t.Errorf("got %v; want a refusal", err)
		}
		if _, err := backfill.Verify(context.Background(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil {
			t.Error("verify compared a table whose key can be NULL")
		}
	})

	t.Run("null_keys: skip counts the rows without a key as failed", func(t *testing.T) {
		w.cfg.Tables[0].NullKeys = config.NullKeysSkip
		for run := 1; run <= 2; run++ {
			c := w.run(t, backfill.Options{Restart: run == 2}).Tables[0]
			if c.Written()+c.Present != 2 || c.Failed != 2 || len(c.Failures) != 1 || c.Failures[0].Reason != "the source key is NULL (null_keys: skip)" {
				t.Errorf("run %d: written %d, present %d, failed %d (%+v); want the 2 keyed cards copied, the 2 others failed",
					run, c.Written(), c.Present, c.Failed, c.Failures)
			}
		}
		if n := w.count(t, "SELECT count(*) FROM cards"); n != 2 {
			t.Errorf("modern has %d cards, want 2: no restart copies a NULL key again", n)
		}
		d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
		if d.LegacyRows != 4 || d.ModernRows != 2 || d.NullKeys != 2 || d.Missing != 0 {
			t.Errorf("verify: %d legacy rows, %d modern, %d NULL keys, %d missing; want 4, 2, 2, 0", d.LegacyRows, d.ModernRows, d.NullKeys, d.Missing)
		}
	})
}

func TestANonUniqueKeyIsRefusedBeforeCopying(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 20, MRNs: true}, nil)
	w.pg(t, "CREATE TABLE mrns (mrn text UNIQUE, patient bigint)")
	w.cfg.Tables = []config.BackfillTable{{Name: "mrns", Key: "MRN", To: "mrns", TargetKey: "mrn",
		Query:   "SELECT MRN, PatientSerNum FROM Patient_Hospital_Identifier UNION ALL SELECT '0000007', 99",
		Columns: cols("MRN=mrn", "PatientSerNum=patient")}}
	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "backfill.tables[0].key: MRN is not unique in the source (0000007 appears more than once)") {
		t.Errorf("got %v; want a refusal naming a duplicate", err)
	}
	if n := w.count(t, "SELECT count(*) FROM mrns"); n != 0 {
		t.Errorf("%d rows were copied before the refusal", n)
	}
}

// TestATargetKeyWithLooserEqualityNeverOverwrites: tag1 and TAG1 are two
// rows in legacy but one key in a citext column; the second must go to
// the ledger, not over the first.
func TestATargetKeyWithLooserEqualityNeverOverwrites(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.pg(t, "CREATE EXTENSION IF NOT EXISTS citext SCHEMA public")
	w.mapTable(t, "CREATE TABLE Tag (Name VARCHAR(20) COLLATE utf8mb4_bin PRIMARY KEY, Uses INT NOT NULL)",
		"CREATE TABLE tags (name public.citext UNIQUE, uses int NOT NULL)",
		config.BackfillTable{Name: "tags", From: "Tag", Key: "Name", To: "tags", TargetKey: "name", Columns: cols("Name=name", "Uses=uses")})
	var values []string
	for i := 1; i <= 10; i++ {
		values = append(values, fmt.Sprintf("('tag%dx', %d), ('tag%dX', %d)", i, i, i, 100+i))
	}
	w.exec(t, "INSERT INTO Tag VALUES "+strings.Join(values, ", "))
	w.cfg.Batch = 7

	for run := 1; run <= 2; run++ {
		tr := w.run(t, backfill.Options{Restart: run == 2}).Tables[0]
		if tr.Written()+tr.Present != 10 || tr.Failed != 10 {
			t.Errorf("run %d: written %d, present %d, failed %d; want 10 rows copied and 10 failed", run, tr.Written(), tr.Present, tr.Failed)
		}
	}
	// Binary order: tag1X < tag1x < tag10X…: each pair's upper-case one
	// arrives first, sometimes in the same batch, sometimes in the one before.
	if n := w.count(t, "SELECT count(*) FROM tags WHERE name::text LIKE '%X' AND uses > 100"); n != 10 {
		t.Errorf("%d of the 10 first-copied rows kept their values, want all 10", n)
	}
	var reason string
	if err := w.modern.QueryRow(context.Background(), "SELECT reason FROM strangler_backfill_failures WHERE source_key = 'tag3x'").Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if reason != "target key collides with tag3X" {
		t.Errorf("reason %q, want %q", reason, "target key collides with tag3X")
	}
}

func TestVerifyIsExactOverTheWhole64BitRange(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.exec(t, "CREATE TABLE Wide (Id BIGINT PRIMARY KEY, V INT)")
	w.exec(t, "CREATE TABLE Huge (Id BIGINT UNSIGNED PRIMARY KEY, V INT)")
	w.pg(t, "CREATE TABLE wide (legacy_id bigint UNIQUE, v int)")
	w.pg(t, "CREATE TABLE huge (legacy_id numeric(20) UNIQUE, v int)")
	wide := []string{"-9223372036854775808", "-9223372036854775807", "-1", "0", "1", "9007199254740993", "9223372036854775806", "9223372036854775807"}
	huge := []string{"0", "1", "9223372036854775807", "9223372036854775808", "9223372036854775809", "18446744073709551614", "18446744073709551615"}
	for i, k := range wide {
		w.exec(t, fmt.Sprintf("INSERT INTO Wide VALUES (%s, %d)", k, i))
	}
	for i, k := range huge {
		w.exec(t, fmt.Sprintf("INSERT INTO Huge VALUES (%s, %d)", k, i))
	}
	w.cfg.Tables = []config.BackfillTable{
		{Name: "wide", From: "Wide", Key: "Id", To: "wide", TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "V=v")},
		{Name: "huge", From: "Huge", Key: "Id", To: "huge", TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "V=v")},
	}
	w.cfg.Batch = 3
	rep := w.run(t, backfill.Options{})
	for _, tr := range rep.Tables {
		if tr.Failed != 0 {
			t.Errorf("%s: %d failed: %q", tr.Table, tr.Failed, failureReasons(tr))
		}
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify of exact copies: %+v", d.Tables)
	}
	w.pg(t, "UPDATE wide SET v = 99 WHERE legacy_id = 9223372036854775806")
	w.pg(t, "DELETE FROM huge WHERE legacy_id = 18446744073709551614")
	w.exec(t, "DELETE FROM Wide WHERE Id = -9223372036854775808")
	d := w.verify(t, backfill.VerifyOptions{})
	got := map[string]string{}
	for _, tr := range d.Tables {
		var changed []string
		for _, c := range tr.ChangedRows {
			changed = append(changed, c.Key)
		}
		got[tr.Table] = fmt.Sprintf("missing %v extra %v changed %v", tr.MissingKeys, tr.ExtraKeys, changed)
	}
	want := map[string]string{
		"wide": "missing [] extra [-9223372036854775808] changed [9223372036854775806]",
		"huge": "missing [18446744073709551614] extra [] changed []",
	}
	for table := range want {
		if got[table] != want[table] {
			t.Errorf("%s: %s, want %s", table, got[table], want[table])
		}
	}
}

func randomUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	s := hex.EncodeToString(b)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// TestACharKeyNeverOverwritesAnother: 'ab' and 'ab ' are two keys under
// a NO PAD collation, and one char(5) value; the second must go to the
// ledger, not over the first.
func TestACharKeyNeverOverwritesAnother(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Bed (Code VARCHAR(10) COLLATE utf8mb4_nopad_bin PRIMARY KEY, Ward INT NOT NULL)",
		"CREATE TABLE beds (code char(5) UNIQUE, ward int NOT NULL)",
		config.BackfillTable{Name: "beds", From: "Bed", Key: "Code", To: "beds", TargetKey: "code", Columns: cols("Code=code", "Ward=ward")})
	w.exec(t, "INSERT INTO Bed VALUES ('ab', 1), ('ab ', 2), ('cd', 3)")
	// A batch a row: the second key meets the first in the target.
	w.cfg.Batch = 1

	tr := w.run(t, backfill.Options{}).Tables[0]
	if tr.Inserted != 2 || tr.Failed != 1 {
		t.Errorf("inserted %d, updated %d, failed %d (%q); want 2 inserted and 1 failed", tr.Inserted, tr.Updated, tr.Failed, failureReasons(tr))
	}
	if n := w.count(t, "SELECT count(*) FROM beds WHERE code = 'ab' AND ward = 1"); n != 1 {
		t.Error("bed ab no longer holds ward 1")
	}
	if want := "target key type character(5) would store the key differently"; !slices.Contains(failureReasons(tr), want) {
		t.Errorf("reasons %q lack %q", failureReasons(tr), want)
	}
}
