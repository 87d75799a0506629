package backfill_test

import (
	"context"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
)

// Each claim of a key range by a worker keeps the last key it committed
// in strangler_backfill_leases, for the worker itself to tell, should
// its lease end as a batch's COMMIT lost its answer, whether the batch
// went through. Nothing dropped them: every run of workers left a row a
// claim for good. The last worker of a run to end drops them, and so
// does a plain run as it starts (it holds the ledger's lock alone); a
// worker that ends while another holds the lock leaves them.
func TestTheWorkersLeasesAreDroppedOnceNoWorkerIsLeft(t *testing.T) {
	newPatients := func(t *testing.T) *world {
		w := newWorld(t, fixture.Sizes{Patients: 300}, nil)
		w.cfg.Tables = w.cfg.Tables[:1]
		w.cfg.Batch = 50
		return w
	}
	leases := func(t *testing.T, w *world) int64 {
		return w.count(t, "SELECT count(*) FROM strangler_backfill_leases")
	}

	t.Run("by the last worker", func(t *testing.T) {
		w := newPatients(t)
		w.run(t, backfill.Options{Worker: true, Run: "leftovers1", WorkerID: "w1"})
		if n := leases(t, w); n != 0 {
			t.Errorf("%d leases are left after the run's only worker ended, want none", n)
		}
	})
	t.Run("by a plain run", func(t *testing.T) {
		w := newPatients(t)
		// Another worker of the run, still running: it holds the lock.
		conn, err := w.modern.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		lock := "SELECT pg_advisory_lock_shared(hashtext('strangler_backfill'), hashtext(current_schema()))"
		if _, err := conn.Exec(context.Background(), lock); err != nil {
			t.Fatal(err)
		}
		w.run(t, backfill.Options{Worker: true, Run: "leftovers1", WorkerID: "w1"})
		if n := leases(t, w); n == 0 {
			t.Fatal("a worker dropped the leases while another held the lock")
		}
		if _, err := conn.Exec(context.Background(), "SELECT pg_advisory_unlock_shared(hashtext('strangler_backfill'), hashtext(current_schema()))"); err != nil {
			t.Fatal(err)
		}
		w.run(t, backfill.Options{})
		if n := leases(t, w); n != 0 {
			t.Errorf("%d leases of the workers' run are left after a plain run, want none", n)
		}
	})
}
