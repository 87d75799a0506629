package control

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/internal/testkit"
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
