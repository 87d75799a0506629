package backfill_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestSignalledMessagesStayOutOfReports: a legacy function the source
// query calls SIGNALs with the row's values, as validation routines in
// the wild do (`SET MESSAGE_TEXT = msg` built from the record number),
// under an error number of its author's. The table stops; the run's
// report (JSON, text, HTML), the ledger, the logs at debug and the run's
// error say which error stopped it, signalled, and show no value; so do
// verify's error and report.
func TestSignalledMessagesStayOutOfReports(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Privacy12Person (Id INT PRIMARY KEY, Mrn VARCHAR(80))",
		"CREATE TABLE privacy12_persons (legacy_id bigint UNIQUE, mrn text)",
		config.BackfillTable{Name: "persons", Query: "SELECT Id, Privacy12Check(Mrn) AS Mrn FROM Privacy12Person", Key: "Id",
			To: "privacy12_persons", TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Mrn=mrn")})
	w.exec(t, privacy12Check)
	w.exec(t, `INSERT INTO Privacy12Person VALUES (1, 'MRN1'), (2, 'MRN7730019 PATIENT-MARKER-4711')`)

	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, runErr := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: log})
	if rep == nil {
		t.Fatalf("no report: %v", runErr)
	}
	const stopped = "Error 30001 (HY000): signalled by a trigger or routine"
	if persons := tableReport(t, rep, "persons"); !strings.Contains(persons.Error, stopped) {
		t.Errorf("persons stopped for %q, want it to say %q", persons.Error, stopped)
	}
	if runErr == nil || !strings.Contains(runErr.Error(), stopped) {
		t.Errorf("the run ended with %v, want it to say %q", runErr, stopped)
	}
	shown := w.shown(t, rep)
	shown["the logs"] = logs.String()
	if runErr != nil {
		shown["the run's error"] = runErr.Error()
	}

	vrep, verr := backfill.Verify(context.Background(), w.cfg, backfill.VerifyOptions{Log: log})
	if verr == nil || !strings.Contains(verr.Error(), stopped) {
		t.Errorf("verify ended with %v, want it to say %q", verr, stopped)
	}
	if verr != nil {
		shown["verify's error"] = verr.Error()
	}
	if vrep != nil {
		j, _ := json.Marshal(vrep)
		var text strings.Builder
		vrep.WriteText(&text)
		shown["verify's JSON report"], shown["verify's text report"] = string(j), text.String()
	}
	shown["the logs"] = logs.String()
	for where, s := range shown {
		for _, v := range []string{"7730019", "PATIENT-MARKER-4711"} {
			if strings.Contains(s, v) {
				t.Errorf("%s shows a value (%q):\n%s", where, v, s)
			}
		}
	}
}

// TestSignalledMessagesStayOutOfPlanningErrors: a key the legacy function
// makes is checked for duplicates as the run is planned, and the SIGNAL
// stops the run and verify there; both say which error it was, and
// neither shows the value.
func TestSignalledMessagesStayOutOfPlanningErrors(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Privacy12Person (Id INT PRIMARY KEY, Mrn VARCHAR(80))",
		"CREATE TABLE privacy12_persons (legacy_id text UNIQUE, mrn text)",
		config.BackfillTable{Name: "persons", Query: "SELECT Privacy12Check(Mrn) AS K, Mrn FROM Privacy12Person", Key: "K",
			NullKeys: config.NullKeysSkip, To: "privacy12_persons", TargetKey: "legacy_id", Columns: cols("K=legacy_id", "Mrn=mrn")})
	w.exec(t, privacy12Check)
	w.exec(t, `INSERT INTO Privacy12Person VALUES (1, 'MRN1'), (2, 'MRN7730019 PATIENT-MARKER-4711')`)
	const want = "checking that the key is unique: Error 30001 (HY000): signalled by a trigger or routine"
	_, runErr := backfill.Run(context.Background(), w.cfg, backfill.Options{})
	_, verr := backfill.Verify(context.Background(), w.cfg, backfill.VerifyOptions{})
	for what, err := range map[string]error{"the run": runErr, "verify": verr} {
		if err == nil || !strings.HasSuffix(err.Error(), want) || strings.Contains(err.Error(), "7730019") {
			t.Errorf("%s ended with %v, want it to end %q", what, err, want)
		}
	}
}

// privacy12Check is a legacy validation function that SIGNALs with the
// record number it refuses.
const privacy12Check = `CREATE FUNCTION Privacy12Check(m VARCHAR(80)) RETURNS VARCHAR(80) DETERMINISTIC
	BEGIN
		DECLARE msg VARCHAR(200) DEFAULT CONCAT('patient ', m, ' is on hold');
		IF m LIKE 'MRN77%' THEN
			SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 30001, MESSAGE_TEXT = msg;
		END IF;
		RETURN m;
	END`
