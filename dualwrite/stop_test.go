package dualwrite

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/domain"
	"strangler/internal/testkit"
	"strangler/store"
)

// TestAStopReleasesTheWritesItHasNotBegunToSend: at shutdown the worker
// keeps the lease of the delivery under way, releases at once the write
// handed to it that waits for a slot, and the request path leases it no
// write once it has stopped: those writes are for whoever claims next
// (a restarted facade, another replica), not held until their leases
// pass.
func TestAStopReleasesTheWritesItHasNotBegunToSend(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := testSettings
			s.Workers = 1
			r := newRig(t, dsn(t), s)
			r.w.now = time.Now
			// a's delivery stays under way for the whole test.
			r.routes.setBackend(t, "modern", r.modern.URL, time.Minute)
			held, release := gate(t)
			arrived := make(chan string, 10)
			r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
				arrived <- req.URL.Path
				if req.URL.Path == "/items/a" {
					<-held
				}
			})
			journal := NewOutcomes(r.store, r.w.kicks, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			srv := httptest.NewServer(newRouter(t, r.legacy.URL, r.modern.URL, journal))
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.w.Run(ctx) }()
			t.Cleanup(func() { cancel(); release() })

			putItem := func(item string) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPut, srv.URL+"/items/"+item, strings.NewReader(`{}`))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("PUT /items/%s: %v %v", item, resp, err)
				}
				resp.Body.Close()
			}
			putItem("a")
			if got := receive(t, arrived, "the delivery of a"); got != "/items/a" {
				t.Fatalf("the secondary got %s first, want /items/a", got)
			}
			putItem("b") // handed over; the only slot is a's
			a, b := r.writeTo("/items/a"), r.writeTo("/items/b")
			if b.LeaseOwner != r.w.owner {
				t.Fatalf("b before the stop: leased to %q, want handed to the worker (%q)", b.LeaseOwner, r.w.owner)
			}

			cancel()
			// a is held at the secondary until release below: b must be
			// released while a is under way, however long the machine takes.
			testkit.Eventually(t, 30*time.Second, "b released while a is still under way", func() bool {
				return r.repair(b.ID).LeaseOwner == ""
			})
			if got := r.repair(a.ID); got.LeaseOwner != r.w.owner {
				t.Errorf("a, under way at the stop: leased to %q, want kept by the worker", got.LeaseOwner)
			}
			select {
			case err := <-done:
				t.Fatalf("Run returned (%v) with a delivery under way", err)
			default:
			}

			release()
			if err := receive(t, done, "Run's return"); err != nil {
				t.Errorf("Run returned %v", err)
			}
			if got := r.repair(a.ID).State; got != domain.StateDone {
				t.Errorf("a after Run returned: %s, want done", got)
			}
			if got := r.repair(b.ID); got.State != domain.StatePending || got.LeaseOwner != "" || got.Attempts != 0 {
				t.Errorf("b after Run returned: %s leased to %q, %d attempts; want pending, unleased, never tried", got.State, got.LeaseOwner, got.Attempts)
			}

			putItem("c") // a request finishing after the worker stopped
			if got := r.writeTo("/items/c"); got.State != domain.StatePending || got.LeaseOwner != "" {
				t.Errorf("c, recorded after the stop: %s leased to %q, want pending and unleased", got.State, got.LeaseOwner)
			}
			select {
			case p := <-arrived:
				t.Errorf("the secondary got %s after the stop, want nothing", p)
			default:
			}
		})
	}
}

// writeTo is the one journaled write whose target is path.
func (r *rig) writeTo(path string) domain.Repair {
	r.t.Helper()
	l, err := r.store.ListRepairs(context.Background(), store.RepairFilter{Limit: 1000})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range l {
		if w := r.repair(s.ID); w.Target == path {
			return w
		}
	}
	r.t.Fatalf("no journaled write to %s", path)
	return domain.Repair{}
}
