package dualwrite

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/internal/testkit"
	"strangler/store"
)

// walkCounter is the store, counting the claims that walk the whole
// pending queue (ClaimRepairs).
type walkCounter struct {
	*store.Store
	walks atomic.Int64
}

func (q *walkCounter) ClaimRepairs(ctx context.Context, owner string, limit int, lease time.Duration) ([]domain.Repair, error) {
	q.walks.Add(1)
	return q.Store.ClaimRepairs(ctx, owner, limit, lease)
}

// A backlog of writes to one record (many clients updating one patient's
// record, a counter) drains in order with a number of whole-queue claims
// that does not grow with the backlog: each write's successor is claimed
// by its resource. Before, every delivery was followed by a claim that
// walked past all the writes waiting behind the next one: a backlog of n
// took n such claims, each O(n).
func TestABacklogOnOneResourceDrainsWithoutWalkingTheQueueForEachWrite(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(*testing.T) string
	}{{"sqlite", sqlite}, {"postgres", postgres}} {
		t.Run(db.name, func(t *testing.T) {
			const n = 150
			r := newRig(t, db.dsn(t), testSettings)
			var mu sync.Mutex
			var got []int
			r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
				var v struct{ V int }
				if err := json.NewDecoder(req.Body).Decode(&v); err != nil {
					t.Errorf("delivered body: %v", err)
				}
				mu.Lock()
				got = append(got, v.V)
				mu.Unlock()
			})
			for i := range n {
				r.journal(put("w"+strconv.Itoa(i), "7", `{"v":`+strconv.Itoa(i)+`}`), domain.Outcome{Status: 200})
			}
			r.journal(put("other", "8", `{"v":-1}`), domain.Outcome{Status: 200})
			q := &walkCounter{Store: r.store}
			counts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strangler_dualwrite_total", Help: "steps"}, []string{"route", "result"})
			var applied atomic.Int64
			w := New(q, r.routes, nil, testSettings, prometheus.NewRegistry(), func(route, result string) {
				counts.WithLabelValues(route, result).Inc()
				if result == "applied" {
					applied.Add(1)
				}
			}, slog.New(slog.DiscardHandler))
			w.now = time.Now // the poll finds what is due by the real clock
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- w.Run(ctx) }()
			testkit.Eventually(t, 2*time.Minute, "the backlog delivered", func() bool { return applied.Load() == n+1 })
			took := time.Since(start)
			cancel()
			if err := receive(t, done, "Run's return"); err != nil {
				t.Errorf("Run returned %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			i := 0
			for _, v := range got {
				if v == -1 {
					continue
				}
				if v != i {
					t.Fatalf("the secondary got write %d where write %d was next: %v", v, i, got)
				}
				i++
			}
			// The claim at start, one per poll, and one as the backlog
			// ends; before: one per write (n).
			if walks, limit := q.walks.Load(), 3+int64(took/pollInterval); walks > limit {
				t.Errorf("draining %d writes to one resource took %d claims walking the queue in %v, want at most %d", n, walks, took, limit)
			}
		})
	}
}
