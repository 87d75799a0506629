package main

import (
	"fmt"
	"io"
	"math"
	"time"
)

// The latency targets at a paced load, as issue 14 states them, and the
// throughput targets of issues 3 and 5.
const (
	maxShadowP99      = 1.1  // shadow p99 over legacy's
	maxDualWriteP50   = 1.5  // dual-write p50 over legacy POST's
	minJournalRate    = 2000 // dual writes/s on the embedded store
	maxPropagationP99 = time.Second
)

// issueResults is what the checks of issues 3, 4 and 5 found besides the
// targets' own measurements.
type issueResults struct {
	// before and after are the shadow and dual-write counters by result,
	// before the measured rounds and at the end.
	before, after map[string]map[string]float64
	drained       map[string]drainResult
	flips         *flipsResult
	propagation   *propagationResult
}

// latencyRatio is a's q-quantile over b's.
func latencyRatio(a, b *histogram, q float64) float64 {
	return float64(a.quantile(q)) / float64(b.quantile(q))
}

// shadowOK judges shadow's latency target at the paced load; known is
// false when that was not measured.
func shadowOK(t, base *target) (ok, known bool) {
	if base == nil || t.paced.requests == 0 || base.paced.requests == 0 {
		return false, false
	}
	return latencyRatio(&t.paced.hist, &base.paced.hist, 0.99) <= maxShadowP99, true
}

// dualWriteOK judges dual-write's latency target: p50 at the paced load.
func dualWriteOK(t, base *target) (ok, known bool) {
	if base == nil || t.paced.requests == 0 || base.paced.requests == 0 {
		return false, false
	}
	return latencyRatio(&t.paced.hist, &base.paced.hist, 0.5) <= maxDualWriteP50, true
}

func passMissOf(ok, known bool) string {
	if !known {
		return ""
	}
	return passMiss(ok)
}

// reportIssues prints the paced latencies and the sections of issues 3, 4
// and 5, and returns notes on what could not be measured.
func reportIssues(w io.Writer, byKey map[string]*target, is issueResults) (notes []string) {
	var paced []*target
	for _, g := range pacedGroups {
		for _, k := range g {
			if t := byKey[k]; t != nil && t.paced.requests > 0 {
				paced = append(paced, t)
			}
		}
	}
	if len(paced) > 0 {
		fmt.Fprintf(w, "\nlatency at a paced load (open loop: each group of targets offered the same requests/s, a share of\nthe slowest one's closed-loop rate; latency counted from each request's scheduled time):\n")
		fmt.Fprintf(w, "  %-28s %9s %8s %8s %8s %7s\n", "", "req/s", "p50", "p90", "p99", "errors")
		for _, t := range paced {
			behind := ""
			if t.paced.behind {
				behind = "  (fell behind the offered load)"
			}
			fmt.Fprintf(w, "  %-28s %9.0f %8s %8s %8s %7d%s\n", t.name, t.paced.rate, fmtDur(t.paced.hist.quantile(0.5)),
				fmtDur(t.paced.hist.quantile(0.9)), fmtDur(t.paced.hist.quantile(0.99)), t.paced.errors, behind)
		}
	}
	notes = append(notes, reportShadow(w, byKey, is)...)
	notes = append(notes, reportDualWrite(w, byKey, is)...)
	notes = append(notes, reportFlips(w, is)...)
	return notes
}

// pairLine prints a's latency over b's at the paced load and in the
// closed loop.
func pairLine(w io.Writer, label string, a, b *target, goal, verdict string) {
	if a.paced.requests > 0 && b.paced.requests > 0 {
		fmt.Fprintf(w, "  %-44s p50 %5.2fx  p99 %5.2fx  %-26s %s\n", fmt.Sprintf("%s, paced at %.0f req/s", label, a.paced.rate),
			latencyRatio(&a.paced.hist, &b.paced.hist, 0.5), latencyRatio(&a.paced.hist, &b.paced.hist, 0.99), goal, verdict)
	}
	fmt.Fprintf(w, "  %-44s p50 %5.2fx  p99 %5.2fx  req/s %.2fx  (saturated: capacity, not a target)\n", label+", closed loop",
		latencyRatio(&a.hist, &b.hist, 0.5), latencyRatio(&a.hist, &b.hist, 0.99), rateRatio(a, b))
}

