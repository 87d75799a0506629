package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

func TestRepairQueueOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		journal(t, s, "a1", "update-patient/a")
		journal(t, s, "a2", "update-patient/a")
		journal(t, s, "b1", "update-patient/b")
		journal(t, s, "a3", "update-patient/a")

		t.Run("a later write to a resource waits behind an earlier pending one", func(t *testing.T) {
			if got, want := claimIDs(t, s, "w1"), []string{"a1", "b1"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("claimed %v, want %v", got, want)
			}
			if got := claimIDs(t, s, "w2"); len(got) != 0 {
				t.Errorf("claimed %v while the heads are leased, want nothing", got)
			}
			_, ok, err := s.ClaimRepair(ctx, "a2", "inline", time.Minute)
			if err != nil || ok {
				t.Errorf("ClaimRepair(a2) behind a1: got ok=%v, %v; want not claimable", ok, err)
			}
			if err := s.CompleteRepair(ctx, "a1", "w1"); err != nil {
				t.Fatal(err)
			}
			if got, want := claimIDs(t, s, "w1"), []string{"a2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("after a1 is done: claimed %v, want %v", got, want)
			}
		})

		t.Run("a dead write holds back its own resource and no other", func(t *testing.T) {
			if err := s.FailRepair(ctx, "a2", "w1", "422 from modern", 0, true); err != nil {
				t.Fatal(err)
			}
			if err := s.CompleteRepair(ctx, "b1", "w1"); err != nil {
				t.Fatal(err)
			}
			journal(t, s, "b2", "update-patient/b")
			clk.Advance(time.Hour)
			if got, want := claimIDs(t, s, "w1"), []string{"b2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("claimed %v, want %v: a3 waits behind dead a2, b proceeds", got, want)
			}
			r, err := s.GetRepair(ctx, "a2", true)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != domain.StateDead || r.LastError != "422 from modern" || r.Attempts != 1 || len(r.Body) == 0 {
				t.Errorf("got %s, %q, %d attempts, %d body bytes; want dead with its reason and payload",
					r.State, r.LastError, r.Attempts, len(r.Body))
			}
		})

		t.Run("retrying a dead write puts it back at the head of its resource", func(t *testing.T) {
			if err := s.RetryRepair(ctx, "a2", domain.AuditEntry{Action: "repair_retry"}); err != nil {
				t.Fatal(err)
			}
			r, err := s.GetRepair(ctx, "a2", false)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != domain.StatePending || r.Attempts != 0 {
				t.Errorf("got %s with %d attempts, want pending with 0", r.State, r.Attempts)
			}
			if got, want := claimIDs(t, s, "w1"), []string{"a2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("claimed %v, want %v", got, want)
			}
		})

		t.Run("discarding the head lets the next write to its resource through", func(t *testing.T) {
			if err := s.FailRepair(ctx, "a2", "w1", "422 again", 0, true); err != nil {
				t.Fatal(err)
			}
			if err := s.DiscardRepair(ctx, "a2", domain.AuditEntry{Action: "repair_discard"}); err != nil {
				t.Fatal(err)
			}
			if got, want := claimIDs(t, s, "w1"), []string{"a3"}; !reflect.DeepEqual(got, want) {
				t.Errorf("claimed %v, want %v", got, want)
			}
		})
	})
}

func TestRepairLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		journal(t, s, "w", "update-patient/1")
		if got := claimIDs(t, s, "w1"); len(got) != 1 {
			t.Fatalf("claimed %v, want [w]", got)
		}

		t.Run("a leased repair is not claimed again while the lease runs", func(t *testing.T) {
			clk.Advance(59 * time.Second)
			if got := claimIDs(t, s, "w2"); len(got) != 0 {
				t.Errorf("claimed %v, want nothing", got)
			}
		})

		t.Run("an expired lease lets another worker claim it", func(t *testing.T) {
			clk.Advance(time.Second)
			if got := claimIDs(t, s, "w2"); !reflect.DeepEqual(got, []string{"w"}) {
				t.Fatalf("claimed %v, want [w]", got)
			}
			r, err := s.GetRepair(ctx, "w", false)
			if err != nil {
				t.Fatal(err)
			}
			if r.LeaseOwner != "w2" || !leasedFor(b, clk, r.LeaseUntil, time.Minute) {
				t.Errorf("got lease %s until %v, want w2's for a minute", r.LeaseOwner, r.LeaseUntil)
			}
		})

		t.Run("the worker that lost the lease cannot finish the repair", func(t *testing.T) {
			if err := s.CompleteRepair(ctx, "w", "w1"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("CompleteRepair: got %v, want ErrLeaseLost", err)
			}
			if err := s.FailRepair(ctx, "w", "w1", "timeout", 0, false); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("FailRepair: got %v, want ErrLeaseLost", err)
			}
			if err := s.CompleteRepair(ctx, "nope", "w1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("CompleteRepair of an unknown id: got %v, want ErrNotFound", err)
			}
		})

		t.Run("a failed attempt is due again at its retry time", func(t *testing.T) {
			if err := s.FailRepair(ctx, "w", "w2", "503 from modern", 30*time.Second, false); err != nil {
				t.Fatal(err)
			}
			clk.Advance(29 * time.Second)
			if got := claimIDs(t, s, "w2"); len(got) != 0 {
				t.Errorf("claimed %v before the retry time, want nothing", got)
			}
			clk.Advance(time.Second)
			rs, err := s.ClaimRepairs(ctx, "w3", 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Attempts != 1 || rs[0].LastError != "503 from modern" {
				t.Fatalf("got %+v, want w with 1 attempt", rs)
			}
			if err := s.CompleteRepair(ctx, "w", "w3"); err != nil {
				t.Fatal(err)
			}
			if err := s.CompleteRepair(ctx, "w", "w3"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("completing twice: got %v, want ErrLeaseLost", err)
			}
		})

		t.Run("a write can be claimed inline right after its outcome", func(t *testing.T) {
			journal(t, s, "inline", "update-patient/2")
			r, ok, err := s.ClaimRepair(ctx, "inline", "facade", time.Minute)
			if err != nil || !ok {
				t.Fatalf("got ok=%v, %v; want claimed", ok, err)
			}
			if r.ID != "inline" || r.LeaseOwner != "facade" || string(r.Body) == "" {
				t.Errorf("got %+v, want inline leased to facade with its body", r)
			}
			if got := claimIDs(t, s, "worker"); len(got) != 0 {
				t.Errorf("the queue claimed %v while the facade holds it, want nothing", got)
			}
		})
	})
}

