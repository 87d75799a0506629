package dualwrite

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestALeaseKeepsOtherReplicasOffUntilItPasses: a write one replica is
// delivering is not claimed by another while its lease runs; once it has
// passed (the replica died mid-delivery), another takes it over, and the
// first replica, should it come back, cannot settle it any more. On
// SQLite and on PostgreSQL, where replicas really share a queue.
func TestALeaseKeepsOtherReplicasOffUntilItPasses(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"SQLite": sqlite, "PostgreSQL": postgres} {
		t.Run("on "+name, func(t *testing.T) {
			d := dsn(t)
			r := newRig(t, d, testSettings)
			// A timeout far above the test's length: the first delivery
			// hangs until the test lets it end, however loaded the machine.
			r.routes.setBackend(t, "modern", r.modern.URL, time.Minute)
			other := r.newWorker(openStore(t, d), testSettings)
			arrived := make(chan string, 2)
			held, release := gate(t)
			var calls atomic.Int64
			r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
				arrived <- req.Header.Get("Idempotency-Key")
				if calls.Add(1) == 1 {
					<-held // the first delivery hangs: its replica is gone
				}
			})
			r.journal(put("w1", "7", `{"v":1}`), domain.Outcome{Status: 200})
			ctx := context.Background()
			r.w.claimDue(ctx)
			if key := receive(t, arrived, "the first delivery"); key != "w1" {
				t.Fatalf("the first delivery carried key %q, want w1", key)
			}

			// While the first delivery may still be running, the other
			// replica finds nothing due: the lease outlasts the longest a
			// delivery can take.
			start := r.clock.Now()
			r.clock.Advance(deliveryTimeout(r.routes.Backend("modern")) + time.Second)
			r.deliverDue(other)
			if n := r.modern.Hits(); n != 1 {
				t.Fatalf("the secondary got %d deliveries while the first one could still run, want 1", n)
			}
			// Once the lease passed, the other replica takes the write over.
			r.clock.Set(start.Add(r.w.maxLease()))
			testdb.LapseRepairLeases(t, d)
			r.deliverDue(other)
			if key := receive(t, arrived, "the takeover"); key != "w1" {
				t.Errorf("the takeover carried key %q, want the same w1: the secondary applies it once", key)
			}
			if st := r.repair("w1").State; st != domain.StateDone {
				t.Fatalf("after the takeover the write is %s, want done", st)
			}
			// The first replica's delivery ends late: it settles nothing.
			release()
			r.w.inflight.Wait()
			if st := r.repair("w1"); st.State != domain.StateDone || st.Attempts != 0 {
				t.Errorf("after the late delivery: %s with %d attempts, want done with 0", st.State, st.Attempts)
			}
			if n := r.count("put-item", "applied"); n != 0 {
				t.Errorf("the replica that lost its lease counted %v applied, want 0", n)
			}
			if lines := r.logs.Lines(t, "recording a delivery failed; it is retried when its lease passes"); len(lines) != 1 {
				t.Errorf("got %d log lines for the lost lease, want 1", len(lines))
			}
		})
	}
}

