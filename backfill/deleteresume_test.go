package backfill_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testkit"
)

// TestADeletionWhoseCommitIsLostIsReported: --propagate-deletes deletes
// a modern row whose legacy row is gone and records it in the ledger's
// deletes in one transaction; when the answer to its COMMIT is lost (the
// target fails at that instant), the run resumes the table's finish and
// finds nothing left to delete. The report said "deleted 0" of a row
// deleted and on record as deleted by this very run; it now counts and
// names it, as the ledger does.
func TestADeletionWhoseCommitIsLostIsReported(t *testing.T) {
	t.Parallel()
	w := fiveTables(t)
	w.cfg.Rate = 0
	w.cfg.BatchTimeout = config.Duration(5 * time.Second)
	w.run(t, backfill.Options{})
	w.exec(t, "DELETE FROM Gone0 WHERE Id = 2")
	proxy := proxied(t, w.cfg.Target.URL)
	// The row's lock holds the run's DELETE until the COMMIT after it is
	// the next to go out.
	ctx := context.Background()
	tx, err := w.modern.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT * FROM gone0 WHERE legacy_id = 2 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	var logs testkit.Logs
	done := w.startRun(backfill.Options{Log: logs.Logger(slog.LevelInfo), Tables: []string{"gone0"}, PropagateDeletes: true})
	testkit.Eventually(t, time.Minute, "the run's DELETE waiting on the row", func() bool {
		return w.count(t, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'WITH gone AS (DELETE%' AND wait_event_type = 'Lock'") > 0
	})
	proxy.MuteOn("commit")
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the deletion committed", func() bool {
		return w.count(t, "SELECT count(*) FROM strangler_backfill_deletes") == 1
	})
	proxy.Reset()
	res := stopped(t, done, 2*time.Minute, "its target back")
	if res.err != nil {
		t.Fatalf("the run: %v, want it to resume", res.err)
	}
	if n := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint")); n != 1 {
		t.Fatalf("%d resumptions logged, want the 1 of the lost COMMIT", n)
	}
	if tr := res.rep.Tables[0]; tr.Deleted != 1 || !slices.Equal(tr.DeletedKeys, []string{"2"}) {
		t.Errorf("the report: %d deleted (%v), want 1 (2), as the ledger has it", tr.Deleted, tr.DeletedKeys)
	}
	if n := w.count(t, "SELECT count(*) FROM gone0"); n != 1 {
		t.Errorf("gone0 holds %d rows, want 1", n)
	}
}