// perRequest is the CPU microseconds per request of d over t's closed-loop
// requests.
func perRequest(d time.Duration, t *target) float64 {
	return float64(d.Microseconds()) / float64(t.requests)
}

func reportShadow(w io.Writer, byKey map[string]*target, is issueResults) (notes []string) {
	sh, legacy := byKey["shadow"], byKey["legacy"]
	if sh == nil || legacy == nil {
		return nil
	}
	fmt.Fprintf(w, "\nshadow (every request compared; 1 KiB JSON, modern's keys in another order):\n")
	pairLine(w, "shadow / legacy", sh, legacy, fmt.Sprintf("(target p99 <= %.2fx)", maxShadowP99), passMissOf(shadowOK(sh, legacy)))
	if sh.cpuErr == nil && legacy.cpuErr == nil && sh.requests > 0 && legacy.requests > 0 {
		fmt.Fprintf(w, "  %-44s %+.0f µs/req (the copy to modern and the comparison; strangler's process: shadow %.0f, legacy %.0f)\n", "comparison CPU per request",
			sh.cpuPerRequest()-legacy.cpuPerRequest(), sh.cpuPerRequest(), legacy.cpuPerRequest())
		fmt.Fprintf(w, "  %-44s shadow %.0f µs/req (two backend requests per request), legacy %.0f µs/req; not in the above\n", "backend CPU",
			perRequest(sh.cpuBackend, sh), perRequest(legacy.cpuBackend, legacy))
	}
	before, after := is.before["shadow"], is.after["shadow"]
	if before == nil || after == nil {
		return []string{"strangler shadow: could not read strangler_shadow_comparisons_total"}
	}
	delta := func(r string) float64 { return after[r] - before[r] }
	measured := sh.requests + sh.paced.requests
	verdict := "OK"
	if delta("match") != float64(measured) {
		verdict = "WARNING: not every request was compared and matched"
	}
	fmt.Fprintf(w, "  %-44s match %s of %s requests; mismatch %.0f, error %.0f, dropped %.0f, too_large %.0f  %s\n",
		"comparisons in the measured runs", thousands(int(delta("match"))), thousands(int(measured)),
		delta("mismatch"), delta("error"), delta("dropped"), delta("too_large"), verdict)
	if sh.settleErr != nil {
		notes = append(notes, fmt.Sprintf("strangler shadow: %v", sh.settleErr))
	}
	return notes
}

func reportDualWrite(w io.Writer, byKey map[string]*target, is issueResults) (notes []string) {
	post := byKey["post"]
	if post == nil || byKey["dualwrite"] == nil && byKey["dualwrite-enc"] == nil && byKey["dualwrite-pg"] == nil {
		return nil
	}
	fmt.Fprintf(w, "\nissue 3, dual-write (primary legacy, secondary modern; a %d-byte JSON POST answered 201 {\"id\":N}):\n", len(postBody))
	for _, c := range []struct{ key, store string }{{"dualwrite", "embedded store"}, {"dualwrite-enc", "embedded store, encrypted"}, {"dualwrite-pg", "PostgreSQL"}} {
		t := byKey[c.key]
		if t == nil {
			continue
		}
		goal, verdict := "(no target)", ""
		if c.key == "dualwrite" {
			goal = fmt.Sprintf("(target p50 <= %.1fx)", maxDualWriteP50)
			if t.paced.requests > 0 && post.paced.requests > 0 {
				verdict = passMiss(latencyRatio(&t.paced.hist, &post.paced.hist, 0.5) <= maxDualWriteP50)
			}
		}
		pairLine(w, fmt.Sprintf("dual-write (%s) / legacy POST", c.store), t, post, goal, verdict)
		goal, verdict = "(no target)", ""
		if c.key == "dualwrite" {
			goal, verdict = fmt.Sprintf("(target >= %s)", thousands(minJournalRate)), passMiss(t.rate() >= minJournalRate)
		}
		fmt.Fprintf(w, "  %-44s %s dual writes/s (closed loop; two journal commits each)  %s %s\n", "journal throughput, "+c.store,
			thousands(int(t.rate())), goal, verdict)
		after := is.after[c.key]
		if after == nil {
			notes = append(notes, t.name+": could not read strangler_dualwrite_total")
			continue
		}
		state := "OK"
		if after["applied"] != float64(t.ok) {
			state = "WARNING: not every write reached the secondary"
		}
		fmt.Fprintf(w, "  %-44s applied %s of %s writes (queued %.0f, failed %.0f, dead %.0f, unknown %.0f, refused %.0f)  %s\n",
			"  delivered to the secondary", thousands(int(after["applied"])), thousands(int(t.ok)),
			after["queued"], after["failed"], after["dead"], after["unknown"], after["refused"], state)
		if t.settleErr != nil {
			fmt.Fprintf(w, "  %-44s %v\n", "", t.settleErr)
		} else if t.elapsed > 0 {
			fmt.Fprintf(w, "  %-44s %s writes/s over the rounds and the waits until the secondary had them all (at most %v)\n",
				"", thousands(int(float64(t.requests)/(t.elapsed+t.settled).Seconds())), t.settled.Round(time.Millisecond))
		}
		if d, ok := is.drained[c.key]; ok {
			if d.err != nil {
				fmt.Fprintf(w, "  %-44s pending %.0f, %v after the last write  WARNING\n", "  repair queue depth", d.depth["pending"], d.after.Round(time.Second))
			} else {
				fmt.Fprintf(w, "  %-44s pending 0, %v after the last write (the gauge refreshes every 5 s)  OK\n",
					"  repair queue depth", d.after.Round(100*time.Millisecond))
			}
		}
	}
	return notes
}

