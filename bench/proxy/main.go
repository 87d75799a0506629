// Command bench measures what strangler costs on the request path. In one
// run it starts a cheap backend, a bare httputil.ReverseProxy (the baseline
// every Go proxy starts from), strangler in legacy mode, in shadow mode, in
// fallback mode (hit and miss), with a small and a large route table, and
// for writes in legacy and dual-write mode (with the embedded store, and
// PostgreSQL when it is reachable), and nginx, HAProxy and Caddy when
// they are installed; then it drives each with the same closed-loop load generator
// in interleaved rounds, so that drift in the machine affects all of them
// alike, and the pairs whose latencies the targets compare again at the
// same paced load; and it prints requests/s, p50, p99, CPU and resident
// memory for each, and the ratios the project's targets are stated in.
// Then it flips a route back and forth under a paced load, and measures
// how fast a flip reaches three replicas sharing a PostgreSQL store.
//
//	go run ./proxy [-duration 4s] [-rounds 4] [-conns 64] [-strangler PATH] [-targets KEYS]
//
// Every target is a separate process, so its resident memory is its own.
// The numbers are only comparable within one run on one machine: the load
// generator, the backend and the proxy share its cores. The exit status is
// 0 whatever the numbers are; it is 1 when something could not be started.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type options struct {
	role, target string // child process roles (hidden)

	strangler string
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	conns     int
	open      int
	routes    int
	procs     int
	logLevel  string
	peers     bool
	only      map[string]bool // -targets; nil means all

	postgres   string  // PostgreSQL server for the store targets
	pacedShare float64 // paced load, as a share of the slowest closed-loop req/s of a group
	flipRate   float64
	flipFor    time.Duration
	flipEvery  time.Duration
	propFlips  int
}

// targetKeys name the targets and groups for -targets, in the order they
// run.
var targetKeys = []string{"direct", "bare", "legacy", "shadow", "miss", "hit", "routes10", "routesN", "nginx", "haproxy", "caddy",
	"barepost", "post", "dualwrite", "dualwrite-enc", "dualwrite-pg", "flips", "propagation"}

// baselines are the targets a target is compared with: selecting it
// selects them too.
var baselines = map[string][]string{"shadow": {"legacy"}, "miss": {"legacy"}, "hit": {"legacy"},
	"dualwrite": {"post", "barepost"}, "dualwrite-enc": {"post"}, "dualwrite-pg": {"post"}}

// began is when the bench started, for the progress lines.
var began = time.Now()

// progress prints a progress line on stderr with the time since the start.
func progress(format string, args ...any) {
	d := time.Since(began).Round(time.Second)
	fmt.Fprintf(os.Stderr, "%02d:%02d "+format, append([]any{int(d.Minutes()), int(d.Seconds()) % 60}, args...)...)
}

// wants reports whether target key is to be measured.
func (o options) wants(key string) bool { return o.only == nil || o.only[key] }

