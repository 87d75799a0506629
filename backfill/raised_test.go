package backfill_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestRaisedMessagesStayOutOfReports: a target's triggers raise with the
// row's values, as triggers in the wild do (`RAISE EXCEPTION 'bad %',
// NEW.ssn`), on tables with no redacted columns: one under the default
// code, which fails its row, one under a code that stops its table (and
// so the run). The row's reason, the table's error and the run's error
// name the function and the code; no value is in the report (JSON,
// text, HTML), the logs at debug, the ledger or the run's error.
func TestRaisedMessagesStayOutOfReports(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Privacy11Person (Id INT PRIMARY KEY, Ssn VARCHAR(80), Mrn VARCHAR(80))",
		`CREATE TABLE privacy11_persons (legacy_id bigint UNIQUE, ssn text, mrn text);
		CREATE FUNCTION privacy11_check_ssn() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.ssn LIKE '987%' THEN
				RAISE EXCEPTION 'bad ssn % for %', NEW.ssn, NEW.mrn;
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER privacy11_check_ssn BEFORE INSERT ON privacy11_persons
			FOR EACH ROW EXECUTE FUNCTION privacy11_check_ssn()`,
		config.BackfillTable{Name: "persons", From: "Privacy11Person", Key: "Id", To: "privacy11_persons", TargetKey: "legacy_id",
			Columns: cols("Id=legacy_id", "Ssn=ssn", "Mrn=mrn")})
	w.exec(t, "CREATE TABLE Privacy11Visit (Id INT PRIMARY KEY, Mrn VARCHAR(80))")
	w.pg(t, `CREATE TABLE privacy11_visits (legacy_id bigint UNIQUE, mrn text);
		CREATE FUNCTION privacy11_hold() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'patient % is on hold', NEW.mrn USING ERRCODE = 'object_not_in_prerequisite_state';
		END $$;
		CREATE TRIGGER privacy11_hold BEFORE INSERT ON privacy11_visits
			FOR EACH ROW EXECUTE FUNCTION privacy11_hold()`)
	w.cfg.Tables = append(w.cfg.Tables, config.BackfillTable{Name: "visits", From: "Privacy11Visit", Key: "Id", To: "privacy11_visits",
		TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Mrn=mrn")})
	w.exec(t, `INSERT INTO Privacy11Person VALUES (1, '987-65-4329', 'MRN7730019 PATIENT-MARKER-4711'), (2, '123-45-6789', 'MRN1')`)
	w.exec(t, `INSERT INTO Privacy11Visit VALUES (1, 'MRN7730019 PATIENT-MARKER-4711')`)

	w.runShowing(t, "raised by function privacy11_check_ssn()", "raised by function privacy11_hold() (SQLSTATE 55000)", "65-4329", "7730019", "PATIENT-MARKER-4711")
}

// TestStatementsBuiltAtRunTimeStayOutOfReports: a target's triggers file
// each row into a table named after its record number, built at run
// time (`EXECUTE format('INSERT INTO %I …', 'chart_' || NEW.mrn)`), as
// partition-routing triggers do, on tables with no redacted columns:
// one finds the row already filed (a duplicate in the constraint named
// after the record number), which fails its row; one finds no table for
// it, which stops its table (and so the run). The row's reason, the
// table's error and the run's error name the function and the code; no
// record number is in the report (JSON, text, HTML), the logs at debug,
// the ledger or the run's error.
func TestStatementsBuiltAtRunTimeStayOutOfReports(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Privacy13Person (Id INT PRIMARY KEY, Mrn VARCHAR(80))",
		`CREATE TABLE privacy13_persons (legacy_id bigint UNIQUE, mrn text);
		CREATE TABLE privacy13_chart_mrn7730019 (id bigint PRIMARY KEY);
		INSERT INTO privacy13_chart_mrn7730019 VALUES (1);
		CREATE TABLE privacy13_chart_mrn1 (id bigint PRIMARY KEY);
		CREATE FUNCTION privacy13_file() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			EXECUTE format('INSERT INTO %I VALUES ($1)', 'privacy13_chart_' || lower(NEW.mrn)) USING NEW.legacy_id;
			RETURN NEW;
		END $$;
		CREATE TRIGGER privacy13_file BEFORE INSERT ON privacy13_persons
			FOR EACH ROW EXECUTE FUNCTION privacy13_file()`,
		config.BackfillTable{Name: "persons", From: "Privacy13Person", Key: "Id", To: "privacy13_persons", TargetKey: "legacy_id",
			Columns: cols("Id=legacy_id", "Mrn=mrn")})
	w.exec(t, "CREATE TABLE Privacy13Visit (Id INT PRIMARY KEY, Mrn VARCHAR(80))")
	w.pg(t, `CREATE TABLE privacy13_visits (legacy_id bigint UNIQUE, mrn text);
		CREATE FUNCTION privacy13_route() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			EXECUTE format('INSERT INTO %I VALUES ($1)', 'privacy13_visits_' || NEW.mrn) USING NEW.legacy_id;
			RETURN NULL;
		END $$;
		CREATE TRIGGER privacy13_route BEFORE INSERT ON privacy13_visits
			FOR EACH ROW EXECUTE FUNCTION privacy13_route()`)
	w.cfg.Tables = append(w.cfg.Tables, config.BackfillTable{Name: "visits", From: "Privacy13Visit", Key: "Id", To: "privacy13_visits",
		TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Mrn=mrn")})
	w.exec(t, `INSERT INTO Privacy13Person VALUES (1, 'MRN7730019'), (2, 'MRN1')`)
	w.exec(t, `INSERT INTO Privacy13Visit VALUES (1, 'MRN7730019')`)

	w.runShowing(t, "a statement built at run time by function privacy13_file() failed", "a statement built at run time by function privacy13_route() failed (SQLSTATE 42P01)", "7730019")
}

// runShowing runs the backfill of w's persons and visits tables and
// checks that the one failed row of persons has reason, that visits
// stopped, and so the run, saying stopped, and that none of values is
// in the report (JSON, text, HTML), the logs at debug, the ledger or the
// run's error.
func (w *world) runShowing(t *testing.T, reason, stopped string, values ...string) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, runErr := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: log})
	if rep == nil {
		t.Fatalf("no report: %v", runErr)
	}
	persons, visits := tableReport(t, rep, "persons"), tableReport(t, rep, "visits")
	if got := failureReasons(persons); len(got) != 1 || got[0] != reason || persons.Inserted != 1 {
		t.Errorf("persons: reasons %q, %d inserted; want %q and 1 inserted", got, persons.Inserted, reason)
	}
	if !strings.Contains(visits.Error, stopped) {
		t.Errorf("visits stopped for %q, want it to say %q", visits.Error, stopped)
	}
	if runErr == nil || !strings.Contains(runErr.Error(), stopped) || !strings.Contains(rep.Error, stopped) {
		t.Errorf("the run ended with %v (report: %q), want it to say %q", runErr, rep.Error, stopped)
	}
	shown := w.shown(t, rep)
	shown["the logs"], shown["the run's error"] = logs.String(), runErr.Error()
	for where, s := range shown {
		for _, v := range values {
			if strings.Contains(s, v) {
				t.Errorf("%s shows a value (%q):\n%s", where, v, s)
			}
		}
	}
}
