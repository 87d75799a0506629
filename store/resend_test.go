package store

import (
	"context"
	"testing"
	"time"

	"strangler/domain"
)

// TestUnansweredResendsAreCountedOnceAndForgottenOnARetry: two replicas'
// recoveries that resend one write at once count one attempt, and a
// client's retry of a write recovery gave up on (unknown after its
// resends) is resent with every attempt to come, not one short of the
// bound: before, it kept the attempts, and the next unanswered resend
// would make it unknown again at once.
func TestUnansweredResendsAreCountedOnceAndForgottenOnARetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		k := keyed("given-up", `{"a":1}`)
		begin(t, s, "g1", k)
		for i, want := range []bool{true, false} { // both found it with 0 attempts
			if counted, err := s.ResendUnanswered(ctx, "g1", 0, time.Minute, false); err != nil || counted != want {
				t.Fatalf("replica %d: counted %v, %v; want %v", i+1, counted, err, want)
			}
		}
		if r := repair(t, s, "g1"); r.State != domain.StateSent || r.Attempts != 1 {
			t.Fatalf("after one resend made twice: %s with %d attempts, want sent with 1", r.State, r.Attempts)
		}
		if counted, err := s.ResendUnanswered(ctx, "g1", 1, 0, true); err != nil || !counted {
			t.Fatalf("the last resend: counted %v, %v; want true", counted, err)
		}
		if r := repair(t, s, "g1"); r.State != domain.StateUnknown || r.Attempts != 2 {
			t.Fatalf("after the last resend: %s with %d attempts, want unknown with 2", r.State, r.Attempts)
		}
		if got := begin(t, s, "g2", k); got != (domain.KeyedWrite{Use: domain.KeyResumed, ID: "g1"}) {
			t.Fatalf("the client's retry: %+v, want g1 resumed", got)
		}
		if r := repair(t, s, "g1"); r.State != domain.StateSent || r.Attempts != 0 {
			t.Errorf("resumed by the client: %s with %d attempts, want sent with 0", r.State, r.Attempts)
		}
	})
}

// repair reads the journaled write id back.
func repair(t *testing.T, s *Store, id string) domain.Repair {
	t.Helper()
	r, err := s.GetRepair(context.Background(), id, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