// TestTwoReplicasDrainOneQueueWithoutDoubleDeliveries: two workers, each
// on its own connection to one PostgreSQL store, claim from a queue of
// 300 writes at once; every write reaches the secondary exactly once.
func TestTwoReplicasDrainOneQueueWithoutDoubleDeliveries(t *testing.T) {
	const writes = 300
	d := postgres(t)
	r := newRig(t, d, testSettings)
	other := r.newWorker(openStore(t, d), testSettings)
	for i := range writes {
		r.journal(put(fmt.Sprintf("w%03d", i), fmt.Sprint(i%50), `{}`), domain.Outcome{Status: 200})
	}
	var wg sync.WaitGroup
	for _, w := range []*Worker{r.w, other} {
		wg.Go(func() {
			for range 4 * writes {
				r.deliverDue(w)
				if d, err := r.store.RepairDepth(context.Background()); err != nil || d["pending"] == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	got := map[string]int{}
	for _, req := range r.modern.Requests() {
		got[req.Header.Get("Idempotency-Key")]++
	}
	if len(got) != writes {
		t.Errorf("the secondary got %d distinct writes, want %d", len(got), writes)
	}
	for key, n := range got {
		if n != 1 {
			t.Errorf("write %s reached the secondary %d times, want once", key, n)
		}
	}
}

func TestAKickDeliversAWriteIfItIsItsResourcesNext(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.modern.SetHandler(testkit.Answer(http.StatusServiceUnavailable, `{}`))
	r.journal(put("w1", "7", `{"v":1}`), domain.Outcome{Status: 200})
	r.deliverDue(r.w) // fails: w1 waits for its backoff
	r.modern.SetHandler(testkit.Answer(200, `{}`))
	r.journal(put("w2", "7", `{"v":2}`), domain.Outcome{Status: 200})
	r.journal(put("w3", "8", `{"v":1}`), domain.Outcome{Status: 200})
	ctx := context.Background()
	for _, id := range []string{"w2", "w3"} {
		r.w.claimOne(ctx, id)
	}
	r.w.inflight.Wait()
	if got := r.repair("w2").State; got != domain.StatePending {
		t.Errorf("w2, kicked behind w1 waiting for its backoff: %s, want pending: it may not overtake w1", got)
	}
	if got := r.repair("w3").State; got != domain.StateDone {
		t.Errorf("w3, kicked, the next of its resource: %s, want done", got)
	}
}

func TestPurgeDeletesFinishedWritesOnceKeepHasPassed(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings) // keep: 1h
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		switch req.Header.Get("Idempotency-Key") {
		case "dead":
			w.WriteHeader(http.StatusBadRequest)
		case "pending":
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	r.journal(put("done", "a", `{}`), domain.Outcome{Status: 200})
	r.journal(put("skipped", "b", `{}`), domain.Outcome{Status: 500})
	r.journal(put("dead", "c", `{}`), domain.Outcome{Status: 200})
	r.journal(put("pending", "d", `{}`), domain.Outcome{Status: 200})
	r.deliverDue(r.w)
	ctx := context.Background()
	if err := r.store.BeginWrite(ctx, put("sent", "e", `{}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	exists := func(id string) bool {
		_, err := r.store.GetRepair(ctx, id, false)
		return err == nil
	}

	testdb.PassRepairTime(t, r.dsn, 50*time.Minute, "updated_at")
	r.w.purge(ctx)
	for _, id := range []string{"done", "skipped", "dead", "pending", "sent"} {
		if !exists(id) {
			t.Errorf("%s was purged before keep (1h) passed", id)
		}
	}
	testdb.PassRepairTime(t, r.dsn, 20*time.Minute, "updated_at") // 70 in all
	r.w.purge(ctx)
	for id, kept := range map[string]bool{"done": false, "skipped": false, "dead": true, "pending": true, "sent": true} {
		if exists(id) != kept {
			t.Errorf("%s: kept %v after keep passed, want %v", id, exists(id), kept)
		}
	}
	if lines := r.logs.Lines(t, "purged delivered dual writes"); len(lines) != 1 || lines[0]["count"] != 2.0 {
		t.Errorf("purge log lines %v, want one counting 2", lines)
	}
}

// TestRunDeliversAndFinishesWhatIsInFlightBeforeReturning runs the worker
// as the facade does: kicked writes and due writes are delivered, and
// once its context ends it returns only after the delivery in flight has
// been settled.
func TestRunDeliversAndFinishesWhatIsInFlightBeforeReturning(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.w.now = time.Now // the poll finds what is due by the real clock
	arrived := make(chan string, 10)
	held, release := gate(t)
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		key := req.Header.Get("Idempotency-Key")
		arrived <- key
		if key == "held" {
			<-held
		}
	})
	r.journal(put("due", "a", `{}`), domain.Outcome{Status: 200}) // found by the poll
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	r.journal(put("held", "b", `{}`), domain.Outcome{Status: 200})
	r.w.Kick("held")
	seen := map[string]bool{}
	for !seen["due"] || !seen["held"] {
		select {
		case key := <-arrived:
			seen[key] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("deliveries after 30 s: %v, want due and held", seen)
		}
	}
	cancel()
	release()
	if err := receive(t, done, "Run's return"); err != nil {
		t.Errorf("Run returned %v", err)
	}
	for _, id := range []string{"due", "held"} {
		if st := r.repair(id).State; st != domain.StateDone {
			t.Errorf("%s after Run returned: %s, want done", id, st)
		}
	}
}

func TestSettingsTakeEffectOnTheNextFailure(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings) // max_attempts 5
	r.modern.SetHandler(testkit.Answer(http.StatusServiceUnavailable, `{}`))
	r.journal(put("w1", "a", `{}`), domain.Outcome{Status: 200})
	r.deliverDue(r.w)
	s := testSettings
	s.MaxAttempts = 2
	r.w.SetSettings(s)
	r.advance(time.Hour)
	r.deliverDue(r.w)
	if rep := r.repair("w1"); rep.State != domain.StateDead || rep.Attempts != 2 {
		t.Errorf("after a reload to max_attempts 2 and a second failure: %s, %d attempts; want dead, 2", rep.State, rep.Attempts)
	}
}

// TestDeliveriesNeverExceedTheWorkersBound: with workers: 2, a claim takes
// two writes while two are in flight elsewhere and none while both
// slots are taken.
func TestDeliveriesNeverExceedTheWorkersBound(t *testing.T) {
	s := testSettings
	s.Workers = 2
	r := newRig(t, sqlite(t), s)
	held, release := gate(t)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		<-held
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	for i := range 5 {
		r.journal(put(fmt.Sprint("w", i), fmt.Sprint(i), `{}`), domain.Outcome{Status: 200})
	}
	ctx := context.Background()
	r.w.claimDue(ctx)
	r.w.claimDue(ctx)
	r.w.claimOne(ctx, "w4")
	testkit.Eventually(t, 30*time.Second, "two deliveries at the secondary", func() bool { return r.modern.Hits() == 2 })
	release()
	r.w.inflight.Wait()
	if peak != 2 || r.modern.Hits() != 2 {
		t.Errorf("%d deliveries, %d at once, want 2 and 2", r.modern.Hits(), peak)
	}
	if !r.w.backlog {
		t.Error("a claim that found every slot taken did not note a backlog")
	}
	r.deliverDue(r.w)
	r.deliverDue(r.w)
	if n := r.modern.Hits(); n != 5 {
		t.Errorf("after the slots freed: %d deliveries, want all 5", n)
	}
}

func TestAnUnknownRouteIsStillDelivered(t *testing.T) {
	// A route removed from the configuration after its write was
	// journaled: the write was applied by the primary and must still
	// reach the secondary, keyed by its id.
	r := newRig(t, sqlite(t), testSettings)
	in := put("w1", "7", `{}`)
	in.Route = "removed-route"
	r.journal(in, domain.Outcome{Status: 200})
	r.deliverDue(r.w)
	if got := r.modern.Last(t).Header.Get("Idempotency-Key"); got != "w1" || r.repair("w1").State != domain.StateDone {
		t.Errorf("key %q, state %s; want w1, done", got, r.repair("w1").State)
	}
}
