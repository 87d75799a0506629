package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Issue 5: propagation. Three replicas share one PostgreSQL store; a flip
// made on the first must reach all three (LISTEN/NOTIFY) within a second.
// Each replica's public port is polled until X-Strangler-Backend names the
// new mode's backend.

// replicas is how many stranglers share the store.
const replicas = 3

// flipWait bounds the wait for one flip to reach every replica: past it
// the flip counts as not propagated.
const flipWait = 10 * time.Second

// propagationResult is how fast flips reached every replica.
type propagationResult struct {
	err    error // it could not run, or was skipped
	flips  int
	lost   int       // flips that did not reach every replica in flipWait
	all    histogram // from sending the PATCH until all replicas served the new mode
	others histogram // the same for replicas 2 and 3 alone
	patch  histogram // the PATCH round trip on replica 1
	worst  time.Duration
}

func runPropagation(s *supervisor, o options, bin string, b backendAddrs) *propagationResult {
	r := &propagationResult{}
	store, err := s.postgresSchema(o.postgres)
	if err != nil {
		r.err = err
		return r
	}
	var reps []*target
	for i := range replicas {
		sp := stranglerSpec{
			key: fmt.Sprintf("replica%d", i+1), name: fmt.Sprintf("strangler replica %d", i+1),
			routes: oneRoute("bench", "GET /bench", "legacy"), request: buildRequest("/bench"),
			store: store, extra: "debug_headers: true\n",
		}
		progress("starting %s\n", sp.name)
		t, err := s.startStrangler(bin, sp, b, o.logLevel)
		if err != nil {
			r.err = err
			return r
		}
		reps = append(reps, t)
	}
	clients := make([]*http.Client, len(reps))
	for i := range clients {
		clients[i] = &http.Client{Timeout: 5 * time.Second}
	}
	progress("flipping %d times on replica 1 of %d\n", o.propFlips, replicas)
	modes := [2]string{"modern", "legacy"}
	for i := range o.propFlips {
		mode := modes[i%2]
		seen := make([]time.Duration, len(reps))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		t0 := time.Now()
		for j, rep := range reps {
			wg.Go(func() { seen[j] = waitServedBy(clients[j], rep.addr, mode, t0, stop) })
		}
		err := flip(reps[0].admin, "bench", mode)
		r.patch.record(time.Since(t0))
		if err != nil {
			close(stop)
			wg.Wait()
			r.err = err
			return r
		}
		timer := time.AfterFunc(flipWait, func() { close(stop) })
		wg.Wait()
		if !timer.Stop() {
			r.lost++
			continue
		}
		close(stop)
		r.flips++
		worst := max(seen[0], seen[1], seen[2])
		r.all.record(worst)
		r.worst = max(r.worst, worst)
		for _, d := range seen[1:] {
			r.others.record(d)
		}
		// A pause, so that a flip does not land while the replicas are
		// still busy with the last one.
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// waitServedBy polls addr until a response says backend served it and
// returns the time since t0, or 0 when stop closes first.
func waitServedBy(c *http.Client, addr, backend string, t0 time.Time, stop <-chan struct{}) time.Duration {
	for {
		resp, err := c.Get("http://" + addr + "/bench")
		if err == nil {
			got := resp.Header.Get("X-Strangler-Backend")
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got == backend {
				return time.Since(t0)
			}
		}
		select {
		case <-stop:
			return 0
		case <-time.After(time.Millisecond):
		}
	}
}
