package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

// TestALateAnswerSettlesNoWriteThatBecameUnknown: the answer to v1 that
// its replica held in memory through a store outage, recorded once
// recovery (another replica, on PostgreSQL) made v1 unknown and v2 to
// the same resource went to the primary and the secondary, leaves v1
// unknown, the answer in its last_error, and the queue empty: the
// secondary keeps v2, as the primary. Before, v1 became pending behind
// v2 and was claimed next: the secondary ended with the older body. A
// late refusal settles nothing either, and a late answer to a write no
// later write followed waits for the operator the same way (one rule).
func TestALateAnswerSettlesNoWriteThatBecameUnknown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newClock()
		dsn := b.fresh(t)
		sender := openStore(t, dsn, clock)
		recovery := sender
		if b.name == "postgres" {
			recovery = openStore(t, dsn, clock)
		}
		if err := sender.BeginWrite(ctx, intent("v1", "update-patient/1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// The primary answered v1 200; the store is away, the answer held.
		clock.Advance(2 * time.Minute)
		expired, err := recovery.ExpiredWrites(ctx, 10)
		if err != nil || len(expired) != 1 || expired[0].ID != "v1" {
			t.Fatalf("expired writes: %v, %v; want v1", ids(expired), err)
		}
		if err := recovery.MarkUnknown(ctx, "v1"); err != nil {
			t.Fatal(err)
		}
		if err := recovery.BeginWrite(ctx, intent("v2", "update-patient/1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if taken, err := recovery.TakeTurn(ctx, "v2", "update-patient/1", time.Minute); err != nil || !taken {
			t.Fatalf("v2 taking the turn v1 no longer holds: %v, %v", taken, err)
		}
		if err := recovery.RecordOutcome(ctx, "v2", domain.Outcome{Status: 200}); err != nil {
			t.Fatal(err)
		}
		if got := claimIDs(t, recovery, "worker"); len(got) != 1 || got[0] != "v2" {
			t.Fatalf("claimed %v, want v2", got)
		}
		if err := recovery.CompleteRepair(ctx, "v2", "worker"); err != nil {
			t.Fatal(err)
		}

		// The store is back: v1's held answer is recorded.
		if err := sender.RecordOutcome(ctx, "v1", domain.Outcome{Status: 200}); !errors.Is(err, ErrInvalidState) {
			t.Errorf("recording v1's late answer: %v, want ErrInvalidState", err)
		}
		r := repair(t, sender, "v1")
		if r.State != domain.StateUnknown || r.Seq != 0 || !strings.Contains(r.LastError, "answered 200 OK once the write was unknown") {
			t.Errorf("v1 after its late answer: %s, seq %d, last error %q; want unknown, unnumbered, the answer noted", r.State, r.Seq, r.LastError)
		}
		if got := claimIDs(t, recovery, "worker"); len(got) != 0 {
			t.Errorf("after v1's late answer the secondary would get %v after v2, want nothing", got)
		}
		if err := recovery.RetryRepair(ctx, "v1", domain.AuditEntry{Actor: "ops", Action: "repair_retry", Detail: "v1"}); !errors.Is(err, ErrInvalidState) {
			t.Errorf("an operator's retry of v1 after v2 was applied: %v, want ErrInvalidState", err)
		}

		// A late refusal, and a late answer no later write followed.
		for id, status := range map[string]int{"refused": 409, "alone": 201} {
			resource := "update-patient/" + id
			if err := sender.BeginWrite(ctx, intent(id, resource), -time.Second); err != nil {
				t.Fatal(err)
			}
			if err := recovery.MarkUnknown(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := sender.RecordOutcome(ctx, id, domain.Outcome{Status: status}); !errors.Is(err, ErrInvalidState) {
				t.Errorf("recording %s's late answer %d: %v, want ErrInvalidState", id, status, err)
			}
			if r := repair(t, sender, id); r.State != domain.StateUnknown || !strings.Contains(r.LastError, "answered "+strconv.Itoa(status)) {
				t.Errorf("%s after its late answer %d: %s, last error %q; want unknown, the answer noted", id, status, r.State, r.LastError)
			}
		}
	})
}
