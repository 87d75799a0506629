package backfill_test

import (
	"log/slog"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/internal/testkit"
)

// TestAnAPIWorkerCountsABatchOfRejectedRowsRecordedAsItsLeaseLapsed: as
// TestAnAPIWorkerCountsABatchRecordedAsItsLeaseLapsed, but every row of
// the batch is one the API rejects. The batch has no row newly migrated
// to tell from the ledger that it was recorded, and the worker left it
// out of its report (290 read of 300, its 10 failures not counted),
// though nobody sends it again: its range is done. Now each claim of a
// group has its number, and the last key recorded under it tells.
func TestAnAPIWorkerCountsABatchOfRejectedRowsRecordedAsItsLeaseLapsed(t *testing.T) {
	l := newLostRecording(t)
	// The first ranges (about 10 rows each) hold only rows the API
	// refuses (422).
	const refused = 30
	if _, err := l.w.legacy.Exec("UPDATE Patient SET Email = CONCAT('p', PatientSerNum, ' at example.org') WHERE PatientSerNum <= ?", refused); err != nil {
		t.Fatal(err)
	}
	var logs testkit.Logs
	done := l.start(t, backfill.Options{Log: logs.Logger(slog.LevelDebug), Lease: 3 * time.Second})
	l.muteFirstRecording(t, done)
	testkit.Eventually(t, time.Minute, "the worker to give the range up", func() bool {
		return len(logs.Lines(t, "backfill group taken over")) > 0
	})
	l.proxy.Reset()
	res := stopped(t, done, 2*time.Minute, "its store back")
	if res.err != nil {
		t.Fatalf("the worker stopped: %v, want it to resume by itself", res.err)
	}
	var wantFailed int64 = refused
	for k := refused + 1; k <= lostRecordingRows; k++ {
		if rejected(k) {
			wantFailed++
		}
	}
	wantMigrated := lostRecordingRows - wantFailed
	l.w.appliedOnce(t, "", wantMigrated)
	if tr := res.rep.Tables[0]; tr.Read != lostRecordingRows || tr.Written()+tr.Present != wantMigrated || tr.Failed != wantFailed {
		t.Errorf("the worker reports %d read, %d migrated, %d already sent, %d failed; want %d read, %d migrated or already sent, %d failed",
			tr.Read, tr.Written(), tr.Present, tr.Failed, lostRecordingRows, wantMigrated, wantFailed)
	}
}
