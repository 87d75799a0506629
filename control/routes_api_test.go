package control

import (
	"testing"
	"time"
)

// TestTheLiveRequestRateIsOfTheLastMinute: the admin API's (and so routes
// list's and the status page's) requests per second are the last
// minute's. They were the calendar minute before and the current one so
// far: a burst 59 s ago counted over up to 2 minutes, and still counted
// 2 minutes on.
func TestTheLiveRequestRateIsOfTheLastMinute(t *testing.T) {
	p := newPlane(t)
	p.clock.set(time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC))
	r := p.counters.Route("get-patient")
	for range 60 {
		r.Request(p.clock.Now(), "modern", nil)
	}
	for _, tc := range []struct {
		after time.Duration
		want  float64
	}{
		{59 * time.Second, 1},
		{61 * time.Second, 0},
	} {
		p.clock.set(time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC).Add(tc.after))
		_, body := p.call(t, "GET", "/admin/routes/get-patient", aliceToken, "")
		live, _ := body["live"].(map[string]any)
		if got := live["requests_per_second"]; got != tc.want {
			t.Errorf("%v after 60 requests: requests_per_second %v, want %v", tc.after, got, tc.want)
		}
	}
}
