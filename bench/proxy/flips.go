package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Issue 5: flips. A route is flipped between legacy and modern through the
// admin API every -flip-every while a paced load runs; no request may fail.

// flipsResult is what the flips under load did.
type flipsResult struct {
	err                error // it could not run
	rate               float64
	dur, every         time.Duration
	requests, errors   uint64
	status             int   // a non-2xx status seen
	firstErr           error // a failed request
	hist               histogram
	flips, flipsFailed int
	flipErr            error
	flipTime           histogram // PATCH round trips
	byBackend          map[string]float64
}

// adminClient makes the flips; flips are quick, but the store behind them
// may not be.
var adminClient = &http.Client{Timeout: 10 * time.Second}

// flip sets route's mode on the strangler whose admin listener is admin:
// it reads the route's version and changes it only if nobody else did
// (If-Match), as the admin API requires.
func flip(admin, route, mode string) error {
	url := "http://" + admin + "/admin/routes/" + route
	version, err := adminCall(http.MethodGet, url, "", "")
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"mode":%q,"reason":"bench: flip under load","force":true}`, mode)
	_, err = adminCall(http.MethodPatch, url, body, version)
	return err
}

// adminCall sends one admin API request and returns the ETag of its
// answer; anything but 200 is an error.
func adminCall(method, url, body, ifMatch string) (string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+benchToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s: %s", method, req.URL.Path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Header.Get("ETag"), nil
}

// runFlips starts a strangler of its own and drives it at -flip-rate for
// -flip-duration while flipping its route every -flip-every.
func runFlips(s *supervisor, o options, bin string, b backendAddrs, g *generator) *flipsResult {
	r := &flipsResult{rate: o.flipRate, dur: o.flipFor, every: o.flipEvery}
	if o.flipRate <= 0 || o.flipFor <= 0 || o.flipEvery <= 0 {
		r.err = fmt.Errorf("-flip-rate, -flip-duration and -flip-every must be positive")
		return r
	}
	sp := stranglerSpec{key: "flips", name: "strangler flips", routes: oneRoute("bench", "GET /bench", "legacy"), request: buildRequest("/bench")}
	progress("starting %s\n", sp.name)
	t, err := s.startStrangler(bin, sp, b, o.logLevel)
	if err != nil {
		r.err = err
		return r
	}
	var discard histogram
	g.paced(t.addr, t.request, o.flipRate, time.Second, &discard)
	before, err := metricBy(t.admin, "strangler_requests_total", "backend")
	if err != nil {
		r.err = fmt.Errorf("reading /metrics: %w", err)
		return r
	}

	progress("flipping %s every %v for %v at %.0f req/s\n", sp.name, o.flipEvery, o.flipFor, o.flipRate)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(o.flipEvery)
		defer tick.Stop()
		modes := [2]string{"modern", "legacy"}
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			err := flip(t.admin, "bench", modes[r.flips%2])
			r.flipTime.record(time.Since(t0))
			r.flips++
			if err != nil {
				r.flipsFailed++
				if r.flipErr == nil {
					r.flipErr = err
				}
			}
		}
	})
	res := g.paced(t.addr, t.request, o.flipRate, o.flipFor, &r.hist)
	close(stop)
	wg.Wait()
	r.requests, r.errors, r.status, r.firstErr = res.requests, res.non2xx+res.ioErrors, res.status, res.err
	after, err := metricBy(t.admin, "strangler_requests_total", "backend")
	if err != nil {
		r.err = fmt.Errorf("reading /metrics: %w", err)
	}
	r.byBackend = map[string]float64{}
	for k, v := range after {
		r.byBackend[k] = v - before[k]
	}
	if e := t.proc.exited(); e != nil {
		r.err = e
	}
	return r
}
