// Package stats counts each route's traffic in memory, cheaply enough for
// the request path (atomic adds, no allocation): per-minute buckets that
// the guard reads, and running totals that a flusher adds to the state
// store's hourly counts for the gates and the retirement report.
package stats

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// windowMinutes is how far back the per-minute buckets reach; a guard's
// window cannot be longer.
const windowMinutes = 60

// Counters holds every route's counts by name, so that they survive
// configuration reloads and route flips. It is safe for concurrent use.
type Counters struct {
	mu     sync.Mutex
	routes map[string]*Route
	// held is what the last flush could not add.
	held heldBack
}

// NewCounters returns empty counters.
func NewCounters() *Counters { return &Counters{routes: map[string]*Route{}} }

// Route returns the counters of the route name, creating them.
func (c *Counters) Route(name string) *Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[name]
	if !ok {
		r = &Route{name: name, clients: map[string]int64{}}
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
	name string
	// minutes is allocated on the route's first request: with thousands
	// of routes, most of them idle, the buckets would dominate memory.
	minutes atomic.Pointer[[windowMinutes]bucket]
	// pending are the totals not yet flushed to the store.
	pending totals
	// lastFallback is the Unix nanosecond time of the last fallback.
	lastFallback atomic.Int64

	// clients counts requests legacy served per client app version since
	// the last flush, bounded to maxClients names.
	clientsMu sync.Mutex
	clients   map[string]int64
}

// bucket is one minute of counts; minute says which, so a bucket from an
// hour ago is recognised as stale and reset rather than added to.
type bucket struct {
	minute atomic.Int64
	totals
}

