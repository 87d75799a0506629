package backfill_test

import (
	"context"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestAServiceRowAndTheCopyMeetingOnAKey pins what becomes of a row the
// modern service inserted with an id a legacy row has, as the README
// says (start the service's inserts after the move): one drawn before
// the run's first move of the sequence (the service started before the
// backfill), and one drawn past it while legacy went on writing. The
// copy's upsert overwrites each with legacy's row, counted as updated:
// nothing in the target tells the service's row from one an earlier
// copy wrote.
func TestAServiceRowAndTheCopyMeetingOnAKey(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Seqs (Id INT PRIMARY KEY, Body TEXT)", "CREATE TABLE seqs (id bigserial PRIMARY KEY, body text)",
		config.BackfillTable{Name: "seqs", From: "Seqs", Key: "Id", To: "seqs", TargetKey: "id", Columns: cols("Id=id", "Body=body")})
	w.exec(t, "INSERT INTO Seqs VALUES (1, 'legacy'), (2, 'legacy'), (3, 'legacy')")
	ctx := context.Background()
	var early int64
	if err := w.modern.QueryRow(ctx, "INSERT INTO seqs (body) VALUES ('service') RETURNING id").Scan(&early); err != nil {
		t.Fatal(err)
	}
	rep := tableReport(t, w.run(t, backfill.Options{}), "seqs")
	if early != 1 || rep.Updated != 1 || len(rep.Sequences) != 1 || rep.Sequences[0].To != 3 {
		t.Errorf("first run: the service's id %d; %d updated, sequences %+v; want id 1 overwritten and the sequence moved to 3", early, rep.Updated, rep.Sequences)
	}
	var late int64
	if err := w.modern.QueryRow(ctx, "INSERT INTO seqs (body) VALUES ('service') RETURNING id").Scan(&late); err != nil {
		t.Fatal(err)
	}
	w.exec(t, "INSERT INTO Seqs VALUES (?, 'legacy')", late)
	rep = tableReport(t, w.run(t, backfill.Options{}), "seqs")
	if late != 4 || rep.Updated != 1 {
		t.Errorf("second run: the service's id %d, %d updated; want id 4 overwritten", late, rep.Updated)
	}
	if n := w.count(t, "SELECT count(*) FROM seqs WHERE body = 'service'"); n != 0 {
		t.Errorf("%d of the service's rows left, want the 2 overwritten", n)
	}
}
