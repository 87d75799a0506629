package backfill_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

func TestVerifyFindsWhatDiffers(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 4000, MRNs: true, PhotoEvery: 200}, nil)
	ctx := context.Background()
	if _, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()}); err != nil {
		t.Fatal(err)
	}

	t.Run("a faithful copy has no deviations", func(t *testing.T) {
		rep, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		if n := rep.Deviations(); n != 0 {
			t.Errorf("got %d deviations: %+v", n, rep.Tables)
		}
		for _, d := range rep.Tables {
			// Chunks of 10,000 rows: count modern, then read, stage and
			// compare one chunk, and count modern again.
			if d.Queries != 5 {
				t.Errorf("%s: %d queries, want 5 for equal tables of less than a chunk", d.Table, d.Queries)
			}
		}
	})

	t.Run("planted differences are found with their keys", func(t *testing.T) {
		mustExec := func(q string) {
			t.Helper()
			if _, err := w.modern.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		mustExec("DELETE FROM patients WHERE legacy_id = 1234")
		mustExec("UPDATE patients SET last_name = 'Changed', email = 'changed@example.org' WHERE legacy_id = 2345")
		mustExec("UPDATE hospital_patients SET site = 'JGH' WHERE legacy_id = 2*3456")
		mustExec("UPDATE photos SET data = 'not the photo' WHERE legacy_id = 400")
		w.exec(t, "DELETE FROM Patient WHERE PatientSerNum = 3999")
		reg := prometheus.NewRegistry()
		rep, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Metrics: backfill.NewMetrics(reg), ShowValues: true, Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		if got := counter(t, reg, "strangler_verify_deviations", "table", "patients", "kind", "extra"); got != 1 {
			t.Errorf(`strangler_verify_deviations{table="patients",kind="extra"} = %v, want 1`, got)
		}
		tables := map[string]backfill.TableDiff{}
		for _, d := range rep.Tables {
			tables[d.Table] = d
		}
		p := tables["patients"]
		if !reflect.DeepEqual(p.MissingKeys, []string{"1234"}) || !reflect.DeepEqual(p.ExtraKeys, []string{"3999"}) || p.Changed != 1 {
			t.Errorf("patients: missing %v, extra %v, changed %d; want [1234], [3999], 1", p.MissingKeys, p.ExtraKeys, p.Changed)
		}
		changed := backfill.ChangedRow{Key: "2345", Columns: []backfill.ColumnDiff{
			{Column: "email", Redacted: true}, {Column: "last_name", Redacted: true}}}
		if len(p.ChangedRows) != 1 || !reflect.DeepEqual(p.ChangedRows[0], changed) {
			t.Errorf("patients changed rows: got %+v, want %+v (values redacted, even when shown)", p.ChangedRows, changed)
		}
		// Patient 1234's MRN went with it (ON DELETE CASCADE).
		h := tables["hospital-patients"]
		site := func(s string) *string { return &s }
		if h.Missing != 1 || h.Changed != 1 || len(h.ChangedRows) != 1 ||
			!reflect.DeepEqual(h.ChangedRows[0].Columns, []backfill.ColumnDiff{{Column: "site", Legacy: site("RVH"), Modern: site("JGH")}}) {
			t.Errorf("hospital-patients: %+v; want 1 missing and site RVH → JGH for key 6912", h)
		}
		if ph := tables["photos"]; len(ph.ChangedRows) != 1 || !strings.HasPrefix(*ph.ChangedRows[0].Columns[0].Modern, "md5:") {
			t.Errorf("photos: %+v; want binary values shown by their MD5", ph.ChangedRows)
		}
		if ph := tables["photos"]; ph.Changed != 1 || ph.ChangedRows[0].Key != "400" || ph.ChangedRows[0].Columns[0].Column != "data" {
			t.Errorf("photos: %+v; want photo 400's data changed", ph)
		}
		if n := rep.Deviations(); n != 6 {
			t.Errorf("got %d deviations, want 6", n)
		}

		t.Run("values are left out unless asked for", func(t *testing.T) {
			rep, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Tables: []string{"hospital-patients"}, Log: discard()})
			if err != nil {
				t.Fatal(err)
			}
			want := []backfill.ColumnDiff{{Column: "site"}}
			if got := rep.Tables[0].ChangedRows; len(got) != 1 || !reflect.DeepEqual(got[0].Columns, want) {
				t.Errorf("changed rows %+v, want only the column's name", got)
			}
		})
	})
	t.Run("a table missing from modern is counted and sampled in key order", func(t *testing.T) {
		if _, err := w.modern.Exec(ctx, "DELETE FROM photos"); err != nil {
			t.Fatal(err)
		}
		rep, err := backfill.Verify(ctx, w.cfg, backfill.VerifyOptions{Tables: []string{"photos"}, Samples: 3, Log: discard()})
		if err != nil {
			t.Fatal(err)
		}
		d := rep.Tables[0]
		if d.Missing != 20 || !reflect.DeepEqual(d.MissingKeys, []string{"200", "400", "600"}) || d.ModernRows != 0 || d.LegacyRows != 20 {
			t.Errorf("photos: %d legacy rows, %d modern, missing %d %v; want 20, 0, 20 and the first 3 keys", d.LegacyRows, d.ModernRows, d.Missing, d.MissingKeys)
		}
	})
}

