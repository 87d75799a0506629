package dualwrite

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
)

// TestASecondaryAskingToWaitGetsNoDeliveriesUntilThen: a secondary that
// answers 503 or 429 with Retry-After (overloaded, in maintenance) gets
// neither that write again nor any other write before the wait it asked
// for is over, instead of one retry per backoff (a second) and every new
// write at once; afterwards all of them arrive. Both forms of the header
// (seconds and an HTTP date), on a real store and a real secondary.
func TestASecondaryAskingToWaitGetsNoDeliveriesUntilThen(t *testing.T) {
	for name, c := range map[string]struct {
		status int
		header func(now time.Time) string
	}{
		"503 with seconds":      {http.StatusServiceUnavailable, func(time.Time) string { return "120" }},
		"429 with an HTTP date": {http.StatusTooManyRequests, func(now time.Time) string { return now.Add(120 * time.Second).UTC().Format(http.TimeFormat) }},
	} {
		t.Run(name, func(t *testing.T) {
			s := testSettings
			s.Backoff = config.Duration(time.Second)
			s.MaxBackoff = config.Duration(time.Hour)
			r := newRig(t, sqlite(t), s)
			var busy atomic.Bool
			busy.Store(true)
			r.modern.SetHandler(func(w http.ResponseWriter, _ *http.Request) {
				if busy.Load() {
					w.Header().Set("Retry-After", c.header(r.clock.Now()))
					w.WriteHeader(c.status)
				}
			})
			r.journal(put("w1", "1", `{"v":1}`), domain.Outcome{Status: 200})
			r.deliverDue(r.w)
			if n := r.modern.Hits(); n != 1 {
				t.Fatalf("the secondary got %d deliveries, want 1", n)
			}
			// The store's clock runs at the real time's pace: a few
			// seconds of slack keep a busy machine from failing the test.
			if got := r.dueIn("w1"); got < 115*time.Second || got > 151*time.Second {
				t.Errorf("the write is due again after %v, want 120 s (what the secondary asked) to 150 s (jitter)", got)
			}

			// Another write, and the first one's backoff passed: neither
			// goes while the wait runs.
			r.journal(put("w2", "2", `{"v":2}`), domain.Outcome{Status: 200})
			for range 3 {
				r.advance(30 * time.Second)
				r.deliverDue(r.w)
			}
			if n := r.modern.Hits(); n != 1 {
				t.Errorf("90 s into the 120 s the secondary asked for, it got %d deliveries, want still 1", n)
			}
			if rep, due := r.repair("w2"), r.dueIn("w2"); rep.State != domain.StatePending || !strings.Contains(rep.LastError, "Retry-After") ||
				due < 25*time.Second {
				t.Errorf("the write journaled during the wait: %s, due in %v, %q; want pending, not before the 120 s are over (in 30 s), saying why",
					rep.State, due, rep.LastError)
			}
			if lines := r.logs.Lines(t, "the secondary asked for no requests for a while (Retry-After); dual writes to it wait until then"); len(lines) != 1 {
				t.Errorf("got %d log lines about the wait, want 1", len(lines))
			}

			// Once the wait is over, both go.
			busy.Store(false)
			r.advance(61 * time.Second)
			r.deliverDue(r.w)
			for _, id := range []string{"w1", "w2"} {
				if st := r.repair(id).State; st != domain.StateDone {
					t.Errorf("after the wait %s is %s, want done", id, st)
				}
			}
		})
	}
}

// TestASecondaryAskingForAnOverlongWaitGetsTheLongest: a Retry-After of
// more seconds than 32 bits hold (milliseconds sent as seconds, say) was
// read as no wait at all, and the secondary, which asked to be spared,
// got the write again after a second's backoff and every new write at
// once. It is the longest wait, bounded by repairs.max_backoff.
func TestASecondaryAskingForAnOverlongWaitGetsTheLongest(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings) // backoff 1s, max_backoff 1m
	r.modern.SetHandler(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1733450000000")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	r.journal(put("w1", "1", `{"v":1}`), domain.Outcome{Status: 200})
	r.deliverDue(r.w)
	r.journal(put("w2", "2", `{"v":2}`), domain.Outcome{Status: 200})
	for range 5 {
		r.advance(5 * time.Second)
		r.deliverDue(r.w)
	}
	if n := r.modern.Hits(); n != 1 {
		t.Errorf("25 s after the secondary asked for the longest wait it got %d deliveries, want still 1", n)
	}
	// max_backoff and up to a quarter more of jitter, no later.
	if due := r.dueIn("w1"); due < 30*time.Second || due > 75*time.Second {
		t.Errorf("the write is due again in %v, want after max_backoff (1 m) from its failure, and no later", due)
	}
}
