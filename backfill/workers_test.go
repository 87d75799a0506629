package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
)

// TestAWorkerWhoseTableStopsEnds: a table a worker copies stops (the
// target lost a column mid-run, an error no row is to blame for); its
// ranges stay undone, and the worker must end with the error naming the
// table rather than wait for them forever.
func TestAWorkerWhoseTableStopsEnds(t *testing.T) {
	w := pacedPatients(t, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard(), Worker: true, Run: "stops", WorkerID: "w1"})
		done <- err
	}()
	waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 300 })
	w.pg(t, "ALTER TABLE patients RENAME COLUMN first_name TO given_name")
	err := <-done
	if ctx.Err() != nil {
		t.Fatal("the worker was still waiting for its stopped table's ranges after 2 minutes")
	}
	if err == nil || !strings.HasPrefix(err.Error(), "patients: ") {
		t.Errorf("the worker ended with %v, want the error of table patients", err)
	}
}
