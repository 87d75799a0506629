package backfill

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/internal/testdb"
)

// TestABatchIsToldCommittedOnlyUnderTheLeaseThatCommittedIt: a worker
// whose lease on a range ended with a batch's COMMIT unanswered asks the
// ledger whether the batch committed (committed), while whoever took the
// range over may have gone on after it, or copied the same rows again
// from before it, ending on the same key. The range's checkpoint cannot
// tell these apart: it counted another lease's batch as this one's (both
// workers counting its rows), and left out this one's once the taker went
// on. The lease's own record of its last key tells them apart.
func TestABatchIsToldCommittedOnlyUnderTheLeaseThatCommittedIt(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l, err := openLedger(ctx, pool, false)
	if err != nil {
		t.Fatal(err)
	}
	owner := "w1"
	l.owner, l.runID = &owner, 1
	const table = "flaky4_patients"
	if _, err := pool.Exec(ctx, "INSERT INTO strangler_backfill_checkpoints (table_name, range_no, run_id) VALUES ($1, 0, 1)", table); err != nil {
		t.Fatal(err)
	}
	claim := func() keyRange {
		rg := keyRange{no: 0}
		if err := pool.QueryRow(ctx, "UPDATE strangler_backfill_checkpoints SET lease_owner = 'w1', lease_no = nextval('strangler_backfill_lease_no') WHERE table_name = $1 RETURNING lease_no",
			table).Scan(&rg.lease); err != nil {
			t.Fatal(err)
		}
		return rg
	}
	try := func(rg keyRange, last string) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if err := l.advance(ctx, tx, table, &rg, []byte(last), 100, false); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	commit := func(rg keyRange, last string) {
		t.Helper()
		if err := try(rg, last); err != nil {
			t.Fatal(err)
		}
	}
	told := func(rg keyRange, last string, want bool, what string) {
		t.Helper()
		if got, err := l.committed(ctx, table, rg, []byte(last)); got != want || err != nil {
			t.Errorf("%s: told committed %v (%v), want %v", what, got, err, want)
		}
	}

	lost := claim()  // its batch ending on 100 rolled back
	taker := claim() // copies the same rows again
	commit(taker, "100")
	told(lost, "100", false, "a batch rolled back, the taker's ending on the same key committed")

	mine := claim()
	commit(mine, "200")
	taker = claim() // goes on after it
	commit(taker, "300")
	told(mine, "200", true, "a batch committed, the taker gone on after it")

	if err := try(mine, "400"); err != errLeaseLost {
		t.Errorf("a batch under a lease taken over: %v, want errLeaseLost", err)
	}
}
