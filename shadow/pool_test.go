package shadow_test

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
	"strangler/shadow"
)

func TestPoolNeverRunsMoreThanItsBound(t *testing.T) {
	const bound = 4
	p := shadow.NewPool(bound)
	release := make(chan struct{})
	var running, peak atomic.Int64
	task := func() {
		n := running.Add(1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		running.Add(-1)
	}
	var started, dropped atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if p.TryGo(task) {
					started.Add(1)
				} else {
					dropped.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := started.Load(); got != bound {
		t.Errorf("got %d tasks started while all were blocked, want %d", got, bound)
	}
	if got := dropped.Load(); got != 200-bound {
		t.Errorf("got %d drops, want %d", got, 200-bound)
	}
	if got := p.Running(); got != bound {
		t.Errorf("Running() = %d, want %d", got, bound)
	}
	close(release)
	p.Wait()
	if got := p.Running(); got != 0 {
		t.Errorf("Running() = %d after Wait, want 0", got)
	}
	if got := peak.Load(); got > bound {
		t.Errorf("got %d tasks running at once, want at most %d", got, bound)
	}
	if !p.TryGo(func() {}) {
		t.Error("a free pool refused a task")
	}
	p.Wait()
}

func TestPoolUnderChurn(t *testing.T) {
	p := shadow.NewPool(3)
	var running, over atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				p.TryGo(func() {
					if running.Add(1) > 3 {
						over.Add(1)
					}
					running.Add(-1)
				})
			}
		})
	}
	wg.Wait()
	p.Close()
	if over.Load() > 0 {
		t.Errorf("more than 3 tasks ran at once %d times", over.Load())
	}
}

func TestPoolCloseWaitsAndRefuses(t *testing.T) {
	p := shadow.NewPool(2)
	var finished atomic.Bool
	p.TryGo(func() {
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
	})
	p.Close()
	if !finished.Load() {
		t.Error("Close returned before the running task finished")
	}
	ran := false
	if p.TryGo(func() { ran = true }) || ran {
		t.Error("a closed pool ran a task")
	}
}

// goroutineID is the calling goroutine's id, from the first line of its
// stack trace ("goroutine 42 [running]:").
func goroutineID() int {
	var buf [64]byte
	line := buf[:runtime.Stack(buf[:], false)]
	line, _, _ = bytes.Cut(bytes.TrimPrefix(line, []byte("goroutine ")), []byte(" "))
	id, _ := strconv.Atoi(string(line))
	return id
}

func TestPoolRunsTasksOnAWarmWorker(t *testing.T) {
	p := shadow.NewPool(4)
	defer p.Close()
	ids := map[int]int{}
	for range 20 {
		var id int
		if !p.TryGo(func() { id = goroutineID() }) {
			t.Fatal("a free pool refused a task")
		}
		p.Wait()
		ids[id]++
		// Wait wakes on the task's end; the worker reaches its wait for
		// the next task a moment later, later still on a loaded machine.
		testkit.Eventually(t, 10*time.Second, "the worker waits for the next task", workersWaiting)
	}
	most := 0
	for _, n := range ids {
		most = max(most, n)
	}
	// A new goroutine per task starts with a small stack and grows it on
	// every shadow call; a warm worker has the stack already.
	if most < 10 {
		t.Errorf("20 tasks one after another ran on %d goroutines, at most %d on one; want most on one warm worker", len(ids), most)
	}
}

// workersWaiting reports whether every pool worker of the process is
// parked in its select, waiting for a task.
func workersWaiting() bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "shadow.(*Pool).worker(") && !strings.Contains(g, " [select") {
			return false
		}
	}
	return true
}

