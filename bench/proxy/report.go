package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// The project's targets, as issue 14 states them (CPU: the target's CPU
// time per request over its baseline's), and the large table's of before.
const (
	maxLegacyCPU    = 2.0  // strangler legacy over nginx
	maxHitCPU       = 1.1  // fallback hit over strangler legacy
	maxMissCPU      = 1.5  // fallback miss over strangler legacy
	minMiss         = 0.65 // fallback miss req/s over strangler legacy's
	maxShadowCPU    = 1.4  // shadow over strangler legacy
	maxDualWriteCPU = 2.5  // dual-write over the bare proxy's POST
	minLargeTable   = 0.95 // 10,000-route req/s over 10-route req/s
	maxOpenMiB      = 64   // strangler RSS with 1,024 open connections
)

// missing fills a column that could not be measured.
const missing = "-"

func report(w io.Writer, o options, targets []*target, notes []string, issues issueResults) {
	byKey := map[string]*target{}
	width := len("target")
	for _, t := range targets {
		byKey[t.key] = t
		width = max(width, len(t.name))
	}
	if len(targets) > 0 {
		reportTargets(w, o, targets, byKey, width)
	}
	notes = append(notes, reportIssues(w, byKey, issues)...)
	if o.open > 0 {
		fmt.Fprintf(w, "\nresident memory with %s open client connections, after one request on each:\n", thousands(o.open))
		fmt.Fprintf(w, "  %-*s %18s %18s\n", width, "", fmt.Sprintf("%d at a time", o.conns), "all at once")
		for _, t := range targets {
			if !t.openPaced.done() {
				continue
			}
			verdict := ""
			if t.key == "legacy" && t.openBurst.err == nil {
				verdict = fmt.Sprintf("  (target < %d MiB, all at once)  %s", maxOpenMiB, passMiss(t.openBurst.mem.rssMiB() < maxOpenMiB))
			}
			fmt.Fprintf(w, "  %-*s %18s %18s%s\n", width, t.name, fmtOpen(t.openPaced), fmtOpen(t.openBurst), verdict)
		}
		fmt.Fprintf(w, "  (MiB resident now, and at peak in parentheses)\n")
		reportOpenMemory(w, targets, width)
	}

	reportGoals(w, byKey, o.open)

	for _, t := range targets {
		if t.firstErr != nil {
			notes = append(notes, fmt.Sprintf("%s: first failed request: %v", t.name, t.firstErr))
		}
		for _, r := range []openResult{t.openPaced, t.openBurst} {
			if r.err != nil {
				notes = append(notes, fmt.Sprintf("%s: holding connections open failed: %v", t.name, r.err))
			}
		}
		if t.lastStatus != 0 {
			notes = append(notes, fmt.Sprintf("%s: answered %d non-2xx, e.g. status %d", t.name, t.non2xx, t.lastStatus))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nnotes:\n")
		for _, n := range notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

// reportTargets prints the table of the targets and the ratios between
// them.
func reportTargets(w io.Writer, o options, targets []*target, byKey map[string]*target, width int) {
	fmt.Fprintf(w, "\n%d rounds x %v per target, %d connections, 1 KiB responses; %d CPUs, load generator GOMAXPROCS %d, %s\n\n",
		o.rounds, o.duration, o.conns, runtime.NumCPU(), o.procs, runtime.Version())
	fmt.Fprintf(w, "%-*s %8s %6s %8s %8s %8s %9s %7s %7s %15s  %s\n", width, "target", "req/s", "±", "p50", "p99",
		"RSS MiB", "peak MiB", "errors", "µs/req", "cores t/b/g", "check")
	for _, t := range targets {
		rss, peak := missing, missing
		if t.memErr == nil {
			rss, peak = fmt.Sprintf("%.1f", t.mem.rssMiB()), fmt.Sprintf("%.1f", t.mem.hwmMiB())
		}
		perReq, cores := missing, missing
		if t.cpuErr == nil && t.requests > 0 {
			s := (t.elapsed + t.settled).Seconds()
			perReq = fmt.Sprintf("%.0f", t.cpuPerRequest())
			cores = fmt.Sprintf("%.2f/%.2f/%.2f", t.cpu.Seconds()/s, t.cpuBackend.Seconds()/s, t.cpuLoad.Seconds()/s)
		}
		fmt.Fprintf(w, "%-*s %8.0f %5.1f%% %8s %8s %8s %9s %7d %7s %15s  %s\n", width, t.name,
			t.rate(), t.spread(), fmtDur(t.hist.quantile(0.50)), fmtDur(t.hist.quantile(0.99)),
			rss, peak, t.non2xx+t.ioErrors, perReq, cores, check(t, byKey))
	}
	fmt.Fprintf(w, `
  ±            spread of req/s between rounds, (max-min)/mean
  RSS, peak    the target's resident memory after its last round, and its peak (VmRSS, VmHWM)
  errors       non-2xx answers and failed requests
  µs/req       CPU time the target used per request (user + system), including the shadow
               comparisons and dual-write deliveries that finish after a round
  cores t/b/g  CPU cores busy during the rounds: target, backend, load generator
`)

	fmt.Fprintf(w, "\nratios (in this run; req/s: geometric mean of the ratios within each round; µs/req, CPU per\nrequest, is the least disturbed by other load on the machine):\n")
	bare, legacy := byKey["bare"], byKey["legacy"]
	ratio(w, "strangler legacy / bare proxy", legacy, bare, "(reference)", true, "")
	ratio(w, "fallback hit / strangler legacy", byKey["hit"], legacy, fmt.Sprintf("(target µs/req <= %.2gx)", maxHitCPU), false, check(byKey["hit"], byKey))
	ratio(w, "fallback miss / strangler legacy", byKey["miss"], legacy, fmt.Sprintf("(target >= %.2gx, µs/req <= %.2gx)", minMiss, maxMissCPU), false, check(byKey["miss"], byKey))
	ratio(w, "shadow / strangler legacy", byKey["shadow"], legacy, fmt.Sprintf("(target µs/req <= %.2gx)", maxShadowCPU), false, "")
	ratio(w, thousands(o.routes)+" routes / 10 routes", byKey["routesN"], byKey["routes10"], fmt.Sprintf("(target >= %.2gx)", minLargeTable), false, check(byKey["routesN"], byKey))
	ratio(w, "dual-write / bare proxy POST", byKey["dualwrite"], byKey["barepost"], fmt.Sprintf("(target µs/req <= %.2gx)", maxDualWriteCPU), false, "")
	ratio(w, "legacy POST / bare proxy POST", byKey["post"], byKey["barepost"], "(reference)", false, "")
	for _, peer := range []string{"nginx", "haproxy", "caddy"} {
		if p := byKey[peer]; p != nil {
			ratio(w, p.name+" / bare proxy", p, bare, "(reference)", true, "")
			goal, verdict := "(reference)", ""
			if peer == "nginx" {
				goal, verdict = fmt.Sprintf("(target µs/req <= %.2gx)", maxLegacyCPU), check(legacy, byKey)
			}
			ratio(w, "strangler legacy / "+p.name, legacy, p, goal, true, verdict)
		}
	}
}

// reportGoals prints every target of issue 14 that this run measured, each
// ratio with its bound and PASS or MISS, all from this run.
func reportGoals(w io.Writer, byKey map[string]*target, open int) {
	type goal struct {
		label string
		value float64
		bound string
		ok    bool
	}
	var goals []goal
	cpu := func(label, a, b string, max float64) {
		if r, ok := cpuRatio(byKey[a], byKey[b]); ok {
			goals = append(goals, goal{label + " µs/req", r, fmt.Sprintf("<= %.2gx", max), r <= max})
		}
	}
	paced := func(label, a, b string, q, max float64) {
		ta, tb := byKey[a], byKey[b]
		if ta != nil && tb != nil && ta.paced.requests > 0 && tb.paced.requests > 0 {
			r := latencyRatio(&ta.paced.hist, &tb.paced.hist, q)
			goals = append(goals, goal{fmt.Sprintf("%s p%.0f, paced at %.0f req/s", label, q*100, ta.paced.rate), r, fmt.Sprintf("<= %.2gx", max), r <= max})
		}
	}
	cpu("strangler legacy / nginx", "legacy", "nginx", maxLegacyCPU)
	cpu("fallback hit / legacy", "hit", "legacy", maxHitCPU)
	cpu("fallback miss / legacy", "miss", "legacy", maxMissCPU)
	if m, l := byKey["miss"], byKey["legacy"]; m != nil && l != nil {
		r := rateRatio(m, l)
		goals = append(goals, goal{"fallback miss / legacy req/s", r, fmt.Sprintf(">= %.2gx", minMiss), r >= minMiss})
	}
	cpu("shadow / legacy", "shadow", "legacy", maxShadowCPU)
	paced("shadow / legacy", "shadow", "legacy", 0.99, maxShadowP99)
	cpu("dual-write / bare proxy POST", "dualwrite", "barepost", maxDualWriteCPU)
	paced("dual-write / legacy POST", "dualwrite", "post", 0.5, maxDualWriteP50)
	if l := byKey["legacy"]; l != nil && open > 0 && l.openBurst.done() && l.openBurst.err == nil {
		mib := l.openBurst.mem.rssMiB()
		goals = append(goals, goal{fmt.Sprintf("strangler legacy RSS, %s connections at once, MiB", thousands(open)), mib,
			fmt.Sprintf("< %d", maxOpenMiB), mib < maxOpenMiB})
	}
	if len(goals) == 0 {
		return
	}
	fmt.Fprintf(w, "\ntargets (issue 14; every ratio from this run):\n")
	for _, g := range goals {
		fmt.Fprintf(w, "  %-58s %7.2f  (target %s)  %s\n", g.label, g.value, g.bound, passMiss(g.ok))
	}
}

// ratio prints a's req/s (and optionally p99) over b's.
func ratio(w io.Writer, label string, a, b *target, goal string, withP99 bool, verdict string) {
	if a == nil || b == nil {
		return
	}
	p99, cpu := "", ""
	if withP99 {
		p99 = fmt.Sprintf("p99 %.2fx", p99Ratio(a, b))
	}
	if r, ok := cpuRatio(a, b); ok {
		cpu = fmt.Sprintf("µs/req %.2fx", r)
	}
	fmt.Fprintf(w, "  %-34s req/s %5.2fx  %-10s %-13s %-30s %s\n", label, rateRatio(a, b), p99, cpu, goal, verdict)
}

// rateRatio compares a's requests/s with b's round by round, where both
// ran under the same conditions, and returns the geometric mean of the
// rounds' ratios: a slow round on a busy machine then counts as much as a
// fast one, and drift between rounds cancels out.
func rateRatio(a, b *target) float64 {
	n := min(len(a.rates), len(b.rates))
	if n == 0 {
		return math.NaN()
	}
	var logSum float64
	for i := range n {
		logSum += math.Log(a.rates[i] / b.rates[i])
	}
	return math.Exp(logSum / float64(n))
}

// cpuPerRequest is the target's CPU time per request in microseconds.
func (t *target) cpuPerRequest() float64 {
	return float64(t.cpu.Microseconds()) / float64(t.requests)
}

// check is the PASS/MISS marker of the targets the project has goals for.
func check(t *target, byKey map[string]*target) string {
	if t == nil {
		return ""
	}
	var base *target
	switch t.key {
	case "legacy":
		base = byKey["nginx"]
	case "miss", "hit", "shadow":
		base = byKey["legacy"]
	case "routesN":
		base = byKey["routes10"]
	case "dualwrite":
		base = byKey["barepost"]
	}
	if base == nil {
		return ""
	}
	cpu, cpuKnown := cpuRatio(t, base)
	switch t.key {
	case "legacy":
		return passMissOf(cpu <= maxLegacyCPU, cpuKnown)
	case "hit":
		return passMissOf(cpu <= maxHitCPU, cpuKnown)
	case "miss":
		return passMissOf(rateRatio(t, base) >= minMiss && cpu <= maxMissCPU, cpuKnown)
	case "shadow":
		ok, known := shadowOK(t, base)
		return passMissOf(ok && cpu <= maxShadowCPU, known && cpuKnown)
	case "dualwrite":
		ok, known := dualWriteOK(t, byKey["post"])
		return passMissOf(ok && cpu <= maxDualWriteCPU, known && cpuKnown)
	default:
		return passMiss(rateRatio(t, base) >= minLargeTable)
	}
}

// cpuRatio is a's CPU time per request over b's; known is false when
// either could not be measured.
func cpuRatio(a, b *target) (r float64, known bool) {
	if a == nil || b == nil || a.cpuErr != nil || b.cpuErr != nil || a.requests == 0 || b.requests == 0 {
		return math.NaN(), false
	}
	return a.cpuPerRequest() / b.cpuPerRequest(), true
}

// reportOpenMemory says what each target's resident memory is with every
// connection opened at once: pages of its executable and libraries, which
// the request path hardly moves (the kernel maps a binary's pages in as
// its code first runs, tens of KiB around each), and anonymous memory; for
// strangler, that part as its Go runtime accounts for it.
func reportOpenMemory(w io.Writer, targets []*target, width int) {
	fmt.Fprintf(w, "  all at once, of which (MiB):\n")
	for _, t := range targets {
		r := t.openBurst
		if !r.done() || r.err != nil {
			continue
		}
		file := r.mem.fileMiB()
		anon := r.mem.rssMiB() - file
		line := fmt.Sprintf("  %-*s %5.1f file pages (executable, libraries) + %5.1f anonymous", width, t.name, file, anon)
		if g := r.goMem; g != nil {
			const mib = 1 << 20
			rest := anon - (g.heapInUse+g.heapFree+g.stacks)/mib
			line += fmt.Sprintf(": heap %.1f in use, %.1f free; stacks %.1f (%s goroutines); %.1f runtime and other",
				g.heapInUse/mib, g.heapFree/mib, g.stacks/mib, thousands(int(g.goroutines)), rest)
		}
		fmt.Fprintln(w, line)
	}
}

func fmtOpen(r openResult) string {
	if r.err != nil {
		return "failed"
	}
	return fmt.Sprintf("%.1f (%.1f)", r.mem.rssMiB(), r.mem.hwmMiB())
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func p99Ratio(a, b *target) float64 {
	return float64(a.hist.quantile(0.99)) / float64(b.hist.quantile(0.99))
}

// rate is the mean requests/s over the rounds.
func (t *target) rate() float64 {
	if len(t.rates) == 0 {
		return 0
	}
	var sum float64
	for _, r := range t.rates {
		sum += r
	}
	return sum / float64(len(t.rates))
}

// spread is (max-min)/mean of the rounds' requests/s, in percent.
func (t *target) spread() float64 {
	if len(t.rates) < 2 {
		return 0
	}
	return (slices.Max(t.rates) - slices.Min(t.rates)) / t.rate() * 100
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
}

// thousands writes n with comma separators: 10000 -> "10,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
