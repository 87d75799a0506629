package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// startBackend serves the bench backend's legacy side on a loopback port.
func startBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptLoop(ln, false)
	return ln.Addr().String()
}

func TestPacedSendsTheOfferedLoad(t *testing.T) {
	addr := startBackend(t)
	g := newGenerator(4)
	var h histogram
	res := g.paced(addr, buildRequest("/bench"), 200, 500*time.Millisecond, &h)
	if res.requests != 100 || res.non2xx != 0 || res.ioErrors != 0 {
		t.Errorf("got %d requests, %d non-2xx, %d failed (%v); want 100, 0, 0", res.requests, res.non2xx, res.ioErrors, res.err)
	}
	if h.n != res.requests {
		t.Errorf("got %d latencies for %d requests", h.n, res.requests)
	}
	// The last of the 100 requests is due 495 ms in: a run that ends
	// sooner did not pace them. The upper bound only proves the run ends (a
	// loaded machine under -race can take seconds for 100 requests).
	if res.elapsed < 450*time.Millisecond || res.elapsed > 10*time.Second {
		t.Errorf("a run of 500ms took %v", res.elapsed)
	}
}

func TestClosedLoopPost(t *testing.T) {
	addr := startBackend(t)
	g := newGenerator(2)
	var h histogram
	res := g.run(addr, buildPost("/bench", postBody), 200*time.Millisecond, &h)
	if res.requests == 0 || res.non2xx != 0 || res.ioErrors != 0 {
		t.Errorf("got %d requests, %d non-2xx, %d failed (%v); want some, all 201", res.requests, res.non2xx, res.ioErrors, res.err)
	}
}

func TestMetricBy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`# HELP strangler_dualwrite_total Dual writes.
# TYPE strangler_dualwrite_total counter
strangler_dualwrite_total{result="applied",route="a"} 3
strangler_dualwrite_total{result="applied",route="b"} 4
strangler_dualwrite_total{result="queued",route="a"} 9
strangler_dualwrite_totals{result="applied"} 100
strangler_up 1
`))
	}))
	defer srv.Close()
	got, err := metricBy(srv.Listener.Addr().String(), "strangler_dualwrite_total", "result")
	if err != nil {
		t.Fatal(err)
	}
	if got["applied"] != 7 || got["queued"] != 9 || len(got) != 2 {
		t.Errorf("got %v, want applied 7, queued 9", got)
	}
	up, err := metricBy(srv.Listener.Addr().String(), "strangler_up", "result")
	if err != nil || up[""] != 1 {
		t.Errorf("got %v, %v for a metric without labels; want 1 under \"\"", up, err)
	}
}

func TestReadGoMemory(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`# TYPE go_goroutines gauge
go_goroutines 1045
go_memstats_heap_idle_bytes 9e+06
go_memstats_heap_inuse_bytes 2.4e+07
go_memstats_heap_released_bytes 7e+06
go_memstats_stack_inuse_bytes 1.05e+07
go_memstats_stack_sys_bytes 1.1e+07
`))
	}))
	defer srv.Close()
	got, err := readGoMemory(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	want := goMemory{heapInUse: 24e6, heapFree: 2e6, stacks: 10.5e6, goroutines: 1045}
	if got != want {
		t.Errorf("got %+v, want %+v (free: idle spans not yet released)", got, want)
	}
}