// TestNoDoubleClaim runs four workers against one queue at once, on
// PostgreSQL spread over two replicas: no write is handed to two of them,
// and writes to one resource are delivered in order. The lease is never
// allowed to expire, so any second claim is a bug.
func TestNoDoubleClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		dsn := b.fresh(t)
		replicas := []*Store{openStore(t, dsn, clk)}
		resources, perResource := 20, 10
		if b.name == "sqlite" {
			// One process owns the file: its workers share one Store.
			// Fewer items, as SQLite under the race detector is slow.
			resources, perResource = 8, 5
		} else {
			replicas = append(replicas, openStore(t, dsn, clk))
		}
		var want []string
		for i := range perResource {
			for r := range resources {
				id := fmt.Sprintf("w-%02d-%02d", r, i)
				journal(t, replicas[0], id, fmt.Sprintf("update-patient/%02d", r))
				want = append(want, id)
			}
		}

		var mu sync.Mutex
		holder := map[string]string{}      // id -> worker holding it now
		delivered := map[string][]string{} // resource -> ids in delivery order
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			wg.Go(func() {
				s := replicas[w%len(replicas)]
				owner := fmt.Sprintf("replica-%d/worker-%d", w%len(replicas), w)
				for idle := 0; idle < 20; {
					rs, err := s.ClaimRepairs(ctx, owner, 3, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if len(rs) == 0 {
						idle++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					idle = 0
					for _, r := range rs {
						mu.Lock()
						if h, ok := holder[r.ID]; ok {
							errs <- fmt.Errorf("%s claimed %s while %s holds it", owner, r.ID, h)
						}
						holder[r.ID] = owner
						delivered[r.ResourceKey] = append(delivered[r.ResourceKey], r.ID)
						mu.Unlock()
					}
					for _, r := range rs {
						if err := s.CompleteRepair(ctx, r.ID, owner); err != nil {
							errs <- err
							return
						}
						mu.Lock()
						delete(holder, r.ID)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		total := 0
		for r := range resources {
			resource := fmt.Sprintf("update-patient/%02d", r)
			var wantOrder []string
			for i := range perResource {
				wantOrder = append(wantOrder, fmt.Sprintf("w-%02d-%02d", r, i))
			}
			key := replicas[0].resourceKey(resource)
			if got := delivered[key]; !reflect.DeepEqual(got, wantOrder) {
				t.Errorf("%s delivered as %v, want once each in order %v", resource, got, wantOrder)
			}
			total += len(delivered[key])
		}
		if total != len(want) {
			t.Errorf("delivered %d writes, want %d", total, len(want))
		}
		depth, err := replicas[len(replicas)-1].RepairDepth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if depth["pending"] != 0 {
			t.Errorf("%d writes still pending, want 0", depth["pending"])
		}
	})
}

// TestRecordingAnOutcomeLeasesTheWriteToItsDeliverer: the facade records
// a write's outcome leased to its own worker, which then delivers it from
// the request in hand; a write that must wait for an earlier one to its
// resource is not leased, and is claimed once that one is done.
func TestRecordingAnOutcomeLeasesTheWriteToItsDeliverer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		lease := time.Minute
		record := func(id, resource string, status int) bool {
			t.Helper()
			if err := s.BeginWrite(ctx, intent(id, resource), lease); err != nil {
				t.Fatal(err)
			}
			leased, err := s.RecordOutcomeLeased(ctx, id, domain.Outcome{Status: status}, "facade-1", lease)
			if err != nil {
				t.Fatal(err)
			}
			return leased
		}
		if !record("a1", "update-patient/a", 200) {
			t.Fatal("the first write to its resource was not leased")
		}
		if r, err := s.GetRepair(ctx, "a1", false); err != nil || r.State != domain.StatePending || r.LeaseOwner != "facade-1" || !leasedFor(b, clk, r.LeaseUntil, lease) {
			t.Fatalf("a1: %+v, %v; want pending, leased to facade-1 for %v", r, err, lease)
		}
		if record("a2", "update-patient/a", 200) {
			t.Error("a2 was leased while a1, to the same resource, is still to be delivered")
		}
		if record("b1", "update-patient/b", 500) {
			t.Error("a write the primary refused was leased")
		}
		if got := claimIDs(t, s, "replica-2"); len(got) != 0 {
			t.Errorf("another replica claimed %v while a1's lease runs and a2 waits behind it, want nothing", got)
		}
		if err := s.CompleteRepair(ctx, "a1", "facade-1"); err != nil {
			t.Fatalf("the lessee completing a1: %v", err)
		}
		if got := claimIDs(t, s, "replica-2"); !reflect.DeepEqual(got, []string{"a2"}) {
			t.Errorf("after a1 is done: claimed %v, want [a2]", got)
		}
	})
}

// ClaimNextRepair takes the head of a resource by the resource, as
// ClaimRepairs would take it: never a write behind a pending, leased or
// dead one, nothing of another resource.
func TestClaimNextRepairTakesItsResourcesHeadOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		journal(t, s, "a1", "update-patient/a")
		journal(t, s, "a2", "update-patient/a")
		journal(t, s, "b1", "update-patient/b")
		journal(t, s, "a3", "update-patient/a")
		next := func(after string) string {
			t.Helper()
			r, ok, err := s.ClaimNextRepair(ctx, after, "w1", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return ""
			}
			return r.ID
		}
		if got := next("a1"); got != "a1" {
			t.Fatalf("the head of a1's resource: claimed %q, want a1", got)
		}
		if got := next("a1"); got != "" {
			t.Errorf("with a1 leased: claimed %q, want nothing", got)
		}
		if err := s.CompleteRepair(ctx, "a1", "w1"); err != nil {
			t.Fatal(err)
		}
		if got := next("a1"); got != "a2" {
			t.Errorf("after a1 is done: claimed %q, want a2", got)
		}
		if err := s.FailRepair(ctx, "a2", "w1", "422 from modern", 0, true); err != nil {
			t.Fatal(err)
		}
		if got := next("a2"); got != "" {
			t.Errorf("behind dead a2: claimed %q, want nothing", got)
		}
		if got := next("b1"); got != "b1" {
			t.Errorf("the head of b: claimed %q, want b1", got)
		}
		if got := next("no-such-write"); got != "" {
			t.Errorf("after an unknown write: claimed %q, want nothing", got)
		}
	})
}
