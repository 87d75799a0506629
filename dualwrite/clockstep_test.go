package dualwrite

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"strangler/domain"
)

// TestAReplicaWhoseClockStepsForwardTakesNoLiveLease: replicas share one
// PostgreSQL store, and one of them has a clock an hour ahead (NTP
// stepped it, a VM resumed). While another replica delivers a write, the
// fast one does not take the delivery over (the secondary would get it
// twice); while a write waits for its primary's answer on another
// replica, the fast one does not take it for abandoned and mark it
// unknown. Leases run on the server's clock, not the replicas'.
func TestAReplicaWhoseClockStepsForwardTakesNoLiveLease(t *testing.T) {
	d := postgres(t)
	r := newRig(t, d, testSettings)
	r.routes.setBackend(t, "modern", r.modern.URL, time.Minute)
	fast := r.newWorker(openStore(t, d), testSettings)
	fast.now = func() time.Time { return r.clock.Now().Add(time.Hour) }
	held, release := gate(t)
	arrived := make(chan struct{}, 2)
	var calls atomic.Int64
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		arrived <- struct{}{}
		if calls.Add(1) == 1 {
			<-held // the first delivery is under way as the fast replica looks
		}
	})
	r.journal(put("w1", "7", `{"v":1}`), domain.Outcome{Status: 200})
	r.w.claimDue(context.Background())
	receive(t, arrived, "the first delivery")
	r.deliverDue(fast)
	if n := r.modern.Hits(); n != 1 {
		t.Errorf("the secondary got %d deliveries of one write, want 1: the replica an hour ahead took a live lease", n)
	}
	release()
	r.w.inflight.Wait()
	if st := r.repair("w1").State; st != domain.StateDone {
		t.Errorf("after the first delivery the write is %s, want done", st)
	}

	// A write at the primary, its answer still to come on another replica.
	if err := r.store.BeginWrite(context.Background(), put("at-primary", "8", `{}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	fast.recover(context.Background())
	if st := r.repair("at-primary").State; st != domain.StateSent {
		t.Errorf("a write whose answer another replica awaits: %s after the fast replica's recovery, want sent", st)
	}
}

// TestAReplicaWhoseClockIsOffRetriesWhenTheStoreSays: replicas share one
// PostgreSQL store; one's clock is an hour behind, another's an hour
// ahead. A delivery the secondary answered 503 with Retry-After: 60 is
// due again 60 s to 75 s later, whichever replica failed it and
// whichever looks: the one behind does not make it due at once (the
// others, which never saw the Retry-After, would hammer a secondary
// that asked for a minute), the one ahead neither takes it early nor
// makes the others wait an hour. Due times run on the server's clock,
// as leases do.
func TestAReplicaWhoseClockIsOffRetriesWhenTheStoreSays(t *testing.T) {
	d := postgres(t)
	r := newRig(t, d, testSettings) // backoff 1s doubling: the Retry-After decides
	behind := r.newWorker(openStore(t, d), testSettings)
	behind.now = func() time.Time { return r.clock.Now().Add(-time.Hour) }
	ahead := r.newWorker(openStore(t, d), testSettings)
	ahead.now = func() time.Time { return r.clock.Now().Add(time.Hour) }
	var busy atomic.Bool
	busy.Store(true)
	r.modern.SetHandler(func(w http.ResponseWriter, _ *http.Request) {
		if busy.Load() {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	r.journal(put("w1", "7", `{"v":1}`), domain.Outcome{Status: 200})

	r.deliverDue(behind)
	if n := r.modern.Hits(); n != 1 {
		t.Fatalf("the replica an hour behind: %d deliveries of a write due now, want 1", n)
	}
	r.deliverDue(r.w)
	r.deliverDue(ahead)
	if n := r.modern.Hits(); n != 1 {
		t.Errorf("right after the secondary asked for 60 s, failed by the replica an hour behind: %d deliveries, want still 1", n)
	}
	if due := r.dueIn("w1"); due < 55*time.Second || due > 76*time.Second {
		t.Errorf("failed by the replica an hour behind, the write is due in %v, want 60 s to 75 s", due)
	}

	r.advance(76 * time.Second)
	r.deliverDue(ahead)
	if n := r.modern.Hits(); n != 2 {
		t.Fatalf("once the 60 s passed, the replica an hour ahead: %d deliveries in all, want 2", n)
	}
	if due := r.dueIn("w1"); due < 55*time.Second || due > 76*time.Second {
		t.Errorf("failed by the replica an hour ahead, the write is due in %v, want 60 s to 75 s", due)
	}
	busy.Store(false)
	r.advance(76 * time.Second)
	r.deliverDue(r.w)
	if rep := r.repair("w1"); rep.State != domain.StateDone || r.modern.Hits() != 3 {
		t.Errorf("76 s after the replica an hour ahead failed it: %s after %d deliveries, want done after 3", rep.State, r.modern.Hits())
	}
}
