package backfill_test

import (
	"context"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/internal/testdb"
	"strangler/modern"
)

// TestAPIWorkersShareKeyRangesOfATableWithoutGroupBy: two workers of one
// run on a PostgreSQL state store send a table without group_by in key
// ranges: between them they read every row once, the API applies each
// accepted row once, and the rejected ones are in the ledger.
func TestAPIWorkersShareKeyRangesOfATableWithoutGroupBy(t *testing.T) {
	const rows = 3000
	w := newAPIWorld(t, rows, 10, modern.Faults{})
	cfg := w.config(t)
	cfg.Tables[0].TargetAPI.GroupBy = ""
	cfg.Batch = 100
	storeURL := testdb.Postgres(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	reports := make([]*backfill.Report, 2)
	errs := make([]error, 2)
	for i, id := range []string{"w1", "w2"} {
		st := openStore(t, storeURL)
		wg.Go(func() {
			reports[i], errs[i] = backfill.Run(ctx, cfg, backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard(),
				Worker: true, Run: "nightly", WorkerID: id})
		})
	}
	wg.Wait()
	var wantRejected, read int64
	for k := 1; k <= rows; k++ {
		if rejected(k) {
			wantRejected++
		}
	}
	for i, r := range reports {
		if r == nil || len(r.Tables) != 1 {
			t.Fatalf("worker %d: report %+v, %v", i+1, r, errs[i])
		}
		read += r.Tables[0].Read
	}
	if read != rows {
		t.Errorf("the workers read %d rows between them, want each of the %d once", read, rows)
	}
	w.appliedOnce(t, "", rows-wantRejected)
	st := openStore(t, storeURL)
	if failed, err := st.APIBackfillFailures(ctx, "patients", "", rows); err != nil || int64(len(failed)) != wantRejected {
		t.Errorf("the ledger holds %d failures (%v), want %d", len(failed), err, wantRejected)
	}
	if left, err := st.APIBackfillGroupsLeft(ctx, "nightly", "patients"); left || err != nil {
		t.Errorf("key ranges left undone (%v)", err)
	}
}
