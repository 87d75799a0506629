package store

import (
	"context"
	"errors"
	"strings"
	"sync"
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
			if counted, err := s.ResendUnanswered(ctx, "g1", 0, "no answer", time.Minute, false); err != nil || counted != want {
				t.Fatalf("replica %d: counted %v, %v; want %v", i+1, counted, err, want)
			}
		}
		if r := repair(t, s, "g1"); r.State != domain.StateSent || r.Attempts != 1 {
			t.Fatalf("after one resend made twice: %s with %d attempts, want sent with 1", r.State, r.Attempts)
		}
		if counted, err := s.ResendUnanswered(ctx, "g1", 1, "no answer", 0, true); err != nil || !counted {
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

// TestAnOperatorStopsTheResendsOfAWrite: a write recovery resends (its
// lease passed, or a resend went unanswered) becomes unknown at an
// operator's word, audited once however many operators ask at once, and
// its resource's turn ends there: the resource's next write takes it.
// The answer of a resend still under way then settles nothing: the
// write stays unknown for the operator. Before, nothing but a lower
// repairs.max_attempts ended the resends (for up to eight hours with the
// defaults), and a late answer would have queued the older write behind
// the later one. On PostgreSQL the operators ask two replicas.
func TestAnOperatorStopsTheResendsOfAWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		s := openStore(t, dsn, newClock())
		replicas := []*Store{s}
		if b.name == "postgres" {
			replicas = append(replicas, openStore(t, dsn, nil))
		}
		if err := s.BeginWrite(ctx, intent("held", "update-patient/1"), -time.Second); err != nil {
			t.Fatal(err)
		}
		if taken, err := s.TakeResendTurn(ctx, "held", time.Minute); err != nil || !taken {
			t.Fatalf("recovery taking the turn: %v, %v", taken, err)
		}
		if err := s.BeginWrite(ctx, intent("later", "update-patient/1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if taken, err := s.TakeTurn(ctx, "later", "update-patient/1", time.Minute); err != nil || taken {
			t.Fatalf("the later write took the turn of a write being resent: %v, %v", taken, err)
		}
		entry := func(id string) domain.AuditEntry {
			return domain.AuditEntry{Actor: "ops", Action: "repair_stop", Reason: "primary gone for the night", Detail: id}
		}
		for id, want := range map[string]error{"no-such-write": ErrNotFound, "later": ErrInvalidState} {
			if err := s.StopResend(ctx, id, entry(id)); !errors.Is(err, want) {
				t.Errorf("stopping %s: %v, want %v", id, err, want)
			}
		}

		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = replicas[i%len(replicas)].StopResend(ctx, "held", entry("held")) })
		}
		wg.Wait()
		stopped := 0
		for _, err := range errs {
			switch {
			case err == nil:
				stopped++
			case !errors.Is(err, ErrInvalidState):
				t.Errorf("an operator's stop: %v, want ErrInvalidState once another's stopped it", err)
			}
		}
		if stopped != 1 {
			t.Errorf("%d of %d operators' stops took effect, want 1", stopped, len(errs))
		}
		log, err := s.AuditLog(ctx, AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].Action != "repair_stop" || log[0].Detail != "held" || log[0].Actor != "ops" {
			t.Errorf("audit log %+v, want one repair_stop of held by ops", log)
		}
		if got := state(t, s, "held"); got != domain.StateUnknown {
			t.Errorf("stopped: %s, want unknown", got)
		}
		if taken, err := s.TakeTurn(ctx, "later", "update-patient/1", time.Minute); err != nil || !taken {
			t.Errorf("the later write once the resends stopped: took the turn %v, %v; want it", taken, err)
		}
		// The resend under way when the operator stopped it answers.
		if err := s.RecordOutcome(ctx, "held", domain.Outcome{Status: 201}); !errors.Is(err, ErrInvalidState) {
			t.Errorf("recording a resend's answer after the stop: %v, want ErrInvalidState", err)
		}
		if r := repair(t, s, "held"); r.State != domain.StateUnknown || !strings.Contains(r.LastError, "answered 201 Created once the write was unknown") {
			t.Errorf("after the resend's late answer: %s, last error %q; want still unknown, the answer noted for the operator", r.State, r.LastError)
		}
		if err := s.StopResend(ctx, "held", entry("held")); !errors.Is(err, ErrInvalidState) {
			t.Errorf("stopping a write already unknown: %v, want ErrInvalidState", err)
		}

		// A write whose resend went unanswered waits, its lease renewed
		// to the next try: stopped as well, the reason it waited kept.
		if err := s.BeginWrite(ctx, intent("waiting", "update-patient/2"), -time.Second); err != nil {
			t.Fatal(err)
		}
		if counted, err := s.ResendUnanswered(ctx, "waiting", 0, "resent to the primary (legacy), which answered 503 Service Unavailable", time.Hour, false); err != nil || !counted {
			t.Fatalf("counting the unanswered resend: %v, %v", counted, err)
		}
		if err := s.StopResend(ctx, "waiting", entry("waiting")); err != nil {
			t.Fatalf("stopping a write waiting for its next resend: %v", err)
		}
		if r := repair(t, s, "waiting"); r.State != domain.StateUnknown || r.Attempts != 1 || r.LastError == "" {
			t.Errorf("stopped while waiting: %s with %d attempts and last error %q, want unknown, 1, why it waited", r.State, r.Attempts, r.LastError)
		}
	})
}
