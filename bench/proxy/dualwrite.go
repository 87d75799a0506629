package main

import (
	"fmt"
	"sync"
	"time"
)

// Issue 3: dual-write. The same small JSON POST goes to a route in legacy
// mode and to one in dual-write mode (primary legacy, the secondary
// modern), whose every request journals its intent and the primary's
// outcome in the state store before the client has its answer, and is
// delivered to the secondary afterwards.

// postBody is the write every POST target is sent.
const postBody = `{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`

// benchEncryption encrypts a store's journal (store_encryption) with a
// fixed key: the bench measures the cost, not the key's secrecy.
const benchEncryption = `store_encryption: { keys: ["62656e63682d6b65792d62656e63682d6b65792d62656e63682d6b65792d3332"] }` + "\n"

// writeSpecs are the POST targets: the legacy baseline, dual-write on the
// embedded store (in clear and encrypted), and on PostgreSQL.
func writeSpecs() []stranglerSpec {
	req := buildPost("/bench", postBody)
	dual := `  - name: bench
    match: "POST /bench"
    mode: dual-write
    primary: legacy
    id_field: id
`
	return []stranglerSpec{
		{key: "post", name: "strangler legacy POST", routes: oneRoute("bench", "POST /bench", "legacy"), request: req},
		{key: "dualwrite", name: "strangler dual-write", routes: dual, request: req},
		{key: "dualwrite-enc", name: "strangler dual-write enc", routes: dual, request: req, extra: benchEncryption},
		{key: "dualwrite-pg", name: "strangler dual-write pg", routes: dual, request: req, store: needsPostgres},
	}
}

// Bounds on the wait for the secondary to get every write of a run: at
// most drainTimeout, and no longer once drainWatch has shown that the
// delivery rate would need more than that.
const (
	drainTimeout = 20 * time.Second
	drainWatch   = time.Second
)

// settleDualWrite waits until every write the target accepted has been
// applied to the secondary, or until the rate at which they are applied
// says that this would take longer than drainTimeout.
func settleDualWrite(t *target) (time.Duration, error) {
	start := time.Now()
	first := -1.0 // applied at the start
	for {
		m, err := metricBy(t.admin, "strangler_dualwrite_total", "result")
		if err != nil {
			return time.Since(start), err
		}
		applied, elapsed := m["applied"], time.Since(start)
		if first < 0 {
			first = applied
		}
		switch left := float64(t.ok) - applied; {
		case m["dead"] > 0:
			return elapsed, fmt.Errorf("%.0f writes dead-lettered", m["dead"])
		case left <= 0:
			return elapsed, nil
		case elapsed > drainTimeout || elapsed > drainWatch && left/((applied-first)/elapsed.Seconds()) > drainTimeout.Seconds():
			return elapsed, fmt.Errorf("%s of %s writes applied to the secondary; it got %.0f/s over the last %v",
				thousands(int(applied)), thousands(int(t.ok)), (applied-first)/elapsed.Seconds(), elapsed.Round(time.Second))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// drainResult is a dual-write target's repair queue after its last run.
type drainResult struct {
	after time.Duration // from the last write until the depth gauge read none pending
	depth map[string]float64
	err   error
}

// watchDrain follows each dual-write target's repair queue depth from now
// until it shows nothing pending (the gauge is refreshed every 5 s), in
// the background; the returned function waits for the results.
func watchDrain(targets []*target) func() map[string]drainResult {
	var wg sync.WaitGroup
	var mu sync.Mutex
	out := map[string]drainResult{}
	for _, t := range targets {
		if t.key != "dualwrite" && t.key != "dualwrite-enc" && t.key != "dualwrite-pg" {
			continue
		}
		wg.Go(func() {
			var r drainResult
			_, r.err = waitFor(20*time.Second, func() (bool, error) {
				var err error
				r.depth, err = metricBy(t.admin, "strangler_repair_queue_depth", "state")
				return err == nil && r.depth["pending"] == 0 && r.depth["sent"] == 0, err
			})
			r.after = time.Since(t.ended)
			mu.Lock()
			out[t.key] = r
			mu.Unlock()
		})
	}
	return func() map[string]drainResult {
		wg.Wait()
		return out
	}
}
