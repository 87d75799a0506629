package stats

import (
	"testing"
	"time"
)

// TestAWindowSlidesToWithinItsTiersWidth: a window of d counts nothing
// counted d or longer before now, and everything counted later than d
// less the width it is exact to; a window longer than MaxWindow is
// MaxWindow.
func TestAWindowSlidesToWithinItsTiersWidth(t *testing.T) {
	for _, tc := range []struct {
		d, exactTo time.Duration
	}{
		{30 * time.Second, time.Second},
		{time.Minute, time.Second},
		{2 * time.Minute, time.Second},
		{5 * time.Minute, 10 * time.Second},
		{20 * time.Minute, 10 * time.Second},
		{45 * time.Minute, time.Minute},
		{time.Hour, time.Minute},
		{2 * time.Hour, time.Minute},
	} {
		for _, now := range []time.Time{t0, t0.Add(time.Second / 2), t0.Add(29 * time.Second)} {
			r := NewCounters().Route("get")
			reach := min(tc.d, MaxWindow)
			r.Modern(now.Add(-reach*3/2), true)
			r.Modern(now.Add(-reach-time.Millisecond), true)
			r.Modern(now.Add(-reach), true)
			r.Modern(now.Add(-reach+tc.exactTo), false)
			r.Modern(now, false)
			if got := r.Window(now, tc.d); got.ModernAttempts != 2 || got.ModernErrors != 0 {
				t.Errorf("%v window at %s: got %d attempts, %d errors; want the 2 answers within %v less %v, not the 3 errors %v or more before",
					tc.d, now.Format("15:04:05.0"), got.ModernAttempts, got.ModernErrors, reach, tc.exactTo, reach)
			}
		}
	}
}

// TestALateCountKeepsTheNewerOnes: a count for a moment longer ago than a
// tier reaches (a time taken long before it was counted) lands where its
// slot is still its own and never wipes a newer span's counts that reuse
// the slot.
func TestALateCountKeepsTheNewerOnes(t *testing.T) {
	r := NewCounters().Route("get")
	for range 5 {
		r.Modern(t0, true)
	}
	r.Modern(t0.Add(-2*time.Minute), true) // the seconds' slot of t0, a turn of the ring before
	if got := r.Window(t0, time.Minute); got.ModernErrors != 5 {
		t.Errorf("the last minute after a count two minutes late: got %d errors, want t0's 5", got.ModernErrors)
	}
	if got := r.Window(t0, 5*time.Minute); got.ModernErrors != 6 {
		t.Errorf("the last 5 minutes: got %d errors, want 6 (the late one too)", got.ModernErrors)
	}
}

// TestAWindowCountsSteadyTrafficOfItsWholeSpan: a request a second for as
// long as the window is long is all counted, to within the width it is
// exact to, however many turns the finer tiers' rings have made meanwhile.
func TestAWindowCountsSteadyTrafficOfItsWholeSpan(t *testing.T) {
	for _, tc := range []struct {
		d, exactTo time.Duration
	}{
		{2 * time.Minute, time.Second},
		{20 * time.Minute, 10 * time.Second},
		{time.Hour, time.Minute},
	} {
		r := NewCounters().Route("get")
		now := t0
		for at := t0.Add(-tc.d - tc.exactTo); !at.After(now); at = at.Add(time.Second) {
			r.Request(at, "modern", nil)
		}
		got := r.Window(now, tc.d).Requests
		if want := int64(tc.d / time.Second); got > want || got < want-int64(tc.exactTo/time.Second) {
			t.Errorf("%v of a request a second: got %d, want %d less at most %v of them", tc.d, got, want, tc.exactTo)
		}
	}
}
