package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

// commitIntents journals the intents as one batch of the SQLite store, as
// BeginWrite would had they all arrived at once, with a write of another
// kind among them, and returns each intent's result.
func commitIntents(t *testing.T, s *Store, intents []domain.Intent) []error {
	t.Helper()
	ctx := context.Background()
	var ops []*batchOp
	for i, in := range intents {
		ops = append(ops, s.intentOp(ctx, in, time.Minute, false))
		if i == len(intents)/2 {
			ops = append(ops, &batchOp{fn: func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `UPDATE strangler_repairs SET updated_at = updated_at WHERE id = 'none'`)
				return err
			}})
		}
	}
	var errs []error
	for i, err := range commitOps(s, ops) {
		if ops[i].rows == s.intents {
			errs = append(errs, err)
		} else if err != nil {
			t.Errorf("the other write in the batch failed: %v", err)
		}
	}
	return errs
}

// TestABatchJournalsEachOfItsIntents: thirteen intents that arrive
// together (not a power of two: the batch's statements cover 8, 4 and 1)
// are each journaled as sent, each with its own request.
func TestABatchJournalsEachOfItsIntents(t *testing.T) {
	s := newStore(t, backends()[0], newClock())
	var intents []domain.Intent
	for i := range 13 {
		intents = append(intents, intent(fmt.Sprintf("w%02d", i), fmt.Sprintf("/patients/%d", i)))
	}
	for i, err := range commitIntents(t, s, intents) {
		if err != nil {
			t.Errorf("intent %s: %v", intents[i].ID, err)
		}
	}
	for _, in := range intents {
		r, err := s.GetRepair(context.Background(), in.ID, true)
		if err != nil {
			t.Fatalf("GetRepair(%s): %v", in.ID, err)
		}
		if r.State != domain.StateSent || r.ResourceKey != s.resourceKey(in.Resource) || string(r.Body) != string(in.Body) {
			t.Errorf("%s is %s with body %s (resource key %s), want sent for %s with body %s",
				in.ID, r.State, r.Body, r.ResourceKey, in.Resource, in.Body)
		}
	}
}

// TestAnIntentTheDatabaseRefusesIsRefusedAloneInItsBatch: when the
// database refuses one intent of a batch (here a trigger stands for a
// constraint), the batch's statement fails as a whole; that intent is
// refused, naming why, and every other one is journaled.
func TestAnIntentTheDatabaseRefusesIsRefusedAloneInItsBatch(t *testing.T) {
	s := newStore(t, backends()[0], newClock())
	if _, err := s.db.Exec(`CREATE TRIGGER refuse_one BEFORE INSERT ON strangler_repairs
		WHEN NEW.route = 'refused-route' BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END`); err != nil {
		t.Fatal(err)
	}
	var intents []domain.Intent
	for i := range 6 {
		in := intent(fmt.Sprintf("w%d", i), fmt.Sprintf("/patients/%d", i))
		if i == 3 {
			in.Route = "refused-route"
		}
		intents = append(intents, in)
	}
	errs := commitIntents(t, s, intents)
	for i, err := range errs {
		id := intents[i].ID
		if i == 3 {
			if err == nil || !strings.Contains(err.Error(), "refused by the test trigger") {
				t.Errorf("the refused intent %s: got %v, want the trigger's refusal", id, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("intent %s, batched with one the database refused: %v, want it journaled", id, err)
		} else if st := state(t, s, id); st != domain.StateSent {
			t.Errorf("intent %s is %s, want sent", id, st)
		}
	}
}

// TestAnIntentAlreadyJournaledIsAConflictAloneInItsBatch: an id journaled
// before, or twice in one batch, is ErrConflict for the later intent
// alone; the first keeps its request and the others are journaled.
func TestAnIntentAlreadyJournaledIsAConflictAloneInItsBatch(t *testing.T) {
	s := newStore(t, backends()[0], newClock())
	if err := s.BeginWrite(context.Background(), intent("old", "/patients/9"), time.Minute); err != nil {
		t.Fatal(err)
	}
	again := intent("w1", "/patients/other")
	again.Body = []byte(`{"name":"second"}`)
	intents := []domain.Intent{
		intent("w0", "/patients/0"), intent("w1", "/patients/1"), intent("old", "/patients/9"),
		intent("w2", "/patients/2"), again, intent("w3", "/patients/3"),
	}
	errs := commitIntents(t, s, intents)
	for i, err := range errs {
		id := intents[i].ID
		if i == 2 || i == 4 {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("intent %d, %s journaled before: got %v, want ErrConflict", i, id, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("intent %s, batched with an id journaled before: %v, want it journaled", id, err)
		}
	}
	r, err := s.GetRepair(context.Background(), "w1", true)
	if err != nil {
		t.Fatal(err)
	}
	if r.ResourceKey != s.resourceKey("/patients/1") || string(r.Body) != `{"name":"w1"}` {
		t.Errorf("w1 has body %s (resource key %s), want the first intent's, for /patients/1 with {\"name\":\"w1\"}", r.Body, r.ResourceKey)
	}
}

// commitOps carries out ops as one batch of the SQLite store and returns
// each one's result.
func commitOps(s *Store, ops []*batchOp) []error {
	for _, op := range ops {
		op.ctx, op.done = context.Background(), make(chan error, 1)
	}
	s.batcher.commit(ops)
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = <-op.done
	}
	return errs
}

// TestADeliveryWhoseLeaseWasLostIsRefusedAloneInItsBatch: deliveries
// completed together are each marked done, but one whose lease another
// worker holds now is ErrLeaseLost, naming the holder, and stays pending;
// so is a delivery completed twice in one batch.
func TestADeliveryWhoseLeaseWasLostIsRefusedAloneInItsBatch(t *testing.T) {
	s := newStore(t, backends()[0], newClock())
	ctx := context.Background()
	for i := range 6 {
		journal(t, s, fmt.Sprintf("w%d", i), fmt.Sprintf("/patients/%d", i))
	}
	if got := claimIDs(t, s, "worker"); len(got) != 6 {
		t.Fatalf("claimed %v, want 6 writes", got)
	}
	if _, err := s.db.Exec(`UPDATE strangler_repairs SET lease_owner = 'other-worker' WHERE id = 'w2'`); err != nil {
		t.Fatal(err)
	}
	var ops []*batchOp
	for i := range 4 {
		ops = append(ops, s.completeOp(ctx, fmt.Sprintf("w%d", i), "worker"))
	}
	for i, err := range commitOps(s, ops) {
		if i == 2 {
			if !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "other-worker holds it") {
				t.Errorf("completing w2, leased to another worker: got %v, want ErrLeaseLost naming other-worker", err)
			}
		} else if err != nil {
			t.Errorf("completing w%d, batched with one whose lease was lost: %v, want done", i, err)
		}
	}
	twice := commitOps(s, []*batchOp{s.completeOp(ctx, "w4", "worker"), s.completeOp(ctx, "w4", "worker"), s.completeOp(ctx, "w5", "worker")})
	if twice[0] != nil || twice[2] != nil {
		t.Errorf("completing w4 and w5, with w4 twice: %v and %v, want both done", twice[0], twice[2])
	}
	if !errors.Is(twice[1], ErrLeaseLost) {
		t.Errorf("completing w4 a second time in its batch: got %v, want ErrLeaseLost", twice[1])
	}
	for i := range 6 {
		id, want := fmt.Sprintf("w%d", i), domain.StateDone
		if i == 2 {
			want = domain.StatePending
		}
		if st := state(t, s, id); st != want {
			t.Errorf("%s is %s, want %s", id, st, want)
		}
	}
}
