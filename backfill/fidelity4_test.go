package backfill_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestSpatialColumnsAreRefusedBeforeCopying: MySQL sends a POINT or a
// GEOMETRY in its storage form, a 4-byte SRID before the WKB. Into bytea
// those bytes were copied as they were (e6100000 0101000000…, which no
// PostGIS or WKB reader takes) and verify called them equal; into any
// other type every row failed. The plan now refuses the column, naming
// it, before any row is read, and a query reading ST_AsBinary copies the
// standard WKB exactly.
func TestSpatialColumnsAreRefusedBeforeCopying(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity4_place (Id INT PRIMARY KEY, Spot POINT)",
		"CREATE TABLE fidelity4_places (id int UNIQUE, spot bytea, srid int)",
		config.BackfillTable{Name: "places", From: "fidelity4_place", Key: "Id", To: "fidelity4_places", TargetKey: "id", Columns: cols("Id=id", "Spot=spot")})
	w.exec(t, "INSERT INTO fidelity4_place VALUES (1, ST_GeomFromText('POINT(1 2)', 4326)), (2, ST_GeomFromText('POINT(-71.06 42.36)')), (3, NULL)")

	want := "backfill.tables[0].columns.spot: Spot is a spatial type, which MySQL sends in its own storage form"
	if _, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("backfill: %v; want an error containing %q", err, want)
	}
	if n := w.count(t, "SELECT count(*) FROM fidelity4_places"); n != 0 {
		t.Errorf("%d rows copied, want none", n)
	}
	if _, err := backfill.Verify(context.Background(), w.cfg, backfill.VerifyOptions{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("verify: %v; want an error containing %q", err, want)
	}
	// Trimmed, it is text of the same bytes.
	w.cfg.Tables[0].Columns["spot"] = config.Column{From: "Spot", Transform: []config.Transform{config.TransformTrim}}
	if _, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("backfill of the trimmed point: %v; want an error containing %q", err, want)
	}

	w.cfg.Tables[0].From = ""
	w.cfg.Tables[0].Query = "SELECT Id, ST_AsBinary(Spot) AS Spot, ST_SRID(Spot) AS Srid FROM fidelity4_place"
	w.cfg.Tables[0].Columns = cols("Id=id", "Spot=spot", "Srid=srid")
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 3 || tr.Failed != 0 {
		t.Errorf("inserted %d, failed %d (%q); want 3 and 0", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	// WKB of POINT(1 2): little-endian, type 1, x, y; the SRID in its own column.
	if n := w.count(t, `SELECT count(*) FROM fidelity4_places WHERE id = 1 AND srid = 4326
		AND spot = '\x0101000000000000000000f03f0000000000000040'`); n != 1 {
		t.Error("point 1 is not the WKB of POINT(1 2) with SRID 4326")
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v, want no deviations", d.Tables)
	}
}

// TestAPIBackfillRefusesSpatialColumns: a POINT went to the API as its
// storage bytes, percent-escaped in a path and refused row by row in a
// body; the plan now refuses it, naming the field, and nothing is sent.
func TestAPIBackfillRefusesSpatialColumns(t *testing.T) {
	var sent atomic.Int64
	w := newConsentAPI(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { sent.Add(1) }))
	if _, err := w.legacy.Exec("ALTER TABLE Consent ADD Spot POINT NULL"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.legacy.Exec("UPDATE Consent SET Spot = ST_GeomFromText('POINT(1 2)', 4326)"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		set   func(*config.TargetAPI)
		field string
	}{
		{"in the body", func(a *config.TargetAPI) { a.Body["spot"] = config.Column{From: "Spot"} }, "target_api.body.spot"},
		{"in the path", func(a *config.TargetAPI) { a.Path = "/consents/{ConsentSerNum}/{Spot}" }, "target_api.path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := w.config(t)
			tc.set(cfg.Tables[0].TargetAPI)
			want := tc.field + ": Spot is a spatial type"
			opts := backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()}
			if _, err := backfill.Run(context.Background(), cfg, opts); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("backfill: %v; want an error containing %q", err, want)
			}
			if n := sent.Load(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}

// TestATargetTableMayHaveAnyName: the query that checks keys whose target
// type stores them otherwise (text into numeric, citext…) named its
// steps k and w, which a target table of that name then was: every batch
// of the table stopped it ("column t.code does not exist").
func TestATargetTableMayHaveAnyName(t *testing.T) {
	for _, name := range []string{"k", "w"} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, fixture.Sizes{}, nil)
			w.mapTable(t, "CREATE TABLE fidelity4_dose (Code VARCHAR(10) PRIMARY KEY, Mg INT)",
				"CREATE TABLE "+name+" (code numeric UNIQUE, mg int)",
				config.BackfillTable{Name: "doses", From: "fidelity4_dose", Key: "Code", To: name, TargetKey: "code", Columns: cols("Code=code", "Mg=mg")})
			w.exec(t, "INSERT INTO fidelity4_dose VALUES ('1.5', 10), ('2', 20), ('2.0', 30)")
			tr := w.run(t, backfill.Options{}).Tables[0]
			if tr.Inserted != 2 || tr.Failed != 1 {
				t.Errorf("inserted %d, failed %d (%q); want 2 and 1 (2.0 is 2 in numeric)", tr.Inserted, tr.Failed, failureReasons(tr))
			}
			if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing != 1 || d.Changed != 0 || d.Extra != 0 {
				t.Errorf("verify: %+v; want only the refused row missing", d)
			}
		})
	}
}

