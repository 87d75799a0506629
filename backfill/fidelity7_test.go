package backfill_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/internal/testkit"
)

// TestAServiceInsertingDuringTheCopyNeverDrawsALegacyId: the target's
// sequence was moved past the legacy ids only after the table's copy, so
// the modern service inserting meanwhile drew 1, 2, 3…: its insert of an
// id already copied failed (duplicate key), and a row it inserted with an
// id not yet copied was overwritten by legacy's row of that id. The
// sequence now moves past the source's largest id before the copy
// starts, and the report says so.
func TestAServiceInsertingDuringTheCopyNeverDrawsALegacyId(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Seqs (Id INT PRIMARY KEY, Body TEXT)", "CREATE TABLE seqs (id bigserial PRIMARY KEY, body text)",
		config.BackfillTable{Name: "seqs", From: "Seqs", Key: "Id", To: "seqs", TargetKey: "id", Columns: cols("Id=id", "Body=body")})
	var values []string
	for i := 1; i <= 1000; i++ {
		values = append(values, fmt.Sprintf("(%d, 'legacy')", i))
	}
	w.exec(t, "INSERT INTO Seqs VALUES "+strings.Join(values, ", "))
	w.cfg.Batch, w.cfg.Rate, w.cfg.Concurrency = 20, 200, 1
	ctx := context.Background()
	done := make(chan error, 1)
	var rep *backfill.Report
	go func() {
		var err error
		rep, err = backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
		done <- err
	}()
	// The service starts once the copy has.
	testkit.Eventually(t, 2*time.Minute, "the copy starts", func() bool {
		return w.count(t, "SELECT count(*) FROM seqs") > 0
	})
	var mu sync.Mutex
	var errs []error
	var ids []int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case err := <-done:
				done <- err
				return
			default:
			}
			var id int64
			err := w.modern.QueryRow(ctx, "INSERT INTO seqs (body) VALUES ('service') RETURNING id").Scan(&id)
			mu.Lock()
			if err != nil {
				errs = append(errs, err)
			} else {
				ids = append(ids, id)
			}
			mu.Unlock()
		}
	})
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if len(ids)+len(errs) == 0 {
		t.Fatal("the service inserted nothing while the copy ran")
	}
	if len(errs) > 0 {
		t.Errorf("%d of the service's %d inserts during the copy failed, the first: %v", len(errs), len(ids)+len(errs), errs[0])
	}
	var legacyIDs int
	for _, id := range ids {
		if id <= 1000 {
			legacyIDs++
		}
	}
	if legacyIDs > 0 {
		t.Errorf("%d of the service's %d rows drew an id legacy has", legacyIDs, len(ids))
	}
	if n := w.count(t, "SELECT count(*) FROM seqs WHERE body = 'service'"); n != int64(len(ids)) {
		t.Errorf("%d of the service's %d rows are left, the others overwritten by legacy's", n, len(ids))
	}
	if n := w.count(t, "SELECT count(*) FROM seqs WHERE body = 'legacy' AND id <= 1000"); n != 1000 {
		t.Errorf("%d legacy rows in the target, want 1000", n)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if want := "seqs: sequence seqs_id_seq moved from 1 to 1000 before the copy, the largest id in the source"; !strings.Contains(text.String(), want) {
		t.Errorf("the report:\n%s\nwant it to say %q", text.String(), want)
	}
}

// TestASequenceLockHeldPastTheBoundNamesTheOtherSession: an open service
// transaction that drew a value holds its sequence's lock; past
// batch_timeout the run said the target "did not answer within
// batch_timeout", sending the operator after a network that was fine.
// It now says another session's transaction held the lock.
func TestASequenceLockHeldPastTheBoundNamesTheOtherSession(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Seqs (Id INT PRIMARY KEY, Body TEXT)", "CREATE TABLE seqs (id bigserial PRIMARY KEY, body text)",
		config.BackfillTable{Name: "seqs", From: "Seqs", Key: "Id", To: "seqs", TargetKey: "id", Columns: cols("Id=id", "Body=body")})
	w.exec(t, "INSERT INTO Seqs VALUES (1, 'a'), (1000, 'b')")
	w.cfg.BatchTimeout = config.Duration(3 * time.Second)
	ctx := context.Background()
	open, err := w.modern.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(ctx)
	if _, err := open.Exec(ctx, "SELECT nextval('seqs_id_seq')"); err != nil {
		t.Fatal(err)
	}
	_, err = backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
	want := "sequence seqs_id_seq of column id: another session's transaction held its lock past batch_timeout (3s)"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "did not answer") {
		t.Errorf("the run's error: %v\nwant it to say %q, and not that the target did not answer", err, want)
	}
}
