package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

// TestAWriteIsDueOnTheServersClockWhateverTheReplicasClock: replicas
// share one PostgreSQL store, and one's clock is an hour ahead. What it
// makes due now (recording a primary's answer, a failed delivery to be
// retried at once, an operator's retry) is due now for every replica,
// not an hour later; and what another replica failed with a backoff it
// does not take early. Due times are set, and compared, on the server's
// clock.
func TestAWriteIsDueOnTheServersClockWhateverTheReplicasClock(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	ahead, other := openStore(t, dsn, nil), openStore(t, dsn, nil)
	ahead.now = func() time.Time { return time.Now().Add(time.Hour) }
	for _, id := range []string{"recorded", "failed", "backing-off", "dead"} {
		journal(t, ahead, id, "/patients/"+id)
	}
	if got := claimIDs(t, other, "o"); !slices.Equal(got, []string{"recorded", "failed", "backing-off", "dead"}) {
		t.Fatalf("claimed %v right after the replica an hour ahead recorded the primary's answers, want all four", got)
	}
	if err := other.CompleteRepair(ctx, "recorded", "o"); err != nil {
		t.Fatal(err)
	}
	if err := other.FailRepair(ctx, "backing-off", "o", "503 from modern", 30*time.Second, false); err != nil {
		t.Fatal(err)
	}
	if err := other.FailRepair(ctx, "dead", "o", "400 from modern", 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ReleaseLeases(ctx, "o", nil); err != nil { // "failed" is left to the queue
		t.Fatal(err)
	}
	if got := claimIDs(t, ahead, "a"); !slices.Equal(got, []string{"failed"}) {
		t.Fatalf("the replica an hour ahead claimed %v, want only the write due now, not the one backing off for 30 s", got)
	}
	if err := ahead.FailRepair(ctx, "failed", "a", "connection refused", 0, false); err != nil {
		t.Fatal(err)
	}
	// A write whose primary answer was lost, which an operator confirmed
	// the primary applied.
	if err := ahead.BeginWrite(ctx, intent("unknown", "/patients/unknown"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := ahead.MarkUnknown(ctx, "unknown"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dead", "unknown"} {
		if err := ahead.RetryRepair(ctx, id, domain.AuditEntry{Action: "repair_retry"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := claimIDs(t, other, "o"); !slices.Equal(got, []string{"failed", "dead", "unknown"}) {
		t.Errorf("claimed %v right after the replica an hour ahead failed one to be retried at once and retried two, want those three", got)
	}
}
