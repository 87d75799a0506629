package store

import (
	"context"
	"testing"
	"time"

	"strangler/domain"
)

// TestSequenceNumbersFollowTheRecordingOrder checks that a write to a
// resource recorded after another is numbered after it whoever numbered
// the other: this process before a restart, another process on the same
// file, or an operator's retry. On SQLite the numbers come from blocks a
// process reserves (seqBlock).
func TestSequenceNumbersFollowTheRecordingOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		seq := func(t *testing.T, s *Store, id string) int64 {
			t.Helper()
			r, err := s.GetRepair(ctx, id, false)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != domain.StatePending {
				t.Fatalf("%s is %s, want pending", id, r.State)
			}
			return r.Seq
		}

		t.Run("after a restart", func(t *testing.T) {
			before, err := Open(ctx, dsn, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			journal(t, before, "restart-1", "update-patient/1")
			if err := before.Close(); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, dsn, nil)
			journal(t, s, "restart-2", "update-patient/1")
			if first, second := seq(t, s, "restart-1"), seq(t, s, "restart-2"); second <= first {
				t.Errorf("numbered %d after a restart, %d before; want it larger", second, first)
			}
		})

		t.Run("by two stores on one database in turn", func(t *testing.T) {
			one, other := openStore(t, dsn, nil), openStore(t, dsn, nil)
			var last int64
			for i, s := range []*Store{one, other, one, other, one, other} {
				id := "two-" + string(rune('a'+i))
				if i < 4 {
					journal(t, s, id, "update-patient/2")
				} else {
					// Leased to a worker if it is its resource's head.
					if err := s.BeginWrite(ctx, intent(id, "update-patient/4"), time.Minute); err != nil {
						t.Fatal(err)
					}
					leased, err := s.RecordOutcomeLeased(ctx, id, domain.Outcome{Status: 200}, "w", time.Minute)
					if err != nil || leased != (i == 4) {
						t.Fatalf("%s: leased %v, %v; want %v", id, leased, err, i == 4)
					}
				}
				if got := seq(t, s, id); got <= last {
					t.Errorf("%s numbered %d after %d; want it larger", id, got, last)
				} else {
					last = got
				}
			}
		})

		t.Run("after an operator's retry", func(t *testing.T) {
			s := openStore(t, dsn, nil)
			journal(t, s, "retry-first", "update-patient/3")
			if err := s.BeginWrite(ctx, intent("retry-unknown", "update-patient/3"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkUnknown(ctx, "retry-unknown"); err != nil {
				t.Fatal(err)
			}
			if err := s.RetryRepair(ctx, "retry-unknown", domain.AuditEntry{Action: "repair_retry"}); err != nil {
				t.Fatal(err)
			}
			journal(t, s, "retry-later", "update-patient/3")
			if retried, later := seq(t, s, "retry-unknown"), seq(t, s, "retry-later"); later <= retried {
				t.Errorf("a write recorded after the retry numbered %d, the retried one %d; want it larger", later, retried)
			}
		})
	})
}