// TestATextKeyIntoATimestamptzKeyIsRefusedBeforeCopying: timestamptz
// stores an instant and shows it at an offset, so a text key's text was
// never the target key's; every row went to the ledger, one by one, as
// "would store the key differently". The plan refuses it now, and the
// key it suggests, CAST(… AS DATETIME(6)), is copied and matched by value.
func TestATextKeyIntoATimestamptzKeyIsRefusedBeforeCopying(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE fidelity4_reading (Taken VARCHAR(30) PRIMARY KEY, Pulse INT)",
		"CREATE TABLE fidelity4_readings (taken timestamptz UNIQUE, pulse int)",
		config.BackfillTable{Name: "readings", From: "fidelity4_reading", Key: "Taken", To: "fidelity4_readings", TargetKey: "taken", Columns: cols("Taken=taken", "Pulse=pulse")})
	w.cfg.SourceTimeZone = "America/New_York"
	w.exec(t, "INSERT INTO fidelity4_reading VALUES ('2024-03-10 10:00:00', 60), ('2024-03-10 10:00:00.5', 61), ('2024-11-03 01:30:00', 62), ('soon', 63)")

	want := "backfill.tables[0].columns.taken: Taken is text, and timestamp with time zone stores an instant whose text is another"
	if _, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("backfill: %v; want an error containing %q", err, want)
	}
	if n := w.count(t, "SELECT count(*) FROM fidelity4_readings"); n != 0 {
		t.Errorf("%d rows copied, want none", n)
	}

	w.cfg.Tables[0].From = ""
	w.cfg.Tables[0].Query = "SELECT CAST(Taken AS DATETIME(6)) AS Taken, Pulse FROM fidelity4_reading"
	w.cfg.Tables[0].NullKeys = config.NullKeysSkip
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 3 || tr.Failed != 1 {
		t.Errorf("inserted %d, failed %d (%q); want 3, and the text that is no date failed", tr.Inserted, tr.Failed, failureReasons(tr))
	}
	if n := w.count(t, "SELECT count(*) FROM fidelity4_readings WHERE taken = '2024-03-10 14:00:00.5+00' AND pulse = 61"); n != 1 {
		t.Error("10:00:00.5 in New York is not 14:00:00.5 UTC in modern")
	}
	if tr := w.run(t, backfill.Options{Restart: true}).Tables[0]; tr.Written() != 0 || tr.Present != 3 {
		t.Errorf("restart: written %d, present %d; want all 3 present", tr.Written(), tr.Present)
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[0]; d.Missing+d.Changed+d.Extra != 0 || d.NullKeys != 1 {
		t.Errorf("verify: %+v, want only the text that is no date, as a NULL key", d)
	}
}

// TestAPIWorkersSendEveryGroupOfAFloatGroupBy: workers lease a group by
// its value's text and read its rows with group_by = text, which MySQL
// compares with a FLOAT as a double; the double of 0.1 or of 590.768
// (the six digits MySQL writes of 590.7676) is no float's: those groups
// matched no row, and the run ended with their rows never sent, reported
// as nothing to do.
func TestAPIWorkersSendEveryGroupOfAFloatGroupBy(t *testing.T) {
	w, sent := newAlteredConsentAPI(t,
		"ALTER TABLE Consent ADD Dose FLOAT NULL",
		"INSERT INTO Consent (ConsentSerNum, Dose) VALUES (4, 0.1), (5, 1.5), (6, 590.7676)",
		"UPDATE Consent SET Dose = 590.7676 WHERE ConsentSerNum IN (1, 2)")
	sendsEveryConsentOnce(t, w, sent, "Dose", "fidelity4")
}
