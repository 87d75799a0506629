package upstream

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterIsReadOnlyFromAnAnswerThatAsksToWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		status int
		value  string
		want   time.Duration
	}{
		{503, "30", 30 * time.Second},
		{429, "0", 0},
		{429, now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{503, now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{503, "-5", 0},
		{503, "99999999999", 4294967295 * time.Second},
		{429, "1733450000000", 4294967295 * time.Second},
		{503, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Format(http.TimeFormat), 1<<63 - 1},
		{503, "soon", 0},
		{503, "", 0},
		{500, "30", 0},
		{502, "30", 0},
	} {
		if got := RetryAfter(c.status, c.value, now); got != c.want {
			t.Errorf("RetryAfter(%d, %q) = %v, want %v", c.status, c.value, got, c.want)
		}
	}
}

// TestHoldsKeepTheLongestWaitAndBeginOnce: a shorter wait asked during a
// hold does not end it sooner, a longer one extends it, and only the
// first answer of a hold begins one (the caller logs once per hold).
func TestHoldsKeepTheLongestWaitAndBeginOnce(t *testing.T) {
	var h Holds
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	if _, held := h.Held("modern", t0); held {
		t.Fatal("the zero Holds holds a backend back")
	}
	steps := []struct {
		at, wait, until time.Duration
		began           bool
	}{
		{0, time.Minute, time.Minute, true},
		{10 * time.Second, 5 * time.Second, time.Minute, false},
		{20 * time.Second, 2 * time.Minute, 20*time.Second + 2*time.Minute, false},
		{3 * time.Minute, time.Second, 3*time.Minute + time.Second, true},
	}
	for _, s := range steps {
		until, began := h.Hold("modern", t0.Add(s.at), s.wait)
		if until != t0.Add(s.until) || began != s.began {
			t.Errorf("Hold at +%v for %v = +%v, began %v; want +%v, %v", s.at, s.wait, until.Sub(t0), began, s.until, s.began)
		}
		if end, held := h.Held("modern", t0.Add(s.at)); !held || end != t0.Add(s.until) {
			t.Errorf("Held at +%v = +%v, %v; want held until +%v", s.at, end.Sub(t0), held, s.until)
		}
		if _, held := h.Held("legacy", t0.Add(s.at)); held {
			t.Errorf("a hold of modern holds legacy back too")
		}
	}
	if _, held := h.Held("modern", t0.Add(3*time.Minute+time.Second)); held {
		t.Error("still held at the end of the wait")
	}
}
