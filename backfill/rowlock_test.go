package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestARowLockTheServiceHoldsStopsTheTableSayingSo: a service's open
// transaction holding a row lock the batch's upsert needs keeps the
// batch waiting until batch_timeout, each resumption too, and the table
// then stopped saying the target did not answer, though it answered
// every ping: an operator looked for a network fault. The error now says
// the target answers, and that a lock on the table (or a slow statement)
// held the batch; the run, as before, ends within the resumptions.
func TestARowLockTheServiceHoldsStopsTheTableSayingSo(t *testing.T) {
	// Most of it waits out the bound, on databases of its own.
	t.Parallel()
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Locked (Id INT PRIMARY KEY, Body TEXT)", "CREATE TABLE locked (id bigint PRIMARY KEY, body text)",
		config.BackfillTable{Name: "locked", From: "Locked", Key: "Id", To: "locked", TargetKey: "id", Columns: cols("Id=id", "Body=body")})
	w.exec(t, "INSERT INTO Locked VALUES (1, 'legacy'), (2, 'legacy')")
	w.pg(t, "INSERT INTO locked VALUES (1, 'older')")
	w.cfg.BatchTimeout = config.Duration(2 * time.Second)
	ctx := context.Background()
	service, err := w.modern.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer service.Rollback(ctx)
	if _, err := service.Exec(ctx, "SELECT * FROM locked WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	// The wait is found at its bound, each resumption's too; their
	// pauses need not be waited out.
	_, err = backfill.Run(ctx, w.cfg, backfill.QuickResumption(backfill.Options{Log: discard()}))
	want := "the target answers, so the batch waited on a lock another session held (on \"locked\" or the ledger's tables)"
	if err == nil || !strings.HasPrefix(err.Error(), "locked: ") || !strings.Contains(err.Error(), want) {
		t.Errorf("the run's error: %v\nwant it to name the table and say %q", err, want)
	}
	if err := service.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	w.rerunCopiesAll(t)
}
