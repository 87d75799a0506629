package backfill_test

import (
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
)

// Each claim of a key range by a worker keeps the last key it committed
// in strangler_backfill_leases, for the worker itself to tell, should
// its lease end as a batch's COMMIT lost its answer, whether the batch
// went through. Nothing dropped them: every run of workers left a row a
// claim for good. A plain run starts with no worker alive (it holds the
// ledger's lock alone), and drops them.
func TestAPlainRunDropsTheWorkersLeases(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 300}, nil)
	w.cfg.Tables = w.cfg.Tables[:1]
	w.cfg.Batch = 50
	for _, id := range []string{"w1", "w2"} {
		w.run(t, backfill.Options{Worker: true, Run: "leftovers1", WorkerID: id})
	}
	if n := w.count(t, "SELECT count(*) FROM strangler_backfill_leases"); n == 0 {
		t.Fatal("the workers recorded no lease")
	}
	w.run(t, backfill.Options{})
	if n := w.count(t, "SELECT count(*) FROM strangler_backfill_leases"); n != 0 {
		t.Errorf("%d leases of the workers' run are left after a plain run, want none", n)
	}
}
