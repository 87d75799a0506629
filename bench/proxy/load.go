package main

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// generator is a closed-loop load generator: each of its connections sends
// a request, waits for the whole response, and sends the next one at once.
// It speaks HTTP/1.1 over raw keep-alive TCP connections with a pre-built
// request and a reused read buffer, so a request costs it one write and
// (usually) one read system call and no allocation. The generator shares
// the machine's cores with the proxy under test and the backend; the less
// CPU it takes, the more the numbers measure the proxy.
type generator struct {
	conns   int
	readers []*respReader
	hists   []*histogram
	results []workerResult
}

// workerResult is what one connection saw in one run.
type workerResult struct {
	requests uint64 // responses read, whatever their status
	non2xx   uint64
	ioErrors uint64
	status   int   // a non-2xx status seen, for the report
	err      error // an I/O error seen, for the report
}

// runResult is one run against one target.
type runResult struct {
	requests, non2xx, ioErrors uint64
	elapsed                    time.Duration
	status                     int
	err                        error
}

func (r runResult) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func newGenerator(conns int) *generator {
	g := &generator{conns: conns}
	for range conns {
		g.readers = append(g.readers, newRespReader(nil, 16<<10))
		g.hists = append(g.hists, new(histogram))
	}
	g.results = make([]workerResult, conns)
	return g
}

// run drives addr with req on g.conns connections for d and adds every
// response's latency to h.
func (g *generator) run(addr string, req []byte, d time.Duration, h *histogram) runResult {
	return g.drive(addr, req, d, nil, h)
}

// drive runs g.conns workers until d has passed, closed-loop when tickets
// is nil, otherwise each sending a request per ticket it takes.
func (g *generator) drive(addr string, req []byte, d time.Duration, tickets <-chan time.Time, h *histogram) runResult {
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range g.conns {
		wg.Go(func() { g.results[i] = g.worker(i, addr, req, deadline, tickets) })
	}
	wg.Wait()
	res := runResult{elapsed: time.Since(start)}
	for i, w := range g.results {
		res.requests += w.requests
		res.non2xx += w.non2xx
		res.ioErrors += w.ioErrors
		if w.status != 0 {
			res.status = w.status
		}
		if w.err != nil && res.err == nil {
			res.err = w.err
		}
		h.merge(g.hists[i])
	}
	return res
}

// worker is one connection's loop: closed (the next request as soon as
// the last response is in) while tickets is nil, otherwise one request per
// ticket taken, its latency counted from the ticket's scheduled time, so
// that a target that falls behind is charged for the wait as well. A
// connection that fails is replaced; a response that asks to close the
// connection is honoured.
func (g *generator) worker(i int, addr string, req []byte, deadline time.Time, tickets <-chan time.Time) workerResult {
	var res workerResult
	h, rr := g.hists[i], g.readers[i]
	h.reset()
	var c net.Conn
	fail := func(err error) {
		res.ioErrors++
		if res.err == nil {
			res.err = err
		}
		if c != nil {
			c.Close()
			c = nil
		}
	}
	for {
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
				fail(err)
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			// One deadline per connection rather than per request (a timer
			// update each time): a target that stalls cannot hang the run.
			c.SetDeadline(deadline.Add(10 * time.Second))
			rr.reset(c)
		}
		t0 := time.Now()
		if tickets != nil {
			var ok bool
			if t0, ok = <-tickets; !ok {
				break
			}
		} else if !t0.Before(deadline) {
			break
		}
		if _, err := c.Write(req); err != nil {
			fail(err)
			continue
		}
		status, keepAlive, err := rr.next()
		if err != nil {
			fail(err)
			continue
		}
		h.record(time.Since(t0))
		res.requests++
		if status < 200 || status > 299 {
			res.non2xx++
			res.status = status
		}
		if !keepAlive {
			c.Close()
			c = nil
		}
	}
	if c != nil {
		c.Close()
	}
	return res
}

// buildRequest returns the bytes of a minimal keep-alive GET.
func buildRequest(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: strangler-bench\r\nAccept: */*\r\n\r\n")
}

// buildPost returns the bytes of a keep-alive POST of a JSON body.
func buildPost(path, body string) []byte {
	return []byte("POST " + path + " HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: strangler-bench\r\nAccept: */*\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// probe sends one request on a new connection and returns the status.
func probe(addr string, req []byte) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	status, _, err := newRespReader(c, 16<<10).next()
	return status, err
}

// openConns opens n keep-alive connections to addr and sends one request
// on each, with at most concurrent requests in flight, and returns the
// connections, still open, for the caller to close. With concurrent = n
// the target also opens about n upstream connections at once (and keeps
// as many idle as its pool allows); with fewer, it reuses a few.
func openConns(addr string, req []byte, n, concurrent int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("opening connection %d of %d: %w", len(conns)+1, n, err)
		}
		conns = append(conns, c)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrent)
	for i, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(req); err != nil {
				errs[i] = err
				return
			}
			status, keepAlive, err := newRespReader(c, 4<<10).next()
			switch {
			case err != nil:
				errs[i] = err
			case status != 200:
				errs[i] = fmt.Errorf("status %d", status)
			case !keepAlive:
				errs[i] = fmt.Errorf("the target closed the connection")
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("request on connection %d of %d: %w", i+1, n, err)
		}
	}
	return conns, nil
}
