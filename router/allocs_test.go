package router

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
)

// The request path's allocations per request, a figure that, unlike its
// time, does not move with the machine's load: each is garbage the
// collector must find, and heap the facade's memory grows by in a burst.
// The limits are today's counts (Go 1.26), with net/http's own; a change
// that adds one shows here first.
func TestRequestPathAllocationsStayWithinTheirCount(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under -race")
	}
	page := rawJSONAnswer("200 OK", `{"items":[{"id":1},{"id":2}]}`)
	legacy := rawBackend(t, page)
	missing := rawBackend(t, rawJSONAnswer("404 Not Found", `{"error":"not found"}`))
	for _, tc := range []struct {
		name, modern, route string
		max                 float64
	}{
		{"pass-through", missing, "mode: legacy", 22},
		{"fallback hit", legacy, "mode: fallback", 23},
		// Modern's answer came whole with its head: its drain needs no
		// timer (2 more otherwise).
		{"fallback miss", missing, "mode: fallback", 34},
		// With the copy's exchange and the comparison, on the pool; 45
		// before the job went to the pool as a shadow.Task rather than
		// as the method value job.run.
		{"shadow", legacy, "mode: shadow, primary: legacy, compare: {sample: 1}", 44},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serve, r := benchRouter(t, legacy, tc.modern, tc.route)
			run := func() {
				serve()
				if sh := r.Current().byName["bench"].shadow; sh != nil {
					sh.pool.Wait()
				}
			}
			// The backend connections are pooled from here on, and the
			// route has learned its response schema from as many answers
			// as it may (its clock stands still).
			for range schemaAnswersPerSecond + 1 {
				run()
			}
			if n := testing.AllocsPerRun(200, run); n > tc.max {
				t.Errorf("%v allocations a request, want at most %v", n, tc.max)
			}
		})
	}
}

// A dual write's request path, its journal entries in an SQLite store
// included (the batcher's and database/sql's allocations count too, and
// move by 2 between runs as their goroutines meet): a POST of a small
// JSON object, as the bench sends. The limit is today's count (214) and
// the 2 it moves by; the code before the body was searched for "_method"
// before it was decoded took 334, before the outcome's UPDATE on SQLite
// numbered the write itself 274, and before a write finding the batcher
// idle committed on its own goroutine and the journal wrote its headers
// itself 249, and before outcomes were numbered from a reserved block
// (store.seqBlock) 241, and before a write's being a create was worked
// out once (pendingWrite.creates) 240, and before the keyed hashes built
// their input and sum in buffers of their own (phi.keyedSum) 237, and
// before a body held in memory went to the primary as one (upstream.Held)
// 224, and before such a request's head was written the short way
// (upstream.appendHeldHead) rather than by req.Write 220.
func TestDualWriteAllocationsStayWithinTheirCount(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under -race")
	}
	r := dualWriteBenchRouter(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"),
		"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":1234}",
		"{name: bench, match: 'POST /bench', mode: dual-write, id_field: id}")
	body := `{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`
	w := &discardWriter{header: http.Header{}}
	write := func() {
		clear(w.header)
		w.status = 0
		r.ServeHTTP(w, benchPost(body).WithContext(context.Background()))
		if w.status != http.StatusCreated {
			t.Fatalf("status %d", w.status)
		}
	}
	for range 20 { // the store's statements are prepared from here on
		write()
	}
	if got, max := testing.AllocsPerRun(200, write), 216.0; got > max {
		t.Errorf("%v allocations a dual write, want at most %v", got, max)
	}
}

// A dual write of a PUT, which takes its resource's turn, on the same
// terms. The limit is today's count (195) and the 2 it moves by; the
// code before the primary's answer named the write's resource to the
// journal, which read it back, took 240, and before a write finding the
// batcher idle committed on its own goroutine and the journal wrote its
// headers itself 218, and before outcomes were numbered from a reserved
// block 212, and before the keyed hashes built their input and sum in
// buffers of their own 212, and before a body held in memory went to the
// primary as one 199, and before such a request's head was written the
// short way rather than by req.Write 195.
func TestDualWritePutAllocationsStayWithinTheirCount(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under -race")
	}
	r := dualWriteBenchRouter(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"{name: bench, match: 'PUT /bench/{id}', mode: dual-write}")
	body := `{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`
	w := &discardWriter{header: http.Header{}}
	write := func() {
		clear(w.header)
		w.status = 0
		req := benchPost(body)
		req.Method, req.URL.Path, req.RequestURI = http.MethodPut, "/bench/7", "/bench/7"
		r.ServeHTTP(w, req.WithContext(context.Background()))
		if w.status != http.StatusOK {
			t.Fatalf("status %d", w.status)
		}
	}
	for range 20 { // the store's statements are prepared from here on
		write()
	}
	if got, max := testing.AllocsPerRun(200, write), 191.0; got > max {
		t.Errorf("%v allocations a dual write, want at most %v", got, max)
	}
}
