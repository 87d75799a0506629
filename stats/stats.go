// Package stats counts each route's traffic in memory, cheaply enough for
// the request path (atomic adds, no allocation): a ring of recent counts
// that the guard and the live rates read over a sliding window, and
// running totals that a flusher adds to the state store's hourly counts
// for the gates and the retirement report.
package stats

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counters holds every route's counts by name, so that they survive
// configuration reloads and route flips. It is safe for concurrent use.
type Counters struct {
	// epoch is when the counters began, with its monotonic clock reading:
	// recent counts are kept by the time passed since, which a step of
	// the wall clock does not move, as long as the times counted and
	// read carry a monotonic reading too (time.Now's do).
	epoch  time.Time
	mu     sync.Mutex
	routes map[string]*Route
	// held is what the last flush could not add.
	held heldBack
	// offset is the store's clock's lead on this replica's, in
	// nanoseconds, as the last flush measured it (see Flush).
	offset atomic.Int64
}

// NewCounters returns empty counters.
func NewCounters() *Counters { return &Counters{epoch: time.Now(), routes: map[string]*Route{}} }

// Route returns the counters of the route name, creating them.
func (c *Counters) Route(name string) *Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[name]
	if !ok {
		r = &Route{name: name, epoch: c.epoch, clients: map[string]int64{}}
		c.routes[name] = r
	}
	return r
}

// all returns every route's counters.
func (c *Counters) all() []*Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Route, 0, len(c.routes))
	for _, r := range c.routes {
		out = append(out, r)
	}
	return out
}

// Route counts one route's traffic.
type Route struct {
	name  string
	epoch time.Time
	// ring holds the recent counts, allocated on the route's first
	// request: with thousands of routes, most of them idle, rings would
	// dominate memory.
	ring atomic.Pointer[ring]
	// pending are the totals not yet flushed to the store.
	pending totals
	// lastFallback is the Unix nanosecond time of the last fallback.
	lastFallback atomic.Int64

	// clients counts requests legacy served per client app version since
	// the last flush, bounded to maxClients names.
	clientsMu sync.Mutex
	clients   map[string]int64
}

// totals are the counts a route has not flushed yet.
type totals struct {
	requests  atomic.Int64
	modern    atomic.Int64 // requests modern served
	fallbacks atomic.Int64
	// confirmedMissing are not_found fallbacks legacy answered 404 or 410
	// too: not among fallbacks.
	confirmedMissing atomic.Int64
	// legacy are requests legacy answered itself, not as a fallback; only
	// flushed, for the verdict (the guard and the gates judge modern).
	legacy atomic.Int64
	// modernFailed are answers of modern's its clients got that were a
	// 5xx or broke off; only flushed, for the verdict.
	modernFailed   atomic.Int64
	shadowMatch    atomic.Int64
	shadowMismatch atomic.Int64
}

// Request counts a finished request served by backend: "modern",
// "legacy", "fallback" (legacy answering what modern failed), or "" when
// the facade answered alone. For one legacy served, either way, the
// client's app version is noted for the retirement report.
func (r *Route) Request(now time.Time, backend string, req *http.Request) {
	r.pending.requests.Add(1)
	if backend == "modern" {
		r.add(now, cRequests, cModern)
		r.pending.modern.Add(1)
		return
	}
	r.add(now, cRequests)
	switch backend {
	case "legacy":
		r.pending.legacy.Add(1)
		r.noteClient(req.Header)
	case "fallback":
		r.noteClient(req.Header)
	}
}

// Modern counts an exchange with modern, which failed (a 5xx, a timeout,
// no answer) or not; a 404 is not a failure.
func (r *Route) Modern(now time.Time, failed bool) {
	if failed {
		r.add(now, cModernAttempts, cModernErrors)
	} else {
		r.add(now, cModernAttempts)
	}
}

// ModernAnswered counts modern's answer that its client got, once its
// body ended, as Modern does; a failed one is also kept apart for the
// retirement verdict: a 5xx or an answer cut off is no request served.
func (r *Route) ModernAnswered(now time.Time, failed bool) {
	r.Modern(now, failed)
	if failed {
		r.pending.modernFailed.Add(1)
	}
}

// Fallback counts a request that fell back to legacy.
func (r *Route) Fallback(now time.Time) {
	r.add(now, cFallbacks)
	r.pending.fallbacks.Add(1)
	r.lastFallback.Store(now.UnixNano())
}

// ConfirmedMissing counts a not_found fallback that legacy answered 404
// or 410 too: the resource exists nowhere, which is no migration gap, so
// it is not a fallback for the gates, the guard or the verdict.
func (r *Route) ConfirmedMissing(now time.Time) {
	r.add(now, cConfirmedMissing)
	r.pending.confirmedMissing.Add(1)
}

// Shadow counts a shadow comparison's verdict.
func (r *Route) Shadow(now time.Time, mismatch bool) {
	if mismatch {
		r.add(now, cShadowMismatch)
		r.pending.shadowMismatch.Add(1)
	} else {
		r.add(now, cShadowMatch)
		r.pending.shadowMatch.Add(1)
	}
}

// maxClients bounds the distinct app versions noted per route between
// flushes; more are counted as "other".
const maxClients = 32

// noteClient counts the client app version of a request legacy served:
// X-App-Version, or the product token that starts User-Agent
// ("PatientApp/5.2.1 (iOS 17)" → "PatientApp/5.2.1"). Both are whatever
// the client sent, so only a value shaped like a version is counted by
// name; anything else is "other", and no value at all "unknown".
func (r *Route) noteClient(h http.Header) {
	v := h.Get("X-App-Version")
	if v == "" {
		v, _, _ = strings.Cut(h.Get("User-Agent"), " ")
	}
	switch {
	case v == "":
		v = "unknown"
	case !VersionShaped(v):
		v = "other"
	}
	r.clientsMu.Lock()
	if _, ok := r.clients[v]; !ok && len(r.clients) >= maxClients {
		v = "other"
	}
	r.clients[v]++
	r.clientsMu.Unlock()
}
