package backfill_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"strangler/backfill"

	"strangler/backfill/fixture"
	"strangler/patients"
)

func TestFullBackfillEqualsTheSource(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 3000, MRNs: true, PhotoEvery: 100}, nil)
	// Characters COPY's text format must escape.
	w.exec(t, "UPDATE Patient SET LastName = CONCAT('Back\\\\slash', CHAR(9), 'tab', CHAR(10), 'line') WHERE PatientSerNum = 38")
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	rep, err := backfill.Run(ctx, w.cfg, backfill.Options{Metrics: backfill.NewMetrics(reg), Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "strangler_backfill_rows_total", "table", "patients", "result", "inserted"); got != 3000 {
		t.Errorf(`strangler_backfill_rows_total{table="patients",result="inserted"} = %v, want 3000`, got)
	}
	want := map[string]int64{"patients": 3000, "hospital-patients": 3900, "photos": 30}
	for _, tr := range rep.Tables {
		if tr.Read != want[tr.Table] || tr.Inserted != want[tr.Table] || tr.Failed != 0 {
			t.Errorf("%s: read %d, inserted %d, failed %d; want %d, %d, 0", tr.Table, tr.Read, tr.Inserted, tr.Failed, want[tr.Table], want[tr.Table])
		}
	}
	// What a client sees: the same answer from both sides, but for what
	// the mapping cleans up (trimmed names, lower-case e-mails).
	for id := 1; id <= 3000; id += 37 {
		path := fmt.Sprintf("/patients/%d", id)
		lc, lb := get(t, w.legacyAPI, path)
		mc, mb := get(t, w.modernAPI, path)
		var l, m patients.Patient
		json.Unmarshal([]byte(lb), &l)
		json.Unmarshal([]byte(mb), &m)
		l.FirstName, l.LastName = strings.Trim(l.FirstName, " "), strings.Trim(l.LastName, " ")
		l.Email = strings.ToLower(strings.Trim(l.Email, " "))
		if lc != 200 || mc != 200 || !reflect.DeepEqual(l, m) {
			t.Errorf("GET %s: legacy %d %s, modern %d %s", path, lc, lb, mc, mb)
		}
		path += "/photos"
		_, lb = get(t, w.legacyAPI, path)
		_, mb = get(t, w.modernAPI, path)
		if mb != lb {
			t.Errorf("GET %s: legacy %s, modern %s", path, lb, mb)
		}
	}
	for id := 100; id <= 3000; id += 700 {
		path := fmt.Sprintf("/photos/%d", id)
		_, lb := get(t, w.legacyAPI, path)
		_, mb := get(t, w.modernAPI, path)
		if len(lb) < 512 || mb != lb {
			t.Errorf("GET %s: modern's %d bytes differ from legacy's %d", path, len(mb), len(lb))
		}
	}

	t.Run("verify finds the copy faithful", func(t *testing.T) {
		vr, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		if n := vr.Deviations(); n != 0 {
			t.Errorf("verify found %d deviations: %+v", n, vr.Tables)
		}
	})

	t.Run("running again copies nothing", func(t *testing.T) {
		rep, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range rep.Tables {
			if tr.Read != 0 || tr.Written() != 0 {
				t.Errorf("%s: read %d, wrote %d; want nothing after a complete run", tr.Table, tr.Read, tr.Written())
			}
		}
	})

	t.Run("restarting rereads everything and rewrites only what changed", func(t *testing.T) {
		w.exec(t, "UPDATE Patient SET LastName = 'Changed' WHERE PatientSerNum = 10")
		rep, err := backfill.Run(ctx, w.cfg, backfill.Options{Restart: true, Tables: []string{"patients"}, Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		tr := rep.Tables[0]
		if tr.Read != 3000 || tr.Updated != 1 || tr.Present != 2999 || tr.Inserted != 0 {
			t.Errorf("read %d, updated %d, present %d, inserted %d; want 3000, 1, 2999, 0", tr.Read, tr.Updated, tr.Present, tr.Inserted)
		}
		if n := w.count(t, "SELECT count(*) FROM patients WHERE last_name = 'Changed'"); n != 1 {
			t.Errorf("got %d changed rows in modern, want 1", n)
		}
	})
}

func TestRowsTheTargetRefusesLandInTheLedger(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 1000, MRNs: true}, nil)
	ctx := context.Background()
	// What fifteen years of a monolith leave behind.
	w.exec(t, "SET SESSION sql_mode = ''")
	w.exec(t, "UPDATE Patient SET DateOfBirth = '0000-00-00 00:00:00' WHERE PatientSerNum IN (5, 605)")
	w.exec(t, "UPDATE Patient SET Email = 'nobody at example.org' WHERE PatientSerNum = 6")
	w.exec(t, "UPDATE Patient SET FirstName = '   ' WHERE PatientSerNum = 7")
	w.exec(t, "INSERT INTO Patient_Hospital_Identifier (PatientSerNum, Hospital_Identifier_Type_Code, MRN) VALUES (99999, 'RVH', 'ORPHAN1')")

	rep, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string]backfill.TableReport{}
	for _, tr := range rep.Tables {
		byTable[tr.Table] = tr
	}
	p := byTable["patients"]
	if p.Failed != 4 || p.Inserted != 996 {
		t.Errorf("patients: %d failed, %d inserted; want 4 and 996", p.Failed, p.Inserted)
	}
	wantReasons := map[string][]string{
		"column birth_date: out of range for date (SQLSTATE 22008)":                             {"5", "605"},
		`new row for relation "patients" violates check constraint "patients_email_check"`:      {"6"},
		`new row for relation "patients" violates check constraint "patients_first_name_check"`: {"7"},
	}
	for _, g := range p.Failures {
		if want, ok := wantReasons[g.Reason]; !ok || !reflect.DeepEqual(g.SampleKeys, want) {
			t.Errorf("failure group %q with keys %v; want one of %v", g.Reason, g.SampleKeys, wantReasons)
		}
	}
	if len(p.Failures) != len(wantReasons) {
		t.Errorf("got %d failure groups, want %d: %+v", len(p.Failures), len(wantReasons), p.Failures)
	}
	// The MRNs of the failed patients have nothing to point to either.
	h := byTable["hospital-patients"]
	if h.Failed != 5 || len(h.Failures) != 1 || !strings.Contains(h.Failures[0].Reason, "no row in patients with legacy_id") {
		t.Errorf("hospital-patients: %d failed: %+v; want 5 lookup failures (4 patients, 1 orphan)", h.Failed, h.Failures)
	}
	if n := w.count(t, "SELECT count(*) FROM patients"); n != 996 {
		t.Errorf("modern has %d patients, want the 996 good ones", n)
	}

	t.Run("the ledger keeps each failed row without its protected values", func(t *testing.T) {
		var reason, payload string
		err := w.modern.QueryRow(ctx, `SELECT reason, payload::text FROM strangler_backfill_failures
			WHERE table_name = 'patients' AND source_key = '6'`).Scan(&reason, &payload)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(payload, "nobody") || !strings.Contains(payload, `"legacy_id": "6"`) || !strings.Contains(payload, `"email": "<redacted>"`) {
			t.Errorf("payload %s: want the key and redacted values", payload)
		}
	})

	t.Run("fixed rows are copied by retrying the failures", func(t *testing.T) {
		w.exec(t, "UPDATE Patient SET DateOfBirth = NULL WHERE PatientSerNum IN (5, 605)")
		w.exec(t, "UPDATE Patient SET Email = '' WHERE PatientSerNum = 6")
		rep, err := backfill.Run(ctx, w.cfg, backfill.Options{OnlyFailed: true, Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][2]int64{}
		for _, tr := range rep.Tables {
			got[tr.Table] = [2]int64{tr.Written(), tr.Failed}
		}
		// Patient 7 still has no name, and the orphan MRN no patient.
		want := map[string][2]int64{"patients": {3, 1}, "hospital-patients": {3, 2}, "photos": {0, 0}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("written and failed per table: got %v, want %v", got, want)
		}
		if n := w.count(t, "SELECT count(*) FROM strangler_backfill_failures"); n != 3 {
			t.Errorf("the ledger holds %d failures, want 3", n)
		}
	})
}
