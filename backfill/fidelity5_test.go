package backfill_test

import (
	"context"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestAnIdentityColumnGeneratedAlwaysIsRefusedBeforeCopying: PostgreSQL
// takes a value for an identity column GENERATED ALWAYS from COPY and
// refuses one from INSERT (SQLSTATE 428C9). A run mapping a source
// column to it wrote these three rows through the direct COPY without a
// word, the sequence left at 1 for the service's next row, and stopped
// the table at the first batch going the staged way (a NULL, a re-run
// with rows changed). It is refused before a row is read, at the
// column's line in the file.
func TestAnIdentityColumnGeneratedAlwaysIsRefusedBeforeCopying(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Ident (Id INT PRIMARY KEY, Num INT)",
		"CREATE TABLE ident (legacy_id bigint UNIQUE, num int GENERATED ALWAYS AS IDENTITY)",
		config.BackfillTable{Name: "ident", From: "Ident", Key: "Id", To: "ident", TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Num=num")})
	w.exec(t, "INSERT INTO Ident VALUES (1, 10), (2, 20), (3, 30)")
	for run := 1; run <= 2; run++ {
		_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		want := `testdata/reference.yaml:20:9: backfill.tables[0].columns.num: target column "num" is an identity column GENERATED ALWAYS, which only the target may write`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("run %d: %v\nwant %q", run, err, want)
		}
		if n := w.count(t, "SELECT count(*) FROM ident"); n != 0 {
			t.Errorf("run %d: the target has %d rows, want none written", run, n)
		}
	}
	// An identity column the run leaves to the target is fine.
	w.cfg.Tables[0].Columns = cols("Id=legacy_id")
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Inserted != 3 || tr.Failed != 0 {
		t.Errorf("without num: inserted %d, failed %d, want 3 and 0", tr.Inserted, tr.Failed)
	}
}
