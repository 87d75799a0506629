// Package stats counts each route's traffic in memory, cheaply enough for
// the request path (atomic adds, no allocation): a ring of recent counts
// that the guard and the live rates read over a sliding window, and
// running totals that a flusher adds to the state store's hourly counts
// for the gates and the retirement report.
package stats

import (
	"net/http"
	"slices"
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
	// retired are routes no longer served (Retain) whose counts a flush
	// has yet to take; the flush that finds one empty forgets it.
	retired []*Route
	// held is what the last flush could not add.
	held heldBack
	// offset is the store's clock's lead on this replica's, in
	// nanoseconds, as the last flush measured it (see Flush).
	offset atomic.Int64
}

// NewCounters returns empty counters.
func NewCounters() *Counters { return &Counters{epoch: time.Now(), routes: map[string]*Route{}} }

// Route returns the counters of the route name, creating them (or
// taking back those Retain retired, if a flush has not forgotten them).
func (c *Counters) Route(name string) *Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[name]
	if ok {
		return r
	}
	if i := slices.IndexFunc(c.retired, func(r *Route) bool { return r.name == name }); i >= 0 {
		r = c.retired[i]
		c.retired = slices.Delete(c.retired, i, i+1)
	} else {
		r = &Route{name: name, epoch: c.epoch, owner: c, clients: map[string]int64{}}
	}
	c.routes[name] = r
	return r
}

// Retain keeps the counters of the routes named (those a new route table
// serves) and retires the others: each flush still adds what they
// counted, requests that began on the older table included, and the
// first that finds one with nothing left to add forgets it. A route's
// ring alone is 12 KB: kept for every route ever configured, routes
// removed reload after reload held memory without end.
func (c *Counters) Retain(names []string) {
	keep := make(map[string]bool, len(names))
	for _, name := range names {
		keep[name] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, r := range c.routes {
		if !keep[name] {
			delete(c.routes, name)
			c.retired = append(c.retired, r)
		}
	}
}

// all returns every route's counters, the retired ones' included.
func (c *Counters) all() []*Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Route, 0, len(c.routes)+len(c.retired))
	for _, r := range c.routes {
		out = append(out, r)
	}
	return append(out, c.retired...)
}

// forgetFlushed forgets the retired routes that hold no count a flush
// has yet to take (which held-back counts no longer need: they are kept
// apart, see heldBack). A count added as one is forgotten brings it
// back (adopt), so that the next flush takes it.
func (c *Counters) forgetFlushed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.retired[:0]
	for _, r := range c.retired {
		// gone before the check: a count that the check misses sees it
		// (see settle).
		r.gone.Store(true)
		if r.pending.empty() && r.noClients() {
			continue
		}
		r.gone.Store(false)
		kept = append(kept, r)
	}
	clear(c.retired[len(kept):])
	c.retired = kept
}

// adopt takes r back among the retired routes after forgetFlushed let it
// go, for the count that was added to it since.
func (c *Counters) adopt(r *Route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.gone.CompareAndSwap(true, false) {
		c.retired = append(c.retired, r)
	}
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
	// named are the versions counted by name in the hour namedHour (Unix
	// hours), at most maxClients: the names the store gets in an hour,
	// each flush's and all, are bounded, not the names of one flush. Each
	// maps to its own copy, which does not hold its request's header.
	named     map[string]string
	namedHour int64

	// owner holds the route's counters; gone says it forgot them (see
	// Counters.forgetFlushed).
	owner *Counters
	gone  atomic.Bool
}

// settle follows a count added to what a flush takes: if the route's
// counters were forgotten meanwhile (a request still running on a route
// removed from the configuration), they are taken back for the next
// flush rather than lost.
func (r *Route) settle() {
	if r.gone.Load() {
		r.owner.adopt(r)
	}
}

// noClients says whether no client version waits for a flush.
func (r *Route) noClients() bool {
	r.clientsMu.Lock()
	defer r.clientsMu.Unlock()
	return len(r.clients) == 0
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
	// modernFailed are requests of modern's it served no one: answers
	// that were a 5xx or broke off, and none before the client left
	// (see router's gaveUpOnModern); only flushed, for the verdict.
	modernFailed   atomic.Int64
	shadowMatch    atomic.Int64
	shadowMismatch atomic.Int64
}

