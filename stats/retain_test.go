package stats

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// heap is the bytes the heap holds after a collection.
func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRoutesRemovedAcrossReloadsAreForgotten: 2,000 routes that had
// traffic are removed from the configuration, reload after reload. Once
// a flush has added their counts, the memory they held is free: it was
// held forever (12 KB a route, 120 MB for 10,000), and every count
// reaches the store.
func TestRoutesRemovedAcrossReloadsAreForgotten(t *testing.T) {
	const n = 2000
	c := NewCounters()
	base := heap()
	req := &http.Request{Header: http.Header{"X-App-Version": {"5.2.1"}}}
	for reload := range 4 {
		var names []string
		for i := range n / 4 {
			name := fmt.Sprintf("route-%d-%d", reload, i)
			names = append(names, name)
			c.Route(name).Request(t0, "legacy", req)
		}
		c.Retain(names) // the next reload's table removes these
	}
	held := heap() - base
	c.Retain([]string{"kept"})
	s := &sink{}
	if err := c.Flush(context.Background(), s, t0); err != nil {
		t.Fatal(err)
	}
	left := int64(heap()) - int64(base)
	t.Logf("%d routes removed: %d KB held before the flush, %d KB after", n, held/1024, left/1024)
	if left > int64(held/10) {
		t.Errorf("%d routes removed from the configuration still hold %d KB after a flush (%d KB before), want under a tenth", n, left/1024, held/1024)
	}
	var requests int64
	for _, hc := range s.counts {
		requests += hc.Requests
	}
	if requests != n || len(s.clients) != n {
		t.Errorf("the store got %d requests and %d client counts of the removed routes, want %d of each", requests, len(s.clients), n)
	}
	runtime.KeepAlive(c)
}

// TestARemovedRoutesCountsReachTheStore: a route is removed while a
// request on it still runs (it began on the older table), and while the
// store is down. Every count reaches the store once it is back: the one
// the outage held back, and the one the request adds after a flush
// forgot the route.
func TestARemovedRoutesCountsReachTheStore(t *testing.T) {
	ctx := context.Background()
	c := NewCounters()
	r := c.Route("old")
	r.Fallback(t0)
	c.Retain(nil)
	down, up := &sink{fail: true}, &sink{}
	if err := c.Flush(ctx, down, t0); err == nil {
		t.Fatal("a failing store reported success")
	}
	if got := len(c.all()); got != 0 {
		t.Fatalf("%d routes kept after a flush took the removed route's counts, want none", got)
	}
	r.Request(t0.Add(time.Second), "fallback", &http.Request{Header: http.Header{}}) // the running request ends
	if err := c.Flush(ctx, up, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(up.counts) != 1 || up.counts[0].Route != "old" || up.counts[0].Fallbacks != 1 || up.counts[0].Requests != 1 {
		t.Errorf("the store got %+v, want old's fallback and its request", up.counts)
	}
	if err := c.Flush(ctx, up, t0.Add(3*time.Second)); err != nil || len(up.counts) != 1 || len(c.all()) != 0 {
		t.Errorf("a flush with nothing new: %v, %d counts in the store, %d routes kept; want 1 and none", err, len(up.counts), len(c.all()))
	}
}

// TestCountsOnARemovedRouteRacingFlushesAreNotLost: requests still
// running on a removed route count while flushes forget and take back
// its counters: the store gets every request.
func TestCountsOnARemovedRouteRacingFlushesAreNotLost(t *testing.T) {
	ctx := context.Background()
	c := NewCounters()
	r := c.Route("old")
	c.Retain(nil)
	const workers, each = 4, 2000
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range each {
				r.Request(t0, "modern", nil)
			}
		}()
	}
	s := &sink{}
	for finished := 0; finished < workers; {
		select {
		case <-done:
			finished++
		default:
		}
		if err := c.Flush(ctx, s, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(ctx, s, t0); err != nil {
		t.Fatal(err)
	}
	var requests int64
	for _, hc := range s.counts {
		requests += hc.Requests
	}
	if requests != workers*each {
		t.Errorf("the store got %d requests, want %d", requests, workers*each)
	}
}