func main() {
	var o options
	flag.StringVar(&o.role, "role", "", "internal: run as a child process (backend, bareproxy or guard)")
	flag.StringVar(&o.target, "target", "", "internal: the bare proxy's backend URL")
	flag.StringVar(&o.strangler, "strangler", "", "strangler `binary` to measure (default: build ./cmd/strangler)")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "length of one measured run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load on each target before the first round")
	// Several short rounds rather than a few long ones: a burst of load
	// from elsewhere on the machine then skews every target a little
	// instead of one target a lot.
	flag.IntVar(&o.rounds, "rounds", 4, "interleaved rounds over all targets (even is best)")
	flag.IntVar(&o.conns, "conns", 64, "concurrent keep-alive client connections")
	flag.IntVar(&o.open, "open", 1024, "client connections held open for the memory measurement (0 skips it)")
	flag.IntVar(&o.routes, "routes", 10000, "routes in the large route table")
	// The load generator shares the machine with the backend and the proxy
	// under test. One P keeps it to about one core at most (it needs far
	// less: a request costs it a write and a read system call), so the
	// proxy, which runs with Go's default GOMAXPROCS as it would in
	// production, is what limits throughput.
	flag.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of the load generator")
	flag.StringVar(&o.logLevel, "log-level", "", "STRANGLER_LOG_LEVEL for strangler (default: its own, info)")
	flag.BoolVar(&o.peers, "peers", true, "also measure nginx, HAProxy and Caddy when they are on PATH")
	only := flag.String("targets", "", "comma-separated `keys` of the targets and groups to measure (default all; "+
		"shadow, miss and hit bring legacy, dualwrite brings post and barepost, dualwrite-enc and dualwrite-pg bring post): "+strings.Join(targetKeys, ","))
	flag.StringVar(&o.postgres, "postgres", envOr("STRANGLER_TEST_POSTGRES", defaultPostgres),
		"PostgreSQL `URL` for dualwrite-pg and propagation (each gets a schema of its own, dropped afterwards; "+
			"default $STRANGLER_TEST_POSTGRES or the local test server)")
	// A fifth: the machine's speed, shared with whatever else runs on it,
	// can drop by half between the closed-loop and the paced runs, and the
	// paced load must still leave each target CPU to spare.
	flag.Float64Var(&o.pacedShare, "paced-share", 0.2, "paced load for the latency ratios, as a `share` of the slowest closed-loop req/s of the compared targets (0 skips it)")
	flag.Float64Var(&o.flipRate, "flip-rate", 500, "requests/s during the flips")
	flag.DurationVar(&o.flipFor, "flip-duration", 10*time.Second, "how long the flips run")
	flag.DurationVar(&o.flipEvery, "flip-every", 200*time.Millisecond, "time between flips")
	flag.IntVar(&o.propFlips, "propagation-flips", 50, "flips whose propagation to three replicas is timed")
	flag.Parse()
	if *only != "" {
		o.only = map[string]bool{}
		for _, k := range strings.Split(*only, ",") {
			if !slices.Contains(targetKeys, k) {
				fmt.Fprintf(os.Stderr, "bench: unknown target %q in -targets; want some of %s\n", k, strings.Join(targetKeys, ","))
				os.Exit(2)
			}
			o.only[k] = true
			for _, b := range baselines[k] {
				o.only[b] = true
			}
		}
	}

	var err error
	switch o.role {
	case "":
		err = bench(o)
	case "backend":
		err = runBackend()
	case "bareproxy":
		err = runBareProxy(o.target)
	case "guard":
		err = runGuard(flag.Args())
	default:
		err = fmt.Errorf("unknown -role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func bench(o options) error {
	if o.rounds < 1 || o.conns < 1 || o.duration <= 0 || o.routes < 10 {
		return fmt.Errorf("want -rounds >= 1, -conns >= 1, -duration > 0 and -routes >= 10")
	}
	runtime.GOMAXPROCS(o.procs)
	loadBefore := loadAverage()
	s, err := newSupervisor()
	if err != nil {
		return err
	}
	defer s.cleanup()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin := o.strangler
	if bin == "" {
		if bin, err = buildStrangler(s.dir); err != nil {
			return err
		}
	}
	b, backend, err := s.startBackend(self)
	if err != nil {
		return err
	}
	targets, notes, err := startAll(s, o, self, bin, b, backend)
	if err != nil {
		return err
	}
	groups := o.wants("flips") || o.wants("propagation")
	if len(targets) == 0 && !groups {
		return fmt.Errorf("no target to measure")
	}

	g := newGenerator(o.conns)
	if err := warmUp(g, targets, o.warmup); err != nil {
		return err
	}
	before := snapshotCounters(targets)
	if err := measureRounds(g, targets, backend, o); err != nil {
		return err
	}
	if err := measurePaced(g, targets, o); err != nil {
		return err
	}
	drained := watchDrain(targets)
	if o.open > 0 {
		for _, t := range targets {
			if t.key == "bare" || t.key == "legacy" || t.key == "nginx" || t.key == "haproxy" || t.key == "caddy" {
				progress("holding %d connections open to %s\n", o.open, t.name)
				// Resident memory seldom shrinks, so the gentler measurement
				// goes first.
				t.openPaced = holdOpen(t, o.open, o.conns, false)
				t.openBurst = holdOpen(t, o.open, o.open, true)
			}
		}
	}
	var flips *flipsResult
	if o.wants("flips") {
		flips = runFlips(s, o, bin, b, g)
	}
	var prop *propagationResult
	if o.wants("propagation") {
		prop = runPropagation(s, o, bin, b)
	}
	notes = append(notes, fallbackNotes(targets)...)
	issues := issueResults{before: before, after: snapshotCounters(targets), drained: drained(), flips: flips, propagation: prop}
	if loadBefore != "" {
		notes = append(notes, fmt.Sprintf("load average (1, 5, 15 min) at the start %s, at the end %s; on %d CPUs, "+
			"the bench itself accounts for about 3; more means other processes competed with it", loadBefore, loadAverage(), runtime.NumCPU()))
	}

	report(os.Stdout, o, targets, notes, issues)
	fmt.Printf("\nthe run took %v\n", time.Since(began).Round(time.Second))
	return nil
}

// warmUp loads each target briefly, unmeasured: connection pools fill and
// the Go targets' heaps reach their working size.
func warmUp(g *generator, targets []*target, d time.Duration) error {
	if d <= 0 || len(targets) == 0 {
		return nil
	}
	progress("warming up %d targets for %v each\n", len(targets), d)
	for _, t := range targets {
		var discard histogram
		res := g.run(t.addr, t.request, d, &discard)
		t.served += res.requests
		t.ok += res.requests - res.non2xx
		if res.requests == 0 {
			return fmt.Errorf("%s answered nothing during warm-up: %v", t.name, res.err)
		}
		if t.settle != nil {
			if _, err := t.settle(t); err != nil {
				t.settleErr = fmt.Errorf("after the warm-up: %w", err)
			}
		}
		if err := t.proc.exited(); err != nil {
			return err
		}
	}
	return nil
}

// measureRounds runs o.rounds interleaved rounds over all targets,
// recording throughput, latency, CPU time and memory.
func measureRounds(g *generator, targets []*target, backend *child, o options) error {
	for r := range o.rounds {
		for j := range targets {
			// Alternate the order (A B C, C B A, ...): over an even number
			// of rounds a steady drift in the machine's speed then weighs
			// on every target alike, and neighbours in the list, which
			// the ratios compare, always run close together in time.
			t := targets[j]
			if r%2 == 1 {
				t = targets[len(targets)-1-j]
			}
			before, err := cpuNow(t, backend)
			res := g.run(t.addr, t.request, o.duration, &t.hist)
			t.ended = time.Now()
			t.add(res)
			var settled time.Duration
			if t.settle != nil {
				var serr error
				settled, serr = t.settle(t)
				t.settled += settled
				if serr != nil {
					t.settleErr = serr
				}
			}
			if err == nil {
				var after cpuSample
				if after, err = cpuNow(t, backend); err == nil {
					t.cpu += after.target - before.target
					t.cpuBackend += after.backend - before.backend
					t.cpuLoad += after.load - before.load
				}
			}
			if err != nil {
				t.cpuErr = err
			}
			t.mem, t.memErr = t.proc.memory()
			if err := t.proc.exited(); err != nil {
				return err
			}
			line := fmt.Sprintf("round %d/%d  %-28s %9.0f req/s  %d errors", r+1, o.rounds, t.name, res.rate(), res.non2xx+res.ioErrors)
			if t.settle != nil {
				line += fmt.Sprintf("  settled in %v", settled.Round(time.Millisecond))
			}
			progress("%s\n", line)
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// startAll starts every target but the backend. Peers that are missing or
// fail to start, and targets whose PostgreSQL cannot be reached, are
// skipped with a note; anything else failing is an error.
func startAll(s *supervisor, o options, self, bin string, b backendAddrs, bc *child) (targets []*target, notes []string, err error) {
	if o.wants("direct") {
		targets = append(targets, backendTarget(b, bc))
	}
	var bare *target
	if o.wants("bare") || o.wants("barepost") {
		if bare, err = s.startBareProxy(self, b); err != nil {
			return nil, nil, err
		}
	}
	if o.wants("bare") {
		targets = append(targets, bare)
	}
	start := func(specs []stranglerSpec) error {
		for _, sp := range specs {
			if !o.wants(sp.key) {
				continue
			}
			if sp.store == needsPostgres {
				var err error
				if sp.store, err = s.postgresSchema(o.postgres); err != nil {
					notes = append(notes, fmt.Sprintf("%s skipped: %v", sp.name, err))
					continue
				}
			}
			progress("starting %s\n", sp.name)
			t, err := s.startStrangler(bin, sp, b, o.logLevel)
			if err != nil {
				return err
			}
			t.settle = settlerOf(sp.key)
			targets = append(targets, t)
			notes = append(notes, fmt.Sprintf("%s was ready %v after exec", t.name, t.startup.Round(time.Millisecond)))
		}
		return nil
	}

	many, manyPath := manyRoutes(o.routes)
	ten, tenPath := manyRoutes(10)
	if err := start([]stranglerSpec{
		{key: "legacy", name: "strangler legacy", routes: oneRoute("bench", "GET /bench", "legacy"), request: buildRequest("/bench")},
		shadowSpec(),
		{key: "miss", name: "strangler fallback miss", routes: oneRoute("bench", "GET "+missPrefix+"bench", "fallback"), request: buildRequest(missPrefix + "bench")},
		{key: "hit", name: "strangler fallback hit", routes: oneRoute("bench", "GET /bench", "fallback"), request: buildRequest("/bench")},
		{key: "routes10", name: "strangler 10 routes", routes: ten, request: buildRequest(tenPath)},
		{key: "routesN", name: "strangler " + thousands(o.routes) + " routes", routes: many, request: buildRequest(manyPath)},
	}); err != nil {
		return nil, nil, err
	}

	if o.peers {
		for _, p := range []struct {
			name  string
			start func(self, bin string, b backendAddrs) (*target, error)
		}{{"nginx", s.startNginx}, {"haproxy", s.startHAProxy}, {"caddy", s.startCaddy}} {
			if !o.wants(p.name) {
				continue
			}
			path, err := exec.LookPath(p.name)
			if err != nil {
				notes = append(notes, p.name+" is not on PATH; skipped")
				continue
			}
			progress("starting %s\n", p.name)
			t, err := p.start(self, path, b)
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s did not start; skipped: %v", p.name, err))
				continue
			}
			targets = append(targets, t)
		}
	}

	// The writes come last: the dual-write targets' stores grow during the
	// run, and nothing else runs between them and their baselines.
	if o.wants("barepost") {
		// The same bare proxy process, sent the POST the write targets get.
		targets = append(targets, &target{key: "barepost", name: "bare ReverseProxy POST", addr: bare.addr,
			request: buildPost("/bench", postBody), proc: bare.proc})
	}
	if err := start(writeSpecs()); err != nil {
		return nil, nil, err
	}
	return targets, notes, nil
}

// buildStrangler builds ./cmd/strangler of the strangler module, where the
// bench module's replace directive points.
func buildStrangler(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "strangler").Output()
	root := strings.TrimSpace(string(out))
	if err != nil || root == "" {
		return "", fmt.Errorf("cannot find the strangler module (go list -m strangler: %v); run from bench/ or pass -strangler", err)
	}
	bin := filepath.Join(dir, "strangler")
	progress("building strangler\n")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/strangler")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building strangler: %w", err)
	}
	return bin, nil
}