func TestPoolWorkersEndWhenClosed(t *testing.T) {
	before := runtime.NumGoroutine()
	p := shadow.NewPool(8)
	release := make(chan struct{})
	for range 8 {
		p.TryGo(func() { <-release })
	}
	close(release)
	p.Close()
	testkit.Eventually(t, 10*time.Second, "the workers end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestCaptureKeepsTheStartAndNotesTruncation(t *testing.T) {
	c := shadow.NewCapture(10)
	for _, chunk := range []string{"0123", "4567", "89", "abc"} {
		if n, err := c.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v, want %d, nil", chunk, n, err, len(chunk))
		}
	}
	if got := string(c.Bytes()); got != "0123456789" || !c.Truncated() {
		t.Errorf("got %q truncated=%v, want 0123456789 truncated", got, c.Truncated())
	}
	c.Reset(10)
	c.Write([]byte("0123456789"))
	if got := string(c.Bytes()); got != "0123456789" || c.Truncated() {
		t.Errorf("got %q truncated=%v, want exactly the cap, not truncated", got, c.Truncated())
	}
	r := c.Response(200, nil)
	if r.Status != 200 || string(r.Body) != "0123456789" || r.Truncated {
		t.Errorf("got %+v, want the capture as a response", r)
	}
}

func TestCaptureReuseAllocatesNothing(t *testing.T) {
	c := shadow.NewCapture(4096)
	chunk := make([]byte, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		c.Reset(4096)
		for range 5 {
			c.Write(chunk)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per reuse, want 0", allocs)
	}
}

func TestSampler(t *testing.T) {
	for _, tc := range []struct {
		rate     float64
		min, max int // of 10000
	}{
		{0, 0, 0}, {1, 10000, 10000}, {0.25, 2300, 2700}, {0.999999, 9900, 10000}, {-1, 0, 0}, {2, 10000, 10000},
	} {
		s := shadow.NewSampler(tc.rate)
		n := 0
		for range 10000 {
			if s.Sample() {
				n++
			}
		}
		if n < tc.min || n > tc.max {
			t.Errorf("rate %v sampled %d of 10000, want %d to %d", tc.rate, n, tc.min, tc.max)
		}
	}
	if (shadow.Sampler{}).Sample() {
		t.Error("the zero Sampler sampled")
	}
}

func TestCaptureReadsFromAReaderUpToItsCap(t *testing.T) {
	for _, tc := range []struct {
		body      string
		limit     int
		kept      string
		truncated bool
	}{
		{"hello", 10, "hello", false},
		{"hello", 5, "hello", false},
		{"hello!", 5, "hello", true},
		{strings.Repeat("x", 10000), 9000, strings.Repeat("x", 9000), true},
	} {
		c := shadow.NewCapture(tc.limit)
		n, err := c.ReadFrom(strings.NewReader(tc.body))
		if err != nil || n != int64(len(tc.body)) {
			t.Errorf("ReadFrom(%d bytes) = %d, %v", len(tc.body), n, err)
		}
		if string(c.Bytes()) != tc.kept || c.Truncated() != tc.truncated {
			t.Errorf("limit %d: kept %d bytes, truncated %v; want %d, %v", tc.limit, len(c.Bytes()), c.Truncated(), len(tc.kept), tc.truncated)
		}
	}
}

// A slot Reserve took counts against the bound until the task Go runs in
// it ends, or until Release gives it back.
func TestPoolReservedSlotsCountAgainstTheBound(t *testing.T) {
	p := shadow.NewPool(2)
	for range 2 {
		if !p.Reserve() {
			t.Fatal("a pool with a free slot refused a reservation")
		}
	}
	if p.Reserve() || p.TryGo(func() {}) {
		t.Fatal("a pool with every slot reserved took another task")
	}
	p.Release()
	if got := p.Running(); got != 1 {
		t.Errorf("Running() = %d after a release, want 1", got)
	}
	ran := make(chan struct{})
	p.Go(func() { close(ran) })
	<-ran
	p.Wait()
	if got := p.Running(); got != 0 {
		t.Errorf("Running() = %d once the reserved task ended, want 0", got)
	}
	p.Close()
	if p.Reserve() {
		t.Error("a closed pool took a reservation")
	}
}
