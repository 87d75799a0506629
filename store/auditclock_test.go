package store

import (
	"context"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

// TestTwoReplicasAuditOnTheStoresClockInChainOrder: replicas share one
// PostgreSQL store and one's clock is two days off. Each appends entries
// timed by its own clock, as control does (a flip's time is the
// replica's now). The trail lists them on one clock, the server's: their
// times rise along the chain, none two days off, an export since a
// minute ago holds them all, and the chain verifies. As it was, the two
// replicas' entries alternated two days apart, and an export since
// today left out, or took in, one replica's.
func TestTwoReplicasAuditOnTheStoresClockInChainOrder(t *testing.T) {
	ctx := context.Background()
	for _, off := range []time.Duration{48 * time.Hour, -48 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			dsn := testdb.Postgres(t)
			wrong, right := skewed(t, dsn, off), openStore(t, dsn, nil)
			var server time.Time
			if err := right.db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&server); err != nil {
				t.Fatal(err)
			}
			for i := range 6 {
				s := []*Store{wrong, right}[i%2]
				if err := s.AppendAudit(ctx, domain.AuditEntry{At: s.now(), Actor: "alice", Action: "flip", Route: "get-patient"}); err != nil {
					t.Fatal(err)
				}
			}
			var walked []domain.AuditEntry
			if err := right.WalkAudit(ctx, server.Add(-time.Minute), func(e domain.AuditEntry) error { walked = append(walked, e); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(walked) != 6 {
				t.Fatalf("an export since a minute before the entries holds %d of 6", len(walked))
			}
			for i, e := range walked {
				if d := e.At.Sub(server); d < -time.Minute || d > 10*time.Minute {
					t.Errorf("entry %d (by the replica whose clock is %s) is timed %s, %s from the server's clock", e.ID, []string{"off", "right"}[i%2], e.At, d)
				}
				if i > 0 && e.At.Before(walked[i-1].At) {
					t.Errorf("entry %d is timed %s, before entry %d at %s, which it follows in the chain", e.ID, e.At, walked[i-1].ID, walked[i-1].At)
				}
			}
			if v := verify(t, wrong); v.Break != nil || v.Entries != 6 {
				t.Errorf("the chain: %d entries, break %+v; want 6, whole", v.Entries, v.Break)
			}
		})
	}
}
