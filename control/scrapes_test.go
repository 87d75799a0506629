package control

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/internal/testkit"
	"strangler/store"
)

// heldCollector is a collector whose scrapes wait until released,
// counting how many are gathered at once.
type heldCollector struct {
	in      atomic.Int64
	release chan struct{}
}

func (c *heldCollector) Describe(chan<- *prometheus.Desc) {}

func (c *heldCollector) Collect(chan<- prometheus.Metric) {
	c.in.Add(1)
	<-c.release
}

// TestAFloodOfScrapesIsRefusedPastFourAtOnce: /metrics needs no token,
// and a scrape costs far more than /healthz: clients scraping in a loop
// made every dual write wait for seconds. Four scrapes are gathered at
// once; the others answer 503 at once.
func TestAFloodOfScrapesIsRefusedPastFourAtOnce(t *testing.T) {
	p := newPlane(t)
	held := &heldCollector{release: make(chan struct{})}
	p.reg.MustRegister(held)
	var once sync.Once
	release := func() { once.Do(func() { close(held.release) }) }
	t.Cleanup(release) // before the server's Close, which waits for them
	const scrapes = 10
	var refused atomic.Int64
	codes := make(chan int, scrapes)
	for range scrapes {
		go func() {
			resp, err := http.Get(p.URL + "/metrics")
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				refused.Add(1)
			}
			codes <- resp.StatusCode
		}()
	}
	testkit.Eventually(t, 20*time.Second, "4 scrapes gathered and 6 refused", func() bool {
		return held.in.Load() == maxScrapes && refused.Load() == scrapes-maxScrapes
	})
	release()
	got := map[int]int{}
	for range scrapes {
		got[<-codes]++
	}
	if got[200] != maxScrapes || got[503] != scrapes-maxScrapes || held.in.Load() != maxScrapes {
		t.Errorf("%d scrapes at once answered %v, gathering %d; want %d 200 and the rest 503", scrapes, got, held.in.Load(), maxScrapes)
	}
}

// heldRamps is a store whose reads of the ramps wait while held.
type heldRamps struct {
	*store.Store
	reads atomic.Int64
	mu    sync.Mutex
	hold  chan struct{} // nil: reads pass
}

func (s *heldRamps) Ramps(ctx context.Context) (map[string]store.Ramp, error) {
	s.reads.Add(1)
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.Ramps(ctx)
}

func (s *heldRamps) setHold(hold chan struct{}) {
	s.mu.Lock()
	s.hold = hold
	s.mu.Unlock()
}

// TestScrapesReadTheStoreOneAtATime: the rollouts' metrics come from the
// store, whose embedded kind has one connection, which dual writes wait
// for. A scrape that comes while another reads the store does not read
// it too: it reports what the last read found, nothing before the first.
func TestScrapesReadTheStoreOneAtATime(t *testing.T) {
	p := newPlane(t)
	st := &heldRamps{Store: p.store}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewRollouts(p.flags, st, p.store, p.admin.Tokens, p.log, p.clock.Now).Collector())
	// waitingSeries is how many strangler_ramp_waiting_seconds series a
	// scrape reports: one per route once the store was read.
	waitingSeries := func() int {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "strangler_ramp_waiting_seconds" {
				return len(f.GetMetric())
			}
		}
		return 0
	}
	routes := len(p.flags.All())

	for i, previous := range []int{0, routes} {
		hold := make(chan struct{})
		st.setHold(hold)
		first := make(chan int)
		go func() { first <- waitingSeries() }()
		testkit.Eventually(t, 10*time.Second, "the first scrape reading the store", func() bool { return st.reads.Load() == int64(2*i+1) })
		if got := waitingSeries(); got != previous || st.reads.Load() != int64(2*i+1) {
			t.Errorf("a scrape while another read the store: %d reads of the store, %d series; want %d, %d", st.reads.Load()-int64(2*i), got, 1, previous)
		}
		st.setHold(nil)
		close(hold)
		if got := <-first; got != routes {
			t.Errorf("the scrape that read the store reports %d series, want %d", got, routes)
		}
		if got := waitingSeries(); got != routes || st.reads.Load() != int64(2*i+2) {
			t.Errorf("a scrape alone: %d series after %d reads, want %d after %d", got, st.reads.Load(), routes, 2*i+2)
		}
	}
}
