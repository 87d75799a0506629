package backfill_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/config"
)

// TestAPIBackfillSendsInstantsWithTheirZoneAndRefusesDatesThatAreNone:
// a TIMESTAMP is an instant, read in UTC; sent as MySQL writes it, it
// was a wall time in no zone, which the service would read in its own.
// It goes as RFC 3339 in UTC; DATETIME, a wall time, DATE, TIME (a
// duration up to 838 hours) and YEAR go as MySQL writes them. A date
// that is none (0000-00-00, 2024-02-30, kept under a lenient sql_mode)
// is refused, naming the field, and never sent.
func TestAPIBackfillSendsInstantsWithTheirZoneAndRefusesDatesThatAreNone(t *testing.T) {
	sent := &sentBodies{}
	w := newConsentAPI(t, sent)
	conn, err := w.legacy.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"ALTER TABLE Consent ADD (SignedAt TIMESTAMP(3) NULL, Wall DATETIME NULL, Day DATE NULL, Took TIME NULL, Yr YEAR NULL, F FLOAT NULL, D DOUBLE NULL, Tiny DOUBLE NULL)",
		// The monolith's sessions ran at +05:30: the instant is 04:30 UTC.
		"SET SESSION time_zone = '+05:30', sql_mode = 'ALLOW_INVALID_DATES'",
		"UPDATE Consent SET SignedAt = '2024-03-10 10:00:00.250'",
		"UPDATE Consent SET Wall = '2024-03-10 10:00:00', Day = '2024-03-10', Took = '-838:59:59', Yr = 2024 WHERE ConsentSerNum = 1",
		// The driver writes these 1.6777216e+07, 1e+15 and 1e-07.
		"UPDATE Consent SET F = 16777216, D = 1e15, Tiny = 1e-7 WHERE ConsentSerNum = 1",
		"UPDATE Consent SET Day = '2024-02-30' WHERE ConsentSerNum = 2",
		"SET SESSION sql_mode = ''",
		"UPDATE Consent SET Wall = '0000-00-00 00:00:00' WHERE ConsentSerNum = 3",
	} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := w.config(t)
	cfg.Tables[0].TargetAPI.Path = "/consents/{ConsentSerNum}/{SignedAt}"
	cfg.Tables[0].TargetAPI.Body = map[string]config.Column{"signed_at": {From: "SignedAt"}, "wall": {From: "Wall"},
		"day": {From: "Day"}, "took": {From: "Took"}, "year": {From: "Yr"},
		"float": {From: "F"}, "double": {From: "D"}, "tiny": {From: "Tiny"},
		// TRIM makes a TIMESTAMP a VARCHAR; its text is the instant in UTC all the same.
		"trimmed": {From: "SignedAt", Transform: []config.Transform{config.TransformTrim}},
		// and a DATETIME a VARCHAR, whose zero date is no date all the same.
		"trimmed_wall": {From: "Wall", Transform: []config.Transform{config.TransformTrim}}}
	tr := w.run(t, cfg, backfill.Options{}).Tables[0]
	if tr.Written() != 1 || tr.Failed != 2 {
		t.Errorf("migrated %d, failed %d (%+v); want 1 and 2", tr.Written(), tr.Failed, tr.Failures)
	}
	for _, want := range []string{
		"not sent: field day is not a real date (0000-00-00, month or day 0, or a day its month lacks)",
		"not sent: field trimmed_wall is not a real date (0000-00-00, month or day 0, or a day its month lacks)",
	} {
		if !slices.ContainsFunc(tr.Failures, func(f backfill.FailureGroup) bool { return f.Reason == want }) {
			t.Errorf("failures %+v lack %q", tr.Failures, want)
		}
	}
	bodies := sent.all()
	// A path column is written as a body field is.
	const path = "/consents/1/2024-03-10T04:30:00.250Z"
	want := `{"day":"2024-03-10","double":1000000000000000,"float":16777216,"signed_at":"2024-03-10T04:30:00.250Z","tiny":1e-07,"took":"-838:59:59","trimmed":"2024-03-10T04:30:00.250Z","trimmed_wall":"2024-03-10 10:00:00","wall":"2024-03-10 10:00:00","year":"2024"}`
	if len(bodies) != 1 || bodies[path] != want {
		t.Errorf("the API got %v, want only %s with %s", bodies, path, want)
	}
	failed, err := w.store.APIBackfillFailures(context.Background(), "consents", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failed {
		if f.Reason != "invalid_value" || f.Status != 0 || strings.Contains(f.Message, "2024-02-30") {
			t.Errorf("ledger row %+v, want invalid_value, never answered, no value in its message", f)
		}
	}
}