// empty says whether t holds no count.
func (t *totals) empty() bool {
	return t.requests.Load() == 0 && t.modern.Load() == 0 && t.fallbacks.Load() == 0 &&
		t.confirmedMissing.Load() == 0 && t.legacy.Load() == 0 && t.modernFailed.Load() == 0 &&
		t.shadowMatch.Load() == 0 && t.shadowMismatch.Load() == 0
}

// Request counts a finished request served by backend: "modern",
// "legacy", "fallback" (legacy answering what modern failed), or "" when
// the facade answered alone. For one legacy served, either way, the
// client's app version is noted for the retirement report.
func (r *Route) Request(now time.Time, backend string, req *http.Request) {
	defer r.settle()
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
		r.noteClient(now, req.Header)
	case "fallback":
		r.noteClient(now, req.Header)
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
// retirement verdict: a 5xx, an answer cut off or one its client gave up
// waiting for is no request served.
func (r *Route) ModernAnswered(now time.Time, failed bool) {
	r.Modern(now, failed)
	if failed {
		r.pending.modernFailed.Add(1)
		r.settle()
	}
}

// ModernUnanswered counts a request sent to modern whose client left
// before modern answered, too soon to count as modern failing (no
// evidence for the guard): kept apart from those modern served, with
// its failed answers, for the retirement verdict.
func (r *Route) ModernUnanswered() {
	r.pending.modernFailed.Add(1)
	r.settle()
}

// Fallback counts a request that fell back to legacy.
func (r *Route) Fallback(now time.Time) {
	r.add(now, cFallbacks)
	r.pending.fallbacks.Add(1)
	r.lastFallback.Store(now.UnixNano())
	r.settle()
}

// ConfirmedMissing counts a not_found fallback that legacy answered 404
// or 410 too: the resource exists nowhere, which is no migration gap, so
// it is not a fallback for the gates, the guard or the verdict.
func (r *Route) ConfirmedMissing(now time.Time) {
	r.add(now, cConfirmedMissing)
	r.pending.confirmedMissing.Add(1)
	r.settle()
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
	r.settle()
}

// first is the first of a field's values, "" if it has none.
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// maxClients bounds the distinct app versions noted per route between
// flushes, and those counted by name per route in an hour; more are
// counted as "other".
const maxClients = 32

// noteClient counts the client app version of a request legacy served:
// X-App-Version, or the product token that starts User-Agent
// ("PatientApp/5.2.1 (iOS 17)" → "PatientApp/5.2.1"). Both are whatever
// the client sent, so only a value shaped like a version is counted by
// name (ClientVersion, its build metadata dropped); anything else is
// "other", and no value at all "unknown".
//
// h is a request's header as net/http read it, its names canonical: they
// are looked up as spelled, as Get would canonicalise them again on every
// request (about 800 instructions of a pass-through request's).
func (r *Route) noteClient(now time.Time, h http.Header) {
	v := first(h["X-App-Version"])
	if v == "" {
		v, _, _ = strings.Cut(first(h["User-Agent"]), " ")
	}
	name, ok := ClientVersion(v)
	r.clientsMu.Lock()
	switch {
	case v == "":
		v = "unknown"
	case !ok:
		v = "other"
	default:
		v = r.nameOf(now, name)
	}
	if _, ok := r.clients[v]; !ok && len(r.clients) >= maxClients {
		v = "other"
	}
	r.clients[v]++
	r.clientsMu.Unlock()
}

// nameOf is what the version name is counted as in now's hour: its copy
// among the names counted this hour, a new one while fewer than
// maxClients were, else "other". A client sending a new version each
// request (1.0.1, 1.0.2, …) otherwise had the store keep maxClients new
// rows per route every flush, 11,520 an hour, for 90 days. r.clientsMu
// is held.
func (r *Route) nameOf(now time.Time, name string) string {
	if hour := now.Unix() / 3600; hour > r.namedHour || r.named == nil {
		r.named, r.namedHour = map[string]string{}, hour
	}
	if kept, ok := r.named[name]; ok {
		return kept
	}
	if len(r.named) >= maxClients {
		return "other"
	}
	kept := strings.Clone(name)
	r.named[kept] = kept
	return kept
}