// totals are the counters a route keeps.
type totals struct {
	requests       atomic.Int64
	modern         atomic.Int64 // requests modern served
	modernAttempts atomic.Int64 // exchanges with modern, served or fallen back
	modernErrors   atomic.Int64 // of those, 5xx, timeouts and errors
	fallbacks      atomic.Int64
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

func (r *Route) bucket(now time.Time) *bucket {
	minutes := r.minutes.Load()
	if minutes == nil {
		r.minutes.CompareAndSwap(nil, new([windowMinutes]bucket))
		minutes = r.minutes.Load()
	}
	m := now.Unix() / 60
	b := &minutes[m%windowMinutes]
	if old := b.minute.Load(); old != m && b.minute.CompareAndSwap(old, m) {
		// A few counts racing with the reset may land in the old minute's
		// tally or be lost: fine for a rate, and never on the flushed path.
		b.requests.Store(0)
		b.modern.Store(0)
		b.modernAttempts.Store(0)
		b.modernErrors.Store(0)
		b.fallbacks.Store(0)
		b.confirmedMissing.Store(0)
		b.shadowMatch.Store(0)
		b.shadowMismatch.Store(0)
	}
	return b
}

// Request counts a finished request served by backend: "modern",
// "legacy", "fallback" (legacy answering what modern failed), or "" when
// the facade answered alone. For one legacy served, either way, the
// client's app version is noted for the retirement report.
func (r *Route) Request(now time.Time, backend string, req *http.Request) {
	b := r.bucket(now)
	b.requests.Add(1)
	r.pending.requests.Add(1)
	switch backend {
	case "modern":
		b.modern.Add(1)
		r.pending.modern.Add(1)
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
	b := r.bucket(now)
	b.modernAttempts.Add(1)
	r.pending.modernAttempts.Add(1)
	if failed {
		b.modernErrors.Add(1)
		r.pending.modernErrors.Add(1)
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
	r.bucket(now).fallbacks.Add(1)
	r.pending.fallbacks.Add(1)
	r.lastFallback.Store(now.UnixNano())
}

// ConfirmedMissing counts a not_found fallback that legacy answered 404
// or 410 too: the resource exists nowhere, which is no migration gap, so
// it is not a fallback for the gates, the guard or the verdict.
func (r *Route) ConfirmedMissing(now time.Time) {
	r.bucket(now).confirmedMissing.Add(1)
	r.pending.confirmedMissing.Add(1)
}

// Shadow counts a shadow comparison's verdict.
func (r *Route) Shadow(now time.Time, mismatch bool) {
	b := r.bucket(now)
	if mismatch {
		b.shadowMismatch.Add(1)
		r.pending.shadowMismatch.Add(1)
	} else {
		b.shadowMatch.Add(1)
		r.pending.shadowMatch.Add(1)
	}
}

// Window is a route's counts over a recent span.
type Window struct {
	Requests, Modern, ModernAttempts, ModernErrors, Fallbacks, ShadowMatch, ShadowMismatch int64
	ConfirmedMissing                                                                       int64
}

// ModernErrorRate is modern's share of failed exchanges, 0 when none.
func (w Window) ModernErrorRate() float64 { return ratio(w.ModernErrors, w.ModernAttempts) }

func ratio(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// Window sums the whole minutes within d before now, the current one
// included.
func (r *Route) Window(now time.Time, d time.Duration) Window {
	var w Window
	minutes := r.minutes.Load()
	if minutes == nil {
		return w
	}
	cur := now.Unix() / 60
	n := min(int64((d+time.Minute-1)/time.Minute), windowMinutes)
	for m := cur - n + 1; m <= cur; m++ {
		b := &minutes[m%windowMinutes]
		if b.minute.Load() != m {
			continue
		}
		w.Requests += b.requests.Load()
		w.Modern += b.modern.Load()
		w.ModernAttempts += b.modernAttempts.Load()
		w.ModernErrors += b.modernErrors.Load()
		w.Fallbacks += b.fallbacks.Load()
		w.ConfirmedMissing += b.confirmedMissing.Load()
		w.ShadowMatch += b.shadowMatch.Load()
		w.ShadowMismatch += b.shadowMismatch.Load()
	}
	return w
}

// Mark is what a route had counted within one minute by one moment, for
// WindowAfter. The zero Mark is before everything.
type Mark struct {
	minute int64
	counts Window
}

// Mark returns what route name has counted so far in the current minute.
func (c *Counters) Mark(name string, now time.Time) Mark {
	return Mark{minute: now.Unix() / 60, counts: c.Window(name, now, time.Minute)}
}

// WindowAfter is Window leaving out what was counted by mark: the
// minutes before mark's, and mark's counts of its own minute.
func (c *Counters) WindowAfter(name string, now time.Time, d time.Duration, mark Mark) Window {
	cur := now.Unix() / 60
	n := min(int64((d+time.Minute-1)/time.Minute), windowMinutes)
	if mark.minute <= cur-n || mark.minute > cur {
		// Out of the window (or on a clock that went back): nothing in
		// the window came before it.
		return c.Window(name, now, d)
	}
	w := c.Window(name, now, time.Duration(cur-mark.minute+1)*time.Minute)
	m := mark.counts
	w.Requests -= min(w.Requests, m.Requests)
	w.Modern -= min(w.Modern, m.Modern)
	w.ModernAttempts -= min(w.ModernAttempts, m.ModernAttempts)
	w.ModernErrors -= min(w.ModernErrors, m.ModernErrors)
	w.Fallbacks -= min(w.Fallbacks, m.Fallbacks)
	w.ConfirmedMissing -= min(w.ConfirmedMissing, m.ConfirmedMissing)
	w.ShadowMatch -= min(w.ShadowMatch, m.ShadowMatch)
	w.ShadowMismatch -= min(w.ShadowMismatch, m.ShadowMismatch)
	return w
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

// Window sums route name's counts over the whole minutes within d before
// now; a route without counts has an empty window.
func (c *Counters) Window(name string, now time.Time, d time.Duration) Window {
	c.mu.Lock()
	r, ok := c.routes[name]
	c.mu.Unlock()
	if !ok {
		return Window{}
	}
	return r.Window(now, d)
}