// TestAPIBackfillSendsLookedUpValuesAsTheirColumnsDo: a body lookup
// without from (by the row's key) had no type, so its numbers went as
// strings ("1.6777216e+07", which a service reading an integer refuses,
// and BIT(1) as "1") and a TIMESTAMP as a wall time in no zone, another
// instant for a service outside UTC; with from, a lookup made text by a
// transform lost its column's type too: TRIM of a TIMESTAMP went as a
// wall time, TRIM of a zero DATE was sent. A looked-up value now goes as
// its column's does, with from or without.
func TestAPIBackfillSendsLookedUpValuesAsTheirColumnsDo(t *testing.T) {
	sent := &sentBodies{}
	w := newConsentAPI(t, sent)
	conn, err := w.legacy.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE TABLE Signature (ConsentSerNum INT PRIMARY KEY, N INT, F FLOAT, Mark BIT(1), SignedAt TIMESTAMP(3) NULL, Day DATE NULL)",
		"SET SESSION time_zone = '+05:30', sql_mode = ''",
		"INSERT INTO Signature VALUES (1, 7, 16777216, b'1', '2024-03-10 10:00:00.250', '2024-03-10'), (2, 8, 0.5, b'0', NULL, '0000-00-00')",
	} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	look := func(col string) *config.Lookup {
		return &config.Lookup{Table: "Signature", Key: "ConsentSerNum", Column: col}
	}
	trim := []config.Transform{config.TransformTrim}
	cfg := w.config(t)
	cfg.Tables[0].TargetAPI.Body = map[string]config.Column{
		"n": {Lookup: look("N")}, "f": {Lookup: look("F")}, "mark": {Lookup: look("Mark")}, "signed_at": {Lookup: look("SignedAt")},
		"trimmed": {From: "ConsentSerNum", Lookup: look("SignedAt"), Transform: trim},
		"day":     {From: "ConsentSerNum", Lookup: look("Day"), Transform: trim}}
	tr := w.run(t, cfg, backfill.Options{}).Tables[0]
	want := "not sent: field day is not a real date (0000-00-00, month or day 0, or a day its month lacks)"
	if tr.Written() != 2 || tr.Failed != 1 || len(tr.Failures) != 1 || tr.Failures[0].Reason != want {
		t.Errorf("migrated %d, failed %d (%+v); want 2 and consent 2 failed: %q", tr.Written(), tr.Failed, tr.Failures, want)
	}
	bodies := sent.all()
	wantBodies := map[string]string{
		"/consents/1": `{"day":"2024-03-10","f":16777216,"mark":1,"n":7,"signed_at":"2024-03-10T04:30:00.250Z","trimmed":"2024-03-10T04:30:00.250Z"}`,
		"/consents/3": `{"day":null,"f":null,"mark":null,"n":null,"signed_at":null,"trimmed":null}`,
	}
	if len(bodies) != len(wantBodies) {
		t.Errorf("the API got %v, want %v", bodies, wantBodies)
	}
	for path, body := range wantBodies {
		if bodies[path] != body {
			t.Errorf("%s: body %s, want %s", path, bodies[path], body)
		}
	}
}
