package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

// TestEveryPathMovesAWriteOnlyAsTheTableSays runs every path that moves
// a journaled write's state against a write in each state, two actors at
// once (on PostgreSQL two replicas): the primary's answer (its sender's
// or a resend's), recovery's give-up, an operator's stop, retry and
// discard, a client's keyed retry, delivery's success and give-up, and
// the purge. Each path moves the write only from the states listed here,
// to its one state, once however many actors race; the moves made,
// together, are exactly domain's table. Before, a late answer moved an
// unknown write to pending or skipped (RecordOutcome), a move the table
// no longer allows: the older write reached the secondary after later
// ones.
func TestEveryPathMovesAWriteOnlyAsTheTableSays(t *testing.T) {
	const (
		sent, pending, skipped, unknown = domain.StateSent, domain.StatePending, domain.StateSkipped, domain.StateUnknown
		done, dead, discarded           = domain.StateDone, domain.StateDead, domain.StateDiscarded
		purged                          = domain.State("purged") // no row left
	)
	audit := domain.AuditEntry{Actor: "ops", Action: "repair_test", Reason: "table"}
	type act func(ctx context.Context, s *Store, c *moveCase, actor int) (moved bool, err error)
	paths := []struct {
		name string
		from []domain.State
		to   domain.State
		act  act
		// keyed journals the write under a client's key (the purge
		// keeps a write a key names).
		keyed bool
	}{
		{"the primary's 2xx", []domain.State{sent}, pending, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			err := s.RecordOutcome(ctx, c.id, domain.Outcome{Status: 200})
			return err == nil, err
		}, false},
		{"the primary's refusal", []domain.State{sent}, skipped, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			err := s.RecordOutcome(ctx, c.id, domain.Outcome{Status: 409})
			return err == nil, err
		}, false},
		{"the primary's 2xx, leased", []domain.State{sent}, pending, func(ctx context.Context, s *Store, c *moveCase, actor int) (bool, error) {
			_, err := s.RecordOutcomeLeased(ctx, c.id, domain.Outcome{Status: 200}, fmt.Sprint("worker-", actor), time.Minute)
			return err == nil, err
		}, false},
		{"recovery marks it unknown", []domain.State{sent}, unknown, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			err := s.MarkUnknown(ctx, c.id)
			return err == nil, err
		}, false},
		{"recovery's last resend unanswered", []domain.State{sent}, unknown, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			return s.ResendUnanswered(ctx, c.id, 0, "no answer", 0, true)
		}, false},
		{"an operator stops its resends", []domain.State{sent}, unknown, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			err := s.StopResend(ctx, c.id, audit)
			return err == nil, err
		}, false},
		{"its client retries with its key", []domain.State{unknown}, sent, func(ctx context.Context, s *Store, c *moveCase, actor int) (bool, error) {
			kw, err := s.BeginKeyedWrite(ctx, c.keyedIntent(fmt.Sprint(c.id, "-retry-", actor)), c.key, time.Minute)
			return err == nil && kw.Use == domain.KeyResumed, err
		}, true},
		{"an operator retries it", []domain.State{unknown, dead}, pending, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			err := s.RetryRepair(ctx, c.id, audit)
			return err == nil, err
		}, false},
		{"an operator discards it", []domain.State{pending, dead, unknown}, discarded, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			err := s.DiscardRepair(ctx, c.id, audit)
			return err == nil, err
		}, false},
		{"the secondary applies it", []domain.State{pending}, done, func(ctx context.Context, s *Store, c *moveCase, actor int) (bool, error) {
			owner := fmt.Sprint("worker-", actor)
			if _, ok, err := s.ClaimRepair(ctx, c.id, owner, time.Minute); !ok || err != nil {
				return false, err
			}
			err := s.CompleteRepair(ctx, c.id, owner)
			return err == nil, err
		}, false},
		{"delivery gives up", []domain.State{pending}, dead, func(ctx context.Context, s *Store, c *moveCase, actor int) (bool, error) {
			owner := fmt.Sprint("worker-", actor)
			if _, ok, err := s.ClaimRepair(ctx, c.id, owner, time.Minute); !ok || err != nil {
				return false, err
			}
			err := s.FailRepair(ctx, c.id, owner, "refused", 0, true)
			return err == nil, err
		}, false},
		{"the purge", []domain.State{skipped, done, discarded}, purged, func(ctx context.Context, s *Store, c *moveCase, _ int) (bool, error) {
			n, err := s.PurgeRepairs(ctx, -time.Hour) // everything settled before an hour from now
			return n > 0, err
		}, false},
	}

	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		actors := []*Store{openStore(t, dsn, nil)}
		if b.name == "postgres" {
			actors = append(actors, openStore(t, dsn, nil))
		} else {
			actors = append(actors, actors[0]) // one process uses SQLite
		}
		made := map[[2]domain.State]bool{}
		for pi, p := range paths {
			for _, from := range domain.States {
				if p.to == purged {
					// The settled writes of the cases before go first: the
					// purge then removes this case's write or nothing.
					if _, err := actors[0].PurgeRepairs(ctx, -time.Hour); err != nil {
						t.Fatal(err)
					}
				}
				c := &moveCase{id: fmt.Sprintf("p%d-%s", pi, from), resource: fmt.Sprintf("move/%d/%s", pi, from)}
				if p.keyed {
					c.key = keyed(c.id, `{}`)
				}
				c.into(t, actors[0], from)

				var wg sync.WaitGroup
				moved := make([]bool, len(actors))
				errs := make([]error, len(actors))
				start := make(chan struct{})
				for i, s := range actors {
					wg.Go(func() {
						<-start
						moved[i], errs[i] = p.act(ctx, s, c, i)
					})
				}
				close(start)
				wg.Wait()

				got := c.state(t, actors[0])
				want := from
				if slices.Contains(p.from, from) {
					want = p.to
				}
				if got != want {
					t.Errorf("%s on a write %s, two at once: it is %s, want %s (errors %v)", p.name, from, got, want, errs)
				}
				n := 0
				for _, m := range moved {
					if m {
						n++
					}
				}
				if n > 1 || (n == 1) != (got != from) {
					t.Errorf("%s on a write %s, two at once: %d actors moved it to %s, want one if it moved, none if not (errors %v)", p.name, from, n, got, errs)
				}
				for i, err := range errs {
					if err != nil && !errors.Is(err, ErrInvalidState) && !errors.Is(err, ErrLeaseLost) {
						t.Errorf("%s on a write %s, actor %d: %v, want nil or ErrInvalidState", p.name, from, i, err)
					}
				}
				if got != from && got != purged {
					made[[2]domain.State{from, got}] = true
				}
			}
		}
		for _, from := range domain.States {
			for _, to := range domain.States {
				if allowed, m := domain.CanMove(from, to), made[[2]domain.State{from, to}]; allowed != m {
					t.Errorf("%s -> %s: domain's table allows it %v, the store's paths made it %v", from, to, allowed, m)
				}
			}
		}
	})
}

