package dualwrite

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/store"
)

// serveFacade serves, as the facade does, the rig's routes through a
// router whose journal hands the writes it records to the rig's worker,
// which runs until the test ends; it returns the router's URL.
func (r *rig) serveFacade() string {
	r.t.Helper()
	journal := NewOutcomes(r.store, r.w.kicks, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(newRouter(r.t, r.legacy.URL, r.modern.URL, journal))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	r.t.Cleanup(func() {
		stop()
		<-done
		srv.Close()
	})
	return srv.URL
}

// TestWritesGoToTheSecondaryFromTheRequestInHand: the worker delivers a
// write the journal leased to it when recording its outcome from the
// request the facade still holds: once, after the writes to its resource
// before it, and whether or not the worker had a slot free for it.
func TestWritesGoToTheSecondaryFromTheRequestInHand(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, dsn(t), testSettings)
			var mu sync.Mutex
			var order []string // the bodies the secondary got for item 1
			r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
				if req.URL.Path == "/items/1" {
					mu.Lock()
					order = append(order, req.Header.Get("X-Seq"))
					mu.Unlock()
				}
				time.Sleep(time.Millisecond) // a delivery takes a while: later writes to item 1 find it under way
			})
			url := r.serveFacade()
			const writes, updates = 40, 10
			var wg sync.WaitGroup
			for i := range writes {
				wg.Go(func() {
					req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/items/other-%d", url, i), strings.NewReader(`{}`))
					if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
						t.Errorf("PUT %d: %v %v", i, resp, err)
					} else {
						resp.Body.Close()
					}
				})
			}
			for i := range updates { // one after the other, to one item
				req, _ := http.NewRequest(http.MethodPut, url+"/items/1", strings.NewReader(`{}`))
				req.Header.Set("X-Seq", fmt.Sprint(i))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("PUT /items/1 #%d: %v %v", i, resp, err)
				}
				resp.Body.Close()
			}
			wg.Wait()
			// A write leased to the worker that it dropped would wait for
			// its lease to pass, more than half a minute.
			waitFor(t, func() bool { return r.modern.Hits() >= writes+updates })
			mu.Lock()
			if got := strings.Join(order, ","); got != "0,1,2,3,4,5,6,7,8,9" {
				t.Errorf("the secondary got item 1's writes in the order %s, want the primary's", got)
			}
			mu.Unlock()
			keys := map[string]bool{}
			for _, req := range r.modern.Requests() {
				keys[req.Header.Get("Idempotency-Key")] = true
			}
			if len(keys) != writes+updates {
				t.Errorf("the secondary got %d distinct writes, want %d", len(keys), writes+updates)
			}
			waitFor(t, func() bool { return r.count("put-item", "applied") == writes+updates })
			list, err := r.store.ListRepairs(context.Background(), store.RepairFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range list {
				if w.State != domain.StateDone {
					t.Errorf("write %s is %s, want done", w.ID, w.State)
				}
			}
		})
	}
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
