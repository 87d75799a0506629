package stats

import (
	"math"
	"sync/atomic"
	"time"
)

// MaxWindow is the longest span Window reaches back: a guard's window
// cannot be longer.
const MaxWindow = time.Hour

// A tier is a ring of slots of one width within a route's ring: every
// count goes into each tier, and a window is read from the finest tier
// that reaches back far enough, so the window's start is exact to that
// tier's width while a route keeps a few hundred slots, not one a second
// for an hour.
type tier struct {
	width time.Duration
	// first is the tier's first slot in the ring, n its number of slots.
	first, n int
}

// tiers are a route's tiers, finest first, as Window reads them (add
// writes them one by one): windows up to 2 minutes are exact to a
// second, up to 20 minutes to ten seconds, up to MaxWindow to a minute.
var tiers = [...]tier{
	{width: time.Second, first: 0, n: secondSlots},
	{width: 10 * time.Second, first: secondSlots, n: tenSecondSlots},
	{width: time.Minute, first: secondSlots + tenSecondSlots, n: minuteSlots},
}

// The tiers' sizes, in slots.
const (
	secondSlots    = 120
	tenSecondSlots = 120
	minuteSlots    = int(MaxWindow / time.Minute)
	ringSlots      = secondSlots + tenSecondSlots + minuteSlots
)

// ring is a route's slots, 40 bytes each, 12 KB a route.
type ring [ringSlots]slot

// counter names one of a slot's counts.
type counter int

const (
	cRequests counter = iota
	cModern           // requests modern served
	// cModernAttempts are exchanges with modern, served or fallen back;
	// cModernErrors those of them that were a 5xx, a timeout or an error.
	cModernAttempts
	cModernErrors
	cFallbacks
	cConfirmedMissing
	cShadowMatch
	cShadowMismatch
	nCounters
)

// slot is one tier's counts of one span of time; index says which span
// (the time since the route's epoch divided by the tier's width), so a
// slot of an earlier turn of the ring is recognised as stale and reset
// rather than added to.
type slot struct {
	index atomic.Int64
	// counts are 32-bit to halve the ring: a minute's slot would need 35
	// million requests a second to one route to overflow.
	counts [nCounters]atomic.Int32
}

// newRing returns a ring whose slots hold no span yet.
func newRing() *ring {
	rg := new(ring)
	for i := range rg {
		rg[i].index.Store(math.MinInt64)
	}
	return rg
}

// add counts one of each of cs at now, in every tier.
func (r *Route) add(now time.Time, cs ...counter) {
	rg := r.ring.Load()
	if rg == nil {
		r.ring.CompareAndSwap(nil, newRing())
		rg = r.ring.Load()
	}
	// The tiers one by one, so that every division is by a constant: the
	// loop over tiers spent most of its time dividing.
	since := now.Sub(r.epoch)
	i := floorDiv(since, time.Second)
	bump(&rg[mod(i, secondSlots)], i, cs)
	i = floorDiv(since, 10*time.Second)
	bump(&rg[secondSlots+mod(i, tenSecondSlots)], i, cs)
	i = floorDiv(since, time.Minute)
	bump(&rg[secondSlots+tenSecondSlots+mod(i, minuteSlots)], i, cs)
}

// bump counts one of each of cs in s, the slot of span i.
func bump(s *slot, i int64, cs []counter) {
	old := s.index.Load()
	if old > i {
		// The slot holds a later span: i is older than the tier reaches
		// (a caller's time taken long before it counted).
		return
	}
	if old < i && s.index.CompareAndSwap(old, i) {
		// A few counts racing with the reset may land in the old span's
		// tally or be lost: fine for a rate, and never on the flushed
		// path.
		for c := range s.counts {
			s.counts[c].Store(0)
		}
	}
	for _, c := range cs {
		s.counts[c].Add(1)
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

// Window sums what was counted within d before now (d up to MaxWindow),
// sliding: never what came earlier, and all that came later than d less
// the width of the tier it is read from (a second for d up to 2 minutes,
// ten seconds up to 20, a minute beyond). This is the one rule every
// reader of recent counts uses: the guard, live rates, the status page.
func (r *Route) Window(now time.Time, d time.Duration) Window {
	var w Window
	rg := r.ring.Load()
	if rg == nil || d <= 0 {
		return w
	}
	d = min(d, MaxWindow)
	t := tiers[len(tiers)-1]
	for _, f := range tiers {
		if d <= f.width*time.Duration(f.n) {
			t = f
			break
		}
	}
	since := now.Sub(r.epoch)
	last := floorDiv(since, t.width)
	// The slot that holds now-d began before it: the window starts with
	// the one after.
	for i := floorDiv(since-d, t.width) + 1; i <= last; i++ {
		s := &rg[t.first+mod(i, t.n)]
		if s.index.Load() != i {
			continue
		}
		w.Requests += int64(s.counts[cRequests].Load())
		w.Modern += int64(s.counts[cModern].Load())
		w.ModernAttempts += int64(s.counts[cModernAttempts].Load())
		w.ModernErrors += int64(s.counts[cModernErrors].Load())
		w.Fallbacks += int64(s.counts[cFallbacks].Load())
		w.ConfirmedMissing += int64(s.counts[cConfirmedMissing].Load())
		w.ShadowMatch += int64(s.counts[cShadowMatch].Load())
		w.ShadowMismatch += int64(s.counts[cShadowMismatch].Load())
	}
	return w
}

// Window sums route name's counts within d before now, as Route.Window
// does; a route without counts has an empty window.
func (c *Counters) Window(name string, now time.Time, d time.Duration) Window {
	c.mu.Lock()
	r, ok := c.routes[name]
	c.mu.Unlock()
	if !ok {
		return Window{}
	}
	return r.Window(now, d)
}

// floorDiv is d/w rounded down, also for a d before the epoch (a test's
// clock).
func floorDiv(d, w time.Duration) int64 {
	q := int64(d / w)
	if d%w < 0 {
		q--
	}
	return q
}

// mod is i modulo n, never negative.
func mod(i int64, n int) int {
	m := int(i % int64(n))
	if m < 0 {
		m += n
	}
	return m
}