// TestAValueTheTargetCannotTakeIsAChange: a legacy value changed, after
// the copy, into one the target refuses (a zero date) makes its row
// differ from modern's, named by its column; the comparison goes on
// around it.
func TestAValueTheTargetCannotTakeIsAChange(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 2000, PhotoEvery: 1000}, nil)
	w.cfg.Tables = w.cfg.Tables[:1]
	w.run(t, backfill.Options{})
	conn := w.legacyConn(t)
	if _, err := conn.ExecContext(context.Background(), "UPDATE Patient SET DateOfBirth = '0000-00-00 00:00:00' WHERE PatientSerNum IN (77, 1500)"); err != nil {
		t.Fatal(err)
	}
	w.exec(t, "UPDATE Patient SET LastName = 'Other' WHERE PatientSerNum = 1501")
	d := w.verify(t, backfill.VerifyOptions{}).Tables[0]
	want := []backfill.ChangedRow{
		{Key: "77", Columns: []backfill.ColumnDiff{{Column: "birth_date", Redacted: true}}},
		{Key: "1500", Columns: []backfill.ColumnDiff{{Column: "birth_date", Redacted: true}}},
		{Key: "1501", Columns: []backfill.ColumnDiff{{Column: "last_name", Redacted: true}}},
	}
	if d.Changed != 3 || d.Missing != 0 || !reflect.DeepEqual(d.ChangedRows, want) {
		t.Errorf("verify: %+v; want %+v", d, want)
	}
	// A re-run copies what it can and leaves the rest in the ledger.
	p := w.run(t, backfill.Options{}).Tables[0]
	if p.Updated != 1 || p.Failed != 2 {
		t.Errorf("the re-run updated %d and failed %d, want 1 and 2", p.Updated, p.Failed)
	}
}

// TestALookupThatFindsNoRowIsAChange: a legacy foreign key whose row
// modern lacks is refused by the backfill; verify must not call it equal
// to a NULL in modern.
func TestALookupThatFindsNoRowIsAChange(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.exec(t, "CREATE TABLE Parent (Id INT PRIMARY KEY)")
	w.exec(t, "CREATE TABLE Child (Id INT PRIMARY KEY, ParentId INT)")
	w.exec(t, "INSERT INTO Parent VALUES (1)")
	w.exec(t, "INSERT INTO Child VALUES (1, 1), (2, 5), (3, NULL)")
	w.pg(t, "CREATE TABLE parents (id bigserial PRIMARY KEY, legacy_id bigint UNIQUE)")
	w.pg(t, "CREATE TABLE children (legacy_id bigint UNIQUE, parent_id bigint)")
	w.cfg.Tables = []config.BackfillTable{
		{Name: "parents", From: "Parent", Key: "Id", To: "parents", TargetKey: "legacy_id", Columns: cols("Id=legacy_id")},
		{Name: "children", From: "Child", Key: "Id", To: "children", TargetKey: "legacy_id", Columns: map[string]config.Column{
			"legacy_id": {From: "Id"},
			"parent_id": {From: "ParentId", Lookup: &config.Lookup{Table: "parents", Key: "legacy_id", Column: "id"}},
		}},
	}
	if c := w.run(t, backfill.Options{}).Tables[1]; c.Inserted != 2 || c.Failed != 1 {
		t.Fatalf("children inserted %d, failed %d; want 2 and 1 (child 2's parent is not there)", c.Inserted, c.Failed)
	}
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[1]; d.Changed != 0 || d.Missing != 1 {
		t.Errorf("verify of the copy: %+v, want child 2 missing", d)
	}
	// Child 2 reached modern some other way, without a parent.
	w.pg(t, "INSERT INTO children VALUES (2, NULL)")
	if d := w.verify(t, backfill.VerifyOptions{}).Tables[1]; d.Changed != 1 || d.ChangedRows[0].Key != "2" {
		t.Errorf("verify: %+v, want child 2 changed, as a backfill would refuse it", d)
	}
}
