package backfill_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/config"
)

// A worker started with another file (here, one that lowercases the
// first names) cuts the table's ranges afresh for its plan. A worker
// still copying under the file before went on leasing those ranges and
// copying them as its own file maps them, marking them done: the run
// ended with rows the new file would never write (first names not
// lowercased), and the old worker exited 0. It must stop at its next
// lease, saying its file is not the one the ranges were cut for.
func TestAWorkerOfAnotherPlanLeasesNoRange(t *testing.T) {
	w := pacedPatients(t, 300)
	lower := *w.cfg
	lower.Tables = slices.Clone(w.cfg.Tables)
	lower.Tables[0].Columns = maps.Clone(w.cfg.Tables[0].Columns)
	lower.Tables[0].Columns["first_name"] = config.Column{From: "FirstName",
		Transform: []config.Transform{config.TransformTrim, config.TransformLower}}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old := make(chan error, 1)
	go func() {
		_, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard(), Worker: true, Run: "leftovers1", WorkerID: "old"})
		old <- err
	}()
	waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 200 })
	if _, err := backfill.Run(ctx, &lower, backfill.Options{Log: discard(), Worker: true, Run: "leftovers1", WorkerID: "new"}); err != nil {
		t.Fatalf("the worker of the new file: %v", err)
	}
	if err := <-old; !errors.Is(err, backfill.ErrRangesOfAnotherPlan) {
		t.Errorf("the worker of the file before ended with %v, want ErrRangesOfAnotherPlan", err)
	}
	if n := w.count(t, "SELECT count(*) FROM patients WHERE first_name <> lower(first_name)"); n != 0 {
		t.Errorf("%d first names are not lowercased after the new file's worker finished, want none", n)
	}
	if n := w.count(t, "SELECT count(*) FROM patients"); n != 1200 {
		t.Errorf("patients holds %d rows, want 1200", n)
	}
}
