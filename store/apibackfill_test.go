package store

import (
	"context"
	"testing"
)

func TestAPIBackfillLedgerKeepsFailuresUntilTheRowMigrates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil)
		run, err := s.StartAPIBackfill(ctx, "full")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.APIBackfillCheckpoint(ctx, "patients"); ok || err != nil {
			t.Fatalf("a new ledger has a checkpoint (%v)", err)
		}
		cp := "40"
		fail := APIBackfillRow{Key: "17", Status: 422, Reason: "rejected", Message: "email is not an address", Payload: `{"email":"#a1b2"}`}
		if err := s.RecordAPIBackfill(ctx, run, "patients", []string{"1", "2"}, []APIBackfillRow{fail, {Key: "30", Status: 503, Reason: "retries_exhausted"}}, &cp); err != nil {
			t.Fatal(err)
		}
		if got, ok, _ := s.APIBackfillCheckpoint(ctx, "patients"); !ok || got != "40" {
			t.Errorf("checkpoint %q, %v; want 40", got, ok)
		}
		page, err := s.APIBackfillFailures(ctx, "patients", "", 1)
		if err != nil || len(page) != 1 || page[0] != fail {
			t.Fatalf("first page of failures: %+v, %v; want %+v", page, err, fail)
		}
		if next, _ := s.APIBackfillFailures(ctx, "patients", page[0].Key, 10); len(next) != 1 || next[0].Key != "30" {
			t.Errorf("second page: %+v, want key 30", next)
		}
		// Key 17 migrates on a re-run of the failures; the checkpoint stays.
		if err := s.RecordAPIBackfill(ctx, run, "patients", []string{"17"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.APIBackfillFailures(ctx, "patients", "", 10); len(left) != 1 || left[0].Key != "30" {
			t.Errorf("failures after 17 migrated: %+v, want only 30", left)
		}
		if got, _, _ := s.APIBackfillCheckpoint(ctx, "patients"); got != "40" {
			t.Errorf("a re-run by key moved the checkpoint to %q", got)
		}
		if err := s.FinishAPIBackfill(ctx, run, "succeeded", []byte(`{"mode":"full"}`)); err != nil {
			t.Fatal(err)
		}
	})
}