// moveCase is one write of TestEveryPathMovesAWriteOnlyAsTheTableSays,
// to a resource of its own, journaled under a client's key unless key
// is zero.
type moveCase struct {
	id, resource string
	key          domain.IdempotencyKey
}

// keyedIntent is the case's request journaled as id.
func (c *moveCase) keyedIntent(id string) domain.Intent {
	in := intent(id, c.resource)
	in.Body = []byte(`{}`)
	return in
}

// into journals the case's write and moves it to st, as the facade, the
// worker and an operator would.
func (c *moveCase) into(t *testing.T, s *Store, st domain.State) {
	t.Helper()
	ctx := context.Background()
	// Its lease passed: recovery has it, and an operator may stop it.
	if c.key == (domain.IdempotencyKey{}) {
		if err := s.BeginWrite(ctx, c.keyedIntent(c.id), -time.Second); err != nil {
			t.Fatalf("journaling %s: %v", c.id, err)
		}
	} else if kw, err := s.BeginKeyedWrite(ctx, c.keyedIntent(c.id), c.key, -time.Second); err != nil || kw.Use != domain.KeyJournaled {
		t.Fatalf("journaling %s: %+v, %v", c.id, kw, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("moving %s to %s: %v", c.id, st, err)
		}
	}
	claim := func() {
		t.Helper()
		if _, ok, err := s.ClaimRepair(ctx, c.id, "setup", time.Minute); !ok || err != nil {
			t.Fatalf("claiming %s: %v, %v", c.id, ok, err)
		}
	}
	audit := domain.AuditEntry{Actor: "setup", Action: "repair_discard"}
	switch st {
	case domain.StateSent:
	case domain.StateUnknown:
		must(s.MarkUnknown(ctx, c.id))
	case domain.StateSkipped:
		must(s.RecordOutcome(ctx, c.id, domain.Outcome{Status: 409}))
	default:
		must(s.RecordOutcome(ctx, c.id, domain.Outcome{Status: 200}))
	}
	switch st {
	case domain.StateDone:
		claim()
		must(s.CompleteRepair(ctx, c.id, "setup"))
	case domain.StateDead:
		claim()
		must(s.FailRepair(ctx, c.id, "setup", "refused", 0, true))
	case domain.StateDiscarded:
		must(s.DiscardRepair(ctx, c.id, audit))
	}
	if got := c.state(t, s); got != st {
		t.Fatalf("%s set up %s, want %s", c.id, got, st)
	}
}

// state is the case's write's state, "purged" once no row is left.
func (c *moveCase) state(t *testing.T, s *Store) domain.State {
	t.Helper()
	r, err := s.GetRepair(context.Background(), c.id, false)
	if errors.Is(err, ErrNotFound) {
		return "purged"
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}