func reportFlips(w io.Writer, is issueResults) (notes []string) {
	f, p := is.flips, is.propagation
	if f == nil && p == nil {
		return nil
	}
	fmt.Fprintf(w, "\nissue 5, flips:\n")
	if f != nil && f.err != nil {
		notes = append(notes, fmt.Sprintf("flips under load: %v", f.err))
	}
	if f != nil && f.requests > 0 {
		fmt.Fprintf(w, "  %-44s %s requests, %d errors (target 0)  %s\n",
			fmt.Sprintf("%.0f req/s for %v, a flip every %v", f.rate, f.dur, f.every), thousands(int(f.requests)), f.errors, passMiss(f.errors == 0 && f.flips > 0))
		fmt.Fprintf(w, "  %-44s %d flips (%d failed), PATCH p50 %s p99 %s; served by legacy %.0f, modern %.0f; latency p50 %s p99 %s\n", "",
			f.flips, f.flipsFailed, fmtDur(f.flipTime.quantile(0.5)), fmtDur(f.flipTime.quantile(0.99)),
			f.byBackend["legacy"], f.byBackend["modern"], fmtDur(f.hist.quantile(0.5)), fmtDur(f.hist.quantile(0.99)))
		if f.firstErr != nil {
			notes = append(notes, fmt.Sprintf("flips under load: first failed request: %v", f.firstErr))
		}
		if f.status != 0 {
			notes = append(notes, fmt.Sprintf("flips under load: a non-2xx answer, status %d", f.status))
		}
		if f.flipErr != nil {
			notes = append(notes, fmt.Sprintf("flips under load: a flip failed: %v", f.flipErr))
		}
	}
	fmt.Fprintf(w, "  %-44s go test ./router -run '^$' -bench EffectiveMode -benchmem (make bench runs it)\n", "mode read on the request path")
	if p == nil {
		return notes
	}
	if p.err != nil {
		notes = append(notes, fmt.Sprintf("propagation to %d replicas skipped: %v", replicas, p.err))
	}
	if p.flips > 0 || p.lost > 0 {
		p99 := p.all.quantile(0.99)
		if p.lost > 0 {
			p99 = time.Duration(math.MaxInt64)
		}
		fmt.Fprintf(w, "  %-44s %d flips: p50 %s, p99 %s, max %s, not propagated in %v: %d (target p99 < %v)  %s\n",
			fmt.Sprintf("propagation to %d replicas (PostgreSQL)", replicas), p.flips+p.lost,
			fmtDur(p.all.quantile(0.5)), fmtDur(p.all.quantile(0.99)), fmtDur(p.worst), flipWait, p.lost, maxPropagationP99,
			passMiss(p99 < maxPropagationP99))
		fmt.Fprintf(w, "  %-44s replicas 2 and 3 alone p50 %s p99 %s; the PATCH on replica 1 p50 %s p99 %s\n", "",
			fmtDur(p.others.quantile(0.5)), fmtDur(p.others.quantile(0.99)), fmtDur(p.patch.quantile(0.5)), fmtDur(p.patch.quantile(0.99)))
	}
	return notes
}
