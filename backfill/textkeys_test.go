package backfill_test

import (
	"context"
	"reflect"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestTablesKeyedByText copies and verifies a query source keyed by a
// string, whose order differs between MariaDB's collation and
// PostgreSQL's: keyset pagination uses the source's order, verify a hash
// of the key.
func TestTablesKeyedByText(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 1500}, nil)
	ctx := context.Background()
	w.exec(t, "INSERT INTO Users (UserType, UserTypeSerNum, Username) SELECT 'Patient', PatientSerNum, CONCAT(IF(PatientSerNum % 2 = 0, 'p', 'P'), PatientSerNum) FROM Patient")
	w.exec(t, "INSERT INTO Users (UserType, UserTypeSerNum, Username) VALUES ('Staff', 1, 'nurse.joy'), ('Patient', 2, 'much.too.long')")
	// A length limit an explicit cast would silently cut values to.
	if _, err := w.modern.Exec(ctx, "CREATE TABLE logins (username varchar(6) PRIMARY KEY, patient_legacy_id bigint NOT NULL, kind text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	w.cfg.Tables = []config.BackfillTable{{
		Name:      "logins",
		Query:     "SELECT Username, UserTypeSerNum FROM Users WHERE UserType = 'Patient'",
		Key:       "Username",
		To:        "logins",
		TargetKey: "username",
		Columns: map[string]config.Column{
			"username":          {From: "Username"},
			"patient_legacy_id": {From: "UserTypeSerNum"},
			"kind":              {Default: ptr("patient")},
		},
	}}
	w.cfg.Batch = 100
	rep, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Tables[0]
	if l.Read != 1501 || l.Inserted != 1500 || l.Failed != 1 {
		t.Errorf("read %d, inserted %d, failed %d; want 1501, 1500, 1", l.Read, l.Inserted, l.Failed)
	}
	if want := "column username: character varying(6) would cut it to 6 characters (lossy: true allows it)"; len(l.Failures) != 1 || l.Failures[0].Reason != want {
		t.Errorf("failures %+v, want %q", l.Failures, want)
	}
	if _, err := w.modern.Exec(ctx, "DELETE FROM logins WHERE username = 'P1001'; UPDATE logins SET kind = 'staff' WHERE username = 'p42'"); err != nil {
		t.Fatal(err)
	}
	vr, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	d := vr.Tables[0]
	// Keys come in the source's order: MariaDB's collation ignores case.
	if !reflect.DeepEqual(d.MissingKeys, []string{"much.too.long", "P1001"}) || d.Changed != 1 || d.ChangedRows[0].Key != "p42" || d.Extra != 0 {
		t.Errorf("got %+v; want P1001 and much.too.long missing, p42 changed", d)
	}
}

func ptr[T any](v T) *T { return &v }
