package backfill

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"strangler/store"
)

// TestABatchIsToldRecordedOnlyByTheRunThatRecordedIt: a worker whose
// lease ended with a batch's recording unanswered asks the ledger whether
// the batch was recorded (recorded) when another worker may have taken
// the group over, sent the same rows again under the same requests and
// recorded them: then the batch is the other's to count, not this run's
// too (each row counted by both workers).
func TestABatchIsToldRecordedOnlyByTheRunThatRecordedIt(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "state.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mine, err1 := st.StartAPIBackfill(ctx, "full")
	theirs, err2 := st.StartAPIBackfill(ctx, "full")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	r := &apiRunner{opts: Options{APILedger: st}, run: mine}
	tbl := &apiTable{table: &table{name: "patients"}}
	proof := store.APIBackfillRow{Key: "7", Status: 200, BodyHash: "h:7", IdempotencyKey: "patients:7"}
	lost := &unrecorded{rows: []sourceRow{{key: []byte("7")}}, proof: &proof, account: func() {}, err: errors.New("commit: unexpected EOF")}
	for _, c := range []struct {
		by   int64
		whom string
		want bool
	}{{theirs, "another run", false}, {mine, "this run", true}} {
		if err := st.RecordAPIBackfill(ctx, c.by, "patients", "", []store.APIBackfillRow{proof}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := r.recorded(ctx, tbl, lost); ok != c.want || err != nil {
			t.Errorf("the batch's rows recorded by %s: told recorded by this run %v (%v), want %v", c.whom, ok, err, c.want)
		}
	}
}
