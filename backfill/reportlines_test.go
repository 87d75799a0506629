package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestTextReportsGiveEachFindingOneLine: a legacy key is text end users
// may choose, and the text reports wrote it as it was, newline and all,
// so a key could end a finding's line and write a line of its own that
// reads like the report's ("verify: 0 deviations"); a CR sent the cursor
// back over the line. Each key, reason and name now stays on its line,
// a line break in it written as \u000a.
func TestTextReportsGiveEachFindingOneLine(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 3}, nil)
	ctx := context.Background()
	forged := "forged\nverify: 0 deviations in 1 tables, 1ms\r\tall clear"
	w.exec(t, "INSERT INTO Users (UserType, UserTypeSerNum, Username) VALUES ('Patient', 1, 'p1'), ('Patient', 2, ?)", forged)
	if _, err := w.modern.Exec(ctx, "CREATE TABLE logins (username varchar(6) PRIMARY KEY, patient_legacy_id bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	w.cfg.Tables = []config.BackfillTable{{
		Name: "logins", Query: "SELECT Username, UserTypeSerNum FROM Users WHERE UserType = 'Patient'",
		Key: "Username", To: "logins", TargetKey: "username",
		Columns: map[string]config.Column{"username": {From: "Username"}, "patient_legacy_id": {From: "UserTypeSerNum"}},
	}}
	rep, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if l := rep.Tables[0]; l.Inserted != 1 || l.Failed != 1 {
		t.Fatalf("inserted %d, failed %d; want the long key to fail", l.Inserted, l.Failed)
	}
	if _, err := w.modern.Exec(ctx, "DELETE FROM logins"); err != nil {
		t.Fatal(err)
	}
	vr, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	var copyOut, verifyOut strings.Builder
	rep.WriteText(&copyOut)
	vr.WriteText(&verifyOut)
	for name, out := range map[string]string{"backfill": copyOut.String(), "verify": verifyOut.String()} {
		if !strings.Contains(out, `forged\u000averify: 0 deviations in 1 tables, 1ms\u000d\u0009all clear`) {
			t.Errorf("%s does not show the key on one line, its line breaks as \\u escapes:\n%s", name, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "verify: 0") {
				t.Errorf("%s wrote a line the key made: %q\n%s", name, line, out)
			}
		}
	}
}

// TestHTMLReportShowsBidirectionalOverridesAsEscapes: a browser acts on
// U+202E as a terminal does, showing what follows it reversed, so a key
// "MRN1\u202e987" read as MRN1789 and a reason could turn around the
// key or count after it. html/template escapes markup, not these: the
// report's keys, reasons and error now write them as \u escapes, as the
// text report does.
func TestHTMLReportShowsBidirectionalOverridesAsEscapes(t *testing.T) {
	var out strings.Builder
	err := (&backfill.Report{Mode: "copy", Started: time.Now(), Finished: time.Now(), Tables: []backfill.TableReport{{
		Table: "patients", Read: 2, Failed: 2,
		Failures: []backfill.FailureGroup{{Reason: "value too long \u202e" + "sey\u2066", Count: 2, SampleKeys: []string{"MRN1\u202e987"}}},
	}}, Error: "stopped \u202edeef\u009b2J"}).WriteHTML(&out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.String() {
		if unicode.Is(unicode.Bidi_Control, r) || r >= 0x80 && unicode.IsControl(r) {
			t.Fatalf("the HTML report holds %U as it is", r)
		}
	}
	for _, want := range []string{`MRN1\u202e987`, `value too long \u202esey\u2066`, `stopped \u202edeef\u009b2J`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the HTML report does not show %s", want)
		}
	}
}
