package stats

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestCountsAnOutageHeldBackKeepTheirHour: counts gathered at 12:00 that
// the store could not take until 14:05 are added to 12:00's hour, not
// 14:00's, and the next hour's counts to theirs. Before, a failed flush
// put its counts back with the new ones, and the flush that succeeded
// dated them all to its own hour: a fallback at 12:00 read as one at
// 14:00, hours later for the retirement verdict.
func TestCountsAnOutageHeldBackKeepTheirHour(t *testing.T) {
	c := NewCounters()
	r := c.Route("get")
	app := &http.Request{Header: http.Header{"X-App-Version": {"5.2.1"}}}
	r.Fallback(t0)
	r.Request(t0, "fallback", app)
	down, up := &sink{fail: true}, &sink{}
	if err := c.Flush(context.Background(), down, t0); err == nil {
		t.Fatal("a failing store reported success")
	}
	later := t0.Add(70 * time.Minute)
	r.Request(later, "legacy", app)
	if err := c.Flush(context.Background(), down, later); err == nil {
		t.Fatal("a failing store reported success")
	}
	r.Request(later, "legacy", app)
	if err := c.Flush(context.Background(), up, t0.Add(125*time.Minute)); err != nil {
		t.Fatal(err)
	}
	byHour := map[int][2]int64{}
	for _, hc := range up.counts {
		byHour[hc.Hour.Hour()] = [2]int64{hc.Requests, hc.Fallbacks}
	}
	want := map[int][2]int64{12: {1, 1}, 13: {1, 0}, 14: {1, 0}}
	if len(up.counts) != 3 || byHour[12] != want[12] || byHour[13] != want[13] || byHour[14] != want[14] {
		t.Errorf("the store got %+v, want requests and fallbacks by hour %v", up.counts, want)
	}
	clients := map[int]int64{}
	for _, cc := range up.clients {
		clients[cc.Hour.Hour()] += cc.Requests
	}
	if len(up.clients) != 3 || clients[12] != 1 || clients[13] != 1 || clients[14] != 1 {
		t.Errorf("the store got clients %+v, want one request of 5.2.1 in each of 12, 13 and 14", up.clients)
	}
	if err := c.Flush(context.Background(), up, t0.Add(130*time.Minute)); err != nil || len(up.counts) != 3 {
		t.Errorf("a flush after the outage added %d counts again", len(up.counts)-3)
	}
}