// cpuSample is the CPU time used so far by the target, the backend and
// the load generator.
type cpuSample struct{ target, backend, load time.Duration }

func cpuNow(t *target, backend *child) (cpuSample, error) {
	var s cpuSample
	var err1, err2, err3 error
	s.target, err1 = t.proc.cpu()
	s.backend, err2 = backend.cpu()
	s.load, err3 = selfCPU()
	return s, errors.Join(err1, err2, err3)
}

// add accumulates one round's result.
func (t *target) add(r runResult) {
	t.rates = append(t.rates, r.rate())
	t.requests += r.requests
	t.served += r.requests
	t.ok += r.requests - r.non2xx
	t.elapsed += r.elapsed
	t.non2xx += r.non2xx
	t.ioErrors += r.ioErrors
	if r.status != 0 {
		t.lastStatus = r.status
	}
	if r.err != nil && t.firstErr == nil {
		t.firstErr = r.err
	}
}

// holdOpen measures t's resident memory while it holds n client
// connections, each of which has carried one request, at most concurrent
// of them at a time; with account, for strangler, also what its Go
// runtime says the memory is (only where it is reported: serving
// /metrics allocates, and resident memory seldom shrinks).
func holdOpen(t *target, n, concurrent int, account bool) openResult {
	conns, err := openConns(t.addr, t.request, n, concurrent)
	if err != nil {
		return openResult{err: err}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(200 * time.Millisecond) // let the target close its side
	}()
	time.Sleep(300 * time.Millisecond) // let the target settle on idle connections
	var r openResult
	r.mem, r.err = t.proc.memory()
	if r.err == nil && account && t.admin != "" {
		if g, err := readGoMemory(t.admin); err == nil {
			r.goMem = &g
		}
	}
	return r
}

// fallbackNotes checks strangler's own count of fallbacks: a fallback hit
// should never fall back, a miss every time.
func fallbackNotes(targets []*target) []string {
	var notes []string
	for _, t := range targets {
		if t.key != "hit" && t.key != "miss" {
			continue
		}
		n, err := metricSum(t.admin, "strangler_fallback_total")
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%s: cannot read /metrics: %v", t.name, err))
		case t.key == "hit" && n != 0:
			notes = append(notes, fmt.Sprintf("WARNING: %s fell back %.0f times; it should not have", t.name, n))
		case t.key == "miss" && n < float64(t.requests):
			notes = append(notes, fmt.Sprintf("WARNING: %s fell back only %.0f times for %d requests", t.name, n, t.requests))
		default:
			notes = append(notes, fmt.Sprintf("%s: strangler_fallback_total = %.0f (as expected)", t.name, n))
		}
	}
	return notes
}
