package main

import (
	"math"
	"time"
)

// paced drives addr with req at rate requests/s for d, open-loop: a
// scheduler releases one ticket per 1/rate, and whichever connection is
// free takes it. A request's latency runs from its ticket's scheduled
// time, so a target that cannot keep up shows it in its latency rather
// than by quietly being asked less (coordinated omission).
func (g *generator) paced(addr string, req []byte, rate float64, d time.Duration, h *histogram) runResult {
	n := int(rate * d.Seconds())
	tickets := make(chan time.Time, n)
	go func() {
		defer close(tickets)
		start := time.Now()
		interval := time.Duration(float64(time.Second) / rate)
		for i := range n {
			at := start.Add(time.Duration(i) * interval)
			if wait := time.Until(at); wait > 0 {
				time.Sleep(wait)
			}
			tickets <- at
		}
	}()
	return g.drive(addr, req, d, tickets, h)
}

// pacedResult is a target's latency at a fixed offered load.
type pacedResult struct {
	rate     float64 // requests/s offered
	hist     histogram
	requests uint64
	errors   uint64 // non-2xx and failed requests
	behind   bool   // in some run it answered the last request well after the last was due
}

// pacedGroup are targets whose latencies are compared at the same offered
// load: the first is the baseline.
type pacedGroup []string

// pacedGroups are the latency comparisons the issues ask for. Dual-write
// on PostgreSQL has no latency target, and at its much lower rate it would
// hold the embedded store's comparison to a load that says little.
var pacedGroups = []pacedGroup{{"legacy", "shadow"}, {"post", "dualwrite"}}

// measurePaced runs o.rounds interleaved rounds of paced load on the
// targets of each paced group, every target of a group at the same rate:
// share of the slowest one's closed-loop requests/s, a load each can
// carry with CPU to spare, so that latency measures what a request waits
// for rather than queueing on a saturated machine.
func measurePaced(g *generator, targets []*target, o options) error {
	byKey := map[string]*target{}
	for _, t := range targets {
		byKey[t.key] = t
	}
	var paced []*target
	for _, grp := range pacedGroups {
		var members []*target
		slowest := math.Inf(1)
		for _, k := range grp {
			if t := byKey[k]; t != nil && len(t.rates) > 0 {
				members = append(members, t)
				slowest = min(slowest, t.rate())
			}
		}
		if len(members) < 2 || byKey[grp[0]] == nil {
			continue
		}
		rate := math.Round(slowest * o.pacedShare)
		for _, t := range members {
			t.paced.rate = rate
		}
		paced = append(paced, members...)
	}
	if len(paced) == 0 || o.pacedShare <= 0 {
		return nil
	}
	d := o.duration / 2
	for r := range o.rounds {
		for j := range paced {
			t := paced[j]
			if r%2 == 1 {
				t = paced[len(paced)-1-j]
			}
			res := g.paced(t.addr, t.request, t.paced.rate, d, &t.paced.hist)
			t.ended = time.Now()
			t.paced.requests += res.requests
			t.paced.errors += res.non2xx + res.ioErrors
			t.served += res.requests
			t.ok += res.requests - res.non2xx
			// The last tickets are issued at d; a target that keeps up
			// has answered them a moment later.
			if res.elapsed > d+d/4 {
				t.paced.behind = true
			}
			if t.settle != nil {
				if _, err := t.settle(t); err != nil {
					t.settleErr = err
				}
			}
			if err := t.proc.exited(); err != nil {
				return err
			}
			progress("paced %d/%d  %-28s %9.0f req/s offered, p99 %s\n",
				r+1, o.rounds, t.name, t.paced.rate, fmtDur(t.paced.hist.quantile(0.99)))
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
